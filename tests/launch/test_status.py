"""`status` at scale and the errors a submission can meet: grouped output, state filters, PBS ids in the form
qstat accepts, the scheduler's pending reason, progress while waiting, the scheduler's refusal in one line
(Slurm for real; PBS through the qsub wrapper), and the stage's preflight before anything is pinned."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from ldrt_hpc.errors import BackendUnavailable, SubmissionError
from ldrt_hpc.launch import status as status_module
from ldrt_hpc.launch import submit
from ldrt_hpc.launch.status import ShardStatus, format_status, stage_status, wait
from ldrt_hpc.plan import load_plan
from ldrt_hpc.runner import stage_dir

CLUSTERS = Path(__file__).resolve().parents[2] / "ldrt_hpc" / "configs" / "clusters"


def failed_rows(count: int, error: str = "ValueError: bad page tree") -> list[ShardStatus]:
    return [ShardStatus(i, "failed", job_id=f"700_{i}", scheduler="slurm", log=f"/w/logs/700_{i}_0_log.err",
                        error=f"job 700_{i} ended FAILED: {error}") for i in range(count)]


def test_identical_failures_collapse_into_one_line():
    rows = failed_rows(1000) + [ShardStatus(1000, "done", items=3)]
    shown = format_status("ingest", rows).splitlines()
    assert shown[0] == "done \u00d71 shards 1000"  # groups in the order of the counts line
    assert shown[1] == ("failed \u00d71000 shards 0-999: job <job> ended FAILED: ValueError: bad page tree"
                        "  [log of shard 0: /w/logs/700_0_0_log.err]")
    assert shown[-1] == "ingest: 1001 shards: 1 done, 1000 failed"
    assert len(shown) == 4  # two groups, the hint, the counts


def test_different_errors_stay_apart_and_every_row_on_request():
    from ldrt_hpc.launch.status import group_rows

    rows = failed_rows(60) + failed_rows(3, "OSError: disk quota exceeded")
    for offset, row in enumerate(rows[60:]):
        row.shard = 60 + offset
    groups = group_rows(rows)
    assert [(state, len(members)) for state, _, members in groups] == [("failed", 60), ("failed", 3)]
    assert "disk quota" in groups[1][1]
    every = format_status("ingest", rows, every_row=True).splitlines()
    assert len(every) == 1 + 63 + 1 and every[1].split()[:3] == ["0", "failed", "700_0"]
    small = format_status("ingest", rows[:5]).splitlines()  # few shards: one row each, as before
    assert len(small) == 7 and "[log: /w/logs/700_4_0_log.err]" in small[5]


def test_state_filter_keeps_the_counts_of_every_shard():
    rows = [ShardStatus(0, "done", items=1), ShardStatus(1, "pending", job_id="9_1", scheduler="slurm",
                                                            reason="Priority"),
            *failed_rows(3)[2:]]
    shown = format_status("ingest", rows, states=["failed", "pending"]).splitlines()
    assert [line.split()[0] for line in shown[1:-1]] == ["1", "2"]
    assert "waiting: Priority" in shown[1]
    assert shown[-1] == "ingest: 3 shards: 1 done, 1 failed, 1 pending (shown: failed, pending)"


def test_pbs_rows_show_the_native_id_in_a_column_that_fits():
    long_id = "5487654[].polaris-pbs-01.hsn.cm.polaris.alcf.anl.gov_12"
    rows = [ShardStatus(12, "running", job_id=long_id, scheduler="pbs"), ShardStatus(13, "done", job_id="1", items=2)]
    shown = format_status("qa", rows).splitlines()
    native = "5487654[12].polaris-pbs-01.hsn.cm.polaris.alcf.anl.gov"
    assert shown[1].split()[:3] == ["12", "running", native]
    assert shown[0].index("job") + 3 == shown[1].index(native) + len(native)  # right-aligned under its header


def test_wait_reports_progress_only_when_the_counts_change(monkeypatch):
    polls = iter([
        [ShardStatus(0, "pending"), ShardStatus(1, "pending")],
        [ShardStatus(0, "pending"), ShardStatus(1, "pending")],
        [ShardStatus(0, "running"), ShardStatus(1, "pending")],
        [ShardStatus(0, "done"), ShardStatus(1, "failed")],
    ])
    monkeypatch.setattr(status_module, "stage_status", lambda cfg, stage: next(polls))
    seen = []
    rows = wait(None, "ingest", poll_s=0, progress=lambda rows: seen.append(status_module.count_summary(rows)))
    assert seen == ["2 pending", "1 running, 1 pending", "1 done, 1 failed"]
    assert [r.state for r in rows] == ["done", "failed"]


def test_qsub_error_keeps_what_qsub_printed():
    from submitit.core.utils import FailedJobError

    from ldrt_hpc.launch.pbs import qsub_error

    wrapper = ("There was an error running the Slurm sbatch command.\nThe command was:\n'/usr/bin/sbatch x'\n"
               "and the output was:\n'sbatch: error: invalid partition specified: nosuch\n"
               " sbatch: error: Batch job submission failed: Invalid partition name specified\n'\n")
    for stdout, stderr, expected in [
        (wrapper, "", ("qsub exited 1: sbatch: error: invalid partition specified: nosuch sbatch: error: Batch job "
                       "submission failed: Invalid partition name specified")),  # Slurm's qsub.pl: stdout only
        ("", "qsub: Unknown queue\n", "qsub exited 1: qsub: Unknown queue"),  # PBS Pro: stderr
        ("", "", "qsub exited 1 and printed nothing"),
    ]:
        try:
            try:
                raise subprocess.CalledProcessError(1, ["qsub"], output=stdout, stderr=stderr)
            except subprocess.CalledProcessError as cause:
                raise FailedJobError(stderr) from cause
        except FailedJobError as exc:
            assert qsub_error(exc) == expected


def test_pbs_cancel_is_one_qdel_with_native_ids(monkeypatch):
    from ldrt_hpc.launch import commands, schedulers

    calls = []
    monkeypatch.setattr(commands, "run_stop_command", lambda command: calls.append(command))
    ids = [f"123[].pbs01_{i}" for i in range(500)]
    schedulers.stop_jobs("pbs", ids, ids)
    assert calls == [["qdel", *[f"123[{i}].pbs01" for i in range(500)]]]
    schedulers.stop_jobs("pbs", ids[:2], ids, force=True)
    assert calls[1] == ["qdel", "-W", "force", "123[0].pbs01", "123[1].pbs01"]


# --------------------------------------------------------------------------------------------------------------
# the preflight: a backend that cannot run is refused before anything is pinned or queued


def pipeline(tmp_path: Path, synth_pdfs: Path, **stages) -> Path:
    path = tmp_path / "pipeline.yaml"
    top = stages.pop("top", {})
    path.write_text(yaml.safe_dump({"work_dir": str(tmp_path / "work"), "cluster": "local",
                                    "stages": {"ingest": {"input_dir": str(synth_pdfs), "num_shards": 2}, **stages},
                                    **top}))
    return path


@pytest.mark.parametrize("stage, settings, message", [
    ("convert", {"convert": {"backend": "marker"}}, "marker"),
    ("figures", {"figures": {"backend": "pdffigures2", "java": "no-such-java"}}, "needs Java"),
    ("qa", {"top": {"llm": {"backend": "vllm", "model": "/models/none"}}}, "vllm"),
])
def test_missing_backend_is_refused_before_anything_is_pinned(tmp_path, synth_pdfs, stage, settings, message):
    import importlib.util

    from ldrt_hpc.config import load_pipeline
    from ldrt_hpc.launch.launcher import wanted_plan
    from ldrt_hpc.plan import pin_plan

    if stage == "qa" and importlib.util.find_spec("vllm") is not None:
        pytest.skip("vllm is installed here")
    cfg = load_pipeline(pipeline(tmp_path, synth_pdfs, **settings))
    for upstream in ("ingest", "convert", "figures", "filter", "context"):  # the upstream plans exist
        if upstream == stage:
            break
        pin_plan(stage_dir(cfg, upstream), wanted_plan(cfg, upstream, None))
    for dry_run in (True, False):
        with pytest.raises(BackendUnavailable, match=message):
            submit(cfg, stage, dry_run=dry_run)
    assert load_plan(stage_dir(cfg, stage)) is None
    assert not (stage_dir(cfg, stage) / "_jobs").exists()


# --------------------------------------------------------------------------------------------------------------
# real schedulers


def bad_partition_profile(tmp_path: Path, base: str) -> Path:
    data = yaml.safe_load((CLUSTERS / f"{base}.yaml").read_text())
    for resources in data["resources"].values():
        resources["partition"] = "nosuchpartition"
    path = tmp_path / f"{base}-bad-partition.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.slurm
@pytest.mark.parametrize("base, scheduler", [("localslurm", "slurm"), ("localpbs", "pbs")])
def test_a_bad_partition_is_the_schedulers_words_in_one_line(slurm, tmp_path, synth_pdfs, make_config, base,
                                                             scheduler):
    config_path, cfg = make_config(synth_pdfs, num_shards=2)
    profile = bad_partition_profile(tmp_path, base)
    with pytest.raises(SubmissionError) as refused:
        submit(cfg, "ingest", cluster=str(profile))
    assert str(refused.value).startswith(f"{scheduler} refused the submission: ")
    assert "invalid partition specified: nosuchpartition" in str(refused.value)
    rows = stage_status(cfg, "ingest")
    assert [r.state for r in rows] == ["failed", "failed"] and "invalid partition" in rows[0].error

    proc = subprocess.run([sys.executable, "-m", "ldrt_hpc.cli", "rerun", "ingest", "--config", str(config_path),
                           "--cluster", str(profile)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith(f"ldrt-hpc: error: {scheduler} refused the submission: ") and "nosuchpartition" in last


@pytest.mark.slurm
def test_a_held_job_shows_slurms_reason(slurm, synth_pdfs, make_config):
    _, cfg = make_config(synth_pdfs, num_shards=2, cluster="localslurm")
    slurm.append((cfg, "ingest"))
    submit(cfg, "ingest", extra_directives={"hold": True})
    rows = stage_status(cfg, "ingest")
    assert [r.state for r in rows] == ["pending", "pending"]
    assert [r.reason for r in rows] == ["JobHeldUser", "JobHeldUser"]
    shown = format_status("ingest", rows)
    assert shown.count("waiting: JobHeldUser") == 2
