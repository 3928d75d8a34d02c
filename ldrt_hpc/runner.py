"""Run one shard of one stage: the code every job executes, whatever scheduler started it.

`run_shard(config_path, stage, index)` is idempotent: a complete shard is skipped. It opens the shard's writer,
calls the stage, commits (temporary name -> rename -> marker). When the stage raises, it writes a failure record
`shard-NNNNN.failed.json` (error, traceback tail, job id, host) beside the shard and re-raises, so that the job
exits non-zero and both the scheduler and `ldrt-hpc status` see the failure.
"""

from __future__ import annotations

import json
import logging
import socket
import time
import traceback
from pathlib import Path
from typing import Any

from .config import PipelineConfig, config_hash, load_pipeline
from .plan import PlanError, check_upstream, load_plan
from .shards import ShardWriter, atomic_write_text, is_complete, read_marker, shard_name, shard_path
from .stages import Shard, get_stage

log = logging.getLogger(__name__)


def stage_dir(cfg: PipelineConfig, stage: str) -> Path:
    return cfg.work_dir / stage


def failure_path(stage_dir_: Path, index: int) -> Path:
    return stage_dir_ / f"{shard_name(index)}.failed.json"


def read_failure(stage_dir_: Path, index: int) -> dict[str, Any] | None:
    try:
        return json.loads(failure_path(stage_dir_, index).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def run_shard(
    config_path: str | Path, stage_name: str, index: int, job_id: str | None = None, force: bool = False
) -> dict[str, Any]:
    """Run shard `index` of `stage_name` with the (frozen) config at `config_path`; returns its marker."""
    cfg = load_pipeline(config_path)
    stage = get_stage(stage_name)
    directory = stage_dir(cfg, stage_name)
    plan = load_plan(directory)
    if plan is None:
        raise PlanError(f"stage '{stage_name}' has no plan in {directory}: submit it with `ldrt-hpc run {stage_name}`")
    check_upstream(directory, plan, [stage_dir(cfg, name) for name in plan.upstream])  # a job queued before a re-plan
    if not 0 <= index < plan.num_shards:
        raise PlanError(f"shard {index} is outside the plan of '{stage_name}' (0..{plan.num_shards - 1})")
    if not force and is_complete(directory, index):
        log.info("%s shard %d already complete: skipped", stage_name, index)
        return read_marker(directory, index) or {}
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
        ) as writer:
            shard = Shard(stage_name, index, plan.num_shards, plan.inputs(index), upstream, writer)
            stats = stage.run(shard, cfg)
            marker = writer.commit(job_id=job_id, stats=stats)
    except BaseException as exc:
        record = {
            "stage": stage_name,
            "shard_index": index,
            "error": f"{type(exc).__name__}: {exc}",
            "traceback": traceback.format_exc()[-4000:],
            "job_id": job_id,
            "host": socket.gethostname(),
            "failed_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "duration_s": round(time.time() - started, 3),
        }
        atomic_write_text(failure_path(directory, index), json.dumps(record, indent=1) + "\n")
        raise
    failure_path(directory, index).unlink(missing_ok=True)
    log.info("%s shard %d: %d items, %d quarantined", stage_name, index, marker["item_count"], marker["quarantined_count"])
    return marker
