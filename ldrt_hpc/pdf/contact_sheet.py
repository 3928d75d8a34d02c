"""Contact sheets: a page drawn with the boxes that figure detection found on it, for a person to check by eye.

Pure drawing: the caller says which boxes (in page coordinates, points, the space of `page.rect` that the
detector and the figures stage use) belong on which page. The page is shown on a fresh, unrotated page of the
same visible size, the boxes are stroked on top (captions in one colour, regions in another) with their label
written just above the box's top-left corner, and the result is rendered at a modest resolution.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import pymupdf

CAPTION_COLOUR = (0.0, 0.35, 1.0)
"""Blue: the caption's box."""
REGION_COLOUR = (1.0, 0.0, 0.0)
"""Red: the figure's or table's region (the crop)."""
LINE_WIDTH = 2.0
"""Stroke width in points (about 1.7 pixels at 60 dpi), thick enough to see on a thumbnail."""
LABEL_SIZE = 9.0
"""Points; bold Helvetica, readable at 60 dpi."""


@dataclass(frozen=True)
class Box:
    """One box to draw: `kind` is "caption" or "region"; `label` is written beside it (e.g. "Figure 2")."""

    rect: Sequence[float]
    kind: str
    label: str = ""


def colour(kind: str) -> tuple[float, float, float]:
    return CAPTION_COLOUR if kind == "caption" else REGION_COLOUR


def draw_page(page: pymupdf.Page, boxes: Iterable[Box], dpi: int = 60) -> pymupdf.Pixmap:
    """The page as an RGB pixmap at `dpi` with `boxes` stroked on it. The source document is not changed."""
    area = page.rect
    sheet_doc = pymupdf.open()
    try:
        sheet = sheet_doc.new_page(width=area.width, height=area.height)
        sheet.show_pdf_page(sheet.rect, page.parent, page.number)
        shift = pymupdf.Point(-area.x0, -area.y0)  # page.rect normally starts at (0, 0); a cropped page may not
        for box in boxes:
            if len(box.rect) != 4:
                continue
            rect = pymupdf.Rect(box.rect) + (shift.x, shift.y, shift.x, shift.y)
            if rect.is_empty or rect.is_infinite:
                continue
            rgb = colour(box.kind)
            shape = sheet.new_shape()
            shape.draw_rect(rect)
            shape.finish(color=rgb, fill=None, width=LINE_WIDTH)
            shape.commit()
            if box.label:
                # above the box when there is room, else just inside its top edge
                y = rect.y0 - LINE_WIDTH if rect.y0 - LINE_WIDTH > LABEL_SIZE else rect.y0 + LABEL_SIZE + LINE_WIDTH
                width = pymupdf.get_text_length(box.label, "hebo", LABEL_SIZE)
                x = min(max(rect.x0, 1.0), max(sheet.rect.x1 - width - 2.0, 1.0))
                sheet.insert_text((x, y), box.label, fontsize=LABEL_SIZE, fontname="hebo", color=rgb)
        return sheet.get_pixmap(dpi=dpi, alpha=False, colorspace=pymupdf.csRGB)
    finally:
        sheet_doc.close()


def draw_page_png(page: pymupdf.Page, boxes: Iterable[Box], dpi: int = 60) -> bytes:
    return draw_page(page, boxes, dpi).tobytes("png")
