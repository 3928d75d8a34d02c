"""`torchrun --nproc_per_node G -m ldrt_hpc.train --config CFG`: one rank of a training run (the static job
scripts in jobs/ and `ldrt-hpc train` start it)."""

from __future__ import annotations

import argparse
import json


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ldrt_hpc.train", description=__doc__)
    parser.add_argument("--config", required=True, help="training config (configs/train/*.yaml)")
    args = parser.parse_args(argv)
    from .recipe import train

    summary = train(args.config)
    print(json.dumps(summary, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
