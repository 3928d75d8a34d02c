"""The paper's image-quality filter: the variance of the Laplacian of the grayscale crop below a threshold means
'blurry'; a width or height below the minimum means 'too_small'."""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from ..config import FilterConfig


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
