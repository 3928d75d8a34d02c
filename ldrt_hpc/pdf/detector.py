"""Figures and tables with their captions, the `native` backend (PyMuPDF).

1. Captions: text blocks that start with a label ("Fig. 3", "Figure-3:", "Table II", "Supplementary Figure S1"; lone
   panel letters extracted above it are dropped) followed by a delimiter, set in bold (by flags, name, a font
   descriptor's weight, or the glyphs' stroke width), smaller than the body text, in capitals ("FIGURE 1 Flow
   chart") or alone on its line ("TABLE I" over its title); failing all that, set apart by layout (at a column
   edge right by a graphic, in another face or size than the body paragraphs, a capital after the label).
   "Figure 2 shows ..." in the body is not a caption. A label that is the whole block takes the next block in its
   column as its legend (right under it, or past the graphic it stands above).
   Unnumbered labels ("Figure:", "Table. Baseline ...") count only with a region and are numbered in page order.
   A label found twice keeps its best occurrence (the one with a region).
2. Regions: the graphics (embedded images, clusters of vector drawings) between the caption and the nearest
   body-text paragraph or other caption — above the caption for figures, below for tables (then the other way),
   within the caption's column; for a caption set beside its figure, graphics at the same height beside it.
   Short text inside or touching that area (axis labels, panel letters, table cells) joins the region; body-size
   text beyond a table's outer rules does not, nor does a lone rule join a figure. Section headings bound it like
   paragraphs; panel titles between rows of panels and a publisher box ("Received ... Published ...", never a
   region itself) do not break it. A caption in one column over a full-width table is
   bounded by both columns' paragraphs. Pages shown turned (/Rotate) or whose text runs sideways are analysed
   turned upright; their regions are given as the page is shown (where render() crops).
3. The region is rendered at the configured dpi (PNG).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, replace
from typing import NamedTuple

import cv2
import numpy as np
import pymupdf

from .layout import (
    CAPTION_LABEL,
    Block,
    Box,
    body_size,
    caption_label,
    page_graphics,
    panel_lines,
    parse_label,
    running_lines,
    text_blocks,
)


@dataclass
class Detection:
    fig_type: str
    name: str
    page: int
    caption: str
    caption_box: pymupdf.Rect
    region: pymupdf.Rect | None
    score: int


def _is_body(block: Block, body: float) -> bool:
    """A paragraph of running text: body-size font, long, and long lines (table cells have short ones)."""
    if abs(block.size - body) > 0.75 or block.chars < 100:
        return False
    return block.chars / len(block.lines) >= 35 or (block.chars >= 160 and len(block.lines) == 1)


def _caption_lines(block: Block) -> tuple[str, pymupdf.Rect]:
    """The caption paragraph at the start of a block (PyMuPDF may glue the next paragraph to it)."""
    lines = [block.lines[0]]
    for line in block.lines[1:]:
        previous = lines[-1]
        if line.bbox.y0 - previous.bbox.y1 > 0.8 * max(previous.bbox.height, 1) or abs(line.size - previous.size) > 1:
            break
        lines.append(line)
    from .markdown import join_lines

    return join_lines([line.text for line in lines]), _lines_box(lines)


def _lines_box(lines: list) -> pymupdf.Rect:
    return _union([pymupdf.Rect(*line.bbox) for line in lines])


def _union(rects: list[pymupdf.Rect]) -> pymupdf.Rect | None:
    if not rects:
        return None
    result = pymupdf.Rect(rects[0])
    for rect in rects[1:]:
        result |= rect
    return result


def _inside_share(rect: pymupdf.Rect, area: pymupdf.Rect) -> float:
    overlap = rect & area
    return 0.0 if overlap.is_empty else overlap.get_area() / max(rect.get_area(), 1e-6)


def _x_overlap(a: pymupdf.Rect, x0: float, x1: float) -> float:
    return max(0.0, min(a.x1, x1) - max(a.x0, x0))


def _caption_block(block: Block) -> Block:
    """The block without the lone panel letters that extraction put above its label ("A", "B", "Fig. 2. ...")."""
    skip = panel_lines([line.text for line in block.lines])
    if not skip:
        return block
    return Block(_lines_box(block.lines[skip:]), block.lines[skip:])


class _Caption(NamedTuple):
    fig_type: str
    name: str
    text: str
    box: pymupdf.Rect
    score: int
    """How many of delimiter, bold label and smaller type it has."""


@dataclass
class _PageFacts:
    """What a caption block is judged against: the body font size of the paper, the font, size and left edges
    of the page's body paragraphs, and the page's text area (left, middle, right)."""

    body: float
    body_font: str
    body_font_size: float
    column_edges: list[float]
    left: float
    mid: float
    right: float

    def column(self, box: pymupdf.Rect) -> tuple[float, float]:
        """The page column of a box: a half of the text area where the box keeps to it, else the whole width."""
        if box.width < 0.6 * (self.right - self.left) and (box.x1 <= self.mid + 10 or box.x0 >= self.mid - 10):
            return (self.left, self.mid) if box.x1 <= self.mid + 10 else (self.mid, self.right)
        return self.left, self.right


def _page_facts(blocks: list[Block], body: float, left: float, right: float) -> _PageFacts:
    paragraphs = [b for b in blocks if _is_body(b, body)]
    fonts = Counter(b.font for b in paragraphs)
    sizes = Counter(b.size for b in paragraphs)  # their own size: the paper's body size is a whole point
    return _PageFacts(body, fonts.most_common(1)[0][0] if fonts else "", sizes.most_common(1)[0][0] if sizes else body,
                      sorted({b.bbox.x0 for b in paragraphs}), left, (left + right) / 2, right)


def _set_apart(block: Block, label, graphics: list[pymupdf.Rect], facts: _PageFacts) -> bool:
    """Layout evidence for a label with no other mark ("Figure 1 Flow chart ..." in a body-size face): the block
    starts at a column edge, right above or under a graphic, the word after the label is capitalised (and no
    lone panel letter: "Figure 1 A and B show"), and it is set in another face or size than the page's body
    paragraphs ("Figure 1 shows" in running text is none)."""
    after = block.text[label.end:].split(maxsplit=1)[:1]
    if not after or not after[0][:1].isupper() or len(after[0].strip(".,;:()")) < 2 or not facts.body_font:
        return False
    if block.font == facts.body_font and abs(block.size - facts.body_font_size) < 0.3:
        return False
    if not any(abs(block.bbox.x0 - edge) <= 3 for edge in facts.column_edges):
        return False
    return any(_x_overlap(g, block.bbox.x0, block.bbox.x1) > 0.3 * min(g.width, block.bbox.width)
               and (0 <= block.bbox.y0 - g.y1 <= GAP or 0 <= g.y0 - block.bbox.y1 <= GAP) for g in graphics)


def _caption(block: Block, blocks: list[Block], graphics: list[pymupdf.Rect], images: list[pymupdf.Rect],
             facts: _PageFacts) -> tuple[_Caption, pymupdf.Rect | None] | None:
    """(the caption, the box of a label set apart from its legend) of a caption block."""
    block = _caption_block(block)
    label = caption_label(block.text)
    if label is None:
        return None
    first = block.lines[0]
    alone = label.end >= len(first.text.strip())  # "TABLE II" on its own line: no sentence goes on like that
    smaller = block.size < facts.body - 0.4
    evidence = [label.delimited, first.first_span_bold, smaller, label.capitals, alone]
    if not any(evidence) and not _set_apart(block, label, graphics, facts):
        return None  # "Figure 2 shows ..." starts a body sentence
    if any(_inside_share(block.bbox, g) > 0.9 for g in images) and not label.delimited:
        return None  # a label printed inside a raster figure (vector frames often enclose their caption)
    if not any(evidence[:3]) and any(_inside_share(block.bbox, g) > 0.9 for g in graphics):
        return None  # a label alone or in capitals inside a drawing is the drawing's own text (a panel title)
    text, box = _caption_lines(block)
    apart = None
    if label.end >= len(block.text):  # the whole block is the label: its legend is a block further down
        legend = _legend(block, blocks, graphics, facts)
        if legend is not None:
            legend_text, legend_box = _caption_lines(legend)
            text = f"{text} {legend_text}"
            if any(_between(g, block.bbox, legend.bbox) for g in graphics):
                apart, box = block.bbox, legend_box  # the label sits above the graphic, the legend below it
            else:
                box = box | legend_box
    return _Caption(label.fig_type, label.name, text, box, sum(map(int, evidence[:3]))), apart


def _between(rect: pymupdf.Rect, upper: pymupdf.Rect, lower: pymupdf.Rect) -> bool:
    """`rect` lies between two blocks of one column (under the upper one or over the lower one)."""
    return rect.y0 >= upper.y1 - 2 and rect.y1 <= lower.y0 + 2 and (
        _x_overlap(rect, lower.x0, lower.x1) > 0 or _x_overlap(rect, upper.x0, upper.x1) > 0)


def _legend(label: Block, blocks: list[Block], graphics: list[pymupdf.Rect], facts: _PageFacts) -> Block | None:
    """The legend of a label that stands alone: the next text block below it in its column, right under it or
    past the graphics drawn between them (short text in a figure, such as axis labels, is skipped). A block is
    in the label's column if it shares half its width with the label or, past a graphic drawn right under the
    label, if it lies under that graphic or within the page column of label and graphic (a small centred graphic
    over a left-aligned legend line)."""
    under = [g for g in graphics if label.bbox.y1 - 2 <= g.y0 <= label.bbox.y1 + GAP
             and _x_overlap(g, label.bbox.x0, label.bbox.x1) > 0]
    x0, x1 = facts.column(_union([label.bbox] + under))  # a graphic centred on the page straddles both halves

    def in_column(b: Block) -> bool:
        if _x_overlap(b.bbox, label.bbox.x0, label.bbox.x1) > 0.5 * min(label.bbox.width, b.bbox.width):
            return True
        return bool(under) and (any(_x_overlap(b.bbox, g.x0, g.x1) > 0 for g in under)
                                or _x_overlap(b.bbox, x0, x1) > 0.5 * b.bbox.width)

    below = [b for b in blocks if b.bbox.y0 >= label.bbox.y1 - 1 and b.chars >= 20 and parse_label(b.text) is None
             and in_column(b) and not any(_inside_share(b.bbox, g) > 0.5 for g in graphics)]
    if not below:
        return None
    legend = min(below, key=lambda b: b.bbox.y0)
    if legend.bbox.y0 - label.bbox.y1 <= 1.5 * label.lines[0].bbox.height:
        return legend  # right under the label
    drawn = [g for g in graphics if _between(g, label.bbox, legend.bbox)]
    # past the graphic, close under it: a paragraph further down is the text that follows the figure
    return legend if drawn and legend.bbox.y0 - max(g.y1 for g in drawn) <= GAP else None


def detect_page(
    page: pymupdf.Page, blocks: list[Block], body: float, page_no: int, upright: pymupdf.Matrix | None = None
) -> list[Detection]:
    """`upright`: the matrix that turns the page's unrotated space so that its text reads left to right (the
    blocks are given turned already); None for a page that reads so as it is."""
    page_rect = page.rect
    images, clusters = page_graphics(page)
    if upright is not None:
        page_rect = page.rect * page.derotation_matrix * upright
        images, clusters = [g * upright for g in images], [g * upright for g in clusters]
    top, bottom = page_rect.y0 + 0.06 * page_rect.height, page_rect.y1 - 0.06 * page_rect.height
    # bars and logos in the running header/footer zone are page decoration, not figures
    graphics = [g for g in images + clusters if g.y0 >= top - 1 and g.y1 <= bottom + 1 or g.height > 0.2 * page_rect.height]
    if not blocks and not graphics:
        return []
    left = min([b.bbox.x0 for b in blocks] + [g.x0 for g in graphics])
    right = max([b.bbox.x1 for b in blocks] + [g.x1 for g in graphics])

    captions: list[_Caption] = []
    labels: list[pymupdf.Rect] = []  # labels set apart from their legend: barriers, not part of any region
    facts = _page_facts(blocks, body, left, right)
    for block in blocks:
        found = _caption(block, blocks, graphics, images, facts)
        if found is not None:
            captions.append(found[0])
            if found[1] is not None:
                labels.append(found[1])

    caption_boxes = [c.box for c in captions] + labels
    # a publisher box ("Received ... Published ...") is page furniture, not a figure; a caption under it still
    # reaches the figure past it, so the box bridges the gap without joining the region
    dated = [b for b in blocks if _PUBLISHER.search(b.text)]  # most pages have none: no box to look into
    publisher = [g for g in graphics if _is_publisher_box(g, dated)] if dated else []
    graphics = [g for g in graphics if g not in publisher]
    blocks = [b for b in blocks if not any(_inside_share(b.bbox, g) > 0.8 for g in publisher)]
    # body paragraphs and section headings bound the search; text inside a drawn box (a flow chart's cells) is
    # part of a figure
    barriers = [b.bbox for b in blocks if (_is_body(b, body) or _is_heading(b, body))
                and not any(_inside_share(b.bbox, g) > 0.5 for g in graphics)]
    # a panel title (a line or two of short text) between rows of panels bridges the gap from one row to the
    # next; a paragraph, however set, does not
    text_bridges = [b.bbox for b in blocks if len(b.lines) <= 2 and b.chars <= 80
                    and b.bbox not in caption_boxes and b.bbox not in barriers]
    detections = []
    claimed: list[pymupdf.Rect] = []
    taken: list[pymupdf.Rect] = []
    # figures first: graphics that a figure's caption reaches belong to it, and a table searching for its
    # rules or cells must not run on into them: their regions bound the later searches like paragraphs, and
    # the text inside them (axis labels) is no table's cells
    for fig_type, name, text, box, score in sorted(captions, key=lambda c: c.fig_type != "Figure"):
        available = [g for g in graphics if not any(g == c for c in claimed)]
        free = [b for b in blocks if not any(_inside_share(b.bbox, r) > 0.5 for r in taken)] if taken else blocks
        x0, x1 = facts.column(box)
        bridges = [(p, False) for p in publisher] + [(t, True) for t in text_bridges if fig_type == "Figure"]
        args = (box, page_rect, available, free, barriers + taken, caption_boxes, body, fig_type, bridges, captions)
        region = _region(x0, x1, *args)
        wide = region is not None and (x0, x1) != (left, right) and region.width > 1.2 * (x1 - x0)
        if wide and fig_type == "Table":
            # a caption set in one column over a full-width table: the other column's paragraphs bound it too,
            # or the region runs on down the caption's column (figures keep their column: a full-width rule
            # next to them is a table's or a separator)
            region = _region(left, right, *args) or region
        if region is None and fig_type == "Figure":
            region = _beside(box, graphics)
        if region is None and not name:
            continue  # an unnumbered label ("Figure:") counts only with its figure
        if region is not None:
            claimed += [g for g in graphics if g.intersects(region) and _inside_share(g, region) > 0.5]
            taken.append(region)
        detections.append(Detection(fig_type, name, page_no, text, box, region, score + (2 if region else 0)))
    return detections


def _region(x0, x1, box, page_rect, available, blocks, barriers, caption_boxes, body, fig_type, bridges, captions):
    """The region of a caption searched within x0..x1: graphics first, then text cells (tables only), then
    anything in the area. Both directions are tried: the region that starts closer to the caption wins (a tie
    goes to the usual side: above for figures, below for tables), so a table set above its caption is not
    confused with whatever follows below. On the unusual side, what has a caption of the same kind close on its
    far side is that caption's (two figures stacked, each over its caption). `captions`: the page's."""
    directions = ("above", "below") if fig_type == "Figure" else ("below", "above")
    for cells in ("graphics", "cells", "anywhere") if fig_type == "Table" else ("graphics", "anywhere"):
        found = []
        for rank, direction in enumerate(directions):
            candidate = _search(direction, box, x0, x1, page_rect, available, blocks, barriers, caption_boxes,
                                body, cells, fig_type, bridges)
            if candidate is not None and rank == 1 and _captioned(candidate, direction, box, fig_type, captions):
                continue
            if candidate is not None:
                gap = box.y0 - candidate.y1 if direction == "above" else candidate.y0 - box.y1
                found.append((max(gap, 0.0) + rank * 6.0, rank, candidate))
        if found:
            return min(found, key=lambda item: item[:2])[2]
    return None


def _captioned(candidate: pymupdf.Rect, direction: str, box: pymupdf.Rect, fig_type: str,
               captions: list[_Caption]) -> bool:
    """Another caption of the same kind lies close on the far side of a region found `direction` (the unusual
    side for that kind) of the caption `box`: the region sits on that caption's usual side."""
    for caption in captions:
        other = caption.box
        if other == box or caption.fig_type != fig_type or _x_overlap(other, candidate.x0, candidate.x1) <= 0:
            continue
        gap = other.y0 - candidate.y1 if direction == "below" else candidate.y0 - other.y1
        if -2 <= gap <= GAP:
            return True
    return False


