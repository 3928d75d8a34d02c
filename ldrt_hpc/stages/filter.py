"""`filter`: the paper's image-quality filter. Variance of the Laplacian of the grayscale crop below the threshold
-> 'blurry'; width or height below the minimum -> 'too_small'. Every decision is kept (nothing is deleted)."""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from ..config import FilterConfig, PipelineConfig
from ..shards import Schema
from . import Shard, Stage

SCHEMA = Schema(
    version=1,
    fields={
        "paper_id": "str", "name": "str", "fig_type": "str", "figure_index": "int64", "width": "int64",
        "height": "int64", "laplacian_var": "float64", "kept": "bool", "reason": "str",
    },
)


def laplacian_variance(png: bytes) -> float:
    """cv2.Laplacian(gray, cv2.CV_64F).var() of an encoded image (the blur measure of the paper)."""
    gray = cv2.imdecode(np.frombuffer(png, dtype=np.uint8), cv2.IMREAD_GRAYSCALE)
    if gray is None:
        raise ValueError("not a decodable image")
    return float(cv2.Laplacian(gray, cv2.CV_64F).var())


def decide(figure: dict[str, Any], cfg: FilterConfig) -> tuple[float, bool, str]:
    """(variance, kept, reason) for one detection; reasons: not_a_figure_type, no_region, too_small, blurry."""
    if figure["fig_type"] not in cfg.figure_types:
        return float("nan"), False, "not_a_figure_type"
    if not figure["png"]:
        return float("nan"), False, "no_region"
    variance = laplacian_variance(figure["png"])
    if min(figure["width"], figure["height"]) < cfg.min_side_px:
        return variance, False, "too_small"
    if variance < cfg.min_laplacian_var:
        return variance, False, "blurry"
    return variance, True, ""


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


STAGE = Stage(
    name="filter",
    doc="drop blurry (Laplacian variance < 100) and tiny (< 100 px) images; every decision kept",
    schema=SCHEMA,
    resource_class="cpu",
    reads=("figures",),
    run=run,
)
