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
    upstream: dict[str, Path]
    """Shard files of the same index of the stages this one reads, by stage name."""
    writer: ShardWriter

    def write(self, record: dict[str, Any]) -> None:
        self.writer.append(record)

    def quarantine(self, item_id: str, reason: str, detail: str = "") -> None:
        self.writer.add_quarantine(item_id, reason, detail)

    def read(self, stage: str):
        """A reader of the upstream stage's shard of the same index (a context manager)."""
        from ..shards import ShardReader

        return ShardReader(self.upstream[stage])


@dataclass(frozen=True)
class Stage:
    name: str
    doc: str
    schema: Schema
    resource_class: str
    reads: tuple[str, ...]
    """Stages whose shard i this stage's shard i reads."""
    run: Callable[[Shard, PipelineConfig], dict[str, Any]]
    make_plan: Callable[[PipelineConfig, int | None], Plan] | None = None
    """Build the wanted plan from the config (and an explicit shard count, if given); None for a stage that
    reads other stages: the same shard count, shard i reads shard i."""

    def plan(self, cfg: PipelineConfig, num_shards: int | None) -> Plan:
        if self.make_plan is not None:
            return self.make_plan(cfg, num_shards)
        from ..plan import downstream_plan

        return downstream_plan(self.name, self.reads, {name: cfg.work_dir / name for name in self.reads}, num_shards)


def _registry() -> dict[str, Stage]:
    from . import context, convert, download, figures, filter, ingest, qa, search

    stages = (search.STAGE, download.STAGE, ingest.STAGE, convert.STAGE, figures.STAGE, filter.STAGE, context.STAGE,
              qa.STAGE)
    return {stage.name: stage for stage in stages}


STAGES: dict[str, Stage] = _registry()


def get_stage(name: str) -> Stage:
    try:
        return STAGES[name]
    except KeyError:
        raise KeyError(f"unknown stage '{name}' (known stages: {', '.join(STAGES)})") from None
