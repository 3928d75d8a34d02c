"""One interface over the schedulers a shard's job may run under: its state and how to stop it. Each scheduler's
commands live in its own module (slurm.py, pbs.py, local.py).

States use Slurm's vocabulary (PENDING, RUNNING, COMPLETED, CANCELLED, ...) plus UNKNOWN (not listed), VANISHED
(an array task missing from its array's records) and QUERY_FAILED (the scheduler could not be asked).
"""

from __future__ import annotations

import os
import socket
from typing import Callable

from . import local, pbs, slurm

STATE_QUERIES: dict[str, Callable[[list[str]], dict[str, str]]] = {
    "slurm": slurm.states, "pbs": pbs.states, "local": local.states, "direct": local.states}


def current_job(job_id: str | None = None) -> tuple[str, str]:
    """(scheduler, job id) of the job this process runs in, for a direct run's submission record (`ldrt-hpc
    task` from a static script); `job_id` as the script passed it wins over the environment's."""
    if os.environ.get("SLURM_ARRAY_JOB_ID") and os.environ.get("SLURM_ARRAY_TASK_ID"):
        return "slurm", job_id or f"{os.environ['SLURM_ARRAY_JOB_ID']}_{os.environ['SLURM_ARRAY_TASK_ID']}"
    if os.environ.get("SLURM_JOB_ID"):
        return "slurm", job_id or os.environ["SLURM_JOB_ID"]
    if os.environ.get("PBS_JOBID"):
        return "pbs", job_id or os.environ["PBS_JOBID"]
    return "direct", job_id or f"{os.getpid()}@{socket.gethostname()}"


def queued_jobs(scheduler: str) -> int | None:
    """How many jobs (array tasks one each) this user has queued or running; None when it cannot be asked."""
    if scheduler == "slurm":
        return slurm.queued_jobs()
    if scheduler == "pbs":
        return pbs.queued_jobs()
    return 0


def stop_jobs(scheduler: str, job_ids: list[str], all_ids: list[str], force: bool = False) -> str | None:
    """Ask the scheduler to end these jobs (force: kill now, for tasks still running after a grace period).
    Returns the scheduler's complaint, if any. `all_ids`: every job of the stage (Slurm cancels whole arrays)."""
    if not job_ids:
        return None
    if scheduler == "slurm":
        return slurm.stop(job_ids, all_ids, force)
    if scheduler == "pbs":
        return pbs.stop(job_ids, force)
    local.stop(job_ids, force)
    return None
