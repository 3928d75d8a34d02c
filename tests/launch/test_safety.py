"""The shard protocol under the faults an operator meets: two submitters at once, cancel while tasks write, a
corrupted shard, a killed task's parser children, read-only and full work dirs. Real Slurm where it matters."""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import pytest
import yaml

from ldrt_hpc.config import load_pipeline
from ldrt_hpc.launch import cancel, format_status, stage_status, submit, wait
from ldrt_hpc.launch.launcher import SubmissionError, last_error_line
from ldrt_hpc.ownership import records_path
from ldrt_hpc.runner import stage_dir
from ldrt_hpc.shards import corrupt_path, marker_path, shard_path, verify_shard
from tests.launch.test_launcher import cli


def flip_data_byte(path: Path, dataset: str = "items/path/values") -> None:
    """Flip one byte inside a data chunk: the size stays, the sha256 and the chunk's fletcher32 break."""
    with h5py.File(path) as handle:
        info = handle[dataset].id.get_chunk_info(0)
    with open(path, "r+b") as handle:
        handle.seek(info.byte_offset + info.size // 2)
        byte = handle.read(1)
        handle.seek(info.byte_offset + info.size // 2)
        handle.write(bytes([byte[0] ^ 0xFF]))


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.rglob("*") if ".tmp-" in p.name or p.name.endswith(".save_tmp"))


# --------------------------------------------------------------------------------------------------------------
# two submitters


RELEASE = ("import sys, time\nfrom ldrt_hpc.cli import main\n"
           "time.sleep(max(0.0, float(sys.argv[1]) - time.time()))\nsys.exit(main(sys.argv[2:]))")


@pytest.mark.slurm
def test_two_runs_released_together_submit_each_shard_once(slurm, synth_pdfs, make_config, tmp_path):
    config_path, cfg = make_config(synth_pdfs, num_shards=8, cluster="localslurm")
    slurm.append((cfg, "ingest"))
    # a busy slurmctld: sbatch answers after 2 s, so both submitters are surely inside their submission together
    slow = tmp_path / "bin" / "sbatch"
    slow.parent.mkdir()
    slow.write_text(f"#!/bin/sh\nsleep 2\nexec {shutil.which('sbatch')} \"$@\"\n")
    slow.chmod(0o755)
    env = dict(os.environ, PATH=f"{slow.parent}:{os.environ['PATH']}")
    start_at = time.time() + 4  # both interpreters are up by then
    procs = [subprocess.Popen([sys.executable, "-c", RELEASE, str(start_at), "run", "ingest", "--config",
                               str(config_path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
             for _ in range(2)]
    outputs = [proc.communicate(timeout=300) for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0], outputs
    submitted = [out for out, _ in outputs if "submitted shards" in out]
    assert len(submitted) == 1 and "submitted shards 0-7 (8)" in submitted[0], outputs
    rows = wait(cfg, "ingest", timeout_s=240)
    assert [r.state for r in rows] == ["done"] * 8, format_status("ingest", rows)
    lines = [json.loads(line) for line in records_path(stage_dir(cfg, "ingest")).read_text().splitlines()]
    generations = {(line["shard"], line["generation"]) for line in lines}
    assert len(generations) == 8 and len({g for _, g in generations}) == 1  # one submission owns every shard
    logs = stage_dir(cfg, "ingest") / "_jobs" / "logs"
    assert not any("Error" in p.read_text() for p in logs.glob("*.err")), "a task failed"


# --------------------------------------------------------------------------------------------------------------
# cancel while a task writes


def stuck_config(tmp_path: Path, synth_pdfs: Path, cluster: str) -> tuple[Path, Path]:
    """An ingest config whose manifest lists a FIFO: the task that reads it blocks (like a hung file system)
    until somebody writes to the FIFO."""
    stuck = tmp_path / "inputs" / "stuck.pdf"
    stuck.parent.mkdir()
    os.mkfifo(stuck)
    manifest = tmp_path / "inputs" / "manifest.txt"
    manifest.write_text("\n".join([str(stuck)] + [str(p) for p in sorted(synth_pdfs.glob("*.pdf"))[:3]]) + "\n")
    path = tmp_path / "pipeline.yaml"
    path.write_text("# ldrt-hpc run ingest --config pipeline.yaml (test)\n" + yaml.safe_dump({
        "work_dir": str(tmp_path / "work"), "cluster": cluster,
        "stages": {"ingest": {"manifest": str(manifest), "num_shards": 2}}}))
    return path, stuck


def feed_fifo(fifo: Path, data: bytes) -> bool:
    """Write to the FIFO if a task is still reading it; False when no reader is left."""
    try:
        fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
    except OSError as exc:
        assert exc.errno == errno.ENXIO
        return False
    try:
        os.set_blocking(fd, True)
        os.write(fd, data)
    except BrokenPipeError:
        return False
    finally:
        os.close(fd)
    return True


@pytest.mark.slurm
def test_cancel_stops_a_writing_task_and_it_never_commits(slurm, tmp_path, synth_pdfs):
    config_path, fifo = stuck_config(tmp_path, synth_pdfs, "localslurm")
    cfg = load_pipeline(config_path)
    slurm.append((cfg, "ingest"))
    submit(cfg, "ingest")
    plan = json.loads((stage_dir(cfg, "ingest") / "plan.json").read_text())
    stuck_shard = next(i for i, paths in enumerate(plan["assignments"]) if str(fifo) in paths)
    deadline = time.time() + 120
    while stage_status(cfg, "ingest")[stuck_shard].state != "running" and time.time() < deadline:
        time.sleep(0.5)
    time.sleep(2)  # the task is inside the stage, blocked on the FIFO
    started = time.time()
    cancelled = cancel(cfg, "ingest", grace_s=20)
    assert stuck_shard in [r.shard for r in cancelled]
    deadline = time.time() + 60
    while (row := stage_status(cfg, "ingest")[stuck_shard]).state == "cancelling" and time.time() < deadline:
        time.sleep(0.5)
    ended = time.time() - started
    assert row.state == "failed" and "cancelled at" in row.error, format_status("ingest", stage_status(cfg, "ingest"))
    assert ended < 20, f"the task took {ended:.0f} s to stop (SIGTERM ignored until Slurm's KillWait?)"
    # a task that were still alive would now read the FIFO, finish and commit
    assert not feed_fifo(fifo, (synth_pdfs / sorted(os.listdir(synth_pdfs))[0]).read_bytes()), "the task still runs"
    time.sleep(3)
    assert not marker_path(stage_dir(cfg, "ingest"), stuck_shard).exists()
    assert leftovers(stage_dir(cfg, "ingest")) == []
    log = Path(row.log).read_text()
    assert "Terminated: received SIGTERM" in log or "CANCELLED" in log
    # the input is repaired: rerun redoes the cancelled shard alone
    fifo.unlink()
    shutil.copy(next(synth_pdfs.glob("*.pdf")), fifo)
    rerun = cli("rerun", "ingest", "--config", str(config_path), "--wait")
    assert rerun.returncode == 0 and f"submitted shards {stuck_shard} (1)" in rerun.stdout, rerun.stdout + rerun.stderr
    assert [r.state for r in stage_status(cfg, "ingest")] == ["done", "done"]


def test_cancel_on_the_local_executor_stops_the_task(tmp_path, synth_pdfs):
    """The local executor runs `submit` in the foreground: cancel it from another process, as a user would."""
    config_path, fifo = stuck_config(tmp_path, synth_pdfs, "local")
    cfg = load_pipeline(config_path)
    runner = subprocess.Popen([sys.executable, "-m", "ldrt_hpc.cli", "run", "ingest", "--config", str(config_path)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 60
        while time.time() < deadline and not any(r.state == "running" for r in stage_status(cfg, "ingest")):
            time.sleep(0.3)
        time.sleep(1)
        cancelled = cli("cancel", "ingest", "--config", str(config_path), "--grace", "5")
        assert cancelled.returncode == 0 and "cancelled shards" in cancelled.stdout, cancelled.stderr
        out, err = runner.communicate(timeout=60)
    finally:
        runner.kill()
    assert not feed_fifo(fifo, b"%PDF-1.4\n")
    states = {r.state for r in stage_status(cfg, "ingest")}
    assert "running" not in states and "cancelling" not in states
    assert leftovers(stage_dir(cfg, "ingest")) == []


# --------------------------------------------------------------------------------------------------------------
# corruption


@pytest.mark.slurm
def test_flipped_byte_is_found_by_verify_and_rerun_redoes_that_shard(slurm, synth_pdfs, make_config):
    config_path, cfg = make_config(synth_pdfs, num_shards=3, cluster="localslurm")
    slurm.append((cfg, "ingest"))
    submit(cfg, "ingest")
    assert [r.state for r in wait(cfg, "ingest", timeout_s=240)] == ["done"] * 3
    directory = stage_dir(cfg, "ingest")
    flip_data_byte(shard_path(directory, 1))
    assert stage_status(cfg, "ingest")[1].state == "done"  # status stays cheap: it does not read shards
    nothing = cli("rerun", "ingest", "--config", str(config_path), "--dry-run")
    assert "nothing to submit" in nothing.stdout

    verified = cli("verify", "ingest", "--config", str(config_path))
    assert verified.returncode == 1 and "ingest shard 1: BAD" in verified.stdout and "set aside" in verified.stdout
    assert corrupt_path(directory, 1).is_file() and len(list((directory / "_corrupt").glob("*.h5"))) == 1
    shown = cli("status", "ingest", "--config", str(config_path)).stdout
    assert "corrupt" in next(line for line in shown.splitlines() if line.split()[:1] == ["1"])
    dry = cli("rerun", "ingest", "--config", str(config_path), "--dry-run")
    assert "would submit shards 1 (1)" in dry.stdout

    flip_data_byte(shard_path(directory, 2))  # a second one, found by `rerun --verify`
    rerun = cli("rerun", "ingest", "--config", str(config_path), "--verify", "--wait")
    assert rerun.returncode == 0 and "ingest shard 2: BAD" in rerun.stdout, rerun.stdout + rerun.stderr
    assert "submitted shards 1-2 (2)" in rerun.stdout
    assert [r.state for r in stage_status(cfg, "ingest")] == ["done"] * 3
    assert all(verify_shard(directory, i).ok for i in range(3))
    assert not corrupt_path(directory, 1).exists() and not corrupt_path(directory, 2).exists()


def test_truncated_shard_with_a_marker_is_corrupt(tmp_path, synth_pdfs, make_config):
    from tests.conftest import run_inline

    _, cfg = make_config(synth_pdfs, num_shards=2)
    run_inline(cfg, "ingest")
    path = shard_path(stage_dir(cfg, "ingest"), 0)
    size = path.stat().st_size
    os.truncate(path, size - 100)
    row = stage_status(cfg, "ingest")[0]
    assert row.state == "corrupt" and f"has {size - 100} bytes but its marker records {size}" in row.error
    assert submit(cfg, "ingest", dry_run=True).shards == [0]


def test_a_stage_that_cannot_read_its_input_names_the_file(tmp_path, synth_pdfs, make_config):
    from ldrt_hpc.config import freeze
    from ldrt_hpc.runner import run_shard
    from ldrt_hpc.shards import ShardError
    from tests.conftest import run_inline

    config_path, cfg = make_config(synth_pdfs, num_shards=2)
    run_inline(cfg, "ingest")
    bad = shard_path(stage_dir(cfg, "ingest"), 1)
    flip_data_byte(bad)
    assert cli("run", "convert", "--config", str(config_path), "--shards", "0").returncode == 0
    with pytest.raises(ShardError) as caught:
        run_shard(str(freeze(cfg)), "convert", 1)
    assert str(bad) in str(caught.value) and "run `ldrt-hpc verify ingest`" in str(caught.value)


def test_export_with_a_damaged_shard_leaves_the_output_as_it_was(tmp_path, synth_pdfs, make_config):
    from tests.conftest import run_inline

    config_path, cfg = make_config(synth_pdfs, num_shards=2)
    for stage in ("ingest", "figures"):
        run_inline(cfg, stage)
    out = tmp_path / "export"
    first = cli("export", "figures", str(out), "--config", str(config_path))
    assert first.returncode == 0
    before = sorted(p.name for p in out.iterdir())
    shutil.rmtree(out)
    out.mkdir()
    (out / "keep.txt").write_text("an earlier export")
    flip_data_byte(shard_path(stage_dir(cfg, "figures"), 1), "items/png/values")
    failed = cli("export", "figures", str(out), "--config", str(config_path), check=False)
    assert failed.returncode == 2 and "Traceback" not in failed.stderr
    assert str(shard_path(stage_dir(cfg, "figures"), 1)) in failed.stderr and "ldrt-hpc verify figures" in failed.stderr
    assert sorted(p.name for p in out.iterdir()) == ["keep.txt"]  # nothing half written
    assert not list(tmp_path.glob(".export.partial-*"))
    assert len(before) > 2


# --------------------------------------------------------------------------------------------------------------
# parser children


ORPHAN_PARENT = """
import os, sys, time
from ldrt_hpc.isolate import run_isolated

def work(item):
    open(os.path.join(sys.argv[1], f"child-{os.getpid()}"), "w").close()
    time.sleep(1.5)
    return b"x" * (1 << 20)  # larger than a pipe's buffer: the child blocks until the parent reads

for outcome in run_isolated(work, range(4), workers=2, timeout_s=60):
    time.sleep(60)
"""


def _gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return True
    return state in ("Z", "X")


def test_parser_children_die_with_a_killed_task(tmp_path):
    parent = subprocess.Popen([sys.executable, "-c", ORPHAN_PARENT, str(tmp_path)])
    deadline = time.time() + 30
    while len(list(tmp_path.glob("child-*"))) < 2 and time.time() < deadline:
        time.sleep(0.1)
    children = [int(p.name.split("-")[1]) for p in tmp_path.glob("child-*")]
    assert len(children) == 2
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    time.sleep(3)  # long enough for a surviving child to have reached its blocking write
    survivors = [pid for pid in children if not _gone(pid)]
    for pid in survivors:
        os.kill(pid, signal.SIGKILL)
    assert survivors == [], "parser children outlived their task"


def test_children_are_killed_when_the_task_stops_by_an_exception(tmp_path):
    from ldrt_hpc.isolate import run_isolated

    def work(item):
        open(tmp_path / f"child-{os.getpid()}", "w").close()
        time.sleep(30)

    outcomes = run_isolated(work, range(3), workers=2, timeout_s=60)
    with pytest.raises(TimeoutError):
        signal.signal(signal.SIGALRM, lambda *a: (_ for _ in ()).throw(TimeoutError()))
        signal.alarm(2)
        next(outcomes)
    signal.alarm(0)
    outcomes.close()
    children = [int(p.name.split("-")[1]) for p in tmp_path.glob("child-*")]
    assert len(children) == 2 and all(_gone(pid) for pid in children)


# --------------------------------------------------------------------------------------------------------------
# read-only and full work dirs


def _can_mount() -> bool:
    return os.geteuid() == 0 and shutil.which("mount") is not None


@pytest.fixture
def mounts():
    """Mount points to undo at teardown, newest first."""
    points: list[Path] = []
    yield points
    for point in reversed(points):
        subprocess.run(["umount", "-l", str(point)], check=False)


def mount(points: list, *args: str) -> None:
    proc = subprocess.run(["mount", *args], capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount here: {proc.stderr.strip()}")
    points.append(Path(args[-1]))


def small_work_dir(tmp_path: Path, mounts: list, size: str, cluster: str, synth_pdfs: Path) -> tuple[Path, Path]:
    """A tmpfs of `size` mounted at tmp_path/small, and an ingest config whose work_dir lies on it."""
    small = tmp_path / "small"
    small.mkdir()
    mount(mounts, "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(small))
    config = tmp_path / "pipeline.yaml"
    config.write_text("# ldrt-hpc run ingest (test)\n" + yaml.safe_dump(
        {"work_dir": str(small / "work"), "cluster": cluster,
         "stages": {"ingest": {"input_dir": str(synth_pdfs), "num_shards": 2}}}))
    return small, config


@pytest.mark.skipif(not _can_mount(), reason="needs root to mount a small tmpfs")
def test_full_work_dir_is_one_line_and_leaves_nothing(tmp_path, synth_pdfs, mounts, monkeypatch):
    small, config = small_work_dir(tmp_path, mounts, "8m", "local", synth_pdfs)
    refused = cli("run", "ingest", "--config", str(config), check=False)
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
    assert f"{small / 'work'}: only" in refused.stderr and "MB free" in refused.stderr

    # below the preflight's threshold, a write that fails half way gives the same kind of line
    from ldrt_hpc.launch import status

    monkeypatch.setattr(status, "MIN_FREE_MB", 0)
    fill(small)
    cfg = load_pipeline(config)
    with pytest.raises(SubmissionError, match=r"no space left on device \(0\.0 MB free\): nothing was submitted"):
        submit(cfg, "ingest")
    assert leftovers(small) == []


def fill(folder: Path) -> Path:
    filler = folder / "filler"
    with open(filler, "wb") as handle:
        try:
            while True:
                handle.write(b"\0" * (1 << 20))
                handle.flush()
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
    return filler


@pytest.mark.slurm
@pytest.mark.skipif(not _can_mount(), reason="needs root to mount a small tmpfs")
def test_tasks_on_a_full_work_dir_say_so_and_rerun_cleans_up(slurm, tmp_path, synth_pdfs, mounts):
    small, config = small_work_dir(tmp_path, mounts, "70m", "localslurm", synth_pdfs)
    cfg = load_pipeline(config)
    slurm.append((cfg, "ingest"))
    held = submit(cfg, "ingest", extra_directives={"hold": True})
    filler = fill(small)  # the disk fills up while the jobs wait in the queue
    subprocess.run(["scontrol", "release", held.job_ids[0].split("_")[0]], check=True)
    rows = wait(cfg, "ingest", timeout_s=240)
    assert [r.state for r in rows] == ["failed", "failed"], format_status("ingest", rows)
    assert all("MB free (file system full?)" in r.error or "No space left" in r.error for r in rows), rows
    filler.unlink()
    rerun = cli("rerun", "ingest", "--config", str(config), "--wait")
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert [r.state for r in stage_status(cfg, "ingest")] == ["done", "done"]
    assert leftovers(small) == []


@pytest.mark.slurm
@pytest.mark.skipif(not _can_mount(), reason="needs root for bind mounts")
def test_read_only_stage_dir_shows_the_real_error(slurm, tmp_path, synth_pdfs, make_config, mounts):
    """The task cannot write its shard nor its failure record; its log can be written. status must show the
    task's own error, not Slurm's 'srun: error: ... Exited with exit code 1'."""
    config_path, cfg = make_config(synth_pdfs, num_shards=1, cluster="localslurm")
    slurm.append((cfg, "ingest"))
    held = submit(cfg, "ingest", extra_directives={"hold": True})
    directory = stage_dir(cfg, "ingest")
    writable_jobs = tmp_path / "jobs-rw"
    writable_jobs.mkdir()
    mount(mounts, "--bind", str(directory / "_jobs"), str(writable_jobs))
    mount(mounts, "--bind", str(directory), str(directory))
    mount(mounts, "-o", "remount,bind,ro", str(directory))
    mount(mounts, "--bind", str(writable_jobs), str(directory / "_jobs"))
    subprocess.run(["scontrol", "release", held.job_ids[0].split("_")[0]], check=True)
    rows = wait(cfg, "ingest", timeout_s=240)
    assert rows[0].state == "failed", format_status("ingest", rows)
    assert "Read-only file system" in rows[0].error and "srun: error" not in rows[0].error, rows[0].error
    assert "could not write the failure record" in Path(rows[0].log).read_text()


def test_last_error_line_prefers_the_exception_over_the_scheduler_epilogue(tmp_path):
    log = tmp_path / "x.err"
    log.write_text("Traceback (most recent call last):\n  File \"x.py\", line 1\n"
                   "OSError: [Errno 30] Read-only file system: '/w/ingest/shard-00000.h5.tmp'\n"
                   "srun: error: vm: task 0: Exited with exit code 1\n")
    assert last_error_line(log).startswith("OSError: [Errno 30] Read-only file system")
    log.write_text("some output\nslurmstepd: error: *** STEP 5.0 ON vm CANCELLED AT 2026-12-03 ***\n")
    assert "CANCELLED" in last_error_line(log)
