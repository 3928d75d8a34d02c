"""`ldrt-hpc train`: the training run as one submitit job of nodes x ranks-per-node processes (one per GPU).

Each process gets the torch.distributed environment from submitit's job environment (Slurm: srun tasks; PBS Pro:
PALS `mpiexec`, see pbs.py; local: processes on this machine) and runs the recipe (ldrt_hpc/train/recipe.py). The
job receives only the path of the frozen training config.

`TrainTask` is checkpointable: the recipe catches the warning signal itself (USR2, Slurm `--signal` or the PBS
timer), saves a checkpoint at the next optimizer step and only then hands over to submitit, which calls
`checkpoint` (the same call again: every start resumes from the newest complete checkpoint) and requeues the job.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import ClusterProfile, Resources, load_cluster
from ..errors import ConfigError, SubmissionError
from ..train.config import TrainConfig, freeze_train
from .executors import job_script, make_executor


class TrainTask:
    """What every rank of the job runs."""

    def __call__(self, config_path: str) -> dict[str, Any]:
        import os

        import submitit

        if int(os.environ.get("LDRT_NUM_TASKS", "1")) > 1 and "PMI_RANK" not in os.environ:
            # submitit would read rank 0 in every process and the rendezvous would hang
            raise RuntimeError("PBS job with several ranks but no PMI_RANK: the job's mpiexec must be Cray PALS (or "
                               "another MPI launcher that sets PMI_RANK and PMI_LOCAL_RANK)")

        # CUDA_VISIBLE_DEVICES stays as the scheduler set it: the recipe picks the device of its local rank
        submitit.helpers.TorchDistributedEnvironment().export(set_cuda_visible_devices=False, overwrite=True)
        from ..train.recipe import train

        return train(config_path, on_requeue=submitit_requeue())

    def checkpoint(self, config_path: str):
        import submitit

        return submitit.helpers.DelayedSubmission(self, config_path)


def submitit_requeue():
    """submitit's own USR2 handler, installed before the task runs (it calls `checkpoint` and requeues the job): the
    recipe takes USR2 over to save a checkpoint first, then calls this. None outside a submitit job."""
    import signal

    handler = signal.getsignal(signal.SIGUSR2)
    if not callable(handler) or not type(getattr(handler, "__self__", None)).__module__.startswith("submitit"):
        return None
    return lambda: handler(signal.SIGUSR2, None)


train_task = TrainTask()


@dataclass
class TrainSubmission:
    job_id: str | None
    cluster: str
    script: str
    config: Path
    log_folder: Path
    ranks: int


def jobs_dir(cfg: TrainConfig) -> Path:
    return cfg.output_dir / "_jobs"


def placement(cfg: TrainConfig, cluster: str, flags: dict[str, Any]) -> tuple[ClusterProfile, Resources]:
    """The profile's resource class for training, then the config's `resources`, then the command's flags; with
    GPUs, one process per GPU."""
    from .launcher import layered

    profile = load_cluster(cluster)
    base = profile.resources_for(cfg.resource_class, cluster)
    profile, merged = layered(profile, base, [cfg.resources], flags, f"training resources (profile {cluster})")
    derived = {"array_parallelism": 1,
               # the warning before the time limit must leave time to write a checkpoint (minutes at 13B ZeRO-3)
               "signal_delay_s": max(merged.signal_delay_s, cfg.checkpoint.stop_before_limit_s)}
    if merged.gpus_per_node:
        derived["tasks_per_node"] = merged.gpus_per_node
    _, resources = layered(profile, merged, [derived], {}, f"training resources (profile {cluster})")
    if profile.scheduler == "local" and resources.nodes > 1:
        raise ConfigError(f"cluster profile '{cluster}' runs on this machine only: nodes must be 1, not {resources.nodes}")
    return profile, resources


def submit_training(cfg: TrainConfig, cluster: str, dry_run: bool = False, flags: dict[str, Any] | None = None,
                    python: str | None = None) -> TrainSubmission:
    """Freeze the config, submit (or, dry run, only render) the training job and record it."""
    profile, resources = placement(cfg, cluster, dict(flags or {}))
    folder = jobs_dir(cfg) / "logs"
    ranks = resources.nodes * resources.tasks_per_node
    script = job_script(profile, resources, folder, "ldrt-train", 1, python=python, ranks=True)
    config = freeze_train(cfg, write=not dry_run)
    if dry_run:
        return TrainSubmission(None, cluster, script, config, folder, ranks)
    executor = make_executor(profile, resources, folder, "ldrt-train", ranks=True)
    try:
        job = executor.submit(train_task, str(config))
    except Exception as exc:  # sbatch/qsub refusals: one line, nothing recorded
        raise SubmissionError(f"{profile.scheduler} refused the training job: {' '.join(str(exc).split())[-300:]}") from None
    record = {"job_id": job.job_id, "cluster": cluster, "config": str(config), "ranks": ranks, "time": time.time()}
    with open(jobs_dir(cfg) / "submissions.jsonl", "a") as handle:
        handle.write(json.dumps(record) + "\n")
    submission = TrainSubmission(job.job_id, cluster, script, config, folder, ranks)
    submission.job = job  # type: ignore[attr-defined]  (for --wait)
    return submission


def active_job(cfg: TrainConfig) -> str | None:
    """The job id of the newest training submission while it is queued or running (None otherwise)."""
    from . import schedulers
    from .state import PENDING, RUNNING

    path = jobs_dir(cfg) / "submissions.jsonl"
    if not path.is_file():
        return None
    lines = path.read_text().splitlines()
    record = json.loads(lines[-1]) if lines else {}
    if not record.get("job_id"):
        return None
    scheduler = load_cluster(record["cluster"]).scheduler
    state = schedulers.STATE_QUERIES[scheduler]([record["job_id"]]).get(record["job_id"], "UNKNOWN")
    return record["job_id"] if state in PENDING or state in RUNNING else None
