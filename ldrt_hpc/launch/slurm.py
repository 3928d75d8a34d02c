"""Slurm: job states from `sacct` and stopping jobs with `scancel` (submission goes through submitit)."""

from __future__ import annotations

import getpass
import os
import subprocess

from submitit.slurm.slurm import SlurmInfoWatcher

from .commands import run_stop_command


def states(job_ids: list[str]) -> dict[str, str]:
    """One sacct call for every job; 'QUERY_FAILED' for all when sacct cannot be asked."""
    arrays = sorted({job_id.split("_")[0] for job_id in job_ids})
    command = ["sacct", "-o", "JobID,State,NodeList", "--parsable2"] + [arg for job in arrays for arg in ("-j", job)]
    try:  # our own call: submitit's watcher swallows sacct's failures, which must read as "unknown" here
        output = subprocess.run(command, capture_output=True, timeout=120, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return {job_id: "QUERY_FAILED" for job_id in job_ids}
    info = SlurmInfoWatcher().read_info(output)  # expands array ranges such as 12_[0-3]
    found = {job_id: (info.get(job_id) or {}).get("State", "UNKNOWN").split(" ")[0] for job_id in job_ids}
    return _unlisted_tasks(found, info)


def reasons(job_ids: list[str]) -> dict[str, str]:
    """Why pending jobs wait (squeue's Reason: Priority, Resources, QOSMaxJobsPerUserLimit, ...), one squeue call;
    only jobs squeue lists with a reason other than 'None'. Empty when squeue cannot be asked (a hint only)."""
    arrays = sorted({job_id.split("_")[0] for job_id in job_ids})
    if not arrays:
        return {}
    command = ["squeue", "-h", "-r", "-t", "PENDING", "-o", "%i|%r", "-j", ",".join(arrays)]
    try:  # squeue exits 1 ("Invalid job id specified") once every listed job has left the queue
        output = subprocess.run(command, capture_output=True, text=True, timeout=60).stdout
    except (OSError, subprocess.SubprocessError):
        return {}
    found = {}
    for line in output.splitlines():
        job_id, _, reason = line.strip().partition("|")
        if reason and reason != "None":
            found[job_id] = reason
    wanted = set(job_ids)
    return {job_id: reason for job_id, reason in found.items() if job_id in wanted}


def _unlisted_tasks(found: dict[str, str], info: dict[str, dict]) -> dict[str, str]:
    """An array task cancelled while pending never gets an accounting record, and slurmctld drops it at once:
    when sacct lists other tasks of the same array but not this one, it is gone, not "not yet listed". Right
    after submission or cancellation sacct may list the whole array under its bare id ('68'): that record then
    holds the state of every task."""
    listed_arrays = {key.split("_")[0] for key in info if "_" in key}
    for job_id, state in found.items():
        base = job_id.split("_")[0]
        if state != "UNKNOWN" or base == job_id:
            continue
        if base in listed_arrays:
            found[job_id] = "VANISHED"
        elif base in info and info[base].get("State"):
            found[job_id] = info[base]["State"].split(" ")[0]
    return found


def queued_jobs() -> int | None:
    """This user's pending and running jobs, array tasks counted one each (`squeue -r`)."""
    user = os.environ.get("USER") or getpass.getuser()
    try:
        out = subprocess.run(["squeue", "-h", "-r", "-u", user, "-o", "%i"], capture_output=True, text=True,
                             timeout=60, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return len(out.split())


def whole_arrays(job_ids: list[str], all_ids: list[str]) -> list[str]:
    """Replace the tasks of an array by the array id when every task of it is being cancelled: Slurm then
    records the array as CANCELLED, whereas a pending task cancelled alone leaves no accounting record."""
    tasks_of: dict[str, set[str]] = {}
    for job_id in all_ids:
        tasks_of.setdefault(job_id.split("_")[0], set()).add(job_id)
    chosen = set(job_ids)
    result = []
    for base, tasks in tasks_of.items():
        if "_" in next(iter(tasks)) and tasks <= chosen:
            result.append(base)
            chosen -= tasks
    return result + sorted(chosen)


def stop(job_ids: list[str], all_ids: list[str], force: bool = False) -> str | None:
    """scancel (SIGTERM to the steps, then KillWait) or, with force, SIGKILL to every step and the batch script."""
    if force:
        return run_stop_command(["scancel", "--signal=KILL", "--full", *job_ids])
    return run_stop_command(["scancel", *whole_arrays(job_ids, all_ids)])
