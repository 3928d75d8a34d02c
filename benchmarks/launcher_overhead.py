#!/usr/bin/env python3
"""Launcher overhead on the local Slurm cluster (env/slurm-local/start.sh). Prints numbers; asserts nothing.

1. N short tasks of T seconds as one array through the localslurm profile's executor (array parallelism P):
   wall time vs the ideal ceil(N/P)*T, and the overhead per wave of tasks.
2. Planning and submitting 10,000 shards of `ingest` (a manifest of 10,000 paths): `--dry-run` (plan + script),
   then a real submission held with `sbatch --hold`, then cancelled.

    python benchmarks/launcher_overhead.py [--tasks 8] [--seconds 2 10] [--shards 10000]
"""

from __future__ import annotations

import argparse
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ldrt_hpc.config import load_cluster, load_pipeline  # noqa: E402
from ldrt_hpc.launch import cancel, submit  # noqa: E402
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=8)
    parser.add_argument("--seconds", type=float, nargs="+", default=[2.0, 10.0])
    parser.add_argument("--shards", type=int, default=10_000)
    args = parser.parse_args()
    if subprocess.run(["sinfo"], capture_output=True).returncode != 0:
        sys.exit("the local Slurm cluster is not running: env/slurm-local/start.sh")
    with tempfile.TemporaryDirectory(prefix="ldrt-bench-", dir="/var/tmp") as tmp:
        folder = Path(tmp)
        for seconds in args.seconds:
            short_tasks(args.tasks, seconds, folder)
        many_shards(args.shards, folder)


if __name__ == "__main__":
    main()
