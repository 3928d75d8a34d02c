"""Page layout facts shared by the converter and the figure extractor (PyMuPDF).

- text blocks with their lines, font size and boldness;
- the body font size of the document (the most common size, weighted by characters);
- running headers and footers (margin lines that repeat across pages, and page numbers);
- graphics: embedded image boxes and clusters of vector drawings;
- caption labels: "Fig. 3", "Figure 3", "FIGURE 3", "Table 2", "Supplementary Figure S1", ...
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import NamedTuple

import pymupdf

from ..labels import CAPTION_START

# A caption label at the start of a block. Group 'sep' is the delimiter after the number: captions have one
# ("Figure 3." "Fig. 3:" "Table 2 |"), body sentences that start with a label usually do not ("Figure 3 shows").
CAPTION_LABEL = re.compile(
    rf"^\s*{CAPTION_START}\s*(?P<name>S?\d+|[IVX]+)(?P<panel>[A-Za-z](?![a-z]))?\s*(?P<sep>[.:|\u2014\u2013-]|\s{{2,}})?",
)
ROMAN = {"I": 1, "II": 2, "III": 3, "IV": 4, "V": 5, "VI": 6, "VII": 7, "VIII": 8, "IX": 9, "X": 10}


def parse_label(text: str) -> tuple[str, str, bool] | None:
    """(figType, name, has_delimiter) of a caption-like label at the start of `text`, else None."""
    match = CAPTION_LABEL.match(text)
    if not match:
        return None
    kind = "Table" if match["kind"].lower().startswith("tab") else "Figure"
    name = match["name"]
    if name in ROMAN:
        name = str(ROMAN[name])
    elif not name.isdigit() and not name.startswith("S"):
        return None
    if match["supp"] and not name.startswith("S"):
        name = "S" + name
    return kind, name, bool(match["sep"])


class Box(NamedTuple):
    """A line's box as plain floats (pymupdf.Rect objects for 100,000s of lines cost ~1 s per 150 pages)."""

    x0: float
    y0: float
    x1: float
    y1: float

    @property
    def width(self) -> float:
        return self.x1 - self.x0

    @property
    def height(self) -> float:
        return self.y1 - self.y0


@dataclass
class Line:
    text: str
    bbox: Box
    size: float
    bold: bool
    first_span_bold: bool


@dataclass
class Block:
    bbox: pymupdf.Rect
    lines: list[Line] = field(default_factory=list)

    @property
    def text(self) -> str:
        return " ".join(line.text for line in self.lines).strip()

    @property
    def size(self) -> float:
        sizes = Counter()
        for line in self.lines:
            sizes[round(line.size, 1)] += len(line.text)
        return sizes.most_common(1)[0][0] if sizes else 0.0

    @property
    def chars(self) -> int:
        return sum(len(line.text) for line in self.lines)


_BOLD_FONT = re.compile(r"(bold|black|heavy|semibold|demi)|[.,-](b|bd|bol)$|-?bd$", re.I)


def _is_bold(span: dict) -> bool:
    return bool(span["flags"] & 16) or bool(_BOLD_FONT.search(span["font"]))


def text_blocks(page: pymupdf.Page, textpage: pymupdf.TextPage | None = None) -> list[Block]:
    """Text blocks of a page (lines keep their font size and boldness)."""
    blocks = []
    for raw in page.get_text("dict", flags=pymupdf.TEXTFLAGS_TEXT, textpage=textpage)["blocks"]:
        if raw.get("type") != 0:
            continue
        block = Block(pymupdf.Rect(raw["bbox"]))
        for raw_line in raw["lines"]:
            spans = [s for s in raw_line["spans"] if s["text"].strip()]
            if not spans:
                continue
            text = "".join(s["text"] for s in raw_line["spans"]).strip()
            chars = sum(len(s["text"]) for s in spans)
            size = sum(s["size"] * len(s["text"]) for s in spans) / max(1, chars)
            bold = sum(len(s["text"]) for s in spans if _is_bold(s)) > 0.6 * chars
            block.lines.append(Line(text, Box(*raw_line["bbox"]), size, bold, _is_bold(spans[0])))
        if block.lines:
            blocks.append(block)
    return blocks


def body_size(pages_blocks: list[list[Block]]) -> float:
    sizes: Counter = Counter()
    for blocks in pages_blocks:
        for block in blocks:
            for line in block.lines:
                sizes[round(line.size)] += len(line.text)
    return float(sizes.most_common(1)[0][0]) if sizes else 10.0


