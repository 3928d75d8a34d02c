"""`export figures`: "none found" ([]) differs from "not processed" (no JSON), detections without a crop are counted,
and `--contact-sheet` draws every page of every processed paper with its caption and region boxes."""

from __future__ import annotations

import json
from pathlib import Path

import pymupdf
import pytest

from ldrt_hpc.runner import stage_dir
from ldrt_hpc.shards import ShardReader, is_complete, marker_path, shard_path
from tests.conftest import run_inline, write_config


def _text_pdf(path: Path, lines: list[str]) -> None:
    doc = pymupdf.open()
    page = doc.new_page()
    for number, text in enumerate(lines):
        page.insert_text((72, 72 + 14 * number), text, fontsize=10)
    doc.save(path)
    doc.close()


def _paper_ids(cfg, stage: str, index: int, ok_only: bool = True) -> set[str]:
    with ShardReader(shard_path(stage_dir(cfg, stage), index)) as reader:
        return {r["paper_id"] for r in reader if r["ok"] or not ok_only}


@pytest.fixture(scope="module")
def exported(tmp_path_factory, synth_pdfs):
    """Two generated papers, a paper with no caption at all, a caption whose figure is missing, a file that ingest
    rejects; 2 shards, figures run on both (a copy of the work dir has shard 1 of figures left incomplete)."""
    from ldrt_hpc.config import load_pipeline

    folder = tmp_path_factory.mktemp("export")
    inputs = folder / "pdfs"
    inputs.mkdir()
    for pdf in sorted(synth_pdfs.glob("*.pdf"))[:2]:
        (inputs / pdf.name).write_bytes(pdf.read_bytes())
    _text_pdf(inputs / "plain.pdf", ["Introduction", "A paper of plain text: no figure and no table anywhere."] * 4)
    _text_pdf(inputs / "caponly.pdf", ["Figure 1. A caption whose figure is missing from the page."])
    (inputs / "zero.pdf").write_bytes(b"")
    cfg = load_pipeline(write_config(folder, inputs, num_shards=2))
    for stage in ("ingest", "figures"):
        run_inline(cfg, stage)
    return cfg


def test_zero_detections_give_an_empty_list_and_unprocessed_papers_no_json(exported, tmp_path):
    from ldrt_hpc.export import export_figures

    cfg = exported
    counts = export_figures(cfg.work_dir, tmp_path / "out")
    assert json.loads((tmp_path / "out" / "plain.json").read_text()) == []
    assert not (tmp_path / "out" / "zero.json").exists()  # rejected by ingest: not processed
    processed = _paper_ids(cfg, "ingest", 0) | _paper_ids(cfg, "ingest", 1)
    assert {p.stem for p in (tmp_path / "out").glob("*.json")} == processed and "plain" in processed
    assert counts["papers"] == len(processed) and counts["papers_without_figures"] >= 1

    # a figures shard that is not complete: its papers have no JSON, the other shard's papers all have one
    marker = marker_path(stage_dir(cfg, "figures"), 1)
    marker.rename(tmp_path / "marker-aside")
    try:
        assert not is_complete(stage_dir(cfg, "figures"), 1)
        partial = export_figures(cfg.work_dir, tmp_path / "partial")
    finally:
        (tmp_path / "marker-aside").rename(marker)
    assert partial["incomplete_shards"] == 1
    assert {p.stem for p in (tmp_path / "partial").glob("*.json")} == _paper_ids(cfg, "ingest", 0)


def test_summary_counts_detections_without_a_crop(exported, tmp_path, capsys):
    from ldrt_hpc.cli import main

    cfg = exported
    config_path = Path(cfg.work_dir).parent / "pipeline.yaml"
    figures_dir = stage_dir(cfg, "figures")
    uncropped = 0
    for index in range(2):
        with ShardReader(shard_path(figures_dir, index)) as reader:
            uncropped += sum(not r["png"] for r in reader)
    assert uncropped >= 1  # the caption whose figure is missing
    assert main(["export", "figures", str(tmp_path / "out"), "--config", str(config_path)]) == 0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert f"{uncropped} detections without a crop" in line, line
    caponly = json.loads((tmp_path / "out" / "caponly.json").read_text())
    assert len(caponly) == 1 and caponly[0]["renderURL"] is None and caponly[0]["regionBoundary"] is None


def _near(pixel, rgb, tolerance=90) -> bool:
    return all(abs(a - round(255 * b)) <= tolerance for a, b in zip(pixel, rgb))


def test_contact_sheet_draws_every_page_of_every_processed_paper(exported, tmp_path, capsys):
    from ldrt_hpc.cli import main
    from ldrt_hpc.pdf.contact_sheet import CAPTION_COLOUR, REGION_COLOUR

    cfg = exported
    config_path = Path(cfg.work_dir).parent / "pipeline.yaml"
    out = tmp_path / "out"
    assert main(["export", "figures", str(out), "--config", str(config_path), "--contact-sheet"]) == 0
    assert "contact sheets:" in capsys.readouterr().out
    sheets = out / "contact-sheets"
    paths = {}
    for index in range(2):
        with ShardReader(shard_path(stage_dir(cfg, "ingest"), index)) as reader:
            paths |= {r["paper_id"]: r["path"] for r in reader if r["ok"]}
    assert {p.name for p in sheets.iterdir()} == set(paths) and "plain" in paths  # papers with none found, too
    for paper_id, pdf in paths.items():
        with pymupdf.open(pdf) as doc:
            sizes = [(page.rect.width, page.rect.height) for page in doc]
        pngs = sorted((sheets / paper_id).glob("page-*.png"))
        assert [p.name for p in pngs] == [f"page-{n:03d}.png" for n in range(1, len(sizes) + 1)]
        for png, (width, height) in zip(pngs, sizes):
            pix = pymupdf.Pixmap(str(png))
            assert abs(pix.width / pix.height - width / height) < 0.02

    sampled = 0
    for index in range(2):
        with ShardReader(shard_path(stage_dir(cfg, "figures"), index)) as reader:
            records = [r for r in reader if len(r["region_box"]) == 4]
        for record in records[:3]:
            pix = pymupdf.Pixmap(str(sheets / record["paper_id"] / f"page-{record['page'] + 1:03d}.png"))
            scale = pix.width / _page_width(paths[record["paper_id"]], record["page"])
            x0, y0, x1, y1 = (v * scale for v in record["region_box"])
            ymid = (y0 + y1) / 2
            for x, y in ((x0, ymid), (x1, ymid), (x0, y0 + (y1 - y0) / 4), (x1, y1 - (y1 - y0) / 4)):
                # the outline is about 2 px wide: one of the pixels across it has the region colour
                column = [pix.pixel(min(max(int(x) + dx, 0), pix.width - 1), int(y)) for dx in (-1, 0, 1)]
                assert any(_near(p, REGION_COLOUR) for p in column), (record["paper_id"], record["name"], column)
                sampled += 1
            cx0, cy0, _, cy1 = (v * scale for v in record["caption_box"])
            column = [pix.pixel(min(max(int(cx0) + dx, 0), pix.width - 1), int((cy0 + cy1) / 2)) for dx in (-1, 0, 1)]
            assert any(_near(p, CAPTION_COLOUR) for p in column), column
    assert sampled >= 4


def _page_width(pdf: str, page: int) -> float:
    with pymupdf.open(pdf) as doc:
        return doc[page].rect.width
