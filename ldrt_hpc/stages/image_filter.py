"""`filter`: the paper's image-quality filter over the `figures` shards (ldrt_hpc/images/quality.py decides).
Every decision is kept (nothing is deleted); `context` reads only the kept figures."""

from __future__ import annotations

from typing import Any

from ..config import PipelineConfig
from ..images.quality import decide
from ..shards import Schema
from . import Shard

SCHEMA = Schema(
    version=1,
    fields={
        "paper_id": "str", "name": "str", "fig_type": "str", "figure_index": "int64", "width": "int64",
        "height": "int64", "laplacian_var": "float64", "kept": "bool", "reason": "str",
    },
)


def run(shard: Shard, cfg: PipelineConfig) -> dict[str, Any]:
    settings = cfg.stages.filter
    counts: dict[str, Any] = {"figures": 0, "kept": 0}
    with shard.read("figures") as reader:
        for index, figure in enumerate(reader):
            variance, kept, reason = decide(figure, settings)
            shard.write({"paper_id": figure["paper_id"], "name": figure["name"], "fig_type": figure["fig_type"],
                         "figure_index": index, "width": figure["width"], "height": figure["height"],
                         "laplacian_var": variance, "kept": kept, "reason": reason})
            counts["figures"] += 1
            counts["kept"] += kept
            if reason:
                counts[reason] = counts.get(reason, 0) + 1
    return counts
