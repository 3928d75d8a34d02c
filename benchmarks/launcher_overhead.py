#!/usr/bin/env python3
"""Launcher overhead on the local Slurm cluster (env/slurm-local/start.sh). Prints numbers; asserts nothing.

1. N short tasks of T seconds as one array through the localslurm profile's executor (array parallelism P):
   wall time vs the ideal ceil(N/P)*T, and the overhead per wave of tasks.
2. Planning and submitting 10,000 shards of `ingest` (a manifest of 10,000 paths): `--dry-run` (plan + script),
   then a real submission held with `sbatch --hold`, then cancelled.
3. Many short shards (`--short-shards`, one small paper each, `ingest`) as array tasks and as one MPI ensemble job
   of 2 ranks: the overhead per shard, (wall x slots - the shards' own durations) / shards, where slots is the
   array parallelism or the rank count; and the ensemble's own queue overhead (hand-out + fork), from its summary.
4. The idle gap under `pipeline run` (ingest -> convert, aftercorr): for each shard, the start of its convert task
   minus the end of its ingest task (sacct, 1 s resolution).

    python benchmarks/launcher_overhead.py [--tasks 8] [--seconds 2 10] [--shards 10000] [--short-shards 200]
                                           [--only short,gap]
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ldrt_hpc.config import load_cluster, load_pipeline  # noqa: E402
from ldrt_hpc.launch import cancel, pipeline, stage_status, submit, wait  # noqa: E402
from ldrt_hpc.runner import stage_dir  # noqa: E402
from ldrt_hpc.shards import read_marker  # noqa: E402
from ldrt_hpc.launch.executors import make_executor  # noqa: E402


def sleep_task(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


def short_tasks(n: int, seconds: float, folder: Path) -> None:
    profile = load_cluster("localslurm")
    resources = profile.resources_for("cpu", "localslurm")
    executor = make_executor(profile, resources, folder / f"sleep-{seconds}", "ldrt-bench")
    started = time.time()
    jobs = executor.map_array(sleep_task, [seconds] * n)
    submitted = time.time()
    # watch the result files rather than job.result(): submitit polls sacct at growing intervals, which would
    # add its own polling delay to the measurement
    pending = [job.paths.result_pickle for job in jobs]
    while pending:
        pending = [path for path in pending if not path.exists()]
        time.sleep(0.05)
    wall = time.time() - started
    for job in jobs:
        job.result()
    waves = math.ceil(n / resources.array_parallelism)
    ideal = waves * seconds
    print(f"{n} tasks x {seconds:g} s, parallelism {resources.array_parallelism}: wall {wall:.1f} s, "
          f"ideal {ideal:.1f} s, ratio {wall / ideal:.2f}x, overhead {(wall - ideal) / waves:.2f} s per wave "
          f"(submit {submitted - started:.2f} s)")


def many_shards(count: int, folder: Path) -> None:
    manifest = folder / "manifest.txt"
    manifest.write_text("".join(f"/data/papers/paper-{i:06d}.pdf\n" for i in range(count)))
    config = folder / "bench.yaml"
    config.write_text("# ldrt-hpc run ingest --config bench.yaml (benchmark)\n" + yaml.safe_dump({
        "work_dir": str(folder / "work"), "cluster": "localslurm",
        "stages": {"ingest": {"manifest": str(manifest), "num_shards": count}}}))
    cfg = load_pipeline(config)
    started = time.time()
    result = submit(cfg, "ingest", dry_run=True)
    print(f"{count} shards --dry-run (list inputs, plan, job script): {time.time() - started:.2f} s "
          f"({len(result.shards)} shards)")
    started = time.time()
    result = submit(cfg, "ingest", extra_directives={"hold": True})
    elapsed = time.time() - started
    arrays = sorted({j.split('_')[0] for j in result.job_ids})
    print(f"{count} shards planned + submitted (held; pickles, sbatch, records): {elapsed:.2f} s in "
          f"{len(arrays)} array(s)")
    started = time.time()
    cancelled = cancel(cfg, "ingest")
    print(f"status + cancel of {len(cancelled)} pending shards: {time.time() - started:.2f} s")


def one_paper_folder(folder: Path, count: int) -> Path:
    """`count` copies of one small generated paper (under different names): shards of equal, short work."""
    from ldrt_hpc.demo import synth_corpus

    source = folder / "source"
    synth_corpus(source, papers=1, seed=3)
    paper = next(source.glob("*.pdf"))
    papers = folder / f"papers-{count}"
    papers.mkdir()
    for index in range(count):
        shutil.copy(paper, papers / f"paper-{index:05d}.pdf")
    return papers


def ingest_config(folder: Path, papers: Path, count: int, cluster: str = "localslurm"):
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "bench.yaml"
    config.write_text("# ldrt-hpc pipeline run --config bench.yaml (benchmark)\n" + yaml.safe_dump({
        "work_dir": str(folder / "work"), "cluster": cluster,
        "stages": {"ingest": {"input_dir": str(papers), "num_shards": count}}}))
    return load_pipeline(config)


def short_shards(count: int, folder: Path) -> None:
    papers = one_paper_folder(folder, count)
    resources = load_cluster("localslurm").resources_for("cpu", "localslurm")
    for mode, slots in (("array", resources.array_parallelism), ("mpi", resources.ranks_per_node)):
        cfg = ingest_config(folder / f"short-{mode}", papers, count)
        started = time.time()
        result = submit(cfg, "ingest", "localslurm", mode=mode)
        rows = wait(cfg, "ingest", poll_s=0.2)
        wall = time.time() - started
        work = sum((read_marker(stage_dir(cfg, "ingest"), r.shard) or {}).get("duration_s", 0.0) for r in rows)
        done = sum(r.state == "done" for r in rows)
        line = (f"{count} short shards, {mode} mode, {slots} slots: wall {wall:.1f} s, shard work {work:.1f} s "
                f"({work / count:.2f} s each), overhead {(wall * slots - work) / count:.3f} s per shard ({done} done)")
        if mode == "mpi":
            summary = json.loads((stage_dir(cfg, "ingest") / "_jobs" / f"ensemble-{result.job_ids[0]}.json").read_text())
            line += f"; queue (hand-out + fork) {summary['mean_overhead_s']:.3f} s per shard"
        print(line, flush=True)


def sacct_times(job_ids: list[str]) -> dict[str, tuple[float, float]]:
    arrays = sorted({job_id.split("_")[0] for job_id in job_ids})
    out = subprocess.run(["sacct", "-X", "-P", "-n", "-o", "JobID,Start,End", "-j", ",".join(arrays)],
                         capture_output=True, text=True, check=True).stdout
    times = {}
    for line in out.splitlines():
        job_id, start, end = line.split("|")
        if "T" in start and "T" in end:
            to_epoch = lambda text: time.mktime(time.strptime(text, "%Y-%m-%dT%H:%M:%S"))  # noqa: E731
            times[job_id] = (to_epoch(start), to_epoch(end))
    return times


def pipeline_gap(folder: Path, shards: int = 2) -> None:
    """As many shards as the local node has CPUs: a convert task never waits for a CPU, only for its dependency."""
    papers = one_paper_folder(folder / "gap", shards * 2)
    cfg = ingest_config(folder / "gap-run", papers, shards)
    started = time.time()
    pipeline.run(cfg, "localslurm", "ingest", "convert")
    pipeline.wait(cfg, ["ingest", "convert"], poll_s=0.5)
    wall = time.time() - started
    upstream = {r.shard: r.job_id for r in stage_status(cfg, "ingest")}
    downstream = {r.shard: r.job_id for r in stage_status(cfg, "convert")}
    times = sacct_times(list(upstream.values()) + list(downstream.values()))
    gaps = [times[downstream[i]][0] - times[upstream[i]][1] for i in range(shards)
            if upstream[i] in times and downstream[i] in times]
    print(f"pipeline run ingest -> convert, {shards} shards (aftercorr): idle gap per shard from ingest end to "
          f"convert start {min(gaps):.0f}..{max(gaps):.0f} s, mean {sum(gaps) / len(gaps):.1f} s (sacct, 1 s "
          f"resolution); whole chain {wall:.1f} s", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=8)
    parser.add_argument("--seconds", type=float, nargs="+", default=[2.0, 10.0])
    parser.add_argument("--shards", type=int, default=10_000)
    parser.add_argument("--short-shards", type=int, default=200)
    parser.add_argument("--only", help="comma-separated parts: tasks, many, short, gap (default: all)")
    args = parser.parse_args()
    parts = set(args.only.split(",")) if args.only else {"tasks", "many", "short", "gap"}
    if subprocess.run(["sinfo"], capture_output=True).returncode != 0:
        sys.exit("the local Slurm cluster is not running: env/slurm-local/start.sh")
    with tempfile.TemporaryDirectory(prefix="ldrt-bench-", dir="/var/tmp") as tmp:
        folder = Path(tmp)
        if "tasks" in parts:
            for seconds in args.seconds:
                short_tasks(args.tasks, seconds, folder)
        if "many" in parts:
            many_shards(args.shards, folder)
        if "short" in parts:
            short_shards(args.short_shards, folder)
        if "gap" in parts:
            pipeline_gap(folder)


if __name__ == "__main__":
    main()
