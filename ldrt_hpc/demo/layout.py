"""Page layout: the front matter, headings, justified paragraphs and floats of one paper flowed into pages and
frames (one or two columns), and the choice of how many optional paragraphs fill the target page count.

Floats are placed after the paragraph that introduces them: in the current frame when they fit, otherwise at the
top of a later frame; page-wide floats of two-column papers wait for the top of the next page.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from .outline import Outline
from .page import (
    AFTER_FLOAT,
    ASCENDER,
    BEFORE_FLOAT,
    BOLD,
    BOTTOM,
    COLUMN_WIDTH,
    GUTTER,
    HEADING_SIZE,
    ITALIC,
    LEFT,
    REGULAR,
    RIGHT,
    TEXT_WIDTH,
    TOP,
    Block,
    Box,
    Op,
    RuleOp,
    TextOp,
    line_height,
    shift_box,
)
from .typeset import LineBreaker, Token, justified_line, text_block, words

HEADING_SPACE_ABOVE, HEADING_SPACE_BELOW = 7, 3
MAX_FLUSH_FRAMES = 40  # frames added at the end to place floats still waiting; more means a float never fits


class Frame(NamedTuple):
    """A column of a page: its left edge and width."""

    left: float
    width: float


@dataclass
class Placement:
    """Where a float landed: page index and its region and caption boxes on that page."""

    page: int
    region: Box
    caption: Box


def flow_items(outline: Outline, optional_count: int) -> list[tuple[str, object]]:
    """What the flow lays out, in order: ("heading", text), ("paragraph", sentences) and ("float", key)."""
    items: list[tuple[str, object]] = []
    for section, paragraphs in zip(outline.sections, outline.paragraphs(optional_count)):
        items.append(("heading", section.heading))
        for sentences, floats in paragraphs:
            items.append(("paragraph", sentences))
            items.extend(("float", key) for key in floats)
    return items


class Flow:
    """Lays out front matter, headings, paragraphs and floats into pages and frames (columns).

    `pages` holds each page's ops, `placed` each float's placement.  `cursor_y` is the top of the next thing in
    the current frame; `at_frame_top` says nothing was put in the frame yet (no space needed above a float).
    """

    def __init__(self, outline: Outline, items: list[tuple[str, object]]):
        self.outline = outline
        self.body_size, self.body_leading = outline.body_size, outline.body_leading
        self.body_line_height = line_height(REGULAR, self.body_size)
        self.pages: list[list[Op]] = []
        self.placed: dict[str, Placement] = {}
        self.pending: list[str] = []
        self.pending_wide: list[str] = []
        self._new_page()
        handlers = {"heading": self._heading, "paragraph": self._paragraph, "float": self._float}
        for kind, value in items:
            handlers[kind](value)
        flushed = 0
        while (self.pending or self.pending_wide) and flushed < MAX_FLUSH_FRAMES:
            self._next_frame()
            flushed += 1

    # -- pages and frames

    def _add(self, op: Op) -> None:
        self.pages[-1].append(op)

    def _block(self, key: str) -> Block:
        return self.outline.floats[key].block

    def _new_page(self) -> None:
        self.pages.append([])
        top = TOP
        if len(self.pages) == 1:
            top = self._front_matter()
        else:
            while self.pending_wide and top + self._block(self.pending_wide[0]).height <= BOTTOM:
                top = self._place(self.pending_wide.pop(0), top, LEFT, True) + AFTER_FLOAT
        if self.outline.two_columns:
            self.frames = [Frame(LEFT, COLUMN_WIDTH), Frame(LEFT + COLUMN_WIDTH + GUTTER, COLUMN_WIDTH)]
        else:
            self.frames = [Frame(LEFT, TEXT_WIDTH)]
        self.frames_top, self.frame_index, self.cursor_y, self.at_frame_top = top, 0, top, True
        self._place_pending()

    def _next_frame(self) -> None:
        if self.frame_index + 1 < len(self.frames):
            self.frame_index += 1
            self.cursor_y, self.at_frame_top = self.frames_top, True
            self._place_pending()
        else:
            self._new_page()

    @property
    def _frame(self) -> Frame:
        return self.frames[self.frame_index]

    # -- floats

    def _fits(self, key: str) -> bool:
        top = self.cursor_y if self.at_frame_top else self.cursor_y + BEFORE_FLOAT
        return top + self._block(key).height <= BOTTOM

    def _place_pending(self) -> None:
        while self.pending and self._fits(self.pending[0]):
            self._place_here(self.pending.pop(0))

    def _place_here(self, key: str) -> None:
        self.cursor_y = self._place(key, self.cursor_y, self._frame.left, self.at_frame_top) + AFTER_FLOAT
        self.at_frame_top = False

    def _place(self, key: str, y: float, x: float, at_top: bool) -> float:
        """Put the float's block at (x, y) of the current page (below BEFORE_FLOAT unless at_top); its bottom."""
        block = self._block(key)
        dy = y if at_top else y + BEFORE_FLOAT
        for op in block.ops:
            self._add(op.shifted(x, dy))
        self.placed[key] = Placement(len(self.pages) - 1, shift_box(block.region, x, dy),
                                     shift_box(block.caption, x, dy))
        return dy + block.height

    def _float(self, key: str) -> None:
        if self.outline.floats[key].wide:
            self.pending_wide.append(key)
        elif not self.pending and self._fits(key):
            self._place_here(key)
        else:  # floats keep their order: one that waits makes the later ones wait
            self.pending.append(key)

    # -- front matter

    def _ragged(self, tokens: list[Token], size: float, leading: float, top: float) -> float:
        """A ragged block across the page; returns its bottom."""
        ops, box = text_block(tokens, size, leading, TEXT_WIDTH, LEFT, top)
        for op in ops:
            self._add(op)
        return box[3]

    def _front_matter(self) -> float:
        """Title, authors, affiliation, abstract, keywords and a rule; returns where the body starts."""
        outline = self.outline
        y = self._ragged(words(outline.title, BOLD), 16.0, 19.5, TOP) + 6
        y = self._ragged(words(outline.authors, REGULAR), 10.0, 12.5, y) + 2
        y = self._ragged(words(outline.affiliation, ITALIC), 8.0, 10.0, y) + 12
        self._add(TextOp(y + ASCENDER[BOLD] * HEADING_SIZE, HEADING_SIZE, [(LEFT, "Abstract", BOLD)]))
        y += line_height(BOLD, HEADING_SIZE) + 3
        y = self._justified_lines(" ".join(outline.abstract), 9.0, 11.0, LEFT, TEXT_WIDTH, y)
        keywords = [("Keywords:", BOLD)] + words("; ".join(outline.keywords), REGULAR)
        y = self._ragged(keywords, 8.5, 10.5, y + 4) + 8
        self._add(RuleOp(LEFT, RIGHT, y, 0.5))
        return y + 12

    def _justified_lines(self, text: str, size: float, leading: float, x: float, width: float, y: float) -> float:
        """Justified, hyphenated lines that must fit on this page (front matter); returns the next y."""
        breaker = LineBreaker(words(text, REGULAR), size, width, self.outline.hyphenation_key)
        while not breaker.done():
            line, last = breaker.next_line(True)
            self._add(justified_line(line, x, width, y + ASCENDER[REGULAR] * size, size, not last))
            y += leading
        return y + line_height(REGULAR, size) - leading

    # -- body

    def _heading(self, text: str) -> None:
        height = line_height(BOLD, HEADING_SIZE)
        # keep with next: the heading moves on unless two lines of the paragraph after it fit below it
        while (self.cursor_y + (0 if self.at_frame_top else HEADING_SPACE_ABOVE) + height + HEADING_SPACE_BELOW
               + 2 * self.body_leading + self.body_line_height > BOTTOM):
            self._next_frame()
        if not self.at_frame_top:
            self.cursor_y += HEADING_SPACE_ABOVE
        baseline = self.cursor_y + ASCENDER[BOLD] * HEADING_SIZE
        self._add(TextOp(baseline, HEADING_SIZE, [(self._frame.left, text, BOLD)]))
        self.cursor_y += height + HEADING_SPACE_BELOW
        self.at_frame_top = False

    def _paragraph(self, sentences: list[str]) -> None:
        breaker = LineBreaker(words(" ".join(sentences), REGULAR), self.body_size, self.frames[0].width,
                              self.outline.hyphenation_key)
        while not breaker.done():
            if self.cursor_y + self.body_line_height > BOTTOM:
                self._next_frame()
                continue
            # never hyphenate the last line of a column
            allow_hyphen = self.cursor_y + self.body_leading + self.body_line_height <= BOTTOM
            line, last = breaker.next_line(allow_hyphen)
            baseline = self.cursor_y + ASCENDER[REGULAR] * self.body_size
            self._add(justified_line(line, self._frame.left, self._frame.width, baseline, self.body_size, not last))
            self.cursor_y += self.body_leading
            self.at_frame_top = False
        self.cursor_y += 0.4 * self.body_leading


def choose_layout(outline: Outline) -> tuple[Flow, int]:
    """The layout with the most optional paragraphs that stays within the target page count, and that count."""
    flows: dict[int, Flow] = {}

    def pages(optional_count: int) -> int:
        if optional_count not in flows:
            flows[optional_count] = Flow(outline, flow_items(outline, optional_count))
        return len(flows[optional_count].pages)

    # binary search: it assumes that more optional paragraphs never make fewer pages
    low, high = 0, len(outline.optional_paragraphs)
    target = max(outline.target_pages, pages(low))
    if pages(high) <= target:
        low = high
    else:
        while high - low > 1:
            middle = (low + high) // 2
            if pages(middle) <= target:
                low = middle
            else:
                high = middle
    if not 2 <= pages(low) <= 4:
        raise RuntimeError(f"paper {outline.index}: layout gave {pages(low)} pages")
    return flows[low], low
