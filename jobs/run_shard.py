#!/usr/bin/env python3
"""Thin entry point for static job scripts: run one shard of one stage (same as `ldrt-hpc task`).

    python3 jobs/run_shard.py STAGE --config FROZEN.yaml --shard N [--job-id ID]
"""

import sys

from ldrt_hpc.cli import main

if __name__ == "__main__":
    sys.exit(main(["task", *sys.argv[1:]]))
