"""`synth_corpus`: write the generated papers and their ground truth (`ground_truth.json`)."""

from __future__ import annotations

import json
from pathlib import Path

from .layout import choose_layout
from .outline import Outline, plan_paper
from .pdf import JOURNAL, YEAR, write_pdf
from .plots import render_figure


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


def make_paper(path: Path, seed: int, index: int) -> dict:
    """Write one paper to path; returns its ground truth."""
    outline = plan_paper(seed, index)
    flow, optional_count = choose_layout(outline)
    page_count = len(flow.pages)
    first = outline.first_page
    header = (f"{JOURNAL} {YEAR}; {outline.volume}: {first}–{first + page_count - 1}", f"{outline.first_author} et al.")
    images = {key: render_figure(item.spec) for key, item in outline.floats.items() if item.fig_type == "Figure"}
    write_pdf(path, outline, flow, header, images)
    sections = [{"heading": section.heading, "paragraphs": [" ".join(sentences) for sentences, _ in paragraphs]}
                for section, paragraphs in zip(outline.sections, outline.paragraphs(optional_count))]
    return {
        "paper": path.stem, "file": path.name, "title": outline.title, "pages": page_count, "layout": outline.layout,
        "figures": _figures_truth(outline, flow.placed), "authors": outline.authors,
        "abstract": " ".join(outline.abstract), "keywords": outline.keywords, "sections": sections,
        "running_header": list(header),
    }


def synth_corpus(out_dir: Path, papers: int, seed: int) -> list[dict]:
    """Write `papers` PDFs and `ground_truth.json` to out_dir; returns the ground truth (one dict per paper)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    truth = [make_paper(out_dir / f"synth-{seed}-{i:05d}.pdf", seed, i) for i in range(papers)]
    (out_dir / "ground_truth.json").write_text(json.dumps(truth, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return truth
