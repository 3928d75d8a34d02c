"""Isolated parsing: a crash, a hang, a memory blow-up or an exception of one item is an outcome, not the end."""

from __future__ import annotations

import os
import signal
import time

from ldrt_hpc.isolate import run_isolated


def work(item):
    kind, value = item
    if kind == "segfault":
        os.kill(os.getpid(), signal.SIGSEGV)
    if kind == "hang":
        time.sleep(60)
    if kind == "memory":
        return len(bytearray(2 * 1024**3))
    if kind == "error":
        raise ValueError(f"bad item {value}")
    if kind == "exit":
        os._exit(3)
    return value * 2


def test_every_failure_becomes_an_outcome_in_input_order():
    items = [("ok", 1), ("segfault", 0), ("ok", 2), ("hang", 0), ("memory", 0), ("error", 7), ("exit", 0), ("ok", 3)]
    started = time.monotonic()
    outcomes = list(run_isolated(work, items, workers=2, timeout_s=2, max_memory_mb=512))
    assert time.monotonic() - started < 30
    assert [o.item for o in outcomes] == items
    assert [(o.ok, o.value) for o in outcomes if o.ok] == [(True, 2), (True, 4), (True, 6)]
    reasons = {o.item[0]: (o.reason, o.detail) for o in outcomes if not o.ok}
    assert reasons["segfault"] == ("crashed", "the parser process was killed by SIGSEGV")
    assert reasons["hang"] == ("timeout", "no result after 2 s")
    assert reasons["memory"][0] == "memory" and "512 MB" in reasons["memory"][1]
    assert reasons["error"][0] == "error" and reasons["error"][1].startswith("ValueError: bad item 7")
    assert reasons["exit"] == ("crashed", "the parser process exited with code 3 without a result")


def test_workers_from_environment(monkeypatch):
    from ldrt_hpc.isolate import default_workers

    monkeypatch.setenv("LDRT_WORKERS", "3")
    assert default_workers() == 3
    monkeypatch.delenv("LDRT_WORKERS")
    assert default_workers() == len(os.sched_getaffinity(0))
