"""Writing a laid-out paper as PDF: the running header and page-number footer, the text and rules as hand-written
content streams (base-14 fonts, exact coordinates), and the figures as images or embedded PDF pages.

The output is byte-for-byte reproducible: fixed metadata dates, no new document id, no random names.
"""

from __future__ import annotations

from pathlib import Path

import pymupdf

from .layout import Flow
from .outline import Outline
from .fonts import embed_hidden_bold, glyph_ids
from .page import (
    FONTS,
    HIDDEN_BOLD,
    ITALIC,
    LEFT,
    MARGIN,
    PAGE_HEIGHT,
    PAGE_WIDTH,
    REGULAR,
    BoxOp,
    FigureOp,
    Op,
    RuleOp,
    TextOp,
    text_width,
)

JOURNAL = "J. Low-Dose Radiat. Res."
YEAR = 2026
PDF_DATE = "D:20260101000000+00'00'"
PRODUCER = "ldrt-hpc synth"


def _number(value: float) -> str:
    """A coordinate as the content stream writes it: up to 3 decimals, no trailing zeros."""
    return f"{value:.3f}".rstrip("0").rstrip(".")


def _encoded(text: str, font: str) -> str:
    """The text as a hex string: WinAnsi codes, or glyph ids for the Identity-H font of the hidden_weight class."""
    return glyph_ids(text) if font == HIDDEN_BOLD else text.encode("cp1252").hex()


def _operators(op: TextOp | RuleOp | BoxOp, height: float = PAGE_HEIGHT) -> list[str]:
    """Content-stream operators of one op on a page `height` tall (PDF y grows upwards: y is flipped)."""
    if isinstance(op, TextOp):
        y = _number(height - op.baseline)
        lines = ["BT 0 g"]
        for x, text, font in op.runs:
            lines.append(f"1 0 0 1 {_number(x)} {y} Tm /{font} {_number(op.size)} Tf <{_encoded(text, font)}> Tj")
        return lines + ["ET"]
    if isinstance(op, BoxOp):
        x0, y0, x1, y1 = op.rect
        return [f"q 0 G 0.92 g {_number(op.thickness)} w {_number(x0)} {_number(height - y1)} {_number(x1 - x0)} "
                f"{_number(y1 - y0)} re B Q"]
    y = _number(height - op.y_position)
    return [f"q 0 G {_number(op.thickness)} w {_number(op.x_start)} {y} m {_number(op.x_end)} {y} l S Q"]


def _append_contents(page, ops: list[TextOp | RuleOp | BoxOp], height: float = PAGE_HEIGHT) -> None:
    """Append text, rule and box ops as one content stream (fonts registered on the page beforehand)."""
    if not ops:
        return
    lines = [line for op in ops for line in _operators(op, height)]
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


def page_chrome(header: str, right: str, number: str, width: float = PAGE_WIDTH,
                height: float = PAGE_HEIGHT) -> list[Op]:
    """Running header (journal line left, "Author et al." right) with a rule under it, and the page number."""
    right_edge = width - MARGIN
    return [TextOp(38.0, 8.0, [(LEFT, header, ITALIC), (right_edge - text_width(right, ITALIC, 8), right, ITALIC)]),
            RuleOp(LEFT, right_edge, 44.0, 0.4),
            TextOp(height - 30.0, 8.0, [((width - text_width(number, REGULAR, 8)) / 2, number, REGULAR)])]


def _draw_page(page, ops: list[Op], outline: Outline, images: dict[str, bytes], sources: list,
               height: float = PAGE_HEIGHT) -> None:
    """Text and rules go in content streams, split around each figure so that drawing order is kept.  A figure
    drawn as several images has keys "F2/0", "F2/1", ... (not floats of the outline)."""
    for font in FONTS:
        page.insert_font(fontname=font)
    if any(isinstance(op, TextOp) and any(font == HIDDEN_BOLD for _, _, font in op.runs) for op in ops):
        embed_hidden_bold(page, HIDDEN_BOLD)
    segment: list = []
    for op in ops:
        if not isinstance(op, FigureOp):
            segment.append(op)
            continue
        _append_contents(page, segment, height)
        segment = []
        rect = pymupdf.Rect(op.rect)
        item = outline.floats.get(op.key)
        if item is not None and item.kind == "vector":
            source = pymupdf.open("pdf", images[op.key])
            sources.append(source)  # kept open until the document is saved
            page.show_pdf_page(rect, source, 0, keep_proportion=False)
        else:
            page.insert_image(rect, stream=images[op.key], keep_proportion=False)
    _append_contents(page, segment, height)


def _turned_page(doc, ops: list[Op], outline: Outline, images: dict[str, bytes], sources: list,
                 turn: tuple[int, int]) -> None:
    """A landscape page (ops in its coordinates, 792 x 612) shown turned by turn[0] degrees on a portrait page
    whose /Rotate is turn[1]: 90 and 90 (or -90 and 270) show it upright, /Rotate 0 sideways."""
    source = pymupdf.open()
    sources.append(source)
    landscape = source.new_page(width=PAGE_HEIGHT, height=PAGE_WIDTH)
    _draw_page(landscape, ops, outline, images, sources, PAGE_WIDTH)
    page = doc.new_page(width=PAGE_WIDTH, height=PAGE_HEIGHT)
    page.show_pdf_page(page.rect, source, 0, rotate=turn[0])
    page.set_rotation(turn[1])


def write_pdf(path: Path, outline: Outline, flow: Flow, header: tuple[str, str], images: dict[str, bytes],
              turned: dict[int, tuple[int, int]] | None = None) -> None:
    """Write the laid-out paper to path; `header` is the running header's left and right text.  `turned`: page
    index -> (degrees, /Rotate) of landscape pages (`_turned_page`; the rotated class)."""
    doc = pymupdf.open()
    sources: list = []
    for page_index, ops in enumerate(flow.pages):
        number = str(outline.first_page + page_index)
        if turned and page_index in turned:
            chrome = page_chrome(header[0], header[1], number, PAGE_HEIGHT, PAGE_WIDTH)
            _turned_page(doc, chrome + ops, outline, images, sources, turned[page_index])
            continue
        page = doc.new_page(width=PAGE_WIDTH, height=PAGE_HEIGHT)
        chrome = page_chrome(header[0], header[1], number)
        _draw_page(page, chrome + ops, outline, images, sources)
    doc.set_metadata({"title": outline.title, "author": outline.authors, "subject": JOURNAL,
                      "keywords": "; ".join(outline.keywords), "creator": PRODUCER, "producer": PRODUCER,
                      "creationDate": PDF_DATE, "modDate": PDF_DATE})
    doc.save(path, garbage=3, deflate=True, no_new_id=True)
    doc.close()
    for source in sources:
        source.close()
