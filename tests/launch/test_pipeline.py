"""`ldrt-hpc pipeline run|status|rerun`: the dependency rules, golden dry runs (Slurm, PBS Pro, array and MPI mode,
training and report steps, a continuation job), and the chain unattended on this machine and on the local Slurm
cluster with one injected failure that `pipeline rerun` repairs.

Regenerate the golden files after an intended change with:
LDRT_UPDATE_GOLDEN=1 python -m pytest tests/launch/test_pipeline.py"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from ldrt_hpc.config import SHIPPED, load_cluster, load_pipeline
from ldrt_hpc.launch import pipeline, stage_status, submit, wait
from ldrt_hpc.launch.dependencies import After, directives, per_task
from ldrt_hpc.runner import stage_dir
from ldrt_hpc.shards import ShardReader, shard_path
from tests.stages.test_harvest import pdf_bytes, server  # noqa: F401  (fixtures)

GOLDEN = Path(__file__).resolve().parent.parent / "golden"
CHAIN = ["ingest", "convert", "figures", "filter", "context"]


# --------------------------------------------------------------------------------------------------------------
# dependency rules


def test_shards_at_the_same_task_index_wait_task_by_task():
    upstream = {"ingest": {0: "12_0", 1: "12_1", 2: "12_2"}, "figures": {0: "13_0", 1: "13_1", 2: "13_2"}}
    assert per_task(upstream, [0, 1, 2]) == [([0, 1, 2], [After("aftercorr", ("12", "13"))])]


def test_shards_off_their_upstream_task_index_wait_for_those_tasks():
    # shard 0 is complete upstream (no job), shards 1 and 2 are tasks 1 and 2 of array 12: in a new array they
    # would be tasks 0 and 1, so aftercorr would pair them with the wrong upstream tasks
    upstream = {"ingest": {1: "12_1", 2: "12_2"}}
    groups = per_task(upstream, [0, 1, 2])
    assert groups == [([0], []), ([1, 2], [After("afterok", ("12_1", "12_2"))])]


def test_a_rerun_shard_waits_for_its_single_upstream_job():
    assert per_task({"ingest": {2: "40"}}, [2]) == [([2], [After("afterok", ("40",))])]


def test_one_upstream_ensemble_job_is_waited_for_once():
    # every shard of an upstream stage that ran as one MPI ensemble job has the same job id
    assert per_task({"ingest": {0: "55", 1: "55", 2: "55"}}, [0, 1, 2]) == [([0, 1, 2], [After("afterok", ("55",))])]


def test_an_ensemble_with_failed_shards_ends_failed(monkeypatch):
    """`afterok` waits behind an ensemble job (training, continuation jobs) must not fire when shards failed."""
    import submitit

    from ldrt_hpc.launch import ensemble, task

    class Environment:
        job_id = "77"

    monkeypatch.setattr(submitit, "JobEnvironment", Environment)
    monkeypatch.setenv("LDRT_JOB_DEADLINE", "0")  # the task sets its own; this restores the variable afterwards
    monkeypatch.setattr(ensemble, "worker_main", lambda args: 1)
    with pytest.raises(RuntimeError, match="ensemble ended with exit code 1"):
        task.ensemble_task("cfg.yaml", "ingest", "0-3", "g1", 60.0, 0)
    # the deadline is this job's own (now + its wall time), never one inherited from the submitting shell
    assert abs(float(os.environ["LDRT_JOB_DEADLINE"]) - (time.time() + 60.0)) < 5
    monkeypatch.setattr(ensemble, "worker_main", lambda args: 0)
    assert task.ensemble_task("cfg.yaml", "ingest", "0-3", "g1", 60.0, 0) == 0


def test_directives_in_each_schedulers_words():
    afters = [After("aftercorr", ("12",)), After("afterok", ("14_3", "14_4"))]
    assert directives("slurm", afters) == {"dependency": "aftercorr:12,afterok:14_3:14_4"}
    # PBS Pro has no per-subjob dependency: the whole upstream array (for afterok on tasks too), one list per kind
    pbs = [After("aftercorr", ("12[].pbs",)), After("afterok", ("14[].pbs_3", "14[].pbs_4", "15.pbs"))]
    assert directives("pbs", pbs) == {"W depend": "afterok:12[].pbs:14[].pbs:15.pbs"}
    assert directives("local", afters) == {} and directives("slurm", []) == {}


# --------------------------------------------------------------------------------------------------------------
# dry runs: the dependency graph and every job script


def write_pipeline(folder: Path, input_dir: Path, cluster: str = "local", num_shards: int = 4, **extra) -> Path:
    data = {"work_dir": str(folder / "work"), "cluster": cluster,
            "stages": {"ingest": {"input_dir": str(input_dir), "num_shards": num_shards}}, **extra}
    path = folder / "pipeline.yaml"
    path.write_text("# ldrt-hpc pipeline run --config pipeline.yaml (test)\n" + yaml.safe_dump(data))
    return path


@pytest.fixture
def dry_config(tmp_path, synth_pdfs):
    train = tmp_path / "train.yaml"
    train.write_text("# ldrt-hpc train --config train.yaml (test)\n" + yaml.safe_dump(
        {"output_dir": str(tmp_path / "run"), "model": {"flavour": "debug"},
         "data": {"llava_json": str(tmp_path / "train.json")}}))
    return load_pipeline(write_pipeline(tmp_path, synth_pdfs, pipeline={"train_config": str(train)}))


DRY_RUNS = [
    ("generic-slurm", "array", "ingest", None),
    ("polaris", "array", "ingest", None),
    ("generic-slurm", "mpi", "ingest", "context"),
    ("polaris", "mpi", "ingest", "context"),
    ("localslurm", "array", "search", None),
]


@pytest.mark.parametrize("profile, mode, first, last", DRY_RUNS)
def test_dry_run_matches_golden(dry_config, tmp_path, profile, mode, first, last):
    steps = pipeline.run(dry_config, profile, first, last, mode, dry_run=True, python="python3")
    text = pipeline.format_run(steps, True, load_cluster(profile).scheduler, mode)
    text = text.replace(str(tmp_path), "/TMP").replace(str(SHIPPED), "$SHIPPED")
    golden = GOLDEN / f"pipeline.{profile}.{mode}.{first}.txt"
    if os.environ.get("LDRT_UPDATE_GOLDEN"):
        golden.write_text(text)
    assert text == golden.read_text()
    assert not (tmp_path / "work").exists() or not any((tmp_path / "work").rglob("plan.json"))  # nothing pinned


def test_dry_run_chains_every_stage_with_the_right_kind_of_wait(dry_config):
    steps = {step.stage: step for step in pipeline.run(dry_config, "generic-slurm", "ingest", dry_run=True)}
    assert steps["convert"].afters == [After("aftercorr", ("<ingest>",))]
    assert steps["context"].afters == [After("aftercorr", ("<convert>", "<figures>", "<filter>"))]
    # train waits for every qa job; answer needs all of qa (the eval split) and the fine-tuned model before it
    # can even be submitted (its preflight reads both): a continuation job submits it and the rest
    assert steps["train"].afters == [After("afterok", ("<qa>",))]
    every = pipeline.run(dry_config, "generic-slurm", "ingest", dry_run=True)
    continuation = next(s for s in every if s.kind == "continue")
    assert continuation.stage == "answer" and continuation.afters == [After("afterok", ("<qa>", "<train>"))]
    later = [s.stage for s in every if s.kind == "later"]
    assert later == ["answer", "judge", "hallucination", "report"]
    assert steps["report"].afters == [After("afterok", ("<judge>", "<hallucination>"))]
    pbs = {step.stage: step for step in pipeline.run(dry_config, "polaris", "ingest", dry_run=True)}
    assert "#PBS -W depend=afterok:<ingest>" in pbs["convert"].script


def test_a_stage_planned_from_its_upstream_content_waits_in_a_continuation_job(dry_config):
    steps = pipeline.run(dry_config, "localslurm", "search", dry_run=True)
    assert [(s.stage, s.kind) for s in steps] == [("search", "array"), ("download", "continue")]
    assert steps[1].afters == [After("afterok", ("<search>",))]
    assert "continue_pipeline" not in steps[1].script  # the pickle names the function; the script runs submitit


# --------------------------------------------------------------------------------------------------------------
# unattended runs


def items(cfg, stage: str, index: int) -> list:
    with ShardReader(shard_path(stage_dir(cfg, stage), index)) as reader:
        return list(reader)


def test_pipeline_runs_the_chain_on_this_machine(tmp_path, synth_pdfs):
    cfg = load_pipeline(write_pipeline(tmp_path, synth_pdfs, num_shards=3))
    steps = pipeline.run(cfg, "local", "ingest", "context")
    assert [s.stage for s in steps] == CHAIN and all(s.kind == "local" for s in steps)
    table = pipeline.stage_counts(cfg, CHAIN)
    assert [(c.stage, c.done) for c in table] == [(name, 3) for name in CHAIN]
    again = pipeline.run(cfg, "local", "ingest", "context")  # complete stages are skipped
    assert all(not s.shards for s in again)


def test_an_ensemble_on_this_machine_and_a_rerun_in_the_other_mode(tmp_path, synth_pdfs):
    pytest.importorskip("mpi4py.MPI", reason="mpi4py cannot load an MPI library (make mpi)")
    if shutil.which("orterun") is None:
        pytest.skip("Open MPI's mpirun is not installed (make mpi)")
    cfg = load_pipeline(write_pipeline(tmp_path, synth_pdfs, num_shards=4))
    obstacle = stage_dir(cfg, "ingest") / "shard-00001.h5"
    obstacle.mkdir(parents=True)
    result = submit(cfg, "ingest", "local", mode="mpi")  # mpirun on this machine; waits for it
    assert len(result.job_ids) == 1
    rows = stage_status(cfg, "ingest")
    assert [r.state for r in rows] == ["done", "failed", "done", "done"]
    assert "IsADirectoryError" in rows[1].error and Path(rows[1].log).is_file()
    obstacle.rmdir()
    again = submit(cfg, "ingest", "local", mode="array")  # the array mode redoes what the ensemble left
    assert again.shards == [1] and [r.state for r in stage_status(cfg, "ingest")] == ["done"] * 4


def test_a_continuation_job_not_yet_in_accounting_is_pending(dry_config, monkeypatch):
    """Right after one continuation job submits the next, sacct may not list it: `wait` must not end then."""
    from ldrt_hpc.launch import schedulers

    monkeypatch.setitem(schedulers.STATE_QUERIES, "slurm", lambda ids: {i: "UNKNOWN" for i in ids})
    pipeline_dir = pipeline.pipeline_dir(dry_config)
    pipeline_dir.mkdir(parents=True)
    record = {"stage": "ingest", "kind": "continue", "job_ids": ["41"], "cluster": "localslurm"}
    lines = [{**record, "time": time.time()}, {**record, "stage": "convert", "job_ids": ["40"], "time": time.time() - 600}]
    (pipeline_dir / "steps.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    assert [(r["stage"], state) for r, state in pipeline.continuation_jobs(dry_config)] == [("ingest", "SUBMITTING")]


def cli(*args) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    return subprocess.run([sys.executable, "-m", "ldrt_hpc.cli", *args], capture_output=True, text=True,
                          timeout=600, env=env)


@pytest.mark.slurm
def test_pipeline_on_slurm_with_a_failure_that_rerun_repairs(slurm, tmp_path, synth_pdfs):
    config = write_pipeline(tmp_path, synth_pdfs, "localslurm", num_shards=4)
    cfg = load_pipeline(config)
    slurm.extend((cfg, name) for name in CHAIN)
    obstacle = stage_dir(cfg, "ingest") / "shard-00002.h5"
    obstacle.mkdir(parents=True)  # a real failure: ingest shard 2 cannot be renamed into place
    proc = cli("pipeline", "run", "--config", str(config), "--from", "ingest", "--to", "context", "--wait")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "aftercorr:" in proc.stdout  # submitted at once, chained task by task
    table = {c.stage: c for c in pipeline.stage_counts(cfg, CHAIN)}
    assert (table["ingest"].done, table["ingest"].failed) == (3, 1)
    for name in CHAIN[1:]:  # shard 2 below the failure waits in the queue, blocked, not failed
        assert (table[name].done, table[name].blocked, table[name].failed) == (3, 1, 0), pipeline.format_table(
            list(table.values()))
    convert = {row.shard: row for row in stage_status(cfg, "convert")}
    assert convert[2].state == "pending" and "Dependency" in (convert[2].reason or "")
    assert "IsADirectoryError" in proc.stdout and "blocked" in proc.stdout

    obstacle.rmdir()
    proc = cli("pipeline", "rerun", "--config", str(config), "--from", "ingest", "--to", "context", "--wait")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    table = pipeline.stage_counts(cfg, CHAIN)
    assert all(c.done == 4 and not (c.blocked or c.failed or c.waiting) for c in table), pipeline.format_table(table)
    resubmitted = [json.loads(line) for line in (pipeline.pipeline_dir(cfg) / "steps.jsonl").read_text().splitlines()]
    assert {tuple(r["shards"]) for r in resubmitted[-len(CHAIN):]} == {(2,)}  # only shard 2, in every stage
    status = cli("pipeline", "status", "--config", str(config), "--from", "ingest", "--to", "context")
    assert status.returncode == 0 and "failed shards" not in status.stdout


@pytest.mark.slurm
def test_one_ensemble_job_on_slurm_gives_the_array_result(slurm, tmp_path, synth_pdfs):
    (tmp_path / "mpi").mkdir()
    (tmp_path / "array").mkdir()
    by_mpi = load_pipeline(write_pipeline(tmp_path / "mpi", synth_pdfs, "localslurm", num_shards=4))
    by_array = load_pipeline(write_pipeline(tmp_path / "array", synth_pdfs, "local", num_shards=4))
    slurm.append((by_mpi, "ingest"))
    result = submit(by_mpi, "ingest", "localslurm", mode="mpi")
    assert len(result.job_ids) == 1 and result.shards == [0, 1, 2, 3]
    rows = wait(by_mpi, "ingest", timeout_s=300)
    assert [r.state for r in rows] == ["done"] * 4 and {r.job_id for r in rows} == set(result.job_ids)
    summary = json.loads((stage_dir(by_mpi, "ingest") / "_jobs" / f"ensemble-{result.job_ids[0]}.json").read_text())
    assert summary["ranks"] == 2 and sorted(summary["done"]) == [0, 1, 2, 3]
    submit(by_array, "ingest", "local")
    for index in range(4):
        assert items(by_mpi, "ingest", index) == items(by_array, "ingest", index)


@pytest.mark.slurm
def test_continuation_jobs_plan_and_submit_the_fan_in_stages_on_slurm(slurm, server, tmp_path, pdf_bytes,
                                                                        monkeypatch):
    """search -> download -> ingest (from_download): download is planned from search's results and ingest from
    download's, so each is submitted by a continuation job that runs `pipeline run --from STAGE` in Slurm."""
    from tests.stages.test_harvest import paper, write_config

    monkeypatch.setenv("LDRT_TEST_S2_KEY", "k")
    papers = [paper(i, url=server.url(f"/pdf/{i}.pdf")) for i in range(1, 4)]
    for i in range(1, 4):
        server.add_file(f"/pdf/{i}.pdf", pdf_bytes)
    server.add_bulk_page("ldrt", None, {"total": 3, "token": None, "data": papers})
    config = write_config(tmp_path, server.base_url, ["ldrt"], cluster="localslurm")
    cfg = load_pipeline(config)
    slurm.extend((cfg, name) for name in ("search", "download", "ingest"))
    proc = cli("pipeline", "run", "--config", str(config), "--from", "search", "--to", "ingest", "--wait")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    steps = [json.loads(line) for line in (pipeline.pipeline_dir(cfg) / "steps.jsonl").read_text().splitlines()]
    assert [(s["stage"], s["kind"]) for s in steps] == [
        ("search", "array"), ("download", "continue"),  # this process
        ("download", "array"), ("ingest", "continue"),  # the first continuation job
        ("ingest", "array")]  # the second
    table = pipeline.stage_counts(cfg, ["search", "download", "ingest"])
    assert [(c.stage, c.done, c.shards) for c in table] == [("search", 1, 1), ("download", 2, 2), ("ingest", 2, 2)]
