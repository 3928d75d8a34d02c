"""Writing a laid-out paper as PDF: the running header and page-number footer, the text and rules as hand-written
content streams (base-14 fonts, exact coordinates), and the figures as images or embedded PDF pages.

The output is byte-for-byte reproducible: fixed metadata dates, no new document id, no random names.
"""

from __future__ import annotations

from pathlib import Path

import pymupdf

from .layout import Flow
from .outline import Outline
from .page import FONTS, ITALIC, LEFT, PAGE_HEIGHT, PAGE_WIDTH, REGULAR, RIGHT, FigureOp, Op, RuleOp, TextOp, text_width

JOURNAL = "J. Low-Dose Radiat. Res."
YEAR = 2026
PDF_DATE = "D:20260101000000+00'00'"
PRODUCER = "ldrt-hpc synth"


def _number(value: float) -> str:
    """A coordinate as the content stream writes it: up to 3 decimals, no trailing zeros."""
    return f"{value:.3f}".rstrip("0").rstrip(".")


def _operators(op: TextOp | RuleOp) -> list[str]:
    """Content-stream operators of one op (PDF y grows upwards: y is flipped)."""
    if isinstance(op, TextOp):
        y = _number(PAGE_HEIGHT - op.baseline)
        lines = ["BT 0 g"]
        for x, text, font in op.runs:
            lines.append(f"1 0 0 1 {_number(x)} {y} Tm /{font} {_number(op.size)} Tf <{text.encode('cp1252').hex()}> Tj")
        return lines + ["ET"]
    y = _number(PAGE_HEIGHT - op.y_position)
    return [f"q 0 G {_number(op.thickness)} w {_number(op.x_start)} {y} m {_number(op.x_end)} {y} l S Q"]


def _append_contents(page, ops: list[TextOp | RuleOp]) -> None:
    """Append text and rule ops as one content stream (base-14 fonts registered on the page beforehand)."""
    if not ops:
        return
    lines = [line for op in ops for line in _operators(op)]
    doc = page.parent
    xref = doc.get_new_xref()
    doc.update_object(xref, "<<>>")
    doc.update_stream(xref, ("\n".join(lines) + "\n").encode("latin-1"))
    kind, value = doc.xref_get_key(page.xref, "Contents")
    if kind == "null":
        doc.xref_set_key(page.xref, "Contents", f"{xref} 0 R")
    elif kind == "xref":
        doc.xref_set_key(page.xref, "Contents", f"[{value} {xref} 0 R]")
    else:
        doc.xref_set_key(page.xref, "Contents", f"{value[:-1].strip()} {xref} 0 R]")


def page_chrome(header: str, right: str, number: str) -> list[Op]:
    """Running header (journal line left, "Author et al." right) with a rule under it, and the page number."""
    return [TextOp(38.0, 8.0, [(LEFT, header, ITALIC), (RIGHT - text_width(right, ITALIC, 8), right, ITALIC)]),
            RuleOp(LEFT, RIGHT, 44.0, 0.4),
            TextOp(762.0, 8.0, [((PAGE_WIDTH - text_width(number, REGULAR, 8)) / 2, number, REGULAR)])]


def _draw_page(page, ops: list[Op], outline: Outline, images: dict[str, bytes], sources: list) -> None:
    """Text and rules go in content streams, split around each figure so that drawing order is kept."""
    segment: list = []
    for op in ops:
        if not isinstance(op, FigureOp):
            segment.append(op)
            continue
        _append_contents(page, segment)
        segment = []
        rect = pymupdf.Rect(op.rect)
        if outline.floats[op.key].kind == "vector":
            source = pymupdf.open("pdf", images[op.key])
            sources.append(source)  # kept open until the document is saved
            page.show_pdf_page(rect, source, 0, keep_proportion=False)
        else:
            page.insert_image(rect, stream=images[op.key], keep_proportion=False)
    _append_contents(page, segment)


def write_pdf(path: Path, outline: Outline, flow: Flow, header: tuple[str, str], images: dict[str, bytes]) -> None:
    """Write the laid-out paper to path; `header` is the running header's left and right text."""
    doc = pymupdf.open()
    sources: list = []
    for page_index, ops in enumerate(flow.pages):
        page = doc.new_page(width=PAGE_WIDTH, height=PAGE_HEIGHT)
        for font in FONTS:
            page.insert_font(fontname=font)
        chrome = page_chrome(header[0], header[1], str(outline.first_page + page_index))
        _draw_page(page, chrome + ops, outline, images, sources)
    doc.set_metadata({"title": outline.title, "author": outline.authors, "subject": JOURNAL,
                      "keywords": "; ".join(outline.keywords), "creator": PRODUCER, "producer": PRODUCER,
                      "creationDate": PDF_DATE, "modDate": PDF_DATE})
    doc.save(path, garbage=3, deflate=True, no_new_id=True)
    doc.close()
    for source in sources:
        source.close()
