"""The table some papers carry: its rows (endpoint and IL-6 by dose group) and its layout (caption above, then a
ruled grid whose type shrinks until the columns fit the frame)."""

from __future__ import annotations

import random

from .page import (
    ASCENDER,
    BOLD,
    CAPTION_LEADING,
    CAPTION_SIZE,
    FIGURE_CAPTION_GAP,
    REGULAR,
    Block,
    RuleOp,
    TextOp,
    line_height,
    text_width,
)
from .text import Study
from .typeset import Token, text_block

_LARGEST_SIZE, _SMALLEST_SIZE = 7.5, 5.5
_CELL_PADDING = 6  # least space per column


def table_rows(rng: random.Random, study: Study) -> list[list[str]]:
    """A header row and one row per dose group (sometimes with an extra 2.5 Gy group)."""
    doses = ["Sham", f"{study.low_dose} Gy", f"{study.high_dose} Gy"] + (["2.5 Gy"] if rng.random() < 0.5 else [])
    rows = [["Group", "n", study.table_column, "IL-6 (pg/mL)", "p"]]
    for i, dose in enumerate(doses):
        endpoint, il6 = rng.uniform(20, 90) * (1 - 0.1 * i), rng.uniform(15, 60) * (1 - 0.15 * i)
        rows.append([dose, str(rng.randint(8, 40)), f"{endpoint:.1f} ± {endpoint * 0.1:.1f}",
                     f"{il6:.1f} ± {il6 * 0.15:.1f}", "–" if i == 0 else f"0.0{rng.randint(1, 4)}{rng.randint(1, 9)}"])
    return rows


def table_caption(study: Study) -> str:
    """The caption's text after its label "Table 1."."""
    return (f"{study.endpoint_capitalised} and serum IL-6 by dose group. Values are mean ± SD; p-values versus sham "
            "irradiation (two-sided t-test).")


def _row_font(row_index: int) -> str:
    return BOLD if row_index == 0 else REGULAR


def _fitting_size(rows: list[list[str]], frame_width: float) -> tuple[float, list[float]]:
    """The largest type size (7.5 pt, in steps of 0.5 pt down to 5.5 pt) at which the columns fit, and their widths."""
    size = _LARGEST_SIZE
    while True:
        widths = [max(text_width(row[j], _row_font(i), size) for i, row in enumerate(rows))
                  for j in range(len(rows[0]))]
        if sum(widths) + _CELL_PADDING * len(widths) <= frame_width or size <= _SMALLEST_SIZE:
            return size, widths
        size -= 0.5


def table_block(caption: list[Token] | None, rows: list[list[str]], frame_width: float,
                caption_ops: tuple[list, tuple] | None = None,
                size_leading: tuple[float, float] = (CAPTION_SIZE, CAPTION_LEADING)) -> Block:
    """Caption above (in `size_leading`), then a ruled grid of cells; relative to (frame x0, top).  `caption_ops`:
    the caption already laid out (ops and box), instead of `caption`'s tokens."""
    if caption_ops is not None:
        ops, caption_box = list(caption_ops[0]), caption_ops[1]
    else:
        ops, caption_box = text_block(caption, *size_leading, frame_width, 0.0, 0.0)
    size, widths = _fitting_size(rows, frame_width)
    padding = (frame_width - sum(widths)) / len(widths)
    column_x, x = [], 0.0
    for width in widths:
        column_x.append(x)
        x += width + padding
    top = caption_box[3] + FIGURE_CAPTION_GAP
    y = top
    ops.append(RuleOp(0.0, frame_width, y + 0.4, 0.8))
    y += 0.8 + 2.0
    for i, row in enumerate(rows):
        font = _row_font(i)
        ops.append(TextOp(y + ASCENDER[font] * size, size, [(cx, cell, font) for cx, cell in zip(column_x, row)]))
        y += line_height(font, size) + 1.2
        if i == 0:  # a thin rule under the header
            y += 0.8
            ops.append(RuleOp(0.0, frame_width, y + 0.25, 0.5))
            y += 0.5 + 1.6
    y += 1.0
    ops.append(RuleOp(0.0, frame_width, y + 0.4, 0.8))
    y += 0.8
    return Block(ops, (0.0, top, frame_width, y), caption_box, y)