def _search(direction, box, x0, x1, page_rect, graphics, blocks, barriers, caption_boxes, body, cells, fig_type,
            bridges=()):
    """Union of graphics (and the short text that belongs to them) between the caption and the next barrier."""
    column = x1 - x0
    if direction == "above":
        limit = page_rect.y0
        for rect in barriers + [c for c in caption_boxes if c != box]:
            if rect.y1 <= box.y0 + 1 and _x_overlap(rect, x0, x1) > 0.3 * min(column, rect.width):
                limit = max(limit, rect.y1)
        area = pymupdf.Rect(x0 - 2, limit, x1 + 2, box.y0 + 1)
    else:
        limit = page_rect.y1
        for rect in barriers + [c for c in caption_boxes if c != box]:
            if rect.y0 >= box.y1 - 1 and _x_overlap(rect, x0, x1) > 0.3 * min(column, rect.width):
                limit = min(limit, rect.y0)
        area = pymupdf.Rect(x0 - 2, box.y1 - 1, x1 + 2, limit)
    if area.height < 4:
        return None
    def vertical_share(rect: pymupdf.Rect) -> float:
        return max(0.0, min(rect.y1, area.y1) - max(rect.y0, area.y0)) / max(rect.height, 1e-6)

    # graphics in the caption's column by overlap, not containment: a short caption in one column may belong
    # to a figure that spans both
    def in_column(rect: pymupdf.Rect, share: float) -> bool:
        return vertical_share(rect) > share and _x_overlap(rect, x0, x1) > 0.3 * min(column, rect.width)

    # a lone rule is no part of a figure (a separator, or the bottom rule of a table right above the figure);
    # a figure's own lines are clustered with the rest of its drawing
    parts = [g for g in graphics if in_column(g, 0.5) and (g.width > 20 or g.height > 20)
             and not (fig_type == "Figure" and min(g.width, g.height) < 2)]
    # a table's outer rules: body-size text beyond them is the text that follows the table, not a cell
    band = _rule_band(parts, body) if fig_type == "Table" else None
    if cells == "cells":
        # text tables: the cells are short text blocks in the area (with the rules found above)
        parts += [b.bbox for b in blocks if in_column(b.bbox, 0.8) and not _is_body(b, body)
                  and b.bbox not in caption_boxes and not _beyond(b, band, body)]
    # only what is reachable from the caption; as a last resort (a figure made of text, like a sequence
    # alignment) everything in the area
    bridges = [b for b in bridges if in_column(b[0], 0.5)]
    region = _union(parts if cells == "anywhere" else _contiguous(parts, box, direction, bridges))
    if region is None:
        return None
    if min(region.width, region.height) < 30 or (fig_type == "Figure" and region.get_area() < 0.002 * page_rect.get_area()):
        return None  # a rule, a bullet or an icon, not a figure or a table
    grown = pymupdf.Rect(region.x0 - 8, region.y0 - 8, region.x1 + 8, region.y1 + 8)
    for block in blocks:
        if _is_body(block, body) or block.bbox in caption_boxes or _beyond(block, band, body):
            continue
        if _inside_share(block.bbox, area) > 0.8 and block.bbox.intersects(grown):
            region |= block.bbox
    # a frame drawn around figure and caption must not pull the caption (or what lies beyond it) in
    return region & pymupdf.Rect(page_rect.x0, area.y0, page_rect.x1, area.y1)


