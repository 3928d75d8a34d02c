"""The pdffigures2 figures backend, run for real against a fake `java` that behaves like the jar's batch CLI."""

from __future__ import annotations

import json
import os
import stat
import sys

import cv2
import numpy as np
import pymupdf
import pytest

from ldrt_hpc.runner import stage_dir
from ldrt_hpc.shards import ShardReader, shard_path
from tests.conftest import run_inline, write_config

# `java -jar pdffigures2.jar <pdf> -d <data-prefix> -m <figure-prefix> -i <dpi>`: writes
# <data-prefix><pdf stem>.json (a list of SavedFigure) and <figure-prefix><pdf stem>-<figType><name>-1.png,
# copying the renders listed in renders.json beside this script.
FAKE_JAVA = """import argparse, json, shutil, sys
from pathlib import Path

parser = argparse.ArgumentParser()
parser.add_argument("-jar", required=True)
parser.add_argument("pdf")
parser.add_argument("-d", dest="data_prefix", required=True)
parser.add_argument("-m", dest="figure_prefix", required=True)
parser.add_argument("-i", dest="dpi", type=int, required=True)
args = parser.parse_args()
if not Path(args.jar).is_file() or not args.pdf.endswith(".pdf") or not Path(args.pdf).is_file():
    sys.exit("bad jar or input")
stem = Path(args.pdf).stem
figures = []
for render in json.loads(Path(__file__).with_name("renders.json").read_text()):
    url = f"{args.figure_prefix}{stem}-{render['figType']}{render['name']}-1.png"
    shutil.copyfile(render["png"], url)
    pt = 72.0 / args.dpi  # the region of a rasterized figure: its pixel box scaled to PDF points
    figures.append({
        "name": render["name"], "figType": render["figType"], "page": 0,
        "caption": f"{render['figType']} {render['name']}. A caption.",
        "captionBoundary": {"x1": 72.0, "y1": 400.0, "x2": 500.0, "y2": 420.0},
        "regionBoundary": {"x1": 72.0, "y1": 100.0, "x2": 72.0 + render["width"] * pt,
                           "y2": 100.0 + render["height"] * pt},
        "imageText": ["dose", "Gy"], "renderDpi": args.dpi, "renderURL": url,
    })
Path(f"{args.data_prefix}{stem}.json").write_text(json.dumps(figures))
"""

SHARP = (np.random.default_rng(0).random((240, 320, 3)) * 255).astype(np.uint8)
RENDERS = [("Figure", "1", SHARP), ("Figure", "2", SHARP[:40, :60]), ("Table", "1", SHARP[:150, :200])]


def fake_pdffigures2(folder):
    """A fake `java` in folder/bin, the renders it copies, and a placeholder jar; returns the jar path."""
    (folder / "bin").mkdir()
    renders = []
    for fig_type, name, image in RENDERS:
        png = folder / f"{fig_type}{name}.png"
        cv2.imwrite(str(png), image)
        renders.append({"figType": fig_type, "name": name, "png": str(png),
                        "width": image.shape[1], "height": image.shape[0]})
    (folder / "bin" / "renders.json").write_text(json.dumps(renders))
    java = folder / "bin" / "java"
    java.write_text(f"#!{sys.executable}\n{FAKE_JAVA}")
    java.chmod(java.stat().st_mode | stat.S_IXUSR)
    (folder / "pdffigures2.jar").write_bytes(b"PK fake jar")
    return folder / "pdffigures2.jar"


def write_paper(folder):
    folder.mkdir()
    doc = pymupdf.open()
    doc.new_page().insert_text((72, 72), "Figure 1. A caption.")
    doc.save(folder / "paper.pdf")


def records(cfg, stage):
    with ShardReader(shard_path(stage_dir(cfg, stage), 0)) as reader:
        return {(r["fig_type"], r["name"]): r for r in reader}


@pytest.fixture
def pipeline(tmp_path, monkeypatch):
    from ldrt_hpc.config import load_pipeline

    jar = fake_pdffigures2(tmp_path)
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")  # `java` is the fake
    write_paper(tmp_path / "pdfs")
    cfg = load_pipeline(write_config(tmp_path, tmp_path / "pdfs", num_shards=1))
    figures = cfg.stages.figures.model_copy(update={"backend": "pdffigures2", "pdffigures2_jar": jar, "workers": 1})
    cfg = cfg.model_copy(update={"stages": cfg.stages.model_copy(update={"figures": figures})})
    markers = {stage: run_inline(cfg, stage) for stage in ("ingest", "figures", "filter")}
    return cfg, markers


def test_sizes_come_from_the_rendered_pngs(pipeline):
    cfg, markers = pipeline
    figures = records(cfg, "figures")
    assert markers["figures"][0]["quarantined_count"] == 0
    assert set(figures) == {(t, n) for t, n, _ in RENDERS}
    for fig_type, name, image in RENDERS:
        record = figures[fig_type, name]
        decoded = cv2.imdecode(np.frombuffer(record["png"], np.uint8), cv2.IMREAD_COLOR)
        assert np.array_equal(decoded, image)
        assert (record["width"], record["height"]) == (image.shape[1], image.shape[0])
        assert record["dpi"] == 150 and record["page"] == 0 and record["image_text"] == "dose Gy"
        assert record["caption"] == f"{fig_type} {name}. A caption."
        assert record["region_box"][2] == pytest.approx(72 + image.shape[1] * 72 / 150)


def test_filter_keeps_the_large_sharp_figure_and_rejects_the_tiny_one(pipeline):
    cfg, _ = pipeline
    decisions = records(cfg, "filter")
    assert (decisions["Figure", "1"]["kept"], decisions["Figure", "1"]["reason"]) == (True, "")
    assert (decisions["Figure", "2"]["kept"], decisions["Figure", "2"]["reason"]) == (False, "too_small")
    assert (decisions["Table", "1"]["kept"], decisions["Table", "1"]["reason"]) == (False, "not_a_figure_type")
    assert (decisions["Figure", "1"]["width"], decisions["Figure", "1"]["height"]) == (320, 240)
