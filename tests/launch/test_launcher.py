"""`ingest` as array tasks on the local executor and on the real local Slurm cluster: one shard fails, status
shows exactly that shard with its log, rerun completes only it, and the result equals a clean run."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from ldrt_hpc.launch import format_status, parse_shards, format_shards, stage_status, submit, wait
from ldrt_hpc.launch.launcher import latest_records
from ldrt_hpc.plan import PlanError
from ldrt_hpc.runner import run_shard, stage_dir
from ldrt_hpc.shards import ShardReader, read_marker, shard_path, verify_shard

CLUSTERS = [pytest.param("local", id="local"), pytest.param("localslurm", id="slurm", marks=pytest.mark.slurm)]


def shard_items(cfg, index):
    with ShardReader(shard_path(stage_dir(cfg, "ingest"), index)) as reader:
        return list(reader)


def clean_run_items(tmp_path, synth_pdfs, num_shards):
    """The reference: every shard run in this process, no scheduler, nothing failing."""
    from tests.conftest import write_config
    from ldrt_hpc.config import freeze, load_pipeline
    from ldrt_hpc.launch.launcher import wanted_plan
    from ldrt_hpc.plan import pin_plan

    folder = tmp_path / "clean"
    folder.mkdir()
    cfg = load_pipeline(write_config(folder, synth_pdfs, num_shards))
    pin_plan(stage_dir(cfg, "ingest"), wanted_plan(cfg, "ingest", None))
    frozen = freeze(cfg)
    for index in range(num_shards):
        run_shard(frozen, "ingest", index)
    return [shard_items(cfg, i) for i in range(num_shards)]


def cli(*args, check=True):
    proc = subprocess.run([sys.executable, "-m", "ldrt_hpc.cli", *args], capture_output=True, text=True, timeout=300)
    if check and proc.returncode not in (0, 1):
        raise AssertionError(proc.stderr)
    return proc


@pytest.fixture
def cluster(request):
    name = request.param
    if name == "localslurm":
        cleanups = request.getfixturevalue("slurm")
        return name, cleanups
    return name, []


@pytest.mark.parametrize("cluster", CLUSTERS, indirect=True)
def test_fail_one_shard_then_rerun_it_alone(cluster, tmp_path, synth_pdfs, make_config):
    name, cleanups = cluster
    config_path, cfg = make_config(synth_pdfs, num_shards=5, cluster=name)
    cleanups.append((cfg, "ingest"))
    directory = stage_dir(cfg, "ingest")
    # A real failure of one task: a folder sits where shard 2 must be renamed to, so the task exits non-zero.
    blocker = shard_path(directory, 2)
    blocker.mkdir(parents=True)
    (blocker / "keep").write_text("in the way")

    first = submit(cfg, "ingest")
    assert first.shards == [0, 1, 2, 3, 4]
    rows = wait(cfg, "ingest", timeout_s=240)
    assert [r.state for r in rows] == ["done", "done", "failed", "done", "done"], format_status("ingest", rows)
    failed = rows[2]
    assert failed.job_id == first.job_ids[2]
    assert "IsADirectoryError" in failed.error
    assert failed.log and Path(failed.log).is_file()
    assert "IsADirectoryError" in Path(failed.log).read_text()  # the log named in status holds the traceback

    # status from a fresh process (state comes from disk and the scheduler, not from memory)
    shown = cli("status", "ingest", "--config", str(config_path)).stdout
    line = next(row for row in shown.splitlines() if row.split()[:2] == ["2", "failed"])
    assert failed.job_id in line and failed.log in line and "IsADirectoryError" in line
    assert "5 shards: 4 done, 1 failed" in shown

    dry = cli("rerun", "ingest", "--config", str(config_path), "--dry-run").stdout
    assert "would submit shards 2 (1)" in dry
    done_before = {i: read_marker(directory, i) for i in (0, 1, 3, 4)}

    blocker.joinpath("keep").unlink()
    blocker.rmdir()
    rerun = cli("rerun", "ingest", "--config", str(config_path), "--wait")
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert "submitted shards 2 (1)" in rerun.stdout
    rows = stage_status(cfg, "ingest")
    assert [r.state for r in rows] == ["done"] * 5
    assert rows[2].job_id != first.job_ids[2]
    records = latest_records(cfg, "ingest")
    assert {i: records[i]["job_id"] for i in (0, 1, 3, 4)} == {i: first.job_ids[i] for i in (0, 1, 3, 4)}
    assert {i: read_marker(directory, i) for i in (0, 1, 3, 4)} == done_before  # untouched
    assert not (directory / "shard-00002.failed.json").exists()

    reference = clean_run_items(tmp_path, synth_pdfs, 5)
    for index in range(5):
        assert shard_items(cfg, index) == reference[index]
        assert verify_shard(directory, index).ok
    assert sum(len(r) for r in reference) == 12

    again = submit(cfg, "ingest")  # everything done: nothing is submitted
    assert again.shards == [] and again.job_ids == []


@pytest.mark.slurm
def test_scancel_one_array_task(slurm, synth_pdfs, make_config):
    _, cfg = make_config(synth_pdfs, num_shards=4, cluster="localslurm")
    slurm.append((cfg, "ingest"))
    first = submit(cfg, "ingest", extra_directives={"hold": True})
    array_id = first.job_ids[0].split("_")[0]
    assert all(j.startswith(array_id + "_") for j in first.job_ids)
    rows = stage_status(cfg, "ingest")
    assert {r.state for r in rows} == {"pending"}
    # a pending or running shard is never submitted twice
    assert submit(cfg, "ingest").shards == [] and submit(cfg, "ingest").skipped_active == [0, 1, 2, 3]
    with pytest.raises(PlanError, match="shards 0-3 are pending or running"):
        submit(cfg, "ingest", num_shards=5, replan=True)  # would move shards aside under running writers
    subprocess.run(["scancel", f"{array_id}_1"], check=True)
    subprocess.run(["scontrol", "release", array_id], check=True)
    rows = wait(cfg, "ingest", timeout_s=240)
    assert [r.state for r in rows] == ["done", "failed", "done", "done"], format_status("ingest", rows)
    # sacct keeps no record of a task cancelled while pending; depending on when sacct is asked, the task is
    # missing from its array's records or covered by the array's own record
    assert rows[1].error in (f"job {array_id}_1 vanished from the scheduler (cancelled while pending?)",
                             f"job {array_id}_1 ended without committing its shard (no completion marker)")
    rerun = submit(cfg, "ingest")
    assert rerun.shards == [1]
    rows = wait(cfg, "ingest", timeout_s=240)
    assert [r.state for r in rows] == ["done"] * 4 and sum(r.items for r in rows) == 12


@pytest.mark.slurm
def test_large_arrays_are_split(slurm, synth_pdfs, make_config, tmp_path):
    profile = tmp_path / "tiny-site.yaml"
    profile.write_text("# ldrt-hpc run ingest --cluster tiny-site.yaml (test)\nscheduler: slurm\n"
                       "max_array_size: 2\nresources:\n  cpu:\n    partition: debug\n    time_min: 5\n")
    _, cfg = make_config(synth_pdfs, num_shards=5, cluster=str(profile))
    slurm.append((cfg, "ingest"))
    result = submit(cfg, "ingest", extra_directives={"hold": True})
    arrays = [j.split("_")[0] for j in result.job_ids]
    assert len(set(arrays)) == 3 and [arrays.count(a) for a in dict.fromkeys(arrays)] == [2, 2, 1]
    from ldrt_hpc.launch import cancel

    assert len(cancel(cfg, "ingest")) == 5
    deadline = time.time() + 60
    while time.time() < deadline:
        rows = stage_status(cfg, "ingest")
        if all(r.state == "failed" for r in rows):
            break
        time.sleep(1)
    assert all(r.state == "failed" and "cancelled at" in r.error for r in rows), format_status("ingest", rows)


def test_plan_pin_via_cli(tmp_path, synth_pdfs, make_config):
    config_path, cfg = make_config(synth_pdfs, num_shards=3)
    assert cli("run", "ingest", "--config", str(config_path)).returncode == 0
    refused = cli("run", "ingest", "--config", str(config_path), "--num-shards", "4", check=False)
    assert refused.returncode == 2
    assert "pinned at 3 shards" in refused.stderr and "--replan" in refused.stderr
    with pytest.raises(PlanError):
        submit(cfg, "ingest", num_shards=4)
    assert len(list(stage_dir(cfg, "ingest").glob("shard-*.h5"))) == 3  # nothing lost
    replanned = cli("run", "ingest", "--config", str(config_path), "--num-shards", "4", "--replan")
    assert replanned.returncode == 0 and "4 shards: 4 done" in replanned.stdout
    assert len(list((stage_dir(cfg, "ingest") / "_replaced").glob("*/shard-*.h5"))) == 3


def test_dry_run_submits_nothing(tmp_path, synth_pdfs, make_config):
    config_path, cfg = make_config(synth_pdfs, num_shards=3, cluster="localslurm")
    out = cli("run", "ingest", "--config", str(config_path), "--dry-run", "--shards", "0,2").stdout
    assert "#SBATCH --array=0-1%2" in out and "would submit shards 0,2 (2)" in out
    assert not stage_dir(cfg, "ingest").exists()


def test_config_error_from_cli(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("work_dir: w\nstages:\n  ingest:\n    input_dir: x\n    shards: 3\n")
    proc = cli("run", "ingest", "--config", str(bad), check=False)
    assert proc.returncode == 2 and f"{bad}: stages.ingest.shards: unknown key" in proc.stderr


def test_shard_lists():
    assert parse_shards("0-3,7,9-10", 11) == [0, 1, 2, 3, 7, 9, 10]
    assert format_shards([0, 1, 2, 3, 7, 9, 10]) == "0-3,7,9-10"
    with pytest.raises(ValueError, match="outside the plan"):
        parse_shards("5", 5)
    with pytest.raises(ValueError, match="not an index or a range"):
        parse_shards("a-b", 5)


@pytest.mark.slurm
def test_static_sbatch_script(slurm, synth_pdfs, make_config):
    """jobs/stage_array.sbatch: plan with the CLI, submit the static script with sbatch, shards complete."""
    from tests.conftest import REPO

    config_path, cfg = make_config(synth_pdfs, num_shards=2, cluster="localslurm")
    planned = cli("plan", "ingest", "--config", str(config_path)).stdout
    frozen = next(line.split(": ", 1)[1] for line in planned.splitlines() if line.startswith("frozen config: "))
    job = subprocess.run(["sbatch", "--parsable", "--array=0-1", "--chdir", str(REPO), "--output", "/dev/null",
                          str(REPO / "jobs" / "stage_array.sbatch"), "ingest", frozen],
                         capture_output=True, text=True, check=True).stdout.strip()
    deadline = time.time() + 120
    while time.time() < deadline and not all(r.state == "done" for r in stage_status(cfg, "ingest")):
        time.sleep(1)
    rows = stage_status(cfg, "ingest")
    assert [r.state for r in rows] == ["done", "done"]
    assert {r.job_id for r in rows} == {f"{job}_0", f"{job}_1"}


@pytest.mark.slurm
def test_preprocessing_stages_as_slurm_arrays(slurm, synth_pdfs, make_config):
    """ingest -> convert -> figures as real Slurm array jobs; a stage waits for its input shards."""
    config_path, cfg = make_config(synth_pdfs, num_shards=3, cluster="localslurm")
    for stage in ("ingest", "convert", "figures"):
        slurm.append((cfg, stage))
    held = submit(cfg, "ingest", extra_directives={"hold": True})
    early = submit(cfg, "convert")  # its inputs are not there yet: nothing is submitted
    assert early.shards == [] and early.waiting == [0, 1, 2]
    subprocess.run(["scontrol", "release", held.job_ids[0].split("_")[0]], check=True)
    assert [r.state for r in wait(cfg, "ingest", timeout_s=240)] == ["done"] * 3
    for stage in ("convert", "figures"):
        result = submit(cfg, stage)
        assert result.shards == [0, 1, 2] and len({j.split("_")[0] for j in result.job_ids}) == 1
        rows = wait(cfg, stage, timeout_s=300)
        assert [r.state for r in rows] == ["done"] * 3, format_status(stage, rows)
        verified = cli("verify", stage, "--config", str(config_path))
        assert verified.returncode == 0 and "3/3 shards verified" in verified.stdout
    from ldrt_hpc.shards import iter_stage

    converted = list(iter_stage(stage_dir(cfg, "convert"), [0, 1, 2]))
    assert len(converted) == 12 and all("Figure 1" in r["markdown"] for r in converted)
    figures = list(iter_stage(stage_dir(cfg, "figures"), [0, 1, 2]))
    assert len(figures) >= 12 and all(f["png"].startswith(b"\x89PNG") for f in figures)


def test_resources_from_profile_then_config_then_flags(tmp_path, synth_pdfs):
    from ldrt_hpc.config import ConfigError, load_pipeline
    from ldrt_hpc.launch.launcher import placement

    config = tmp_path / "pipeline.yaml"
    config.write_text("# ldrt-hpc run figures (test)\nwork_dir: w\nstages:\n  ingest:\n    input_dir: pdfs\n"
                      "resources:\n  figures:\n    time_min: 240\n    extra_directives: {reservation: big}\n")
    cfg = load_pipeline(config)
    profile, resources = placement(cfg, "figures", "generic-slurm", {})
    assert resources.time_min == 240 and resources.extra_directives["reservation"] == "big"
    assert placement(cfg, "convert", "generic-slurm", {})[1].time_min != 240  # only the stage named
    profile, resources = placement(cfg, "figures", "generic-slurm", {
        "time_min": 30, "partition": "short", "qos": "high", "array_parallelism": 7, "account": "PROJ",
        "mail": "me@lab.gov", "extra_directives": {"hold": True}})
    assert (resources.time_min, resources.partition, resources.qos, resources.array_parallelism) == (30, "short",
                                                                                                    "high", 7)
    assert profile.account == "PROJ"
    assert resources.extra_directives == {"reservation": "big", "hold": True, "mail_user": "me@lab.gov",
                                          "mail_type": "END,FAIL"}
    assert placement(cfg, "figures", "polaris", {"mail": "me@lab.gov"})[1].extra_directives["M"] == "me@lab.gov"
    with pytest.raises(ConfigError, match=r"resources of 'figures'.*time_min: Input should be greater than or equal to 2"):
        placement(cfg, "figures", "generic-slurm", {"time_min": 1})


def test_config_resources_name_real_stages_and_fields(tmp_path):
    from ldrt_hpc.config import ConfigError, load_pipeline

    config = tmp_path / "pipeline.yaml"
    config.write_text("work_dir: w\nstages:\n  ingest:\n    input_dir: x\nresources:\n  figures:\n    tme_min: 3\n")
    with pytest.raises(ConfigError, match=r"pipeline.yaml: resources: figures: tme_min: unknown key"):
        load_pipeline(config)
    config.write_text("work_dir: w\nstages:\n  ingest:\n    input_dir: x\nresources:\n  figurez: {}\n")
    with pytest.raises(ConfigError, match=r"unknown stage 'figurez' \(known stages: search, download"):
        load_pipeline(config)


def test_arrays_of_one_submission_share_the_parallelism(tmp_path, synth_pdfs, make_config):
    profile = tmp_path / "tiny-site.yaml"
    profile.write_text("# test\nscheduler: slurm\nmax_array_size: 2\nresources:\n  cpu:\n    array_parallelism: 4\n")
    _, cfg = make_config(synth_pdfs, num_shards=5, cluster=str(profile))
    dry = submit(cfg, "ingest", dry_run=True)
    assert "#SBATCH --array=0-1%1" in dry.script  # 3 arrays x 1 <= 4, not 3 x 4
    from ldrt_hpc.config import load_cluster
    from ldrt_hpc.launch.launcher import array_parallelism

    resources = load_cluster(str(profile)).resources["cpu"]
    assert [array_parallelism(resources, n, 2) for n in (1, 2, 3, 4, 8, 100)] == [4, 4, 2, 2, 1, 1]


def wait_for_empty_queue(timeout_s: float = 60) -> None:
    deadline = time.time() + timeout_s
    while subprocess.run(["squeue", "-h", "-r"], capture_output=True, text=True).stdout.strip() and \
            time.time() < deadline:
        time.sleep(0.5)


@pytest.mark.slurm
def test_queue_limit_holds_back_what_does_not_fit(slurm, tmp_path, synth_pdfs, make_config):
    wait_for_empty_queue()  # jobs of earlier tests count toward the limit too
    profile = tmp_path / "capped.yaml"
    profile.write_text("# test\nscheduler: slurm\nmax_queued_jobs: 3\nresources:\n  cpu:\n    partition: debug\n"
                       "    time_min: 5\n")
    _, cfg = make_config(synth_pdfs, num_shards=5, cluster=str(profile))
    slurm.append((cfg, "ingest"))
    first = submit(cfg, "ingest", extra_directives={"hold": True})
    assert first.shards == [0, 1, 2] and first.held_back == [3, 4]
    again = submit(cfg, "ingest", extra_directives={"hold": True})  # the queue is full: nothing more
    assert again.shards == [] and again.held_back == [3, 4] and again.skipped_active == [0, 1, 2]
    from ldrt_hpc.launch import cancel

    cancel(cfg, "ingest")
    wait_for_empty_queue()
    last = submit(cfg, "ingest", extra_directives={"hold": True})
    assert last.shards == [0, 1, 2] and last.held_back == [3, 4]  # the cancelled ones first, in shard order
