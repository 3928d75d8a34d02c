"""The CLI from another directory, as an installed tool is used: configs relative to their own folder, cluster
profiles from the package, the stage graph."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
RUN_ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
"""This checkout's package, whatever copy is installed (the commands run from other folders)."""


def ldrt(cwd, *args):
    return subprocess.run([sys.executable, "-m", "ldrt_hpc.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300, env=RUN_ENV)


def test_run_from_another_directory(tmp_path, synth_pdfs):
    project = tmp_path / "project"
    project.mkdir()
    (project / "pdfs").symlink_to(synth_pdfs)
    config = project / "pipeline.yaml"
    config.write_text("# ldrt-hpc run ingest --config pipeline.yaml\n" + yaml.safe_dump(
        {"work_dir": "work", "stages": {"ingest": {"input_dir": "pdfs", "num_shards": 3}}}))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    dry = ldrt(elsewhere, "run", "ingest", "--config", str(config), "--cluster", "polaris", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "#PBS -J 0-2" in dry.stdout and "modules/polaris.sh" in dry.stdout
    ran = ldrt(elsewhere, "run", "ingest", "--config", str(config))
    assert ran.returncode == 0 and "3 shards: 3 done" in ran.stdout, ran.stdout + ran.stderr
    assert (project / "work" / "ingest" / "shard-00002.done.json").is_file()  # WORK is the config's folder's
    assert not (elsewhere / "work").exists()


def test_stage_graph_names_for_scripts(tmp_path):
    shown = ldrt(tmp_path, "stages", "--from", "ingest", "--to", "qa", "--names")
    assert shown.stdout.split() == ["ingest", "convert", "figures", "filter", "context", "qa"]
    table = ldrt(tmp_path, "stages").stdout
    assert "download  [cpu]" in table and "(plans from search)" in table
    wrong = ldrt(tmp_path, "stages", "--from", "qa", "--to", "ingest", "--names")
    assert wrong.returncode == 2 and "comes after" in wrong.stderr


# --------------------------------------------------------------------------------------------------------------
# bad numbers, risky defaults, output (issue 10)


def small_project(tmp_path, synth_pdfs, num_shards=3):
    config = tmp_path / "pipeline.yaml"
    config.write_text(yaml.safe_dump({"work_dir": str(tmp_path / "work"), "cluster": "local",
                                      "stages": {"ingest": {"input_dir": str(synth_pdfs), "num_shards": num_shards}}}))
    return config


def test_shard_counts_below_one_are_refused(tmp_path, synth_pdfs):
    config = small_project(tmp_path, synth_pdfs)
    for command in ("run", "plan"):
        for count in ("0", "-3"):
            proc = ldrt(tmp_path, command, "ingest", "--config", str(config), "--num-shards", count)
            assert proc.returncode == 2 and f"must be 1 or more, not {int(count)}" in proc.stderr, proc.stderr
            assert "--array=0--" not in proc.stdout
    assert not (tmp_path / "work" / "ingest" / "plan.json").exists()


def test_ingest_plan_checks_its_count(tmp_path, synth_pdfs, caplog):
    from ldrt_hpc.config import load_pipeline
    from ldrt_hpc.stages.ingest import make_plan

    cfg = load_pipeline(small_project(tmp_path, synth_pdfs))
    with pytest.raises(ValueError, match="0 shards asked for"):
        make_plan(cfg, 0)  # 0 is not "not given"
    pdfs = len(list(synth_pdfs.glob("*.pdf")))
    with caplog.at_level("WARNING"):
        plan = make_plan(cfg, 500)
    assert plan.num_shards == 500
    assert f"500 shards for {pdfs} PDFs: {500 - pdfs} shards will be empty" in caplog.text
    caplog.clear()
    make_plan(cfg, 3)
    assert "empty" not in caplog.text


def test_local_profile_on_a_login_node_warns(tmp_path):
    from ldrt_hpc.cli import login_node_warning

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "sbatch").write_text("#!/bin/sh\n")
    (bin_dir / "sbatch").chmod(0o755)
    login = {"PATH": str(bin_dir)}
    assert "sbatch on PATH" in login_node_warning("local", login)
    assert "SLURM_CONF is set" in login_node_warning("local", {"PATH": "", "SLURM_CONF": "/etc/slurm/slurm.conf"})
    assert "PBS_SERVER is set" in login_node_warning("local", {"PATH": "", "PBS_SERVER": "pbs01"})
    assert login_node_warning("local", {**login, "SLURM_JOB_ID": "12"}) is None  # inside a job: fine
    assert login_node_warning("local", {**login, "LDRT_ALLOW_LOCAL": "1"}) is None
    assert login_node_warning("slurm", login) is None
    assert login_node_warning("local", {"PATH": str(tmp_path)}) is None  # a laptop



def test_local_run_on_a_login_node_warns_as_it_starts(tmp_path, synth_pdfs):
    config = small_project(tmp_path, synth_pdfs, num_shards=2)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "qsub").write_text("#!/bin/sh\nexit 1\n")
    (bin_dir / "qsub").chmod(0o755)
    env = {**RUN_ENV, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    env.pop("SLURM_JOB_ID", None)
    env.pop("PBS_JOBID", None)

    def run(*args):
        return subprocess.run([sys.executable, "-m", "ldrt_hpc.cli", *args], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=300)

    refused = run("run", "ingest", "--config", str(config), "--shards", "5")
    assert refused.returncode == 2 and len(refused.stderr.strip().splitlines()) == 1, refused.stderr  # nothing ran
    ran = run("run", "ingest", "--config", str(config))
    assert ran.returncode == 0 and "2 shards: 2 done" in ran.stdout, ran.stderr
    assert ran.stderr.startswith("WARNING: the 'local' cluster profile runs every shard on THIS machine")
    assert "qsub on PATH" in ran.stderr.splitlines()[0]


def test_status_exit_code_filter_and_closed_pipe(tmp_path, synth_pdfs):
    config = small_project(tmp_path, synth_pdfs, num_shards=3)
    blocker = tmp_path / "work" / "ingest" / "shard-00001.h5"
    blocker.mkdir(parents=True)  # shard 1 cannot be renamed into place: a real failure
    (blocker / "keep").write_text("in the way")
    ran = ldrt(tmp_path, "run", "ingest", "--config", str(config))
    assert ran.returncode == 1, ran.stdout + ran.stderr
    status = ldrt(tmp_path, "status", "ingest", "--config", str(config))
    assert status.returncode == 1 and "3 shards: 2 done, 1 failed" in status.stdout  # a failed shard: exit 1
    only = ldrt(tmp_path, "status", "ingest", "--config", str(config), "--state", "failed")
    rows = only.stdout.splitlines()[1:-1]
    assert [row.split()[:2] for row in rows] == [["1", "failed"]] and "(shown: failed)" in only.stdout
    as_json = ldrt(tmp_path, "status", "ingest", "--config", str(config), "--json", "--state", "done")
    assert [row["shard"] for row in json.loads(as_json.stdout)] == [0, 2]
    wrong = ldrt(tmp_path, "status", "ingest", "--config", str(config), "--state", "faild")
    assert wrong.returncode == 2 and "unknown state(s) faild" in wrong.stderr

    blocker.joinpath("keep").unlink()
    blocker.rmdir()
    assert ldrt(tmp_path, "rerun", "ingest", "--config", str(config)).returncode == 0
    assert ldrt(tmp_path, "status", "ingest", "--config", str(config)).returncode == 0  # all done: exit 0

    # `status --json | head`: the reader leaves early; no traceback, no "Exception ignored"
    ldrt(tmp_path, "plan", "ingest", "--config", str(config), "--num-shards", "3000", "--replan")
    piped = subprocess.run(f"{sys.executable} -m ldrt_hpc.cli status ingest --config {config} --json | head -2",
                           shell=True, cwd=tmp_path, capture_output=True, text=True, timeout=300, env=RUN_ENV)
    assert piped.stdout.splitlines() == ["[", " {"]
    assert piped.stderr == "", piped.stderr


def test_resource_flags_reach_the_job_script(tmp_path, synth_pdfs):
    config = tmp_path / "pipeline.yaml"
    config.write_text("# ldrt-hpc run ingest --config pipeline.yaml\n" + yaml.safe_dump(
        {"work_dir": "work", "stages": {"ingest": {"input_dir": str(synth_pdfs), "num_shards": 3}},
         "resources": {"ingest": {"mem_gb": 3}}}))
    dry = ldrt(tmp_path, "run", "ingest", "--config", str(config), "--cluster", "polaris", "--dry-run",
               "--time", "1:30", "--queue", "debug", "--account", "LDRT", "--mail", "me@lab.gov",
               "--array-parallelism", "2")
    assert dry.returncode == 0, dry.stderr
    for line in ("#PBS -l walltime=01:30:00", "#PBS -q debug", "#PBS -A LDRT", "#PBS -M me@lab.gov", "#PBS -m ae",
                 "#PBS -J 0-2%2"):
        assert line in dry.stdout, (line, dry.stdout)
    assert "mem=3072mb" in dry.stdout  # resources.ingest of the config
    slurm = ldrt(tmp_path, "run", "ingest", "--config", str(config), "--cluster", "generic-slurm", "--dry-run",
                 "--time", "45", "--qos", "high", "--mail", "me@lab.gov")
    for line in ("#SBATCH --time=45", "#SBATCH --qos=high", "#SBATCH --mail-user=me@lab.gov",
                 "#SBATCH --mail-type=END,FAIL"):
        assert line in slurm.stdout, (line, slurm.stdout)
    bad = ldrt(tmp_path, "run", "ingest", "--config", str(config), "--dry-run", "--time", "1h")
    assert bad.returncode == 2 and "is not minutes or H:MM[:SS]" in bad.stderr