def _rule_band(parts: list[pymupdf.Rect], body: float) -> tuple[float, float] | None:
    """(top, bottom) of a table's outer rules, where it has rules at two heights at least two lines apart (a
    single rule, under a header row, says nothing about where the table ends); else None."""
    rules = [g for g in parts if g.height < 2]
    if not rules:
        return None
    top, bottom = min(r.y0 for r in rules), max(r.y1 for r in rules)
    return (top, bottom) if bottom - top > 2 * body else None


def _beyond(block: Block, band: tuple[float, float] | None, body: float) -> bool:
    """Body-size text outside a table's outer rules (the paragraph that follows the table, or its last line
    run over from the page before; footnotes under the bottom rule are set smaller and stay in)."""
    middle = (block.bbox.y0 + block.bbox.y1) / 2  # a line's box reaches above its capitals, close to a rule
    return band is not None and abs(block.size - body) <= 0.4 and not band[0] <= middle <= band[1]


GAP = 36.0
"""Largest vertical gap (pt) between a caption and its figure, or between two parts of one figure."""


def _contiguous(parts: list[pymupdf.Rect], box: pymupdf.Rect, direction: str,
                bridges: list[tuple[pymupdf.Rect, bool]] = ()) -> list[pymupdf.Rect]:
    """The parts reachable from the caption without crossing more than GAP of empty space: a figure further
    away (another figure's graphics, below a table without rules) is not pulled in. `bridges` (rect, is_title)
    carry the reach on but are not parts themselves: a publisher box always, a panel title only over the parts
    reached so far (the last line of a paragraph or a table's rows beside a figure lead nowhere)."""
    chosen: list[pymupdf.Rect] = []
    edge = box.y0 if direction == "above" else box.y1
    remaining = [(rect, None) for rect in parts] + list(bridges)
    grew = True
    while grew:
        grew = False
        for item in list(remaining):
            rect, title = item
            near = edge - rect.y1 <= GAP if direction == "above" else rect.y0 - edge <= GAP
            if near and title and not (chosen and _within_x(rect, _union(chosen))):
                continue
            if near:
                if title is None:
                    chosen.append(rect)
                remaining.remove(item)
                edge = min(edge, rect.y0) if direction == "above" else max(edge, rect.y1)
                grew = True
    return chosen


