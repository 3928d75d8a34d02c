"""The floats of one paper: which figures it has (plot type, raster or vector, size, blurred or tiny), their
captions fitted to three lines, and the blocks of figures and table laid out relative to their frame."""

from __future__ import annotations

import random
import zlib
from dataclasses import dataclass
from typing import NamedTuple

from .classes import caption_type, figure_label, label_then_text, label_tokens, shows_class
from .page import (
    ASCENDER,
    BOLD,
    CAPTION_LEADING,
    CAPTION_SIZE,
    COLUMN_WIDTH,
    FIGURE_CAPTION_GAP,
    REGULAR,
    TEXT_WIDTH,
    Block,
    FigureOp,
    TextOp,
)
from .plots import FigureSpec
from .tables import table_block, table_caption, table_rows
from .text import PANELS, Study, caption_sentences
from .typeset import Token, caption_tokens, text_block, words

CAPTION_TYPE = (CAPTION_SIZE, CAPTION_LEADING)
ICON_SIZE = 40.0  # points a side: under 100 px at 150 dpi, so the filter must drop it as too small
PLOT_TYPES = ["km", "dose", "bars", "micro"]


class _Proportions(NamedTuple):
    """A plot type's widths in one-column papers and its height / width ratios by frame."""

    one_column_widths: tuple[int, ...]
    one_column_aspect: float
    column_wide_aspect: float
    page_wide_aspect: float


_PROPORTIONS = {
    "km": _Proportions((300, 336, 372, 408), 0.62, 0.72, 0.40),
    "dose": _Proportions((396, 432, 468, 504), 0.40, 0.62, 0.36),
    "bars": _Proportions((300, 336, 372, 408), 0.62, 0.72, 0.38),
    "micro": _Proportions((336, 372, 408), 0.52, 0.58, 0.42),
}


@dataclass
class Float:
    """A figure or table with its caption, laid out relative to its frame."""

    key: str
    """F1, F2, ... for figures, T1 for the table"""
    name: str
    fig_type: str
    """Figure or Table"""
    kind: str
    """raster, vector or table"""
    caption: str
    must_filter: str | None
    """blurry, too_small or None: what the image-quality filter must do with it"""
    wide: bool
    """Spans both columns of a two-column page (placed at the top of the next page)."""
    block: Block
    plot: str | None = None
    panels: tuple[str, str] = ("", "")
    spec: FigureSpec | None = None
    failure_class: str | None = None
    """The issue-15 failure class this float shows (classes corpus only; see `classes`)."""
    label_box: tuple | None = None
    """label_above class: where the label line is, relative to the frame (then shifted on placement)."""


def _choose_plots(rng: random.Random, index: int) -> tuple[list[str], int]:
    """2-4 plot types, one of them the tiny icon in papers 2, 5, 8, ...; and which one to blur (-1: none).

    Papers 1, 4, 7, ... have one blurred figure, never the icon."""
    blurry, tiny = index % 3 == 1, index % 3 == 2
    count = rng.randint(2, 4)
    plots = rng.sample(PLOT_TYPES, count - tiny)
    if tiny:
        plots.insert(rng.randint(1, len(plots)), "icon")
    blur_at = rng.choice([i for i, plot in enumerate(plots) if plot != "icon"]) if blurry else -1
    return plots, blur_at


def _choose_kinds(rng: random.Random, plots: list[str], blur_at: int) -> list[str]:
    """raster or vector per figure; micrographs and the blurred figure are raster, and one figure is vector."""
    kinds = []
    for i, plot in enumerate(plots):
        kinds.append("raster" if plot == "micro" or i == blur_at else rng.choice(["vector", "raster"]))
    if "vector" not in kinds:
        free = [i for i, plot in enumerate(plots) if plot != "micro" and i != blur_at]
        if free:
            kinds[free[0]] = "vector"
    return kinds


def _choose_wide(rng: random.Random, plots: list[str], two_columns: bool) -> list[bool]:
    """Which figures span both columns; a two-column paper with two large figures has one of each width."""
    large = [i for i, plot in enumerate(plots) if plot != "icon"]
    wide = [two_columns and plot != "icon" and rng.random() < 0.4 for plot in plots]
    if two_columns and len(large) >= 2 and len({wide[i] for i in large}) == 1:
        wide[large[rng.randrange(len(large))]] = not wide[large[0]]
    return wide


