"""The region classes of the failure-class corpus (see `classes`): one float of the paper is moved off the flowed
pages onto a page of its own, appended after them, where it is set as the class needs it, between filler
paragraphs (the paper's optional paragraphs, last first, repeated as needed; the ground truth's ``sections``
does not list this page's text, though a paragraph used here may also be one of the flowed pages').

Each page is built as ops in points, origin top-left, like the flowed pages, so its boxes are exact; a landscape
page (rotated class) is built in its own 792 x 612 coordinates and written turned (`pdf._turned_page`).
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass, replace
from typing import Iterator

import cv2
import numpy as np

from .classes import class_round
from .layout import Flow, Placement
from .outline import Outline
from .page import (
    AFTER_FLOAT,
    ASCENDER,
    BEFORE_FLOAT,
    BOLD,
    BOTTOM,
    CAPTION_LEADING,
    CAPTION_SIZE,
    COLUMN_WIDTH,
    DESCENDER,
    FIGURE_CAPTION_GAP,
    GUTTER,
    HEADING_SIZE,
    LEFT,
    MARGIN,
    PAGE_HEIGHT,
    PAGE_WIDTH,
    REGULAR,
    TEXT_WIDTH,
    TOP,
    Box,
    BoxOp,
    FigureOp,
    Op,
    TextOp,
    line_height,
    shift_box,
)
from .plots import render_figure
from .tables import table_block
from .typeset import LineBreaker, caption_tokens, justified_line, text_block, words

LANDSCAPE_BOTTOM = PAGE_WIDTH - MARGIN
LANDSCAPE_TEXT_WIDTH = PAGE_HEIGHT - 2 * MARGIN  # 684
ROTATED_VARIANTS = [("Table", (90, 90)), ("Table", (90, 0)), ("Figure", (-90, 270)), ("Table", (-90, 0))]
"""rotated class, by class round: the float moved and (degrees the landscape page is turned, /Rotate)."""
PUBLISHER_GAP = 12.0  # figure -> publisher box
BOX_CAPTION_GAP = 8.0  # publisher box -> caption


@dataclass
class ClassPage:
    """The page of a region class: its ops, the moved float's boxes (as the page is shown) and its images."""

    ops: list[Op]
    region: Box
    caption: Box
    images: dict[str, bytes]
    turn: tuple[int, int] | None = None
    """Landscape page: (degrees it is turned, /Rotate), see `pdf._turned_page`."""


def moved_key(outline: Outline, style: str, index: int) -> str:
    """The float the class's page holds: the table, or the first figure that the filter keeps."""
    if style == "full_width_table" or style == "rotated" and ROTATED_VARIANTS[class_round(index) % 4][0] == "Table":
        return "T1"
    return next(key for key, item in outline.floats.items() if item.fig_type == "Figure" and item.must_filter is None)


def take_out(outline: Outline, style: str, index: int) -> str:
    """Take the class's float out of the flow (its paragraph no longer places it); its key."""
    key = moved_key(outline, style, index)
    for section in outline.sections:
        for paragraph in section.paragraphs:
            if key in paragraph.floats:
                paragraph.floats.remove(key)
    outline.floats[key].failure_class = style
    return key


def add_class_page(outline: Outline, flow: Flow, key: str, style: str, index: int) -> tuple[dict, dict]:
    """Append the class's page to the flow and place the float there; its images and the turned pages (index ->
    turn) for `write_pdf`."""
    rng = random.Random(f"ldrt-synth-class-page:{outline.seed}:{index}")
    builders = {"rotated": _rotated, "full_width_table": _full_width_table, "publisher_box": _publisher_box,
                "multi_panel": _multi_panel, "slivers": _slivers}
    page = builders[style](outline, key, rng, _filler(outline), class_round(index))
    flow.pages.append(page.ops)
    flow.placed[key] = Placement(len(flow.pages) - 1, page.region, page.caption)
    return page.images, ({len(flow.pages) - 1: page.turn} if page.turn else {})


# ------------------------------------------------------------------------------------------------ text

def _filler(outline: Outline) -> Iterator[list[str]]:
    return itertools.cycle([paragraph.sentences for paragraph in reversed(outline.optional_paragraphs)])


def _lines(outline: Outline, paragraphs: Iterator[list[str]], x: float, width: float, top: float,
           bottom: float) -> tuple[list[TextOp], float]:
    """Justified body lines of the next paragraphs from `top` while they fit above `bottom` (the last paragraph
    may stop early); the ops and the bottom of the last line (`top` when none fits)."""
    size, leading = outline.body_size, outline.body_leading
    height = line_height(REGULAR, size)
    ops: list[TextOp] = []
    y = top
    while y + height <= bottom:
        breaker = LineBreaker(words(" ".join(next(paragraphs)), REGULAR), size, width, outline.hyphenation_key)
        while not breaker.done() and y + height <= bottom:
            line, last = breaker.next_line(y + leading + height <= bottom)
            ops.append(justified_line(line, x, width, y + ASCENDER[REGULAR] * size, size, not last))
            y += leading
        y += 0.4 * leading
    return ops, (ops[-1].baseline + DESCENDER[REGULAR] * size if ops else top)