def _within_x(rect: pymupdf.Rect, outer: pymupdf.Rect, slack: float = 8.0) -> bool:
    return rect.x0 >= outer.x0 - slack and rect.x1 <= outer.x1 + slack


_PUBLISHER = re.compile(r"\b(received|accepted|published|revised|copyright|citation|correspondence|edited by)\b",
                        re.IGNORECASE)


def _is_publisher_box(rect: pymupdf.Rect, blocks: list[Block]) -> bool:
    """A drawn box that holds the article's dates ("Received ... Accepted ... Published ..."): two of those
    words in the text inside it, and no figure would say so."""
    inside = " ".join(b.text for b in blocks if _inside_share(b.bbox, rect) > 0.8)
    return len({m.lower() for m in _PUBLISHER.findall(inside)}) >= 2


_SECTION = re.compile(r"^(\d+(\.\d+)*\.?|[IVX]+\.)\s+[A-Z]")


def _is_heading(block: Block, body: float) -> bool:
    """A section heading: one short line, larger than the body text or bold with a section number ("3. Results").
    Table cells are smaller or body-size, and a bold row inside a table carries no section number."""
    if len(block.lines) != 1 or block.chars > 80 or parse_label(block.text) is not None:
        return False
    return block.size >= body + 1 or (block.lines[0].bold and bool(_SECTION.match(block.text)))


