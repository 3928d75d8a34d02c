"""Time limits and preemption on the real local Slurm: a task warned before its time limit (USR2) checkpoints,
is requeued under the same job id and generation, and the requeued task finishes the shard from its saved
progress. Plus the PBS requeue decision (no PBS here: fake qsub/qrls on PATH)."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from ldrt_hpc import ownership
from ldrt_hpc.config import load_pipeline
from ldrt_hpc.launch import stage_status, submit
from ldrt_hpc.launch.status import format_status
from ldrt_hpc.runner import stage_dir
from tests.s2_server import BULK_PATH, S2ReplayServer

KEYWORDS = ["alpha", "bravo", "charlie", "delta"]


def paper(i: int) -> dict:
    return {"paperId": f"p{i:04d}", "title": f"Low-dose radiation study {i}", "year": 2020,
            "externalIds": {"DOI": f"10.1000/ldrt.{i}"}, "openAccessPdf": {"url": "", "status": "GOLD"}}


def search_config(folder: Path, base_url: str, cluster: str) -> Path:
    (folder / "keywords.yaml").write_text("# ldrt-hpc run search (test)\n" + yaml.safe_dump({"keywords": KEYWORDS}))
    data = {"work_dir": str(folder / "work"), "cluster": cluster,
            "stages": {"search": {"keywords": str(folder / "keywords.yaml"), "base_url": base_url,
                                  "requests_per_s": 200, "timeout_s": 600, "max_retries": 0,
                                  "api_key_env": "LDRT_TEST_S2_KEY"}}}
    path = folder / "search.yaml"
    path.write_text("# ldrt-hpc run search --config search.yaml (test)\n" + yaml.safe_dump(data))
    return path


def _requeued_and_held(job_id: str) -> bool:
    text = subprocess.run(["scontrol", "show", "job", job_id], capture_output=True, text=True, check=False).stdout
    return "Restarts=0" not in text and "Reason=BeginTime" in text


@pytest.mark.slurm
def test_time_limit_checkpoints_requeues_and_resumes(slurm, tmp_path):
    """time_min 2 with the warning 60 s before it: slurmctld sends USR2 up to its 30 s check period early, so
    30-60 s into the job. The first keyword's page is slow (8 s) and saved; the second hangs past the warning.
    The requeued task (same job id, same generation) asks only for the keywords not finished yet.

    Slurm holds a requeued job for 120 s (BeginTime) and then waits for its next scheduling pass; the test moves
    that begin time to now once it has seen the requeue, to stay short (the requeue itself is Slurm's own)."""
    profile = tmp_path / "short-site.yaml"
    profile.write_text("# ldrt-hpc run search --cluster short-site.yaml (test)\nscheduler: slurm\n"
                       "modules_profile: local.sh\nexports:\n  OMP_NUM_THREADS: '1'\n"
                       "resources:\n  cpu:\n    partition: debug\n    mem_gb: 1\n    time_min: 2\n"
                       "    signal_delay_s: 60\n")
    with S2ReplayServer() as server:
        for i, keyword in enumerate(KEYWORDS):
            server.add_bulk_page(keyword, None, {"total": 1, "token": None, "data": [paper(i)]})
        server.inject(BULK_PATH, "slow:8", "slow:400")
        cfg = load_pipeline(search_config(tmp_path, server.base_url, str(profile)))
        slurm.append((cfg, "search"))
        result = submit(cfg, "search")
        [job_id] = result.job_ids
        seen = []
        nudged = False
        deadline = time.time() + 330
        while time.time() < deadline:
            rows = stage_status(cfg, "search")
            seen.append(rows[0].state)
            if rows[0].state not in ("pending", "running"):
                break
            if not nudged and _requeued_and_held(job_id):
                subprocess.run(["scontrol", "update", f"JobId={job_id}", "StartTime=now"], check=False)
                nudged = True
            time.sleep(2)
        asked = [r["query"].get("query") for r in server.requests if r.get("path") == BULK_PATH]
        assert rows[0].state == "done", (format_status("search", rows), seen, asked)
    assert "failed" not in seen and seen.count("pending") >= 1, seen
    # the first attempt finished alpha and was cut during bravo; the requeued one resumed: alpha is asked once
    assert asked == ["alpha", "bravo", "bravo", "charlie", "delta"], asked
    assert rows[0].items == 4 and rows[0].job_id == job_id and rows[0].generation == result.generation
    records = ownership.owners(stage_dir(cfg, "search"))[0]
    assert records["generation"] == result.generation and records["job_id"] == job_id
    log = "".join(p.read_text(errors="replace") for p in Path(records["folder"]).glob(f"{job_id}_0_log.*"))
    assert "Requeued job" in log and "Job completed successfully" in log, log[-3000:]


# --------------------------------------------------------------------------------------------------------------
# PBS: no --signal (a timer in the task) and no qrerun (the job resubmits itself)


def test_pbs_script_arms_the_walltime_timer(tmp_path):
    from ldrt_hpc.launch.pbs import _make_pbs_string

    text = _make_pbs_string("python -m x", tmp_path, walltime_min=30, signal_delay_s=120, map_count=3)
    assert "export LDRT_SIGNAL_AT=$(( $(date +%s) + 1680 ))" in text
    assert "LDRT_SIGNAL_AT" not in _make_pbs_string("python -m x", tmp_path, walltime_min=30)


def test_pbs_timer_sends_the_preemption_signal(monkeypatch):
    import signal

    from ldrt_hpc.launch.pbs import start_walltime_timer

    sent = []
    monkeypatch.setattr(os, "kill", lambda pid, sig: sent.append((pid, sig)))
    assert start_walltime_timer(None, signal.SIGUSR2) is None
    start_walltime_timer(str(time.time() + 0.2), signal.SIGUSR2).join(5)
    assert sent == [(os.getpid(), signal.SIGUSR2)]


def _fake_pbs(bin_dir: Path, log: Path) -> None:
    bin_dir.mkdir()
    (bin_dir / "qsub").write_text(f'#!/bin/bash\necho "qsub $*" >> {log}\ncp "${{@: -1}}" {log}.script\n'
                                  'echo 456.pbs01\n')
    (bin_dir / "qrls").write_text(f'#!/bin/bash\necho "qrls $*" >> {log}\n')
    (bin_dir / "qrerun").write_text(f'#!/bin/bash\necho "qrerun $*" >> {log}\nexit 1\n')
    for name in ("qsub", "qrls", "qrerun"):
        (bin_dir / name).chmod(0o755)


def test_pbs_requeue_resubmits_and_records_the_new_job(tmp_path, monkeypatch):
    """On USR2 a PBS subjob checkpoints and resubmits itself as one held job (qsub -h; no qrerun, which needs
    operator privilege), hands it the checkpoint pickle under the new id, releases it, and the task records the
    new job id for its shard under the SAME generation, so that status follows the shard to the new job."""
    import signal

    from submitit.core.utils import DelayedSubmission

    from ldrt_hpc.launch.pbs import PBSJobEnvironment, _make_pbs_string
    from ldrt_hpc.launch.task import ShardTask, shard_task

    config = search_config(tmp_path, "http://127.0.0.1:9", "local")
    cfg = load_pipeline(config)
    directory = stage_dir(cfg, "search")
    generation = ownership.new_generation()
    ownership.append_records(directory, [{"shard": 0, "generation": generation, "scheduler": "pbs",
                                          "job_id": "123[].pbs01_1", "submitted_at": time.time()}])
    folder = tmp_path / "logs"
    folder.mkdir()
    (folder / "123[].pbs01_submission.sh").write_text(
        _make_pbs_string("python -u -m submitit.core._submit logs", folder, walltime_min=30, signal_delay_s=90,
                         map_count=3))
    (folder / "123[].pbs01_1_submitted.pkl").write_bytes(b"old")
    log = tmp_path / "calls.log"
    _fake_pbs(tmp_path / "bin", log)
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:{os.environ['PATH']}")
    for key, value in {"SUBMITIT_EXECUTOR": "pbs", "SUBMITIT_FOLDER": str(folder), "PBS_JOBID": "123[1].pbs01",
                       "PBS_ARRAY_ID": "123[].pbs01", "PBS_ARRAY_INDEX": "1"}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(PBSJobEnvironment, "after_resubmit", None)
    previous = signal.getsignal(signal.SIGTERM)
    try:
        delayed = shard_task.checkpoint(str(config), "search", 0, generation)
        assert signal.getsignal(signal.SIGTERM) == signal.SIG_IGN  # the requeue's own SIGTERM cannot cut it short
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert isinstance(delayed, DelayedSubmission) and isinstance(delayed.function, ShardTask)
    assert delayed.args == (str(config), "search", 0, generation)
    env = PBSJobEnvironment()
    assert env.job_id == "123[].pbs01_1"
    env._requeue(2)
    calls = log.read_text().splitlines()
    assert calls[0].startswith("qsub -h ") and calls[1] == "qrls 456.pbs01" and len(calls) == 2, calls
    script = Path(f"{log}.script").read_text()
    assert "\n#PBS -J" not in script and "export PBS_ARRAY" not in script and '\nLDRT_JOB_ID="${PBS_JOBID}"' in script
    assert "LDRT_SIGNAL_AT" in script and "#PBS -l walltime=00:30:00" in script
    assert (folder / "456.pbs01_submitted.pkl").read_bytes() == b"old"
    assert (folder / "456.pbs01_submission.sh").read_text() == script
    record = ownership.owners(directory)[0]
    assert record["generation"] == generation and record["job_id"] == "456.pbs01"
    assert ownership.ownership_problem(directory, 0, generation) is None  # the requeued job may still commit


def test_slurm_scripts_ask_for_requeue_and_the_configured_warning():
    from ldrt_hpc.config import ClusterProfile
    from ldrt_hpc.errors import ConfigError
    from ldrt_hpc.launch.executors import slurm_parameters

    profile = ClusterProfile.model_validate({"scheduler": "slurm", "resources": {"cpu": {"time_min": 2,
                                                                                         "signal_delay_s": 45}}})
    params = slurm_parameters(profile, profile.resources["cpu"], "x")
    assert params["signal_delay_s"] == 45 and params["additional_parameters"]["requeue"] is True
    too_long = profile.resources["cpu"].model_copy(update={"signal_delay_s": 120})
    with pytest.raises(ConfigError, match="signal_delay_s"):
        slurm_parameters(profile, too_long, "x")