def _frames(outline: Outline, width: float = TEXT_WIDTH) -> list[tuple[float, float]]:
    """(left, width) of the text columns."""
    if outline.two_columns:
        return [(LEFT, COLUMN_WIDTH), (LEFT + COLUMN_WIDTH + GUTTER, COLUMN_WIDTH)]
    return [(LEFT, width)]


def _text_above(outline: Outline, paragraphs, rng: random.Random, width: float = TEXT_WIDTH) -> tuple[list, float]:
    """3-7 lines of text at the top of every column; ops and the lowest line's bottom."""
    bottom = TOP + rng.randint(3, 7) * outline.body_leading
    ops, lowest = [], TOP
    for x, frame_width in _frames(outline, width):
        column, end = _lines(outline, paragraphs, x, frame_width, TOP, bottom)
        ops += column
        lowest = max(lowest, end)
    return ops, lowest


def _text_below(outline: Outline, paragraphs, top: float, bottom: float = BOTTOM,
                width: float = TEXT_WIDTH) -> list[TextOp]:
    return [op for x, frame_width in _frames(outline, width)
            for op in _lines(outline, paragraphs, x, frame_width, top, bottom)[0]]


def _caption(outline: Outline, key: str, width: float, x: float, top: float) -> tuple[list[TextOp], Box]:
    """The float's caption ("Figure 2." in bold, then its text) in a frame `width` wide."""
    item = outline.floats[key]
    label = f"{item.fig_type} {item.name}."
    return text_block(caption_tokens(label, item.caption[len(label) + 1:]), CAPTION_SIZE, CAPTION_LEADING, width,
                      x, top)


# ------------------------------------------------------------------------------------------------ tables

def _wide_rows(rng: random.Random, groups: int) -> list[list[str]]:
    """A table of nine columns: baseline and outcome per dose group."""
    rows = [["Group", "n", "Age (y)", "Female (%)", "Dose (Gy)", "Response (%)", "IL-6 (pg/mL)", "Follow-up (mo)",
             "p"]]
    for i in range(groups):
        dose = ["Sham", "0.5", "1.0", "2.5"][i]
        rows.append([dose if i == 0 else f"{dose} Gy", str(rng.randint(8, 40)), f"{rng.uniform(55, 75):.1f}",
                     f"{rng.uniform(30, 70):.0f}", "0" if i == 0 else dose, f"{rng.uniform(20, 80):.1f}",
                     f"{rng.uniform(15, 60):.1f} ± {rng.uniform(2, 9):.1f}", str(rng.randint(6, 36)),
                     "–" if i == 0 else f"0.0{rng.randint(1, 4)}{rng.randint(1, 9)}"])
    return rows


def _table(outline: Outline, key: str, rng: random.Random, caption_width: float, table_width: float, x: float,
           top: float) -> tuple[list[Op], Box, Box]:
    """Caption `caption_width` wide over a nine-column table `table_width` wide, at (x, top): ops, region and
    caption boxes."""
    caption_ops = _caption(outline, key, caption_width, 0.0, 0.0)
    block = table_block(None, _wide_rows(rng, rng.randint(3, 4)), table_width, caption_ops=caption_ops)
    return ([op.shifted(x, top) for op in block.ops], shift_box(block.region, x, top),
            shift_box(block.caption, x, top))


def _full_width_table(outline: Outline, key: str, rng: random.Random, paragraphs, _round: int) -> ClassPage:
    """Two columns of text, the caption in the left one, the table across both (the right column's text runs on
    beside the caption), then "5. Conclusions" right under the table and text in both columns."""
    (left, width), (right, _) = _frames(outline)
    ops, above = _lines(outline, paragraphs, left, width, TOP, TOP + rng.randint(5, 10) * outline.body_leading)
    table_ops, region, caption = _table(outline, key, rng, COLUMN_WIDTH, TEXT_WIDTH, LEFT, above + BEFORE_FLOAT)
    ops += table_ops + _lines(outline, paragraphs, right, width, TOP, region[1] - BEFORE_FLOAT)[0]
    y = region[3] + AFTER_FLOAT
    ops.append(TextOp(y + ASCENDER[BOLD] * HEADING_SIZE, HEADING_SIZE, [(left, "5. Conclusions", BOLD)]))
    ops += _lines(outline, paragraphs, left, width, y + line_height(BOLD, HEADING_SIZE) + 3, BOTTOM)[0]
    ops += _lines(outline, paragraphs, right, width, y, BOTTOM)[0]
    return ClassPage(ops, region, caption, {})