def _figure_size(rng: random.Random, plot: str, two_columns: bool, wide: bool) -> tuple[float, float]:
    """Width and height in points: the frame's width in two columns, one of a few widths in one column."""
    if plot == "icon":
        return ICON_SIZE, ICON_SIZE
    proportions = _PROPORTIONS[plot]
    if two_columns:
        width = TEXT_WIDTH if wide else COLUMN_WIDTH
        height = round(width * (proportions.page_wide_aspect if wide else proportions.column_wide_aspect))
    else:
        width = rng.choice(proportions.one_column_widths)
        height = round(width * proportions.one_column_aspect)
    return float(width), float(height)


def _fit_caption(label: str, sentences: list[str], frame_width: float, label_font: str | None = None,
                 alone: bool = False, size_leading: tuple[float, float] = CAPTION_TYPE) -> tuple[str, list[Token]]:
    """The caption, its trailing sentences dropped until it takes at most three lines.

    `label_font`: the label's font when it is not the default bold; `alone`: the label goes on its own line, the
    tokens are then the legend only."""
    while True:
        caption = f"{label} " + " ".join(sentences)
        if alone:
            tokens = words(" ".join(sentences), REGULAR)
        elif label_font is not None:
            tokens = label_tokens(label, label_font) + words(" ".join(sentences), REGULAR)
        else:
            tokens = caption_tokens(label, " ".join(sentences))
        ops, _ = text_block(tokens, *size_leading, frame_width, 0, 0)
        if len(ops) <= 3 or len(sentences) == 1:
            return caption, tokens
        sentences = sentences[:-1]


def figure_block(key: str, width: float, height: float, caption: list[Token], frame_width: float,
                 size_leading: tuple[float, float] = CAPTION_TYPE) -> Block:
    """Figure (centred in its frame) + caption below (in `size_leading`), relative to (frame x0, top)."""
    x = (frame_width - width) / 2
    region = (x, 0.0, x + width, height)
    ops, caption_box = text_block(caption, *size_leading, frame_width, 0.0, height + FIGURE_CAPTION_GAP)
    return Block([FigureOp(key, region)] + ops, region, caption_box, caption_box[3])


def panel_letters_block(key: str, width: float, height: float, letters: tuple[str, str], caption: list[Token],
                        frame_width: float) -> Block:
    """panel_letters class: as `figure_block`, with the panel letters on their own lines above the label, in the
    caption's block (the caption box is the caption's lines only)."""
    x = (frame_width - width) / 2
    region = (x, 0.0, x + width, height)
    top = height + FIGURE_CAPTION_GAP
    ops: list = []
    for i, letter in enumerate(letters):
        ops.append(TextOp(top + ASCENDER[REGULAR] * CAPTION_SIZE + i * CAPTION_LEADING, CAPTION_SIZE,
                          [(0.0, letter, REGULAR)]))
    text_top = top + len(letters) * CAPTION_LEADING
    text_ops, caption_box = text_block(caption, CAPTION_SIZE, CAPTION_LEADING, frame_width, 0.0, text_top)
    return Block([FigureOp(key, region)] + ops + text_ops, region, caption_box, caption_box[3])


def label_above_block(key: str, width: float, height: float, label: Token, legend: list[Token],
                      frame_width: float) -> tuple[Block, tuple]:
    """label_above class: the label alone on a line at the graphic's left edge, the graphic, then the legend in its
    own block below; returns the block (caption box: the legend) and the label's box."""
    x = (frame_width - width) / 2
    label_ops, label_box = text_block([label], CAPTION_SIZE, CAPTION_LEADING, frame_width, 0.0, 0.0)
    label_ops = [op.shifted(x, 0.0) for op in label_ops]
    label_box = (label_box[0] + x, label_box[1], label_box[2] + x, label_box[3])
    top = label_box[3] + FIGURE_CAPTION_GAP
    region = (x, top, x + width, top + height)
    ops, caption_box = text_block(legend, CAPTION_SIZE, CAPTION_LEADING, frame_width, 0.0,
                                  region[3] + FIGURE_CAPTION_GAP)
    return Block(label_ops + [FigureOp(key, region)] + ops, region, caption_box, caption_box[3]), label_box


