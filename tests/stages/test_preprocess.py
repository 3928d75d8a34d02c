"""convert -> figures -> filter -> context on generated papers plus hostile files."""

from __future__ import annotations

from pathlib import Path

import pymupdf
import pytest

from ldrt_hpc.runner import stage_dir
from ldrt_hpc.shards import ShardReader, shard_path
from tests.conftest import run_inline


def hostile_pdfs(folder, good_bytes):
    """Files that break parsers in different ways (made here, none shipped)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "zero.pdf").write_bytes(b"")
    (folder / "html.pdf").write_text("<!DOCTYPE html><html><body>Just a moment...</body></html>" * 5)
    (folder / "truncated.pdf").write_bytes(good_bytes[: len(good_bytes) // 2])
    doc = pymupdf.open()
    doc.new_page().insert_text((72, 72), "locked")
    doc.save(folder / "encrypted.pdf", encryption=pymupdf.PDF_ENCRYPT_AES_256, owner_pw="o", user_pw="u")
    broken = good_bytes.replace(b"startxref", b"startxref\n999999999\n%")  # xref offset points nowhere
    (folder / "brokenxref.pdf").write_bytes(broken)
    big = pymupdf.open()
    for _ in range(2000):
        big.new_page(width=200, height=200)
    big.save(folder / "pages2000.pdf", garbage=3, deflate=True)
    absurd = pymupdf.open()
    page = absurd.new_page()
    pix = pymupdf.Pixmap(pymupdf.csGRAY, 8, 8, bytes(64), False)
    xref = page.insert_image(pymupdf.Rect(72, 72, 300, 300), pixmap=pix)
    absurd.xref_set_key(xref, "Width", "2000000")
    absurd.xref_set_key(xref, "Height", "2000000")
    page.insert_text((72, 320), "Figure 1. An image that declares 2,000,000 x 2,000,000 pixels.")
    absurd.save(folder / "absurdimage.pdf")


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory, synth_pdfs):
    from ldrt_hpc.config import load_pipeline
    from tests.conftest import write_config

    folder = tmp_path_factory.mktemp("pre")
    inputs = folder / "pdfs"
    inputs.mkdir()
    for pdf in sorted(synth_pdfs.glob("*.pdf")):
        (inputs / pdf.name).write_bytes(pdf.read_bytes())
    hostile_pdfs(inputs / "hostile", sorted(synth_pdfs.glob("*.pdf"))[0].read_bytes())
    path = write_config(folder, inputs, num_shards=3)
    cfg = load_pipeline(path)
    # tight limits so that the 2000-page paper and the absurd image end in quarantine quickly
    cfg = cfg.model_copy(update={"stages": cfg.stages.model_copy(update={
        "convert": cfg.stages.convert.model_copy(update={"timeout_s": 20, "max_memory_mb": 1024, "workers": 2}),
        "figures": cfg.stages.figures.model_copy(update={"timeout_s": 20, "max_memory_mb": 1024, "workers": 2}),
    })})
    markers = {stage: run_inline(cfg, stage) for stage in ("ingest", "convert", "figures", "filter", "context")}
    return cfg, markers


def records(cfg, stage, table="items"):
    out = []
    for index in range(3):
        with ShardReader(shard_path(stage_dir(cfg, stage), index)) as reader:
            out += list(reader if table == "items" else reader.quarantine)
    return out


def test_hostile_files_get_reasons_and_nothing_is_lost(pipeline, synth_pdfs):
    cfg, markers = pipeline
    ingest = {r["paper_id"]: r for r in records(cfg, "ingest")}
    assert len(ingest) == 12 + 7
    assert "too small" in ingest["zero"]["problems"] and "not a PDF" in ingest["html"]["problems"]
    assert "truncated" in ingest["truncated"]["problems"] and "encrypted" in ingest["encrypted"]["problems"]
    assert ingest["brokenxref"]["ok"] and ingest["pages2000"]["ok"] and ingest["pages2000"]["pages"] == 2000
    converted = {r["paper_id"] for r in records(cfg, "convert")}
    quarantined = {r["item_id"]: r for r in records(cfg, "convert", "quarantine")}
    accepted = {pid for pid, r in ingest.items() if r["ok"]}
    assert converted | set(quarantined) == accepted and not converted & set(quarantined)
    assert {p.stem for p in synth_pdfs.glob("*.pdf")} <= converted  # every good paper survived its neighbours
    for item in quarantined.values():
        assert item["reason"] in ("timeout", "memory", "crashed", "error") and item["detail"]
    assert sum(m["item_count"] for m in markers["convert"]) == len(converted)


def test_markdown_of_generated_papers(pipeline):
    cfg, _ = pipeline
    markdown = {r["paper_id"]: r["markdown"] for r in records(cfg, "convert")}
    for paper_id, text in markdown.items():
        if not paper_id.startswith("synth"):
            continue
        assert "Figure 1." in text
        assert "\n\nFigure 1." in "\n\n" + text  # the caption is its own paragraph


def test_figures_filter_context_chain(pipeline):
    cfg, markers = pipeline
    figures = records(cfg, "figures")
    synth = [f for f in figures if f["paper_id"].startswith("synth")]
    assert synth and all(f["png"].startswith(b"\x89PNG") and f["width"] > 0 for f in synth)
    decisions = records(cfg, "filter")
    assert len(decisions) == len(figures)
    assert all(d["reason"] == ("" if d["kept"] else d["reason"]) for d in decisions)
    context = records(cfg, "context")
    assert len(context) == sum(d["kept"] for d in decisions)
    assert sum(c["mention_count"] > 0 for c in context) >= 0.9 * len(context)
    for row in context:
        for sentence in filter(None, row["mentions"].split("\n")):
            assert sentence not in row["caption"]


def _truth(synth_pdfs):
    import json

    return {paper["paper"]: paper for paper in json.loads((synth_pdfs / "ground_truth.json").read_text())}


def test_against_generated_ground_truth(pipeline, synth_pdfs):
    """Regions, the blur/size filter and the mention sentences against the generator's exact ground truth."""
    import re

    from ldrt_hpc.pdf.evaluate import iou

    cfg, _ = pipeline
    truth = _truth(synth_pdfs)
    figures = {(f["paper_id"], f["fig_type"], f["name"]): f for f in records(cfg, "figures") if f["paper_id"] in truth}
    decisions = {(d["paper_id"], d["fig_type"], d["name"]): d for d in records(cfg, "filter") if d["paper_id"] in truth}
    context = {(c["paper_id"], c["fig_type"], c["name"]): c for c in records(cfg, "context") if c["paper_id"] in truth}
    expected = [(paper_id, item) for paper_id, paper in truth.items() for item in paper["figures"]]
    assert len(figures) == len(expected)  # nothing missed, nothing extra
    good_regions = 0
    for paper_id, item in expected:
        key = (paper_id, item["figType"], item["name"])
        found = figures[key]
        box = item["regionBoundary"]
        region = pymupdf.Rect(*found["region_box"].tolist())
        good_regions += iou(region, pymupdf.Rect(box["x1"], box["y1"], box["x2"], box["y2"])) >= 0.7
        decision = decisions[key]
        if item["figType"] == "Figure":
            assert decision["reason"] == {None: "", "blurry": "blurry", "too_small": "too_small"}[item["must_filter"]], key
        if decision["kept"]:
            found_mentions = set(context[key]["mentions"].split("\n"))
            norm = lambda text: re.sub(r"\s+", " ", text).strip()  # noqa: E731
            missing = [m for m in item["mentions"] if norm(m) not in {norm(f) for f in found_mentions}]
            assert not missing, (key, missing)
    assert good_regions / len(expected) >= 0.95


