#!/usr/bin/env python3
"""Thin entry point for static job scripts: run one shard of one stage (same as `ldrt-hpc task`).

    python3 jobs/run_shard.py STAGE --config FROZEN.yaml --shard N [--job-id ID]

It runs the ldrt_hpc of the checkout it belongs to (like `python -m` from the checkout's root), not another
install that happens to be on the path.
"""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if (ROOT / "ldrt_hpc" / "__init__.py").is_file():
    sys.path.insert(0, str(ROOT))

from ldrt_hpc.cli import main  # (after the path)

if __name__ == "__main__":
    sys.exit(main(["task", *sys.argv[1:]]))