def _beside(box, graphics):
    """Graphics beside a caption at the same height (captions set in the margin column)."""
    parts = []
    for g in graphics:
        vertical = max(0.0, min(g.y1, box.y1) - max(g.y0, box.y0))
        if vertical > 0.5 * min(box.height, g.height) and (g.x1 <= box.x0 + 4 or g.x0 >= box.x1 - 4):
            parts.append(g)
    return _union(parts)


def _starts_with_label(text: str) -> bool:
    """A plain text block starts with a caption label, maybe after lone panel letters."""
    lines = text.split("\n")
    return bool(CAPTION_LABEL.match("\n".join(lines[panel_lines(lines):])))


def detect(doc: pymupdf.Document) -> list[Detection]:
    """Every figure and table of the document (one detection per label, best occurrence).

    Only pages with a caption label are analysed (a quick look at their plain text blocks first): about half of
    a paper's pages have none, and the full layout analysis is most of the cost."""
    pages = []
    for page in doc:
        textpage = page.get_textpage(flags=pymupdf.TEXTFLAGS_TEXT)
        plain = page.get_text("blocks", textpage=textpage)
        if any(block[6] == 0 and _starts_with_label(block[4]) for block in plain):
            pages.append((page.number, text_blocks(page, textpage)))
    if not pages:
        return []
    pages_blocks = [blocks for _, blocks in pages]
    body = body_size(pages_blocks)
    running = running_lines(doc, pages_blocks, page_numbers=[number for number, _ in pages])
    found: dict[tuple[str, str], Detection] = {}
    unnumbered: list[Detection] = []
    for index, (page_no, blocks) in enumerate(pages):
        kept = []
        for block_no, block in enumerate(blocks):
            block.lines = [ln for i, ln in enumerate(block.lines) if (index, block_no, i) not in running]
            if block.lines:
                kept.append(block)
        turn = _orientation(doc[page_no], kept)
        upright = None if turn is None else turn[0]
        for detection in detect_page(doc[page_no], _turned(kept, upright), body, page_no, upright):
            if turn is not None:  # back to the page as a viewer shows it (render() crops there)
                detection.caption_box = detection.caption_box * turn[1]
                detection.region = None if detection.region is None else detection.region * turn[1]
            key = (detection.fig_type, detection.name)
            if not detection.name:
                unnumbered.append(detection)
            elif key not in found or detection.score > found[key].score:
                found[key] = detection
    _number(unnumbered, found)
    return sorted(found.values(), key=lambda d: (d.page, d.caption_box.y0, d.caption_box.x0))


