"""Run one shard of one stage: the code every job executes, whatever scheduler started it.

`run_shard(config_path, stage, index, generation=...)` is idempotent: a complete shard is skipped. It checks that
its generation owns the shard (ldrt_hpc/ownership.py), opens the shard's writer, calls the stage, commits
(temporary name -> fence -> rename -> marker). When the stage raises, it writes a failure record
`shard-NNNNN.failed.json` (error, traceback tail, job id, generation, host) beside the shard and re-raises, so that
the job exits non-zero and both the scheduler and `ldrt-hpc status` see the failure.
"""

from __future__ import annotations

import json
import logging
import signal
import socket
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from . import layout
from .config import PipelineConfig, config_hash, load_pipeline
from .layout import failure_path
from .ownership import append_records, new_generation, ownership_problem, whoami
from .plan import PlanError, check_upstream, load_plan
from .shards import (
    LostOwnership,
    ShardWriter,
    atomic_write_text,
    corrupt_path,
    is_complete,
    read_marker,
    shard_path,
)
from .stages import Shard, get_stage

log = logging.getLogger(__name__)


def stage_dir(cfg: PipelineConfig, stage: str) -> Path:
    return layout.stage_dir(cfg.work_dir, stage)


def read_failure(stage_dir_: Path, index: int) -> dict[str, Any] | None:
    try:
        return json.loads(failure_path(stage_dir_, index).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


class Terminated(BaseException):
    """SIGTERM reached the task (`ldrt-hpc cancel`, scancel, qdel, preemption): stop now, clean up, record it."""


def stop_on_sigterm() -> None:
    """Make SIGTERM end the task promptly. submitit ignores SIGTERM ("Bypassing signal SIGTERM") so that a
    preempted job can checkpoint on USR2; a shard is redone from its start, so stopping at once is safe, and a
    cancelled task must not go on writing until the scheduler's KillWait."""

    def handler(signum, frame):
        raise Terminated(f"received {signal.Signals(signum).name} (cancelled, preempted or out of time)")

    signal.signal(signal.SIGTERM, handler)


def claim(directory: Path, index: int, job: tuple[str, str] | None) -> str:
    """A direct run of one shard (`ldrt-hpc task`, static job scripts) takes the shard over: a new generation.
    `job`: (scheduler, job id) of the job it runs in, as the launcher tells (None: this process)."""
    generation = new_generation()
    scheduler, job_id = job or ("direct", whoami())
    append_records(directory, [{
        "shard": index, "generation": generation, "scheduler": scheduler, "job_id": job_id,
        "submitted_at": time.time(), "submitter": whoami(), "direct": True,
        "folder": None}])
    return generation


def record_failure(directory: Path, index: int, record: dict[str, Any]) -> None:
    """Write the failure record; when even that fails (read-only or full file system), say so in the job's log."""
    path = failure_path(directory, index)
    try:
        atomic_write_text(path, json.dumps(record, indent=1) + "\n")
    except OSError as exc:
        print(f"ldrt-hpc: could not write the failure record {path} ({exc.strerror or exc}); "
              f"the shard failed with: {record['error']}", file=sys.stderr, flush=True)


def run_shard(
    config_path: str | Path, stage_name: str, index: int, job_id: str | None = None, force: bool = False,
    generation: str | None = None, claim_as: tuple[str, str] | None = None,
) -> dict[str, Any]:
    """Run shard `index` of `stage_name` with the (frozen) config at `config_path`; returns its marker.

    `generation` is the submission this task belongs to (None: a direct run, which claims the shard itself). Only
    the shard's current owner commits: see ldrt_hpc/ownership.py.
    """
    cfg = load_pipeline(config_path)
    stage = get_stage(stage_name)
    directory = stage_dir(cfg, stage_name)
    plan = load_plan(directory)
    if plan is None:
        raise PlanError(f"stage '{stage_name}' has no plan in {directory}: submit it with `ldrt-hpc run {stage_name}`")
    check_upstream(directory, plan, cfg.work_dir)  # a job queued before an upstream re-plan
    if not 0 <= index < plan.num_shards:
        raise PlanError(f"shard {index} is outside the plan of '{stage_name}' (0..{plan.num_shards - 1})")
    if not force and is_complete(directory, index):
        log.info("%s shard %d already complete: skipped", stage_name, index)
        return read_marker(directory, index) or {}
    if generation is None:
        generation = claim(directory, index, claim_as)

    def fence() -> str | None:
        return ownership_problem(directory, index, generation)

    problem = fence()
    if problem:  # cancelled before it started, or superseded: no work, no failure record (it is not ours)
        raise LostOwnership(f"{stage_name} shard {index}: not started: {problem}")
    upstream = {}
    for name in plan.upstream:
        upstream_dir = stage_dir(cfg, name)
        if not is_complete(upstream_dir, index):
            raise RuntimeError(
                f"{stage_name} shard {index} needs {name} shard {index}, which is not complete "
                f"({shard_path(upstream_dir, index)}); run `ldrt-hpc status {name}`"
            )
        upstream[name] = shard_path(upstream_dir, index)
    started = time.time()
    try:
        with ShardWriter(
            directory,
            index,
            stage=stage_name,
            count=plan.num_shards,
            schema=stage.schema,
            config_hash=config_hash(cfg),
            generation=generation,
            fence=fence,
        ) as writer:
            writer.remove_other_attempts()
            shard = Shard(stage_name, index, plan.num_shards, plan.inputs(index), upstream, writer)
            stats = stage.run(shard, cfg)
            marker = writer.commit(job_id=job_id, stats=stats)
    except LostOwnership as exc:
        log.warning("%s", exc)
        raise
    except BaseException as exc:
        if fence() is None:  # only the owner describes the shard's state
            record_failure(directory, index, {
                "stage": stage_name,
                "shard_index": index,
                "error": f"{type(exc).__name__}: {exc}",
                "traceback": traceback.format_exc()[-4000:],
                "job_id": job_id,
                "generation": generation,
                "host": socket.gethostname(),
                "failed_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "duration_s": round(time.time() - started, 3),
            })
        raise
    failure_path(directory, index).unlink(missing_ok=True)
    corrupt_path(directory, index).unlink(missing_ok=True)
    log.info("%s shard %d: %d items, %d quarantined", stage_name, index, marker["item_count"], marker["quarantined_count"])
    return marker
