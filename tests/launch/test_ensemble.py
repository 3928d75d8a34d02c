"""MPI ensemble mode (ldrt_hpc/launch/ensemble.py): `mpirun -np 3 ldrt-hpc worker ingest` gives the same shards
as array mode; a failing shard and a shard process that dies are marked failed while the others complete; the
wall-time rule starts nothing that cannot finish; and the pure pieces (GPU mapping, order, hand-out decision)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ldrt_hpc.launch.ensemble import (
    Dispatcher,
    ShardResult,
    bind_gpus,
    gpu_devices,
    largest_first,
    local_rank_from_env,
    refusal,
    resolve_deadline,
    shard_sizes,
)
from ldrt_hpc.plan import Plan
from tests.conftest import REPO, run_inline, write_config

# --------------------------------------------------------------------------------------------------------------
# mpirun


def _find_mpirun() -> str | None:
    """Open MPI's mpirun (Slurm's wrapper or MPICH's would need other flags)."""
    for candidate in (shutil.which("mpirun"), "/usr/bin/mpirun.openmpi"):
        if not candidate or not os.path.exists(candidate):
            continue
        try:
            version = subprocess.run([candidate, "--version"], check=False, capture_output=True, text=True, timeout=20).stdout
        except (OSError, subprocess.SubprocessError):
            continue
        if "Open MPI" in version or "OpenRTE" in version:
            return candidate
    return None


@pytest.fixture(scope="module")
def mpirun() -> str:
    path = _find_mpirun()
    if path is None:
        pytest.skip("Open MPI's mpirun is not installed (apt install openmpi-bin libopenmpi-dev)")
    probe = subprocess.run([sys.executable, "-c", "from mpi4py import MPI; print(MPI.Get_library_version())"],
                           check=False, capture_output=True, text=True, timeout=60)
    if probe.returncode != 0:
        pytest.skip(f"mpi4py cannot load an MPI library: {probe.stderr.strip()[-300:]}")
    return path


