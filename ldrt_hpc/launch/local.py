"""Processes on this machine: jobs of submitit's local executor (id: the controller's pid) and direct runs of one
shard (`ldrt-hpc task`, id 'pid@host')."""

from __future__ import annotations

import os
import signal
import socket
from pathlib import Path


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


def _pid_here(job_id: str) -> int | None:
    """'1234@host' -> 1234 when host is this machine; a plain '1234' (the local executor) -> 1234."""
    pid, _, host = job_id.partition("@")
    if not pid.isdigit() or (host and host != socket.gethostname()):
        return None
    return int(pid)


def states(job_ids: list[str]) -> dict[str, str]:
    """Alive or not, for processes on this host; another host's process cannot be asked (UNKNOWN)."""
    return {job_id: "UNKNOWN" if (pid := _pid_here(job_id)) is None else _process_state(pid) for job_id in job_ids}


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


def stop(job_ids: list[str], force: bool = False) -> None:
    """SIGTERM (the task stops at once; the local controller forwards it), or SIGKILL to the whole tree."""
    pids = [pid for pid in map(_pid_here, job_ids) if pid is not None]
    if force:
        pids = [p for pid in pids for p in reversed(_descendants(pid))]
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL if force else signal.SIGTERM)
        except (ProcessLookupError, PermissionError):
            pass
