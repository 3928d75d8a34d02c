"""The PBS Pro submitit plugin: ids, qsub/qstat parsing on real recorded output, and (with the local Slurm
cluster) submit, poll and cancel through Debian's slurm-wlm-torque qsub/qstat/qdel wrappers."""

from __future__ import annotations

import shutil

import pytest
import submitit

from ldrt_hpc.launch.pbs import (
    PBSExecutor,
    PBSJobEnvironment,
    native_id,
    parse_qstat_json,
    parse_qstat_text,
    state_from_pbs,
    submitit_id,
)


def test_plugin_is_registered_with_submitit():
    from submitit.core import plugins

    assert plugins.get_executors()["pbs"] is PBSExecutor
    assert isinstance(plugins.get_job_environments()["pbs"], PBSJobEnvironment)


@pytest.mark.parametrize("pbs, ours", [
    ("123[4].polaris-pbs-01", "123[].polaris-pbs-01_4"),
    ("123[0]", "123[]_0"),
    ("5487654.polaris-pbs-01.hsn.cm.polaris.alcf.anl.gov", "5487654.polaris-pbs-01.hsn.cm.polaris.alcf.anl.gov"),
    ("123[].server", "123[].server"),
])
def test_id_round_trip(pbs, ours):
    assert submitit_id(pbs) == ours and native_id(ours) == pbs


def test_slurm_wrapper_ids():
    assert native_id("77_3") == "77[3]"  # bare Slurm array number from qsub.pl


@pytest.mark.parametrize("text, expected", [
    ("5487654.polaris-pbs-01.hsn.cm.polaris.alcf.anl.gov\n", "5487654.polaris-pbs-01.hsn.cm.polaris.alcf.anl.gov"),
    ("123[].polaris-pbs-01\n", "123[].polaris-pbs-01"),
    ("42\n", "42"),
])
def test_qsub_output(text, expected):
    assert PBSExecutor._get_job_id_from_submission_command(text) == expected


def test_qsub_garbage_is_an_error():
    with pytest.raises(submitit.core.utils.FailedSubmissionError):
        PBSExecutor._get_job_id_from_submission_command("qsub: Resource: filesystems is required to be set.")


@pytest.mark.parametrize("state, exit_status, expected", [
    ("Q", None, "PENDING"), ("H", None, "PENDING"), ("R", None, "RUNNING"), ("B", None, "RUNNING"),
    ("E", None, "RUNNING"), ("F", 0, "COMPLETED"), ("X", 0, "COMPLETED"), ("F", 1, "FAILED"),
    ("F", -29, "TIMEOUT"), ("F", -27, "OUT_OF_MEMORY"), ("F", 265, "CANCELLED"), ("F", 271, "CANCELLED"),
    ("F", None, "CANCELLED"), ("C", None, "COMPLETED"), ("?", None, "UNKNOWN"),
])
def test_state_mapping(state, exit_status, expected):
    assert state_from_pbs(state, exit_status) == expected


@pytest.mark.shared
def test_recorded_qstat_json(shared_dir):
    pbs = shared_dir / "pbs"
    aurora = parse_qstat_json((pbs / "qstat_xf_json_finished_exit0_walltime_-29_aurora_pbs_monitor.json").read_text())
    suffix = ".aurora-pbs-0001.hostmgmt.cm.aurora.alcf.anl.gov"
    assert aurora["6617175" + suffix]["State"] == "TIMEOUT"
    assert aurora["6631289" + suffix]["State"] == "COMPLETED"
    assert aurora["4905472" + suffix]["State"] == "PENDING"
    mixed = parse_qstat_json((pbs / "qstat_xf_json_finished_running_openpbs23_firecrest.json").read_text())
    assert {k: v["State"] for k, v in mixed.items()} == {"1004.pbs": "COMPLETED", "1005.pbs": "COMPLETED",
                                                          "1006.pbs": "RUNNING"}
    held = parse_qstat_json((pbs / "qstat_xf_json_held_queued_deleted_aurora_pbs_monitor.json").read_text())
    assert held["4683812" + suffix]["State"] == "PENDING" and held["4846771" + suffix]["State"] == "CANCELLED"
    # header-only output printed with exit 35 (finished job queried without -x): no jobs, no crash
    header = (pbs / "messages" / "qstat_stdout_header_only_job_finished_exit35_polaris_parsl_issue3906.json")
    assert parse_qstat_json(header.read_text()) == {}


@pytest.mark.shared
def test_recorded_qstat_text(shared_dir):
    jobs = parse_qstat_text((shared_dir / "pbs" / "qstat_f_text_queued_running_held_pbspro_aiida.txt").read_text())
    assert jobs["68350.mycluster"]["State"] == "PENDING"
    assert {v["State"] for v in jobs.values()} >= {"PENDING", "RUNNING"}


def test_wrapper_qstat_text():
    text = "Job Id:\t10\n\tJob_Name = holdtest\n\tjob_state = C\n\tqueue = debug\n\tResource_List.ncpus = 1\n"
    assert parse_qstat_text(text) == {"10": {"JobID": "10", "State": "COMPLETED", "ExitStatus": "", "Comment": ""}}


# ---- for real, through slurm-wlm-torque on the local cluster -------------------------------------------------

@pytest.fixture
def qsub_wrappers(slurm):
    if shutil.which("qsub") is None or shutil.which("qdel") is None:
        pytest.skip("slurm-wlm-torque (qsub/qstat/qdel wrappers) not installed")
    return slurm


def test_ingest_through_pbs_plugin(qsub_wrappers, synth_pdfs, make_config):
    from ldrt_hpc.launch import submit, wait

    _, cfg = make_config(synth_pdfs, num_shards=3, cluster="localpbs")
    qsub_wrappers.append((cfg, "ingest"))
    result = submit(cfg, "ingest")
    assert len(result.job_ids) == 3 and len({j.rsplit("_", 1)[0] for j in result.job_ids}) == 1  # one array
    rows = wait(cfg, "ingest", timeout_s=180)
    assert [r.state for r in rows] == ["done"] * 3, rows
    assert sum(r.items for r in rows) == 12
    assert [r.job_id for r in rows] == result.job_ids  # the job env computed the same ids as the executor


def test_pbs_poll_and_cancel_through_wrappers(qsub_wrappers, synth_pdfs, make_config):
    from ldrt_hpc.launch import cancel, stage_status, submit

    _, cfg = make_config(synth_pdfs, num_shards=1, cluster="localpbs")
    qsub_wrappers.append((cfg, "ingest"))
    result = submit(cfg, "ingest", extra_directives={"h": True})  # held: it cannot finish before we look
    (job_id,) = result.job_ids
    assert "#PBS -h" in result.script
    rows = stage_status(cfg, "ingest")
    assert rows[0].state == "pending" and rows[0].job_id == job_id
    from ldrt_hpc.launch.pbs import PBSInfoWatcher

    watcher = PBSInfoWatcher()
    watcher.register_job(job_id)
    watcher.update()  # qstat -x -F json is refused by qstat.pl: the text fallback answers
    assert watcher.get_state(job_id, mode="cache") == "PENDING"
    assert [r.shard for r in cancel(cfg, "ingest")] == [0]  # qdel
    watcher.update()
    assert watcher.get_state(job_id, mode="cache") == "COMPLETED"  # qstat.pl reports C for every ending
    row = stage_status(cfg, "ingest")[0]
    assert row.state == "failed" and "cancelled at" in row.error