def plan_figures(rng: random.Random, study: Study, seed: int, index: int, two_columns: bool,
                 style: str | None = None) -> dict[str, Float]:
    """The figures F1, F2, ... with their captions, blocks and what `plots` needs to draw them; `style`: the
    failure class of the paper (see `classes`), None for the default corpus."""
    plots, blur_at = _choose_plots(rng, index)
    kinds = _choose_kinds(rng, plots, blur_at)
    wide = _choose_wide(rng, plots, two_columns)
    paper_seed = zlib.crc32(f"{seed}:{index}".encode())
    figures = {}
    for number, (plot, kind) in enumerate(zip(plots, kinds), 1):
        key, is_wide, blurry = f"F{number}", wide[number - 1], number - 1 == blur_at
        width, height = _figure_size(rng, plot, two_columns, is_wide)
        panels = PANELS.get(plot, ("", ""))
        logrank = f"log-rank {study.p_value()}"
        frame_width = TEXT_WIDTH if (not two_columns or is_wide) else COLUMN_WIDTH
        sentences = caption_sentences(study, plot, panels, logrank)
        label_box = None
        if style is None:
            caption, tokens = _fit_caption(f"Figure {number}.", sentences, frame_width)
            block = figure_block(key, width, height, tokens, frame_width)
        else:
            label, label_font, alone = figure_label(style, "Figure", number)
            caption, tokens = _fit_caption(label, sentences, frame_width, label_font if label_font != BOLD else None,
                                           alone, caption_type(style, two_columns))
            if alone:
                block, label_box = label_above_block(key, width, height, (label, label_font), tokens, frame_width)
            elif style == "panel_letters":
                letters = tuple(p.strip("()") or d for p, d in zip(panels, "AB"))
                block = panel_letters_block(key, width, height, letters, tokens, frame_width)
            else:
                block = figure_block(key, width, height, tokens, frame_width, caption_type(style, two_columns))
        spec = FigureSpec(plot=plot, kind=kind, width=width, height=height, blurry=blurry, panels=panels,
                          low_dose=study.low_dose, high_dose=study.high_dose, cell_line=study.cell_line,
                          logrank=logrank, data_seed=(paper_seed, number))
        figures[key] = Float(
            key=key, name=str(number), fig_type="Figure", kind=kind, caption=caption,
            must_filter="blurry" if blurry else "too_small" if plot == "icon" else None,
            wide=bool(two_columns and is_wide), block=block, plot=plot, panels=panels, spec=spec,
            failure_class=style if shows_class(style, "Figure") else None, label_box=label_box)
    return figures


def plan_table(rng: random.Random, study: Study, two_columns: bool, style: str | None = None) -> Float:
    """Table 1, as wide as a column; `style`: the paper's failure class (see `classes`)."""
    rows = table_rows(rng, study)
    text = table_caption(study)
    width = COLUMN_WIDTH if two_columns else TEXT_WIDTH
    if style is None:
        block = table_block(caption_tokens("Table 1.", text), rows, width)
        return Float(key="T1", name="1", fig_type="Table", kind="table", caption="Table 1. " + text,
                     must_filter=None, wide=False, block=block)
    label, label_font, alone = figure_label(style, "Table", 1)
    if alone:
        caption_ops = label_then_text((label, label_font), words(text, REGULAR), width, 0.0)
        label_box, text_box = caption_ops[1], caption_ops[2]
        union = (min(label_box[0], text_box[0]), label_box[1], max(label_box[2], text_box[2]), text_box[3])
        block = table_block(None, rows, width, caption_ops=(caption_ops[0], union))
    else:
        tokens = label_tokens(label, label_font) + words(text, REGULAR)
        block = table_block(tokens, rows, width, size_leading=caption_type(style, two_columns))
    return Float(key="T1", name="1", fig_type="Table", kind="table", caption=f"{label} {text}", must_filter=None,
                 wide=False, block=block, failure_class=style if shows_class(style, "Table") else None)