def _orientation(page: pymupdf.Page, blocks: list[Block]) -> tuple[pymupdf.Matrix, pymupdf.Matrix] | None:
    """(unrotated space -> a space where the page's text reads left to right, that space -> the page as shown)
    for a page shown turned (/Rotate) or whose text runs sideways (a landscape table turned onto a portrait
    page); None for an upright page, the usual case (nothing to turn)."""
    directions: Counter = Counter()
    for block in blocks:
        for line in block.lines:
            directions[round(line.dir[0]), round(line.dir[1])] += len(line.text)
    main = directions.most_common(1)[0][0] if directions else (1, 0)
    if page.rotation == 0 and main == (1, 0):
        return None
    shown = page.rotation_matrix
    vector = pymupdf.Point(main) * shown - pymupdf.Point(0, 0) * shown  # the text direction as shown
    angle = next(a for a in (0, 90, 180, 270) if abs(pymupdf.Point(vector) * pymupdf.Matrix(a) - (1, 0)) < 0.1)
    turn = pymupdf.Matrix(angle)
    corner = page.rect * turn
    turn = turn * pymupdf.Matrix(1, 0, 0, 1, -corner.x0, -corner.y0)
    return shown * turn, ~turn


def _turned(blocks: list[Block], matrix: pymupdf.Matrix | None) -> list[Block]:
    """The blocks with their boxes (and their lines' boxes) transformed by `matrix`."""
    if matrix is None:
        return blocks
    return [Block(block.bbox * matrix, [replace(line, bbox=Box(*(pymupdf.Rect(line.bbox) * matrix)))
                                        for line in block.lines]) for block in blocks]