# ------------------------------------------------------------------------------------------------ figures

def _figure_size(outline: Outline, rng: random.Random, aspect: float) -> tuple[float, float]:
    """Across the page in two-column papers, one of a few widths in one-column ones."""
    width = TEXT_WIDTH if outline.two_columns else float(rng.choice([396, 432, 468]))
    return width, float(round(width * aspect))


def _figure_page(outline: Outline, key: str, rng: random.Random, paragraphs, graphic) -> ClassPage:
    """Text above, the graphic (`graphic(top) -> ops, region, images`), its caption right below across the page,
    text below."""
    ops, above = _text_above(outline, paragraphs, rng)
    figure_ops, region, images = graphic(above + BEFORE_FLOAT)
    caption_ops, caption = _caption(outline, key, TEXT_WIDTH, LEFT, region[3] + FIGURE_CAPTION_GAP)
    ops += figure_ops + caption_ops + _text_below(outline, paragraphs, caption[3] + AFTER_FLOAT)
    return ClassPage(ops, region, caption, images)


def _publisher_box(outline: Outline, key: str, rng: random.Random, paragraphs, _round: int) -> ClassPage:
    """The figure, a publisher box in the left column under it, the caption right under the box (a column wide in
    two-column papers) and text beside and below."""
    ops, above = _text_above(outline, paragraphs, rng)
    item = outline.floats[key]
    width, height = _figure_size(outline, rng, rng.choice([0.42, 0.5, 0.55]))
    x = LEFT + (TEXT_WIDTH - width) / 2
    region = (x, above + BEFORE_FLOAT, x + width, above + BEFORE_FLOAT + height)
    item.spec = replace(item.spec, width=width, height=height)
    box_ops, box = _dates_box(rng, region[3] + PUBLISHER_GAP)
    caption_width = COLUMN_WIDTH if outline.two_columns else TEXT_WIDTH
    caption_ops, caption = _caption(outline, key, caption_width, LEFT, box[3] + BOX_CAPTION_GAP)
    ops += [FigureOp(key, region)] + box_ops + caption_ops
    frames = _frames(outline)
    ops += _lines(outline, paragraphs, frames[0][0], frames[0][1], caption[3] + AFTER_FLOAT, BOTTOM)[0]
    if outline.two_columns:
        ops += _lines(outline, paragraphs, frames[1][0], frames[1][1], box[1], BOTTOM)[0]
    return ClassPage(ops, region, caption, {key: render_figure(item.spec)})


def _dates_box(rng: random.Random, top: float) -> tuple[list[Op], Box]:
    """A stroked grey box a column wide with the article's dates on three lines; ops and the box."""
    month = rng.randint(1, 9)
    dates = [f"Received: {rng.randint(1, 28)} {_MONTHS[month - 1]} 2025",
             f"Accepted: {rng.randint(1, 28)} {_MONTHS[month]} 2025",
             f"Published: {rng.randint(1, 28)} {_MONTHS[month + 1]} 2025"]
    size, leading, padding = 8.0, 10.0, 5.0
    box = (LEFT, top, LEFT + COLUMN_WIDTH, top + 2 * padding + line_height(REGULAR, size) + 2 * leading)
    ops: list[Op] = [BoxOp(box, 0.6)]
    for i, line in enumerate(dates):
        ops.append(TextOp(top + padding + ASCENDER[REGULAR] * size + i * leading, size, [(LEFT + 6, line, REGULAR)]))
    return ops, box


_MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December"]


