"""The page every generated paper is set on: US Letter geometry, the base-14 fonts, and the drawing operations.

Layout works on drawing operations in PDF points with the origin top-left (PyMuPDF's convention); the PDF writer
turns them into content-stream operators.  A float (figure or table with its caption) is first laid out as a
`Block` relative to the top-left of its frame, then shifted to where it lands on a page.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import pymupdf

PAGE_WIDTH, PAGE_HEIGHT, MARGIN = 612.0, 792.0, 54.0
LEFT, RIGHT, TOP, BOTTOM = MARGIN, PAGE_WIDTH - MARGIN, MARGIN, PAGE_HEIGHT - MARGIN
TEXT_WIDTH = RIGHT - LEFT  # 504
GUTTER = 18.0
COLUMN_WIDTH = (TEXT_WIDTH - GUTTER) / 2  # 243
CAPTION_SIZE, CAPTION_LEADING = 8.5, 10.5
HEADING_SIZE = 11.0
FIGURE_CAPTION_GAP = 6.0  # figure region -> caption (and table caption -> table)
BEFORE_FLOAT = 9.0  # text -> figure region or table caption
AFTER_FLOAT = 13.0  # caption (or table) -> following text

BODY_TYPE = {False: (10.0, 12.5), True: (9.0, 11.0)}
"""Body type size and leading of one-column (False) and two-column (True) papers."""

REGULAR, BOLD, ITALIC = "helv", "hebo", "heit"
"""PDF resource names of Helvetica, Helvetica-Bold and Helvetica-Oblique."""
FONTS = {name: pymupdf.Font(name) for name in (REGULAR, BOLD, ITALIC)}
HIDDEN_BOLD = "advp"
"""Resource name of the bold face whose weight nothing but its glyphs shows (hidden_weight class, `fonts`): it
has Helvetica-Bold's glyphs and metrics, so it is measured as BOLD."""
METRICS = FONTS | {HIDDEN_BOLD: FONTS[BOLD]}
ASCENDER = {name: font.ascender for name, font in METRICS.items()}
DESCENDER = {name: -font.descender for name, font in METRICS.items()}
_unit_widths: dict[tuple[str, str], float] = {}


def text_width(text: str, font: str, size: float) -> float:
    """Advance width of text in a base-14 font (measured on the Unicode text; drawn as WinAnsi codes)."""
    key = (text, font)
    width = _unit_widths.get(key)
    if width is None:
        if len(_unit_widths) > 200_000:
            _unit_widths.clear()
        width = _unit_widths[key] = METRICS[font].text_length(text, fontsize=1.0)
    return width * size


def line_height(font: str, size: float) -> float:
    """Ascender to descender of one line, as PyMuPDF reports line boxes."""
    return size * (ASCENDER[font] + DESCENDER[font])


Box = tuple[float, float, float, float]
"""(x1, y1, x2, y2) in points, origin top-left."""


def shift_box(box: Box, dx: float, dy: float) -> Box:
    return (box[0] + dx, box[1] + dy, box[2] + dx, box[3] + dy)


class TextOp(NamedTuple):
    """One line of text: runs of (x, text, font) on a common baseline."""

    baseline: float
    size: float
    runs: list[tuple[float, str, str]]

    def shifted(self, dx: float, dy: float) -> TextOp:
        return TextOp(self.baseline + dy, self.size, [(x + dx, text, font) for x, text, font in self.runs])


class RuleOp(NamedTuple):
    """A horizontal rule from x_start to x_end at y_position."""

    x_start: float
    x_end: float
    y_position: float
    thickness: float

    def shifted(self, dx: float, dy: float) -> RuleOp:
        return RuleOp(self.x_start + dx, self.x_end + dx, self.y_position + dy, self.thickness)


class FigureOp(NamedTuple):
    """The image (or vector drawing) of the float `key`, stretched to `rect`."""

    key: str
    rect: Box

    def shifted(self, dx: float, dy: float) -> FigureOp:
        return FigureOp(self.key, shift_box(self.rect, dx, dy))


class BoxOp(NamedTuple):
    """A stroked rectangle filled light grey (a publisher box)."""

    rect: Box
    thickness: float

    def shifted(self, dx: float, dy: float) -> BoxOp:
        return BoxOp(shift_box(self.rect, dx, dy), self.thickness)


Op = TextOp | RuleOp | FigureOp | BoxOp


@dataclass
class Block:
    """A float laid out relative to the top-left of its frame: its ops, region and caption boxes, and height."""

    ops: list[Op]
    region: Box
    caption: Box
    height: float
