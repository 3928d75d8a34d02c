"""The stage registry: each stage is a plain function over one shard, `run(shard, cfg) -> stats`.

A stage knows its schema, which stage it reads (shard i reads the upstream's shard i), the class of resources it
needs on a cluster ('cpu', 'gpu', 'multinode_gpu'), and how to plan its shards. It knows nothing of schedulers:
the launcher decides where `run` executes, the runner (ldrt_hpc.runner) opens and commits its shard file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from ..config import PipelineConfig
from ..plan import Plan
from ..shards import Schema, ShardWriter


@dataclass
class Shard:
    """What a stage sees of its shard: its inputs and the writer of its output."""

    stage: str
    index: int
    count: int
    inputs: tuple[str, ...]
    """Input files of a stage that reads files (from the pinned plan)."""
    upstream: Path | None
    """The upstream stage's shard file of the same index, for a stage that reads another stage."""
    writer: ShardWriter

    def write(self, record: dict[str, Any]) -> None:
        self.writer.append(record)

    def quarantine(self, item_id: str, reason: str, detail: str = "") -> None:
        self.writer.add_quarantine(item_id, reason, detail)


@dataclass(frozen=True)
class Stage:
    name: str
    doc: str
    schema: Schema
    resource_class: str
    reads: str | None
    make_plan: Callable[[PipelineConfig, int | None], Plan]
    """Build the wanted plan from the config (and an explicit shard count, if given)."""
    run: Callable[[Shard, PipelineConfig], dict[str, Any]]


def _registry() -> dict[str, Stage]:
    from . import ingest

    return {stage.name: stage for stage in (ingest.STAGE,)}


STAGES: dict[str, Stage] = _registry()


def get_stage(name: str) -> Stage:
    try:
        return STAGES[name]
    except KeyError:
        raise KeyError(f"unknown stage '{name}' (known stages: {', '.join(STAGES)})") from None
