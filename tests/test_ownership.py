"""One writer per shard: generations in the submission records, the submission lock, fenced commits."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

import pytest

from ldrt_hpc import ownership
from ldrt_hpc.ownership import (LockError, append_records, lock_path, owners, ownership_problem, records_path,
                                submission_lock)
from ldrt_hpc.runner import failure_path, run_shard, stage_dir
from ldrt_hpc.shards import LostOwnership, marker_path, read_marker, shard_path


def test_the_newest_generation_owns_and_late_lines_do_not_take_it_back(tmp_path):
    append_records(tmp_path, [{"shard": 0, "generation": "a", "job_id": None, "submitted_at": 1},
                              {"shard": 1, "generation": "a", "job_id": None, "submitted_at": 1}])
    append_records(tmp_path, [{"shard": 0, "generation": "b", "job_id": "9", "submitted_at": 2}])
    append_records(tmp_path, [{"shard": 0, "generation": "a", "job_id": "5_0"},  # a's job id arrives late
                              {"shard": 1, "generation": "a", "job_id": "5_1"}])
    latest = owners(tmp_path)
    assert latest[0]["generation"] == "b" and latest[0]["job_id"] == "9"
    assert latest[1] == {"shard": 1, "generation": "a", "job_id": "5_1", "submitted_at": 1}
    assert ownership_problem(tmp_path, 0, "b") is None
    assert "newer submission (generation b, job 9)" in ownership_problem(tmp_path, 0, "a")
    append_records(tmp_path, [{"shard": 0, "generation": "b", "cancelled_at": time.time()}])
    assert "cancelled at" in ownership_problem(tmp_path, 0, "b")
    assert "no submission record owns shard 7" in ownership_problem(tmp_path, 7, "b")


def test_a_cut_last_line_is_ignored(tmp_path):
    append_records(tmp_path, [{"shard": 0, "generation": "a", "job_id": "1"}])
    with open(records_path(tmp_path), "a") as handle:
        handle.write('{"shard": 0, "generation": "b", "job')  # a writer killed mid-line
    assert owners(tmp_path)[0]["generation"] == "a"


def test_lock_is_exclusive_and_names_its_holder(tmp_path):
    stage = tmp_path / "work" / "figures"
    with submission_lock(stage, "ldrt-hpc run figures"):
        assert lock_path(stage).is_file()
        with pytest.raises(LockError, match=rf"pid {os.getpid()} on {socket.gethostname()}, ldrt-hpc run figures"):
            with submission_lock(stage, "second", wait_s=0.3):
                pass
    assert not lock_path(stage).exists()


def test_stale_lock_of_a_dead_process_is_broken(tmp_path, caplog):
    stage = tmp_path / "figures"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    lock_path(stage).parent.mkdir(parents=True)
    lock_path(stage).write_text(json.dumps({"pid": int(dead.stdout), "host": socket.gethostname(),
                                            "created_at": time.time() - 5, "command": "ldrt-hpc run figures"}))
    with submission_lock(stage, "mine", wait_s=0.5):
        assert json.loads(lock_path(stage).read_text())["pid"] == os.getpid()
    assert "removed a stale submission lock" in caplog.text


def test_lock_of_another_host_is_never_broken(tmp_path, monkeypatch):
    stage = tmp_path / "figures"
    lock_path(stage).parent.mkdir(parents=True)
    lock_path(stage).write_text(json.dumps({"pid": 1, "host": "login2", "created_at": time.time() - 7200,
                                            "command": "ldrt-hpc run figures"}))
    with pytest.raises(LockError, match="pid 1 on login2.*looks stale: if that process is gone, delete the lock file"):
        with submission_lock(stage, "mine", wait_s=0.2):
            pass
    assert lock_path(stage).exists()


@pytest.fixture
def ingest_cfg(make_config, synth_pdfs):
    from ldrt_hpc.config import freeze
    from ldrt_hpc.launch.launcher import wanted_plan
    from ldrt_hpc.plan import pin_plan

    _, cfg = make_config(synth_pdfs, num_shards=2)
    pin_plan(stage_dir(cfg, "ingest"), wanted_plan(cfg, "ingest", None))
    return cfg, str(freeze(cfg))


def test_a_task_that_does_not_own_its_shard_does_nothing(ingest_cfg):
    cfg, frozen = ingest_cfg
    directory = stage_dir(cfg, "ingest")
    append_records(directory, [{"shard": 0, "generation": "old", "job_id": "1"}])
    append_records(directory, [{"shard": 0, "generation": "new", "job_id": "2"}])
    with pytest.raises(LostOwnership, match="not started: shard 0 now belongs to a newer submission"):
        run_shard(frozen, "ingest", 0, generation="old")
    assert not marker_path(directory, 0).exists() and not failure_path(directory, 0).exists()
    assert run_shard(frozen, "ingest", 0, generation="new")["generation"] == "new"


def test_a_shard_taken_over_while_writing_is_discarded(ingest_cfg, monkeypatch):
    """The old writer finishes after a newer submission took its shard: its file never replaces anything."""
    from ldrt_hpc.stages import ingest

    cfg, frozen = ingest_cfg
    directory = stage_dir(cfg, "ingest")
    append_records(directory, [{"shard": 1, "generation": "old", "job_id": "1"}])
    original = ingest.run

    def run_then_lose(shard, config):
        stats = original(shard, config)
        append_records(directory, [{"shard": 1, "generation": "new", "job_id": "2"}])  # rerun/another submitter
        return stats

    monkeypatch.setattr(ingest, "run", run_then_lose)
    with pytest.raises(LostOwnership, match="output discarded before the rename: shard 1 now belongs to a newer"):
        run_shard(frozen, "ingest", 1, generation="old")
    assert not shard_path(directory, 1).exists() and not marker_path(directory, 1).exists()
    assert not list(directory.glob("shard-00001.h5.tmp-*"))  # its temporary file is gone
    assert not failure_path(directory, 1).exists()  # and it said nothing about a shard that is not its own


def test_cancelled_between_rename_and_marker_takes_the_marker_back(ingest_cfg, monkeypatch):
    from ldrt_hpc import shards

    cfg, frozen = ingest_cfg
    directory = stage_dir(cfg, "ingest")
    append_records(directory, [{"shard": 0, "generation": "g", "job_id": "1"}])
    real = shards.atomic_write_text

    def write_then_cancel(path, text):
        real(path, text)
        if path.name.endswith(".done.json"):
            append_records(directory, [{"shard": 0, "generation": "g", "cancelled_at": time.time()}])

    monkeypatch.setattr(shards, "atomic_write_text", write_then_cancel)
    with pytest.raises(LostOwnership, match="after the rename"):
        run_shard(frozen, "ingest", 0, generation="g")
    assert read_marker(directory, 0) is None


def test_direct_runs_claim_their_shard(ingest_cfg):
    cfg, frozen = ingest_cfg
    directory = stage_dir(cfg, "ingest")
    marker = run_shard(frozen, "ingest", 0)  # `ldrt-hpc task`: no generation given
    record = owners(directory)[0]
    assert record["direct"] and record["generation"] == marker["generation"]
    assert record["scheduler"] in ("direct", "slurm", "pbs") and record["job_id"]


def test_generations_are_unique():
    assert len({ownership.new_generation() for _ in range(200)}) == 200
