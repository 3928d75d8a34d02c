#!/usr/bin/env python3
"""What a task pays before its stage runs: importing the runner and its stage, per stage. Prints numbers; asserts
nothing. Best wall time of --repeat fresh interpreters and their peak resident memory.

    python benchmarks/task_start.py [--repeat 5] [--repo PATH]   # --repo: measure another checkout (before/after)
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

PROBE = """
import resource, sys, time
started = time.perf_counter()
import ldrt_hpc.launch.task, ldrt_hpc.runner
from ldrt_hpc.stages import get_stage
get_stage(sys.argv[1])
print(time.perf_counter() - started, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
"""

STAGES = ["search", "download", "ingest", "convert", "figures", "filter", "context", "qa"]


def measure(repo: Path, stage: str, repeat: int) -> tuple[float, float, float]:
    """(best import seconds, best interpreter wall seconds, peak MB) for one stage."""
    imports, walls, peaks = [], [], []
    for _ in range(repeat):
        started = time.perf_counter()
        out = subprocess.run([sys.executable, "-c", PROBE, stage], cwd=repo, capture_output=True, text=True, check=True)
        walls.append(time.perf_counter() - started)
        seconds, peak = map(float, out.stdout.split())
        imports.append(seconds)
        peaks.append(peak)
    return min(imports), min(walls), max(peaks)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--repo", default=str(Path(__file__).resolve().parent.parent))
    args = parser.parse_args()
    results = {}
    for stage in STAGES:
        imports, wall, peak = measure(Path(args.repo), stage, args.repeat)
        results[stage] = {"import_s": round(imports, 3), "interpreter_s": round(wall, 3), "peak_mb": round(peak)}
        print(f"{stage:9} import {imports:.2f} s, interpreter {wall:.2f} s, peak {peak:.0f} MB", flush=True)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