def _multi_panel(outline: Outline, key: str, rng: random.Random, paragraphs, _round: int) -> ClassPage:
    """3 panels in a row or 4 in two rows, 8-20 pt apart, each its own raster; panel titles between the rows of
    some 4-panel figures."""
    item = outline.floats[key]
    item.kind = "raster"
    count = rng.choice([3, 4])
    columns = 3 if count == 3 else 2
    titles = count == 4 and rng.random() < 0.5
    gap_x, gap_y = rng.randint(16, 40) / 2, 20.0 if titles else rng.randint(16, 40) / 2
    width, _ = _figure_size(outline, rng, 0.0)
    panel_width = round((width - gap_x * (columns - 1)) / columns, 2)
    panel_height = float(round(panel_width * (0.62 if columns == 2 else 0.8)))

    def graphic(top: float):
        x0 = LEFT + (TEXT_WIDTH - width) / 2
        ops, images, rects = [], {}, []
        for i in range(count):
            row, column = divmod(i, columns)
            x, y = x0 + column * (panel_width + gap_x), top + row * (panel_height + gap_y)
            rects.append((x, y, x + panel_width, y + panel_height))
            spec = replace(item.spec, kind="raster", blurry=False, width=panel_width, height=panel_height,
                           data_seed=(item.spec.data_seed[0], item.spec.data_seed[1] * 10 + i))
            images[f"{key}/{i}"] = render_figure(spec)
            ops.append(FigureOp(f"{key}/{i}", rects[-1]))
            if titles and row == 0:  # centred in the gap under the panel
                baseline = y + panel_height + (gap_y - line_height(REGULAR, 7.5)) / 2 + ASCENDER[REGULAR] * 7.5
                ops.append(TextOp(baseline, 7.5, [(x, f"{'AB'[column]}  Dose group {i + 1}", REGULAR)]))
        region = (rects[0][0], rects[0][1], max(r[2] for r in rects), max(r[3] for r in rects))
        return ops, region, images

    return _figure_page(outline, key, rng, paragraphs, graphic)


def _slivers(outline: Outline, key: str, rng: random.Random, paragraphs, _round: int) -> ClassPage:
    """One raster cut into 1.2-2 pt tall strips, each drawn as its own image (more than 100 of them)."""
    item = outline.floats[key]
    item.kind = "raster"
    width, height = _figure_size(outline, rng, 0.55)
    count = rng.randint(int(height / 2) + 1, int(height / 1.2))
    spec = replace(item.spec, kind="raster", blurry=False, width=width, height=height)
    picture = cv2.imdecode(np.frombuffer(render_figure(spec), np.uint8), cv2.IMREAD_COLOR)

    def graphic(top: float):
        x = LEFT + (TEXT_WIDTH - width) / 2
        ops, images = [], {}
        rows = picture.shape[0]
        for i in range(count):
            strip = picture[round(i * rows / count):round((i + 1) * rows / count)]
            ok, data = cv2.imencode(".png", strip, [cv2.IMWRITE_PNG_COMPRESSION, 6])
            images[f"{key}/{i}"] = data.tobytes()
            ops.append(FigureOp(f"{key}/{i}", (x, top + i * height / count, x + width, top + (i + 1) * height / count)))
        return ops, (x, top, x + width, top + height), images

    return _figure_page(outline, key, rng, paragraphs, graphic)


# ------------------------------------------------------------------------------------------------ rotated

def _rotated(outline: Outline, key: str, rng: random.Random, paragraphs, round_: int) -> ClassPage:
    """A landscape page: text, the wide table under its caption (or the wide figure over its caption), text;
    shown upright by /Rotate or set sideways on a portrait page."""
    kind, turn = ROTATED_VARIANTS[round_ % 4]
    ops, above = _lines(outline, paragraphs, LEFT, LANDSCAPE_TEXT_WIDTH, TOP,
                        TOP + rng.randint(3, 6) * outline.body_leading)
    images = {}
    if kind == "Table":
        float_ops, region, caption = _table(outline, key, rng, LANDSCAPE_TEXT_WIDTH, LANDSCAPE_TEXT_WIDTH, LEFT,
                                            above + BEFORE_FLOAT)
        end = region[3]
    else:
        item = outline.floats[key]
        width = float(rng.choice([540, 576, 612]))
        item.spec = replace(item.spec, width=width, height=float(round(width * 0.4)))
        x = LEFT + (LANDSCAPE_TEXT_WIDTH - width) / 2
        region = (x, above + BEFORE_FLOAT, x + width, above + BEFORE_FLOAT + item.spec.height)
        float_ops, caption = _caption(outline, key, LANDSCAPE_TEXT_WIDTH, LEFT, region[3] + FIGURE_CAPTION_GAP)
        float_ops = [FigureOp(key, region)] + float_ops
        images[key] = render_figure(item.spec)
        end = caption[3]
    ops += float_ops + _lines(outline, paragraphs, LEFT, LANDSCAPE_TEXT_WIDTH, end + AFTER_FLOAT, LANDSCAPE_BOTTOM)[0]
    if turn[1] == 0:  # sideways: the boxes as they lie on the portrait page
        region, caption = _sideways(region, turn[0]), _sideways(caption, turn[0])
    return ClassPage(ops, region, caption, images, turn)


def _sideways(box: Box, degrees: int) -> Box:
    """A box of the landscape page where show_pdf_page(rotate=degrees) puts it on the portrait page."""
    x0, y0, x1, y1 = box
    if degrees == 90:
        return (y0, PAGE_HEIGHT - x1, y1, PAGE_HEIGHT - x0)
    return (PAGE_WIDTH - y1, x0, PAGE_WIDTH - y0, x1)
