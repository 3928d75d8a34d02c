"""Run untrusted work (parsing a PDF) in child processes: a time limit, an address-space limit, and a crash or
hang of one item becomes an outcome with a reason instead of the end of the shard.

One forked child per item: nothing leaks from one paper to the next, and the memory of a huge page is returned
to the system when the child exits. Outcomes are yielded in input order, so a shard's records do not depend on
which child finished first.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import faulthandler
import multiprocessing
import os
import resource
import signal
import time
import traceback
from dataclasses import dataclass
from multiprocessing.connection import wait
from typing import Any, Callable, Iterable, Iterator

from tqdm import tqdm


@dataclass
class Outcome:
    item: Any
    ok: bool
    value: Any = None
    reason: str = ""
    """'timeout', 'memory', 'crashed' or 'error' when not ok."""
    detail: str = ""


def default_workers() -> int:
    """Worker processes per task: LDRT_WORKERS (the job script sets it to the CPUs it was given), else all CPUs."""
    value = os.environ.get("LDRT_WORKERS")
    if value and value.isdigit() and int(value) > 0:
        return int(value)
    return max(1, len(os.sched_getaffinity(0)))


_PR_SET_PDEATHSIG = 1


def die_with_parent(parent_pid: int) -> None:
    """Linux: the kernel sends SIGKILL to this process when the process that forked it ends, so a killed task
    leaves no parser behind (Slurm's proctrack/linuxproc loses track of reparented children)."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):  # not Linux: the closed pipe ends below still end the child
        pass
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(1)


def _child(func: Callable[[Any], Any], item: Any, conn, receiver, parent_pid: int, max_memory_mb: int | None) -> None:
    die_with_parent(parent_pid)
    # Only the parent may hold the read end: with it open here, a child whose parent died would block forever
    # writing a large result into a pipe nobody reads, instead of getting EPIPE.
    receiver.close()
    faulthandler.disable()  # a parser crash is reported as an outcome; no interpreter dump in the job log
    try:
        if max_memory_mb:
            limit = max_memory_mb * 1024 * 1024
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        try:
            conn.send(("ok", func(item), ""))
        except MemoryError:
            conn.send(("memory", f"address-space limit of {max_memory_mb} MB reached", traceback.format_exc(limit=-6)))
        except BaseException as exc:  # noqa: BLE001 - every failure of the item is reported, never raised here
            conn.send(("error", f"{type(exc).__name__}: {exc}"[:500], traceback.format_exc(limit=-6)))
    finally:
        conn.close()
        os._exit(0)  # no atexit handlers, no flushing of the parent's open files (an HDF5 writer)


def run_isolated(
    func: Callable[[Any], Any],
    items: Iterable[Any],
    *,
    workers: int | None = None,
    timeout_s: float = 120.0,
    max_memory_mb: int | None = 4096,
    desc: str = "items",
) -> Iterator[Outcome]:
    """Apply `func` to each item in its own child process, at most `workers` at a time."""
    items = list(items)
    workers = workers or default_workers()
    context = multiprocessing.get_context("fork")
    running: dict[int, tuple[Any, Any, float, Any]] = {}  # index -> (process, conn, started, item)
    finished: dict[int, Outcome] = {}
    next_start = next_yield = 0
    with tqdm(total=len(items), desc=desc, unit="item", mininterval=5, leave=False) as progress:
        try:
            while next_yield < len(items):
                while next_start < len(items) and len(running) < workers:
                    receiver, sender = context.Pipe(duplex=False)
                    process = context.Process(
                        target=_child, args=(func, items[next_start], sender, receiver, os.getpid(), max_memory_mb),
                        daemon=True,
                    )
                    process.start()
                    sender.close()
                    running[next_start] = (process, receiver, time.monotonic(), items[next_start])
                    next_start += 1
                waitables = [conn for _, conn, _, _ in running.values()] + [p.sentinel for p, _, _, _ in running.values()]
                wait(waitables, timeout=0.5)
                now = time.monotonic()
                for index, (process, conn, started, item) in list(running.items()):
                    outcome = None
                    if conn.poll():
                        try:
                            status, value, detail = conn.recv()
                        except (EOFError, OSError):
                            status, value, detail = "crashed", None, ""
                        if status == "ok":
                            outcome = Outcome(item, True, value)
                        elif status == "crashed":
                            process.join(5)
                            outcome = Outcome(item, False, reason="crashed", detail=_exit_reason(process.exitcode))
                        else:
                            outcome = Outcome(item, False, reason=status, detail=f"{value}\n{detail}".strip())
                    elif not process.is_alive():
                        if conn.poll():  # the result arrived between the poll above and the exit
                            continue
                        outcome = Outcome(item, False, reason="crashed", detail=_exit_reason(process.exitcode))
                    elif now - started > timeout_s:
                        process.kill()
                        outcome = Outcome(item, False, reason="timeout", detail=f"no result after {timeout_s:g} s")
                    if outcome is not None:
                        process.join(5)
                        conn.close()
                        del running[index]
                        finished[index] = outcome
                        progress.update(1)
                while next_yield in finished:
                    yield finished.pop(next_yield)
                    next_yield += 1
        finally:  # the task stops (an error, SIGTERM, the generator closed): no child outlives it
            for process, conn, _, _ in running.values():
                process.kill()
                process.join(5)
                conn.close()


def _exit_reason(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = f"signal {-exitcode}"
        return f"the parser process was killed by {name}"
    return f"the parser process exited with code {exitcode} without a result"
