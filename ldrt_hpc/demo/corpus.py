"""`synth_corpus`: write the generated papers and their ground truth (`ground_truth.json`)."""

from __future__ import annotations

import json
from pathlib import Path

from .classes import REGION_CLASSES, paper_class, squeeze_spaces, squeezed_end
from .layout import choose_layout
from .outline import Outline, plan_paper
from .pdf import JOURNAL, YEAR, write_pdf
from .plots import render_figure
from .region_classes import add_class_page, take_out


def _box(box) -> dict:
    return {"x1": round(box[0], 3), "y1": round(box[1], 3), "x2": round(box[2], 3), "y2": round(box[3], 3)}


def _figures_truth(outline: Outline, placed: dict) -> list[dict]:
    """One entry per figure and table, in the order of the outline (figures, then the table)."""
    mentions = outline.mentions()
    figures = []
    for key, item in outline.floats.items():
        placement = placed[key]
        figures.append({
            "name": item.name, "figType": item.fig_type, "page": placement.page, "caption": item.caption,
            "captionBoundary": _box(placement.caption), "regionBoundary": _box(placement.region),
            "kind": item.kind, "must_filter": item.must_filter, "mentions": mentions[key], "plotType": item.plot,
        })
    return figures


def _class_truth(outline: Outline, flow, figures: list[dict], style: str) -> None:
    """The classes corpus: failure_class per float, label boxes, reading-order names of unnumbered floats and the
    caption boxes of the squeezed (no_spaces) lines."""
    for (key, item), fig in zip(outline.floats.items(), figures):
        fig["failure_class"] = item.failure_class
        if item.label_box is not None:
            block, placed = item.block, flow.placed[key]
            dx, dy = placed.region[0] - block.region[0], placed.region[1] - block.region[1]
            fig["labelBoundary"] = _box((item.label_box[0] + dx, item.label_box[1] + dy,
                                         item.label_box[2] + dx, item.label_box[3] + dy))
    if style == "unnumbered":
        for kind in ("Figure", "Table"):
            same = [fig for fig in figures if fig["figType"] == kind]
            same.sort(key=lambda f: (f["page"], f["regionBoundary"]["x1"] > 306, f["regionBoundary"]["y1"]))
            for number, fig in enumerate(same, 1):
                fig["name"] = str(number)
    if style == "no_spaces":
        for fig in figures:
            box = fig["captionBoundary"]
            ends = [squeezed_end(op) for op in flow.pages[fig["page"]] if hasattr(op, "runs") and op.runs
                    and box["y1"] - 0.01 <= op.baseline <= box["y2"] + 0.01
                    and box["x1"] - 0.01 <= op.runs[0][0] <= box["x2"]]
            box["x2"] = round(max(ends), 3)


def make_paper(path: Path, seed: int, index: int, classes: bool = False) -> dict:
    """Write one paper to path; returns its ground truth.  `classes`: the paper shows a failure class of issue 15
    (see `classes`)."""
    style = paper_class(index, classes)
    outline = plan_paper(seed, index, style)
    moved = take_out(outline, style, index) if style in REGION_CLASSES else None
    flow, optional_count = choose_layout(outline)
    if style == "no_spaces":
        flow.pages = [[squeeze_spaces(op) if hasattr(op, "runs") else op for op in ops] for ops in flow.pages]
    class_images, turned = add_class_page(outline, flow, moved, style, index) if moved else ({}, {})
    page_count = len(flow.pages)
    first = outline.first_page
    header = (f"{JOURNAL} {YEAR}; {outline.volume}: {first}–{first + page_count - 1}", f"{outline.first_author} et al.")
    images = {key: render_figure(item.spec) for key, item in outline.floats.items()
              if item.fig_type == "Figure" and key != moved}
    write_pdf(path, outline, flow, header, images | class_images, turned)
    sections = [{"heading": section.heading, "paragraphs": [" ".join(sentences) for sentences, _ in paragraphs]}
                for section, paragraphs in zip(outline.sections, outline.paragraphs(optional_count))]
    truth = {
        "paper": path.stem, "file": path.name, "title": outline.title, "pages": page_count, "layout": outline.layout,
        "figures": _figures_truth(outline, flow.placed), "authors": outline.authors,
        "abstract": " ".join(outline.abstract), "keywords": outline.keywords, "sections": sections,
        "running_header": list(header),
    }
    if style is not None:
        truth["failure_class"] = style
        _class_truth(outline, flow, truth["figures"], style)
    return truth


def synth_corpus(out_dir: Path, papers: int, seed: int, classes: bool = False) -> list[dict]:
    """Write `papers` PDFs and `ground_truth.json` to out_dir; returns the ground truth (one dict per paper).

    `classes`: paper i shows failure class `classes.CLASSES[i % len(CLASSES)]` of issue 15 (13 classes; files
    "synth-classes-...", a `failure_class` per paper and per float); off, the corpus is the default one, byte for
    byte."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = f"synth-classes-{seed}" if classes else f"synth-{seed}"
    truth = [make_paper(out_dir / f"{stem}-{i:05d}.pdf", seed, i, classes) for i in range(papers)]
    (out_dir / "ground_truth.json").write_text(json.dumps(truth, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return truth