_DIGITS = re.compile(r"\d+")
_PAGE_NUMBER = re.compile(r"^(page\s*)?\d{1,4}(\s*(of|/)\s*\d{1,4})?$", re.I)


def running_lines(doc: pymupdf.Document, pages_blocks: list[list[Block]], margin: float = 0.09,
                  page_numbers: list[int] | None = None) -> set[tuple[int, int, int]]:
    """(index in pages_blocks, block, line) of running headers/footers and page numbers in the top/bottom
    margins. `page_numbers`: the document page of each entry of pages_blocks (default: all pages in order)."""
    counts: Counter = Counter()
    candidates = []
    for page_no, blocks in enumerate(pages_blocks):
        height = doc[page_numbers[page_no] if page_numbers else page_no].rect.height
        for block_no, block in enumerate(blocks):
            for line_no, line in enumerate(block.lines):
                if line.bbox.y1 < height * margin or line.bbox.y0 > height * (1 - margin):
                    key = _DIGITS.sub("#", line.text.lower()).strip()
                    candidates.append((page_no, block_no, line_no, key, line.text.strip()))
                    counts[key] += 1
    pages = len(pages_blocks)
    result = set()
    for page_no, block_no, line_no, key, text in candidates:
        repeated = pages >= 2 and counts[key] >= max(2, pages // 2)
        if repeated or _PAGE_NUMBER.match(text):
            result.add((page_no, block_no, line_no))
    return result


def cluster_rects(rects: list, tolerance: float = 4.0) -> list[pymupdf.Rect]:
    """Union rectangles that touch or lie within `tolerance` of each other (single linkage). Works on plain
    floats: pymupdf.Rect arithmetic in Python was the bottleneck on pages with tens of thousands of paths."""
    clusters: list[list[float]] = []
    for x0, y0, x1, y1 in sorted((tuple(r) for r in rects), key=lambda r: (r[1], r[0])):
        for cluster in clusters:
            if x0 - tolerance <= cluster[2] and cluster[0] <= x1 + tolerance and \
                    y0 - tolerance <= cluster[3] and cluster[1] <= y1 + tolerance:
                cluster[0], cluster[1] = min(cluster[0], x0), min(cluster[1], y0)
                cluster[2], cluster[3] = max(cluster[2], x1), max(cluster[3], y1)
                break
        else:
            clusters.append([x0, y0, x1, y1])
    merged = True
    while merged:  # clusters that grew into each other
        merged = False
        for i in range(len(clusters)):
            for j in range(len(clusters) - 1, i, -1):
                a, b = clusters[i], clusters[j]
                if b[0] - tolerance <= a[2] and a[0] <= b[2] + tolerance and \
                        b[1] - tolerance <= a[3] and a[1] <= b[3] + tolerance:
                    clusters[i] = [min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3])]
                    del clusters[j]
                    merged = True
    return [pymupdf.Rect(c) for c in clusters]


_VECTOR = {"fill-path", "stroke-path", "fill-shade"}


def page_graphics(page: pymupdf.Page, min_side: float = 2.0) -> tuple[list[pymupdf.Rect], list[pymupdf.Rect]]:
    """(raster image boxes, clusters of vector drawings) of a page, clipped to the page.

    Uses the page's bbox log (one C call) rather than get_drawings(), which builds Python objects for every path
    and took two thirds of the run time on plot-heavy papers."""
    page_rect = page.rect
    page_area = page_rect.get_area()
    px0, py0, px1, py1 = page_rect
    images, paths = [], []
    for kind, (x0, y0, x1, y1) in page.get_bboxlog():
        x0, y0, x1, y1 = max(x0, px0), max(y0, py0), min(x1, px1), min(y1, py1)
        if x1 <= x0 and y1 <= y0:
            continue
        if kind == "fill-image":
            if x1 - x0 > min_side and y1 - y0 > min_side:
                images.append(pymupdf.Rect(x0, y0, x1, y1))
        elif kind in _VECTOR and (x1 - x0) * (y1 - y0) < 0.95 * page_area:  # a page background is not a figure
            paths.append((x0, y0, x1, y1))
    clusters = [c for c in cluster_rects(paths) if c.width > min_side or c.height > min_side]
    return images, clusters


def graphics_rects(page: pymupdf.Page) -> list[pymupdf.Rect]:
    """Boxes of embedded images and of clustered vector drawings on a page."""
    images, clusters = page_graphics(page)
    return images + clusters
