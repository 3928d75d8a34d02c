"""Asking schedulers about jobs and stopping them: Slurm (sacct, scancel), PBS (qstat, qdel), this machine's
processes (the local executor and direct runs of `ldrt-hpc task`).

Every query returns Slurm's state vocabulary (PENDING, RUNNING, COMPLETED, CANCELLED, ...) plus UNKNOWN (not
listed), VANISHED (an array task missing from its array's records) and QUERY_FAILED (the command failed).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
from pathlib import Path

from submitit.slurm.slurm import SlurmInfoWatcher

from .pbs import PBSInfoWatcher, native_id, submitit_id


class CancelError(RuntimeError):
    """The scheduler refused to cancel some jobs; the message carries its words."""


def slurm_states(job_ids: list[str]) -> dict[str, str]:
    watcher = SlurmInfoWatcher(delay_s=600)  # a private watcher: one sacct call for every array in the list
    for job_id in job_ids:
        watcher.register_job(job_id)
    command = watcher._make_command()
    try:  # run sacct here rather than through watcher.update(), which swallows its failures
        output = subprocess.run(command, capture_output=True, timeout=120, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return {job_id: "QUERY_FAILED" for job_id in job_ids}
    watcher._info_dict.update(watcher.read_info(output))
    states = {job_id: watcher.get_state(job_id, mode="cache").split(" ")[0] for job_id in job_ids}
    # An array task cancelled while pending never gets an accounting record, and slurmctld drops it at once:
    # when sacct lists other tasks of the same array but not this one, it is gone, not "not yet listed".
    # Right after submission or cancellation sacct may list the whole array under its bare id ('68'): that
    # record then holds the state of every task.
    info = watcher._info_dict
    listed_arrays = {key.split("_")[0] for key in info if "_" in key}
    for job_id, state in states.items():
        base = job_id.split("_")[0]
        if state != "UNKNOWN" or base == job_id:
            continue
        if base in listed_arrays:
            states[job_id] = "VANISHED"
        elif base in info and info[base].get("State"):
            states[job_id] = info[base]["State"].split(" ")[0]
    return states


def pbs_states(job_ids: list[str]) -> dict[str, str]:
    watcher = PBSInfoWatcher(delay_s=600)
    ids = {job_id: submitit_id(job_id) for job_id in job_ids}  # direct runs record PBS's own '123[4].server'
    for job_id in ids.values():
        watcher.register_job(job_id)
    failed = watcher.update()
    return {job_id: "QUERY_FAILED" if watcher._array_parent_of(ours) in failed else
            watcher.get_state(ours, mode="cache") for job_id, ours in ids.items()}


def _process_state(pid: int) -> str:
    try:
        os.kill(pid, 0)
        # a zombie (finished, not yet reaped) is not running
        stat = Path(f"/proc/{pid}/stat").read_text()
        return "COMPLETED" if stat.split(")")[-1].split()[0] == "Z" else "RUNNING"
    except (ProcessLookupError, FileNotFoundError):
        return "UNKNOWN"
    except PermissionError:
        return "RUNNING"


def local_states(job_ids: list[str]) -> dict[str, str]:
    """Local executor jobs: the id is the pid of the job's controller process on this machine."""
    return {job_id: _process_state(int(job_id)) if job_id.isdigit() else "UNKNOWN" for job_id in job_ids}


def _pid_here(job_id: str) -> int | None:
    """'1234@host' -> 1234 when host is this machine (a direct run's id)."""
    pid, _, host = job_id.partition("@")
    return int(pid) if pid.isdigit() and host == socket.gethostname() else None


def direct_states(job_ids: list[str]) -> dict[str, str]:
    """Direct runs ('pid@host'): alive or not when on this host; another host's process cannot be asked."""
    states = {}
    for job_id in job_ids:
        pid = _pid_here(job_id)
        states[job_id] = _process_state(pid) if pid is not None else "UNKNOWN"
    return states


STATE_QUERIES = {"slurm": slurm_states, "pbs": pbs_states, "local": local_states, "direct": direct_states}


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


def _run(command: list[str]) -> str | None:
    """Run a cancel command; its error text when it failed (a job that already ended is not an error)."""
    proc = subprocess.run(command, capture_output=True, text=True, timeout=120)
    if proc.returncode == 0:
        return None
    text = " ".join((proc.stderr or proc.stdout).split())
    if "already completing or completed" in text or "Job has finished" in text or "Unknown Job Id" in text:
        return None
    return f"`{' '.join(command[:3])} ...` failed: {text[:300]}"


def _descendants(pid: int) -> list[int]:
    """The process and every process below it (a local job's controller starts the task as its child)."""
    found, queue = [], [pid]
    while queue:
        current = queue.pop()
        found.append(current)
        try:
            queue += [int(c) for c in Path(f"/proc/{current}/task/{current}/children").read_text().split()]
        except OSError:
            pass
    return found


def _signal_pids(pids: list[int], sig: int) -> None:
    if sig == signal.SIGKILL:
        pids = [p for pid in pids for p in reversed(_descendants(pid))]
    for pid in pids:
        try:
            os.kill(pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


def stop_jobs(scheduler: str, job_ids: list[str], all_ids: list[str], force: bool = False) -> str | None:
    """Ask the scheduler to end these jobs (force: SIGKILL now, for tasks still running after a grace period).
    Returns the scheduler's complaint, if any."""
    if not job_ids:
        return None
    if scheduler == "slurm":
        if force:
            return _run(["scancel", "--signal=KILL", "--full", *job_ids])
        return _run(["scancel", *whole_arrays(job_ids, all_ids)])
    if scheduler == "pbs":
        ids = [native_id(submitit_id(job_id)) for job_id in job_ids]
        return _run(["qdel", "-W", "force", *ids] if force else ["qdel", *ids])
    sig = signal.SIGKILL if force else signal.SIGTERM
    if scheduler == "local":
        _signal_pids([int(j) for j in job_ids if j.isdigit()], sig)
    elif scheduler == "direct":
        _signal_pids([pid for pid in map(_pid_here, job_ids) if pid is not None], sig)
    return None
