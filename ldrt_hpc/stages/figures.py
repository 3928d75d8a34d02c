"""`figures`: every figure and table of every accepted paper, with its caption, boxes and rendered crop."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import Any

import pymupdf  # imported before the parser processes fork, not once per paper

from ..config import FiguresConfig, PipelineConfig
from ..isolate import run_isolated
from ..pdf.detector import detect, render
from ..shards import Schema
from . import Shard
from .convert import BackendUnavailable

SCHEMA = Schema(
    version=1,
    fields={
        "paper_id": "str", "name": "str", "fig_type": "str", "page": "int64", "caption": "str",
        "caption_box": "float64[]", "region_box": "float64[]", "dpi": "int64", "png": "bytes",
        "width": "int64", "height": "int64", "image_text": "str",
    },
)


def _box(rect) -> list[float]:
    return [] if rect is None else [round(rect.x0, 2), round(rect.y0, 2), round(rect.x1, 2), round(rect.y1, 2)]


def extract_native(path: str, paper_id: str, dpi: int) -> list[dict[str, Any]]:
    records = []
    with pymupdf.open(path) as doc:
        for found in detect(doc):
            png, width, height, words = b"", 0, 0, ""
            if found.region is not None:
                page = doc[found.page]
                png, width, height = render(page, found.region, dpi)
                words = " ".join(w[4] for w in page.get_text("words", clip=found.region))
            records.append({
                "paper_id": paper_id, "name": found.name, "fig_type": found.fig_type, "page": found.page,
                "caption": found.caption, "caption_box": _box(found.caption_box), "region_box": _box(found.region),
                "dpi": dpi, "png": png, "width": width, "height": height, "image_text": words,
            })
    return records


def check_pdffigures2(cfg: FiguresConfig) -> None:
    if shutil.which(cfg.java) is None:
        raise BackendUnavailable(f"figures backend 'pdffigures2' needs Java: '{cfg.java}' is not on PATH")
    if cfg.pdffigures2_jar is None or not cfg.pdffigures2_jar.is_file():
        raise BackendUnavailable(
            f"figures backend 'pdffigures2': jar stages.figures.pdffigures2_jar={cfg.pdffigures2_jar} does not exist "
            "(build it with `sbt assembly` in allenai/pdffigures2 and point the config at it)"
        )


def preflight(cfg: PipelineConfig) -> None:
    """Before submitting: pdffigures2's java and jar are there (the launcher calls this)."""
    if cfg.stages.figures.backend == "pdffigures2":
        check_pdffigures2(cfg.stages.figures)


def png_size(png: bytes) -> tuple[int, int]:
    """(width, height) in pixels of an encoded image; (0, 0) when there is none."""
    if not png:
        return 0, 0
    pixmap = pymupdf.Pixmap(png)
    return pixmap.width, pixmap.height


def _pdffigures2_record(fig: dict[str, Any], paper_id: str, dpi: int) -> dict[str, Any]:
    """One figure of pdffigures2's JSON (a SavedFigure), with its rendered PNG and that PNG's size."""
    png_path = Path(fig.get("renderURL", ""))
    png = png_path.read_bytes() if png_path.is_file() else b""
    width, height = png_size(png)
    cap, reg = fig["captionBoundary"], fig.get("regionBoundary")
    return {
        "paper_id": paper_id, "name": str(fig["name"]), "fig_type": fig["figType"], "page": fig["page"],
        "caption": fig["caption"], "caption_box": [cap["x1"], cap["y1"], cap["x2"], cap["y2"]],
        "region_box": [reg["x1"], reg["y1"], reg["x2"], reg["y2"]] if reg else [],
        "dpi": dpi, "png": png, "width": width, "height": height, "image_text": " ".join(fig.get("imageText", [])),
    }


def extract_pdffigures2(path: str, paper_id: str, cfg: FiguresConfig) -> list[dict[str, Any]]:
    """Run the user's pdffigures2 jar on one PDF and read its JSON and rendered PNGs."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        subprocess.run([cfg.java, "-jar", str(cfg.pdffigures2_jar), path, "-d", f"{out}/data-", "-m", f"{out}/img-",
                        "-i", str(cfg.dpi)], check=True, capture_output=True, timeout=cfg.timeout_s)
        return [_pdffigures2_record(fig, paper_id, cfg.dpi)
                for data_file in out.glob("data-*.json") for fig in json.loads(data_file.read_text())]


def _extract(paper: dict, cfg: FiguresConfig) -> list[dict[str, Any]]:
    if cfg.backend == "pdffigures2":
        return extract_pdffigures2(paper["path"], paper["paper_id"], cfg)
    return extract_native(paper["path"], paper["paper_id"], cfg.dpi)


def run(shard: Shard, cfg: PipelineConfig) -> dict[str, Any]:
    settings = cfg.stages.figures
    if settings.backend == "pdffigures2":
        check_pdffigures2(settings)
    with shard.read("ingest") as reader:
        papers = [{"paper_id": r["paper_id"], "path": r["path"], "pages": r["pages"]} for r in reader if r["ok"]]
    counts = {"papers": len(papers), "figures": 0, "tables": 0, "without_region": 0, "quarantined": 0, "pages": 0}
    started = time.perf_counter()
    for outcome in run_isolated(partial(_extract, cfg=settings), papers, workers=settings.workers,
                                timeout_s=settings.timeout_s, max_memory_mb=settings.max_memory_mb,
                                desc=f"figures {shard.index}"):
        if not outcome.ok:
            shard.quarantine(outcome.item["paper_id"], outcome.reason, outcome.detail)
            counts["quarantined"] += 1
            continue
        counts["pages"] += outcome.item["pages"]
        for record in outcome.value:
            shard.write(record)
            counts["figures" if record["fig_type"] == "Figure" else "tables"] += 1
            counts["without_region"] += not record["region_box"]
    seconds = time.perf_counter() - started
    counts["pages_per_s"] = round(counts["pages"] / seconds, 2) if seconds else None
    return counts
