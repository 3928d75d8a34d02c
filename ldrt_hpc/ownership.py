"""Who may commit a shard: submission records, generations, the per-stage submission lock.

The ownership rule (docs/design.md, "One writer per shard"):
- Every submission of a stage (and every direct run of one shard, `ldrt-hpc task`) gets a fresh *generation*, a
  token unique across hosts and time, and appends one line per shard to WORK/<stage>/_jobs/submissions.jsonl
  *before* any task of it can start.
- The owner of shard i is the generation whose first line for shard i comes last in that file. Later lines of an
  older generation (its job id, a cancellation) update that generation's record but never make it the owner
  again.
- A task commits only if its generation still owns the shard and has not been cancelled: it checks just before
  the rename and once more after writing the marker (and takes the marker back if it lost the shard meanwhile).
  A task that lost its shard discards its output and says why in its log.
- `run`/`rerun`/`cancel` hold the stage's submission lock (a file created with O_EXCL; no flock, which Lustre and
  GPFS do not always honour) while they read the state and append records, so two submissions never interleave.

Only plain files are used here (appends of one line batch with O_APPEND, atomic renames): no scheduler code.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import secrets
import socket
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Sequence

from .errors import LockError  # noqa: F401
from .layout import jobs_dir, lock_path, records_path  # noqa: F401  (re-exported)

log = logging.getLogger(__name__)

LOCK_STALE_S = 3600.0
"""A lock of another host older than this is called stale in the error message (it is never broken silently)."""




def new_generation() -> str:
    """A token that orders nothing by itself but is unique: time, host, pid and randomness."""
    return f"{time.strftime('%Y%m%dT%H%M%S')}-{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"


def whoami() -> str:
    return f"{os.getpid()}@{socket.gethostname()}"


# --------------------------------------------------------------------------------------------------------------
# records


def append_records(stage_dir: Path, records: Sequence[dict]) -> None:
    """Append lines in one write (O_APPEND): lines of concurrent writers never interleave on a local or Lustre fs."""
    if not records:
        return
    path = records_path(stage_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = "".join(json.dumps(r, separators=(",", ":")) + "\n" for r in records).encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        written = os.write(fd, data)
        if written != len(data):
            raise OSError(errno.EIO, f"short write to {path} ({written} of {len(data)} bytes)")
    finally:
        os.close(fd)


def _read_lines(stage_dir: Path) -> list[dict]:
    path = records_path(stage_dir)
    try:
        text = path.read_text()
    except FileNotFoundError:
        return []
    lines = []
    for line in text.split("\n")[:-1]:  # a last line without newline is being written (or was cut by a kill)
        try:
            if line.strip():
                lines.append(json.loads(line))
        except ValueError:
            continue
    return lines


def owners(stage_dir: Path) -> dict[int, dict]:
    """The record of each shard's owning generation, with every later line of that generation merged in."""
    by_generation: dict[tuple[int, str], dict] = {}
    owner_of: dict[int, str] = {}
    for line in _read_lines(stage_dir):
        shard, generation = int(line["shard"]), str(line.get("generation", ""))
        key = (shard, generation)
        if key not in by_generation:
            by_generation[key] = {}
            owner_of[shard] = generation  # first line of a generation: it takes the shard over
        by_generation[key].update(line)
    return {shard: by_generation[(shard, generation)] for shard, generation in owner_of.items()}


def ownership_problem(stage_dir: Path, index: int, generation: str) -> str | None:
    """None when `generation` may commit shard `index`, else why not (for the task's log)."""
    record = owners(stage_dir).get(index)
    if record is None:
        return f"no submission record owns shard {index} (was {records_path(stage_dir)} moved or re-planned?)"
    if record.get("generation") != generation:
        return (f"shard {index} now belongs to a newer submission (generation {record.get('generation')}, "
                f"job {record.get('job_id')})")
    if record.get("cancelled_at"):
        return f"this submission was cancelled at {time.strftime('%H:%M:%S', time.localtime(record['cancelled_at']))}"
    return None


# --------------------------------------------------------------------------------------------------------------
# the per-stage submission lock


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _read_lock(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text() or "{}")
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {}  # being written right now, or damaged: treated as held


def _describe(holder: dict, path: Path) -> str:
    age = time.time() - float(holder.get("created_at", time.time()))
    return (f"pid {holder.get('pid', '?')} on {holder.get('host', '?')}, {holder.get('command', 'a submission')}, "
            f"for {age:.0f} s ({path})")


def _try_break_stale(path: Path, holder: dict) -> bool:
    """Remove a lock whose holder is provably gone: same host, process no longer running."""
    if holder.get("host") != socket.gethostname() or not isinstance(holder.get("pid"), int):
        return False
    if _pid_alive(holder["pid"]):
        return False
    aside = path.with_name(f"{path.name}.stale-{os.getpid()}")
    try:
        os.rename(path, aside)  # only one breaker wins the rename; the others see the new holder next time round
    except FileNotFoundError:
        return True
    os.unlink(aside)
    log.warning("removed a stale submission lock left by pid %s (no longer running): %s", holder["pid"], path)
    return True


@contextmanager
def submission_lock(stage_dir: Path, command: str, wait_s: float = 60.0) -> Iterator[None]:
    """Hold the stage's submission lock; wait up to `wait_s` for another holder, then fail with a clear message."""
    path = lock_path(stage_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "created_at": time.time(),
                          "command": command}).encode()
    deadline = time.monotonic() + wait_s
    while True:
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            break
        except FileExistsError:
            holder = _read_lock(path)
            if holder is None or (holder and _try_break_stale(path, holder)):
                continue
            if time.monotonic() >= deadline:
                holder = holder or {}
                stale = time.time() - float(holder.get("created_at", time.time())) > LOCK_STALE_S
                raise LockError(
                    f"another submission of this stage holds its lock: {_describe(holder, path)}. "
                    + ("It looks stale: if that process is gone, delete the lock file and retry."
                       if stale else "Wait for it to finish, then retry.")) from None
            time.sleep(0.1)
    try:
        os.write(fd, payload)
    finally:
        os.close(fd)
    try:
        yield
    finally:
        try:
            os.unlink(path)
        except FileNotFoundError:
            log.warning("the submission lock %s disappeared while held", path)
