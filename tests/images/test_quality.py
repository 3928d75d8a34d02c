"""The image-quality filter: Laplacian variance and size, every decision kept."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from ldrt_hpc.config import FilterConfig
from ldrt_hpc.images.quality import decide, laplacian_variance


def png(image: np.ndarray) -> bytes:
    return cv2.imencode(".png", image)[1].tobytes()


def figure(image, fig_type="Figure"):
    return {"fig_type": fig_type, "png": png(image), "width": image.shape[1], "height": image.shape[0]}


SHARP = (np.random.default_rng(0).random((200, 300)) * 255).astype(np.uint8)
BLURRY = cv2.GaussianBlur(SHARP, (0, 0), 8)


def test_variance_matches_opencv_on_the_decoded_image():
    gray = cv2.imdecode(np.frombuffer(png(SHARP), np.uint8), cv2.IMREAD_GRAYSCALE)
    assert laplacian_variance(png(SHARP)) == pytest.approx(cv2.Laplacian(gray, cv2.CV_64F).var())
    assert laplacian_variance(png(SHARP)) > 1000 > 100 > laplacian_variance(png(BLURRY))


@pytest.mark.parametrize("item, expected", [
    (figure(SHARP), (True, "")),
    (figure(BLURRY), (False, "blurry")),
    (figure(SHARP[:99, :]), (False, "too_small")),
    (figure(SHARP[:, :60]), (False, "too_small")),
    (figure(SHARP, "Table"), (False, "not_a_figure_type")),
    ({"fig_type": "Figure", "png": b"", "width": 0, "height": 0}, (False, "no_region")),
])
def test_decisions(item, expected):
    variance, kept, reason = decide(item, FilterConfig())
    assert (kept, reason) == expected


def test_thresholds_come_from_config():
    _, kept, _ = decide(figure(BLURRY), FilterConfig(min_laplacian_var=0.0))
    assert kept
    _, kept, reason = decide(figure(SHARP), FilterConfig(min_side_px=250))
    assert (kept, reason) == (False, "too_small")


def test_undecodable_image_is_an_error():
    with pytest.raises(ValueError, match="not a decodable image"):
        laplacian_variance(b"not an image")
