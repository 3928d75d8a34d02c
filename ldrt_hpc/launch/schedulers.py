"""One interface over the schedulers a shard's job may run under: its state and how to stop it. Each scheduler's
commands live in its own module (slurm.py, pbs.py, local.py).

States use Slurm's vocabulary (PENDING, RUNNING, COMPLETED, CANCELLED, ...) plus UNKNOWN (not listed), VANISHED
(an array task missing from its array's records) and QUERY_FAILED (the scheduler could not be asked).
"""

from __future__ import annotations

from typing import Callable

from . import local, pbs, slurm

STATE_QUERIES: dict[str, Callable[[list[str]], dict[str, str]]] = {
    "slurm": slurm.states, "pbs": pbs.states, "local": local.states, "direct": local.states}


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