def run_worker(mpirun: str, config_path: Path, *extra: str, np: int = 3, python: list[str] | None = None,
               env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    command = [mpirun, "--allow-run-as-root", "--oversubscribe", "-np", str(np),
               *(python or [sys.executable, "-m", "ldrt_hpc.cli"]), "worker", "ingest", "--config", str(config_path),
               *extra]
    full_env = dict(os.environ)
    for name in ("LDRT_JOB_DEADLINE", "SLURM_JOB_ID", "SLURM_ARRAY_JOB_ID", "SLURM_ARRAY_TASK_ID", "PBS_JOBID"):
        full_env.pop(name, None)  # no deadline, claims as this machine's processes, whatever shell runs the tests
    full_env.update({"OMP_NUM_THREADS": "1", "LDRT_WORKERS": "1", "PYTHONPATH": str(REPO), **(env or {})})
    return subprocess.run(command, check=False, capture_output=True, text=True, timeout=120, env=full_env,
                          cwd=REPO)


def summary_of(cfg) -> dict:
    files = sorted((cfg.work_dir / "ingest" / "_jobs").glob("ensemble-*.json"))
    assert len(files) == 1, files
    return json.loads(files[0].read_text())


def shard_items(cfg, index):
    from ldrt_hpc.runner import stage_dir
    from ldrt_hpc.shards import ShardReader, shard_path

    with ShardReader(shard_path(stage_dir(cfg, "ingest"), index)) as reader:
        return list(reader)


# --------------------------------------------------------------------------------------------------------------
# under mpirun


def test_same_shards_as_array_mode(mpirun, tmp_path, synth_pdfs, make_config):
    from ldrt_hpc.config import load_pipeline
    from ldrt_hpc.launch import stage_status
    from ldrt_hpc.runner import stage_dir
    from ldrt_hpc.shards import read_marker, verify_shard

    config_path, cfg = make_config(synth_pdfs, num_shards=8)
    proc = run_worker(mpirun, config_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "8 shards: 8 done, 0 failed, 0 not started" in proc.stdout
    assert len(re.findall(r"rank \d: ingest shard \d+ done in", proc.stderr)) == 8  # one log line per shard

    folder = tmp_path / "array"
    folder.mkdir()
    reference = load_pipeline(write_config(folder, synth_pdfs, num_shards=8))
    markers = run_inline(reference, "ingest")
    rows = stage_status(cfg, "ingest")
    assert [r.state for r in rows] == ["done"] * 8
    directory = stage_dir(cfg, "ingest")
    for index in range(8):
        assert read_marker(directory, index)["item_count"] == markers[index]["item_count"]
        assert shard_items(cfg, index) == shard_items(reference, index)
        assert verify_shard(directory, index).ok
    assert sum(m["item_count"] for m in markers) == 12

    summary = summary_of(cfg)
    assert summary["exit_code"] == 0 and sorted(summary["done"]) == list(range(8))
    assert sum(summary["per_rank"].values()) == 8 and set(summary["per_rank"]) == {"0", "1", "2"}
    assert summary["failed"] == [] and summary["not_started"] == []
    assert summary["mean_overhead_s"] < 0.25  # goal 0.05 s; loose here: 3 ranks and their shards share 2 cores

    again = run_worker(mpirun, config_path, "--shards", "0-7", np=2)  # nothing to do: every shard complete
    assert again.returncode == 0, again.stdout + again.stderr
    assert "8 done (8 already before)" in again.stdout


def test_failing_shard_then_array_rerun(mpirun, synth_pdfs, make_config):
    from ldrt_hpc.launch import stage_status, submit
    from ldrt_hpc.runner import stage_dir
    from ldrt_hpc.shards import shard_path

    config_path, cfg = make_config(synth_pdfs, num_shards=8)
    blocker = shard_path(stage_dir(cfg, "ingest"), 2)  # a folder where shard 2 must be renamed to
    blocker.mkdir(parents=True)
    (blocker / "keep").write_text("in the way")

    proc = run_worker(mpirun, config_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "7 done, 1 failed" in proc.stdout and "shard 2: IsADirectoryError" in proc.stdout
    rows = stage_status(cfg, "ingest")
    assert [r.state for r in rows] == ["done"] * 2 + ["failed"] + ["done"] * 5
    assert "IsADirectoryError" in rows[2].error
    summary = summary_of(cfg)
    assert summary["exit_code"] == 1
    assert [f["shard"] for f in summary["failed"]] == [2] and "IsADirectoryError" in summary["failed"][0]["error"]
    assert sorted(summary["done"]) == [0, 1, 3, 4, 5, 6, 7]

    (blocker / "keep").unlink()
    blocker.rmdir()
    rerun = submit(cfg, "ingest", cluster="local")  # array mode takes the failed shard; the local pool waits
    assert rerun.shards == [2]
    assert [r.state for r in stage_status(cfg, "ingest")] == ["done"] * 8


DRIVER = """
import os, signal, sys
import ldrt_hpc.stages.ingest as ingest

original = ingest.run

def run(shard, cfg):  # shard 1's process dies without a word, as a segfault or the OOM killer would end it
    if shard.index == 1:
        os.kill(os.getpid(), signal.SIGKILL)
    return original(shard, cfg)

ingest.run = run
from ldrt_hpc.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_dead_shard_process_is_recorded_failed(mpirun, tmp_path, synth_pdfs, make_config):
    from ldrt_hpc.launch import stage_status

    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER)
    config_path, cfg = make_config(synth_pdfs, num_shards=3)
    proc = run_worker(mpirun, config_path, np=2, python=[sys.executable, str(driver)])
    assert proc.returncode == 1, proc.stdout + proc.stderr
    rows = stage_status(cfg, "ingest")
    assert [r.state for r in rows] == ["done", "failed", "done"], [(r.state, r.error) for r in rows]
    assert "killed by SIGKILL" in rows[1].error
    assert "killed by SIGKILL" in summary_of(cfg)["failed"][0]["error"]


def test_no_shard_started_without_time_left(mpirun, synth_pdfs, make_config):
    from ldrt_hpc import ownership
    from ldrt_hpc.launch import stage_status
    from ldrt_hpc.runner import stage_dir

    config_path, cfg = make_config(synth_pdfs, num_shards=4)
    directory = stage_dir(cfg, "ingest")
    generation = ownership.new_generation()  # what `run --mode mpi` reserves before the job starts
    ownership.append_records(directory, [
        {"shard": i, "generation": generation, "scheduler": "local", "job_id": "ens-1", "submitted_at": time.time(),
         "submitter": ownership.whoami(), "folder": None} for i in range(4)])
    proc = run_worker(mpirun, config_path, "--generation", generation, "--job-id", "ens-1",
                      "--expected-s", "600", env={"LDRT_JOB_DEADLINE": str(time.time() + 120)}, np=2)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "0 done, 0 failed, 4 not started" in proc.stdout and "not started: 0-3" in proc.stdout
    summary = json.loads((directory / "_jobs" / "ensemble-ens-1.json").read_text())
    assert summary["not_started"] == [0, 1, 2, 3] and summary["exit_code"] == 1
    assert "a shard takes ~600 s" in summary["why_not_started"]
    rows = stage_status(cfg, "ingest")
    assert [r.state for r in rows] == ["failed"] * 4
    assert all("not started by ensemble job ens-1" in r.error for r in rows)
    assert not list(directory.glob("shard-*.h5"))


# --------------------------------------------------------------------------------------------------------------
# pure pieces


def test_gpu_mapping():
    assert gpu_devices(0, 1) == ["0"] and gpu_devices(3, 1) == ["3"]
    assert gpu_devices(1, 2) == ["2", "3"]
    assert gpu_devices(1, 2, ["4", "5", "6", "7"]) == ["6", "7"]
    with pytest.raises(ValueError, match="local rank 2 needs GPUs 4-5"):
        gpu_devices(2, 2, ["0", "1", "2", "3"])

    env = {"LDRT_GPUS_PER_RANK": "2"}
    assert bind_gpus(1, env) == "2,3" and env["CUDA_VISIBLE_DEVICES"] == "2,3"
    env = {"LDRT_GPUS_PER_RANK": "1", "CUDA_VISIBLE_DEVICES": "0,1,2,3"}
    assert bind_gpus(2, env) == "2"
    env = {"LDRT_GPUS_PER_RANK": "1", "CUDA_VISIBLE_DEVICES": "3"}  # already narrowed by the launcher
    assert bind_gpus(0, env) is None and env["CUDA_VISIBLE_DEVICES"] == "3"
    env = {}
    assert bind_gpus(1, env) is None and "CUDA_VISIBLE_DEVICES" not in env
    assert bind_gpus(1, {"LDRT_GPUS_PER_RANK": "0"}) is None

    assert local_rank_from_env({"PALS_LOCAL_RANKID": "3"}) == 3
    assert local_rank_from_env({"OMPI_COMM_WORLD_LOCAL_RANK": "1", "SLURM_LOCALID": "5"}) == 1
    assert local_rank_from_env({"SLURM_LOCALID": "2"}) == 2 and local_rank_from_env({}) is None


def test_largest_first(tmp_path):
    assert largest_first([3, 1, 2], None) == [1, 2, 3]
    assert largest_first([0, 1, 2, 3], {0: 5, 1: 50, 2: 5, 3: 7}) == [1, 3, 0, 2]

    files = {name: tmp_path / name for name in "abc"}
    for size, path in zip((10, 300, 20), files.values()):
        path.write_bytes(b"x" * size)
    plan = Plan("ingest", 3, (), ((str(files["a"]),), (str(files["b"]),), (str(files["c"]), "/missing.pdf")))
    sizes = shard_sizes(tmp_path, plan, [0, 1, 2])
    assert sizes == {0: 10, 1: 300, 2: 20}
    assert largest_first([0, 1, 2], sizes) == [1, 2, 0]

    upstream = tmp_path / "work" / "ingest"
    upstream.mkdir(parents=True)
    (upstream / "shard-00001.h5").write_bytes(b"x" * 99)
    downstream = Plan("convert", 2, ("ingest",), None)
    assert largest_first([0, 1], shard_sizes(tmp_path / "work", downstream, [0, 1])) == [1, 0]
    assert shard_sizes(tmp_path, Plan("search", 2, (), None), [0, 1]) is None


def test_hand_out_under_a_deadline():
    assert refusal(1000.0, None, 50.0) is None  # no deadline known
    assert refusal(1000.0, 1100.0, None) is None  # no duration known yet: start
    assert refusal(1000.0, 1100.0, 50.0, margin_s=5) is None
    assert refusal(1000.0, 1100.0, 96.0, margin_s=5) == "100 s of wall time left, a shard takes ~96 s"

    dispatcher = Dispatcher([5, 6, 7], deadline=1100.0, expected_s=None, margin_s=5)
    assert dispatcher.next_shard(now=1000.0) == 5
    dispatcher.finished(ShardResult(5, 0, True, duration_s=60.0, overhead_s=0.0))
    assert dispatcher.expected_s == 60.0
    assert dispatcher.next_shard(now=1010.0) == 6  # 90 s left >= 60 + 5
    dispatcher.finished(ShardResult(6, 1, True, duration_s=20.0, overhead_s=0.0))
    assert dispatcher.expected_s == 60.0  # the longest seen so far
    assert dispatcher.next_shard(now=1040.0) is None  # 60 s left < 65
    assert dispatcher.not_started == [7] and "60 s of wall time left" in dispatcher.why_not_started
    assert dispatcher.next_shard(now=1040.0) is None

    assert resolve_deadline(12.5, {"LDRT_JOB_DEADLINE": "99"}) == 12.5
    assert resolve_deadline(None, {"LDRT_JOB_DEADLINE": "99"}) == 99.0
    assert resolve_deadline(None, {}) is None
    with pytest.raises(ValueError, match="LDRT_JOB_DEADLINE"):
        resolve_deadline(None, {"LDRT_JOB_DEADLINE": "tomorrow"})
