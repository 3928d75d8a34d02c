"""The CLI from another directory, as an installed tool is used: configs relative to their own folder, cluster
profiles from the package, the stage graph."""

from __future__ import annotations

import subprocess
import sys

import yaml


def ldrt(cwd, *args):
    return subprocess.run([sys.executable, "-m", "ldrt_hpc.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300)


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