def test_markdown_against_generated_ground_truth(pipeline, synth_pdfs):
    """Reading order (paragraphs whole, in order), hyphenation joined, headings marked, running headers and
    page numbers dropped, captions kept as their own paragraphs."""
    cfg, _ = pipeline
    truth = _truth(synth_pdfs)
    markdown = {r["paper_id"]: r["markdown"] for r in records(cfg, "convert") if r["paper_id"] in truth}
    assert markdown.keys() == truth.keys()
    whole = total = 0
    for paper_id, paper in truth.items():
        text = markdown[paper_id]
        paragraphs = [p.strip() for p in text.split("\n\n")]
        journal, authors = paper["running_header"]
        assert journal not in text and authors not in paragraphs, paper_id  # the authors also appear in the body
        assert not any(p.strip().isdigit() for p in paragraphs), paper_id  # page numbers
        position = 0
        for section in paper["sections"]:
            heading = f"## {section['heading']}"
            assert heading in paragraphs, (paper_id, heading)
            assert paragraphs.index(heading) >= position, (paper_id, "heading order")
            position = paragraphs.index(heading)
            for paragraph in section["paragraphs"]:
                total += 1
                whole += paragraph in paragraphs
        for item in paper["figures"]:
            assert item["caption"] in paragraphs, (paper_id, item["caption"][:40])
    assert whole / total >= 0.95, f"{whole}/{total} paragraphs converted whole and in order"


def test_backends_that_cannot_run_here_say_what_is_missing(tmp_path):
    from ldrt_hpc.config import ConvertConfig, FiguresConfig
    from ldrt_hpc.stages.convert import BackendUnavailable, check_backend
    from ldrt_hpc.stages.figures import check_pdffigures2

    with pytest.raises(BackendUnavailable, match="marker-pdf package"):
        check_backend(ConvertConfig(backend="marker"))
    with pytest.raises(BackendUnavailable, match="needs Java: 'no-such-java' is not on PATH"):
        check_pdffigures2(FiguresConfig(backend="pdffigures2", java="no-such-java"))
    with pytest.raises(BackendUnavailable, match="pdffigures2_jar=.*missing.jar does not exist"):
        check_pdffigures2(FiguresConfig(backend="pdffigures2", pdffigures2_jar=tmp_path / "missing.jar"))


def test_pymupdf4llm_backend(synth_pdfs):
    pytest.importorskip("pymupdf4llm")
    from ldrt_hpc.stages.convert import convert_pdf

    markdown, pages = convert_pdf(str(sorted(synth_pdfs.glob("*.pdf"))[0]), "pymupdf4llm")
    assert pages >= 2 and "Figure 1" in markdown and "Introduction" in markdown


def test_export_figures_is_pdffigures2_shaped(pipeline, tmp_path):
    import json

    from ldrt_hpc.export import export_figures

    cfg, _ = pipeline
    counts = export_figures(cfg.work_dir, tmp_path / "out")
    assert counts["figures"] == len(records(cfg, "figures")) and counts["incomplete_shards"] == 0
    entries = json.loads(next((tmp_path / "out").glob("synth-*.json")).read_text())
    for entry in entries:
        assert set(entry) == {"name", "figType", "page", "caption", "captionBoundary", "regionBoundary", "imageText",
                              "renderDpi", "renderURL"}
        assert entry["figType"] in ("Figure", "Table") and set(entry["captionBoundary"]) == {"x1", "y1", "x2", "y2"}
        assert Path(entry["renderURL"]).read_bytes().startswith(b"\x89PNG") and entry["renderDpi"] == 150