def _number(unnumbered: list[Detection], found: dict[tuple[str, str], Detection]) -> None:
    """Names for unnumbered figures ("Figure:"): their order in the paper ("1", "2"), or "U1", "U2" where the
    paper numbers others of the same kind (so none takes a numbered one's name)."""
    for kind in ("Figure", "Table"):
        items = [d for d in unnumbered if d.fig_type == kind]
        prefix = "U" if any(k == kind for k, _ in found) else ""
        for i, detection in enumerate(items, 1):
            detection.name = f"{prefix}{i}"
            found[kind, detection.name] = detection


def _png_params() -> list[int]:
    """Fast PNG settings: deflate level 1 with the RLE strategy and the 'up' row filter (OpenCV >= 4.10) is
    3x faster than MuPDF's default encoder on rendered pages and no larger (1.2 Mpx crop: 56 ms vs 190 ms)."""
    params = [cv2.IMWRITE_PNG_COMPRESSION, 1, cv2.IMWRITE_PNG_STRATEGY, cv2.IMWRITE_PNG_STRATEGY_RLE]
    if hasattr(cv2, "IMWRITE_PNG_FILTER"):
        params += [cv2.IMWRITE_PNG_FILTER, cv2.IMWRITE_PNG_FILTER_UP]
    return params


def render(page: pymupdf.Page, region: pymupdf.Rect, dpi: int) -> tuple[bytes, int, int]:
    """The region as RGB PNG bytes."""
    pixmap = page.get_pixmap(clip=region, dpi=dpi, alpha=False, colorspace=pymupdf.csRGB)
    image = np.frombuffer(pixmap.samples, dtype=np.uint8).reshape(pixmap.height, pixmap.width, 3)
    ok, encoded = cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), _png_params())
    if not ok:
        raise RuntimeError("PNG encoding failed")
    return encoded.tobytes(), pixmap.width, pixmap.height
