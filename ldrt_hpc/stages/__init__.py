"""Stages: each is a plain function over one shard, `run(shard, cfg) -> stats`, in a module of its own.

A stage module holds its `SCHEMA`, its `run` and, for a stage that plans itself from the config or from other
stages' content, `make_plan(cfg, num_shards) -> Plan`. What it reads, what it plans from, its resource class and
its place in the pipeline are declared once, in the stage graph (ldrt_hpc/stages/graph.py). A stage knows nothing
of schedulers: the launcher decides where `run` executes, the runner (ldrt_hpc.runner) opens and commits its
shard file. `get_stage` imports only the module of the stage asked for, so a task does not pay for the libraries
of every other stage (PyMuPDF, OpenCV, scikit-learn, torch).
"""

from __future__ import annotations

import hashlib
import importlib
import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable

from .. import layout
from ..config import PipelineConfig
from ..plan import Plan
from ..shards import Schema, ShardWriter
from .graph import GRAPH, StageNode


@dataclass
class Shard:
    """What a stage sees of its shard: its inputs, the writer of its output, a folder for resume state."""

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

    def resume_log(self, prefix: str, shaping: Any) -> Path:
        """A JSON-lines resume log in the state dir, named by a hash of what shapes its records: other settings
        start afresh, settings that do not shape them (an endpoint address, a batch size) resume."""
        key = json.dumps(shaping, sort_keys=True, default=str)
        return self.state_dir / f"{prefix}-{hashlib.sha256(key.encode()).hexdigest()[:16]}.jsonl"

    @property
    def state_dir(self) -> Path:
        """Resume state of this shard (created on first use); kept across attempts, moved aside by `--replan`."""
        path = layout.shard_state_dir(self.writer.stage_dir, self.index)
        path.mkdir(parents=True, exist_ok=True)
        return path


@dataclass(frozen=True)
class Stage:
    node: StageNode
    schema: Schema
    run: Callable[[Shard, PipelineConfig], dict[str, Any]]
    make_plan: Callable[[PipelineConfig, int | None], Plan] | None = None
    """Build the wanted plan from the config (and an explicit shard count, if given); None for a stage that
    reads other stages: the same shard count, shard i reads shard i."""
    preflight: Callable[[PipelineConfig], None] | None = None
    """Check on the submitting machine that the stage's backends can run (raises BackendUnavailable), so that a
    missing package or jar is found before any job is queued, not once per job; None: nothing to check."""

    def check(self, cfg: PipelineConfig) -> None:
        """Run the stage's preflight, if it has one (the launcher, before it pins or submits anything)."""
        if self.preflight is not None:
            self.preflight(cfg)

    @property
    def name(self) -> str:
        return self.node.name

    @property
    def reads(self) -> tuple[str, ...]:
        return self.node.reads

    @property
    def resource_class(self) -> str:
        return self.node.resource_class

    def plan(self, cfg: PipelineConfig, num_shards: int | None) -> Plan:
        """The wanted plan, with the fingerprint of every stage it reads or was planned from."""
        from ..plan import downstream_plan, upstream_fingerprint

        if self.make_plan is None:
            return downstream_plan(self.name, self.reads, cfg.work_dir, num_shards)
        plan = self.make_plan(cfg, num_shards)
        planned_from = self.node.plans_from if plan.planned_from is None else plan.planned_from
        return replace(plan, planned_from=planned_from,
                       upstream_fingerprint=upstream_fingerprint(cfg.work_dir, plan.upstream, planned_from))


def get_stage(name: str) -> Stage:
    """The stage's node and code; imports its module (and only its module)."""
    node = GRAPH[name]
    module = importlib.import_module(f"{__name__}.{node.module}")
    return Stage(node, module.SCHEMA, module.run, getattr(module, "make_plan", None),
                 getattr(module, "preflight", None))


__all__ = ["GRAPH", "Shard", "Stage", "StageNode", "get_stage"]
