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

import cv2
import numpy as np
import pymupdf

from ..labels import CAPTION_NUMBER, CAPTION_START, NUMBER_LINK, UNNUMBERED_END
from .spacing import respace_blocks

# A caption label at the start of a block. Group 'sep' is the delimiter after the number: captions have one
# ("Figure 3." "Fig. 3:" "Table 2 |"), body sentences that start with a label usually do not ("Figure 3 shows").
# Group 'bare' is the delimiter of an unnumbered label ("Figure:", "Figure. Trial profile").
CAPTION_LABEL = re.compile(
    rf"^\s*{CAPTION_START}(?:{NUMBER_LINK}(?P<name>{CAPTION_NUMBER})(?P<panel>[A-Za-z](?![a-z]))?"
    rf"\s*(?P<sep>[.:|\u2014\u2013-]|\s{{2,}})?|(?P<bare>{UNNUMBERED_END}))",
)
ROMAN = {"I": 1, "II": 2, "III": 3, "IV": 4, "V": 5, "VI": 6, "VII": 7, "VIII": 8, "IX": 9, "X": 10}
_PANEL_LINE = re.compile(r"^\s*\(?[A-Za-z]\)?\s*$")
"""A line that is one panel letter ("A", "(b)"): extracted from a figure into its caption's block, above the label."""


class Label(NamedTuple):
    fig_type: str
    name: str
    """The number ("3", "S1"; roman table numbers as arabic); "" for an unnumbered label ("Figure:")."""
    delimited: bool
    capitals: bool
    """The label word is in capitals and what follows is not a lower-case word ("FIGURE 1 Flow chart"): running
    text does not write it so ("FIGURE 2 shows" is a sentence all the same)."""
    end: int
    """Where the label (with its delimiter) ends in the text."""


def caption_label(text: str) -> Label | None:
    """The caption-like label at the start of `text`, else None."""
    match = CAPTION_LABEL.match(text)
    if not match:
        return None
    word = match["kind"]
    kind = "Table" if word.lower().startswith("tab") else "Figure"
    name = match["name"]
    follows_lower = text[match.end():].lstrip()[:1].islower()
    if name is None:  # unnumbered ("Figure:")
        return Label(kind, "", True, word.isupper(), match.end())
    if name in ROMAN:
        name = str(ROMAN[name])
    elif not name.isdigit() and not name.startswith("S"):
        return None
    if match["supp"] and not name.startswith("S"):
        name = "S" + name
    return Label(kind, name, bool(match["sep"]), word.isupper() and not follows_lower, match.end())


def parse_label(text: str) -> tuple[str, str, bool] | None:
    """(figType, name, has_delimiter) of a caption-like label at the start of `text`, else None."""
    label = caption_label(text)
    return None if label is None else (label.fig_type, label.name, label.delimited)


def panel_lines(lines: list[str]) -> int:
    """How many leading lines are lone panel letters ("A", "B" above "Fig. 2. ..."), keeping the last line."""
    count = 0
    while count < len(lines) - 1 and _PANEL_LINE.match(lines[count]):
        count += 1
    return count


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
    dir: tuple[float, float] = (1.0, 0.0)
    """The writing direction in unrotated page space ((0, -1): text runs up, a table turned onto its page)."""
    font: str = ""
    """The font of the line's longest span."""


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
    def font(self) -> str:
        fonts = Counter()
        for line in self.lines:
            fonts[line.font] += len(line.text)
        return fonts.most_common(1)[0][0] if fonts else ""

    @property
    def chars(self) -> int:
        return sum(len(line.text) for line in self.lines)


_BOLD_FONT = re.compile(r"(bold|black|heavy|semibold|demi)|[.,-](b|bd|bol)$|-?bd$", re.I)


def _is_bold(span: dict) -> bool:
    return bool(span["flags"] & 16) or bool(_BOLD_FONT.search(span["font"]))


_SUBSET = re.compile(r"^[A-Z]{6}\+")
_FORCE_BOLD = 1 << 18
BOLD_WEIGHT, BOLD_STEM = 600, 120
"""A font descriptor's /FontWeight from which a font is bold, and its /StemV (the vertical stem width in glyph
units: about 80-90 in regular text faces, 130-160 in their bold ones)."""


def _number(doc: pymupdf.Document, xref: int, key: str) -> float:
    kind, value = doc.xref_get_key(xref, key)
    return float(value) if kind in ("int", "real") else 0.0


def _descriptor(doc: pymupdf.Document, xref: int) -> int:
    """The xref of a font's descriptor (a Type0 font keeps it in its descendant font); 0 if there is none."""
    kind, value = doc.xref_get_key(xref, "DescendantFonts")
    if kind == "array" and value.strip("[] ").endswith("R"):
        xref = int(value.strip("[] ").split()[0])
    kind, value = doc.xref_get_key(xref, "FontDescriptor")
    return int(value.split()[0]) if kind == "xref" else 0


def bold_fonts(page: pymupdf.Page) -> frozenset[str]:
    """Names (as spans give them) of the page's fonts whose descriptor says bold where the name and MuPDF's flags
    do not: a subset font named like "AdvPECFD36" sets caption labels in bold that would otherwise read as body."""
    doc, names = page.parent, set()
    for xref, _, _, basefont, *_ in page.get_fonts():
        descriptor = _descriptor(doc, xref) if xref else 0
        if descriptor and (_number(doc, descriptor, "FontWeight") >= BOLD_WEIGHT
                           or _number(doc, descriptor, "StemV") >= BOLD_STEM
                           or int(_number(doc, descriptor, "Flags")) & _FORCE_BOLD):
            names.add(_SUBSET.sub("", basefont))
    return frozenset(names)


HEAVIER = 1.25
"""How much wider a label's glyph strokes must be than those of the text after it to count as bold: measured so,
bold over regular is 1.43 in Times, 1.52 in Helvetica, 1.96 in Courier at 6-16 pt; two regular spans 0.9-1.1."""


def stroke_width(page: pymupdf.Page, rect: tuple, size: float) -> float:
    """The mean stroke width (pixels at 60 px per em) of the glyphs in `rect` (unrotated page space): twice the
    ink area over the ink's outline length, which does not depend on how many letters there are."""
    zoom = 60.0 / max(size, 1.0)
    clip = pymupdf.Rect(rect) * page.rotation_matrix & page.rect
    if clip.is_empty or clip.width * zoom < 3 or clip.height * zoom < 3 or clip.get_area() * zoom * zoom > 4e6:
        return 0.0  # nothing to measure (or a span box gone wrong: no page-sized render for one label)
    pixmap = page.get_pixmap(clip=clip, matrix=pymupdf.Matrix(zoom, zoom), colorspace=pymupdf.csGRAY, alpha=False)
    gray = np.frombuffer(pixmap.samples, dtype=np.uint8).reshape(pixmap.height, pixmap.stride)[:, :pixmap.width]
    ink = (gray < 128).astype(np.uint8)
    outline = int(ink.sum()) - int(cv2.erode(ink, np.ones((3, 3), np.uint8)).sum())
    return 2.0 * float(ink.sum()) / outline if outline else 0.0


def _heavier(page: pymupdf.Page, label: dict, rest: dict) -> bool:
    """The label span is drawn in visibly heavier strokes than the span after it (a bold face whose name, flags
    and descriptor all hide its weight). Text after it that draws no ink (an OCR layer, white text) proves
    nothing."""
    rest_width = stroke_width(page, rest["bbox"], rest["size"])
    return rest_width > 0 and stroke_width(page, label["bbox"], label["size"]) >= HEAVIER * rest_width


def text_blocks(page: pymupdf.Page, textpage: pymupdf.TextPage | None = None) -> list[Block]:
    """Text blocks of a page (lines keep their font size and boldness)."""
    blocks = []
    heavy: frozenset[str] | None = None  # page.get_fonts() costs ~0.6 ms a page: only asked for a caption label
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
            first_bold = _is_bold(spans[0])
            if not first_bold and CAPTION_LABEL.match(text):  # a label in a bold face whose name hides it
                heavy = bold_fonts(page) if heavy is None else heavy
                first_bold = spans[0]["font"] in heavy
                if not first_bold and len(spans) > 1 and spans[1]["font"] != spans[0]["font"]:
                    first_bold = _heavier(page, spans[0], spans[1])  # the last resort: the glyphs themselves
            font = spans[0]["font"] if len(spans) == 1 else max(spans, key=lambda s: len(s["text"]))["font"]
            block.lines.append(Line(text, Box(*raw_line["bbox"]), size, bold, first_bold, tuple(raw_line["dir"]), font))
        if block.lines:
            blocks.append(block)
    # text layers without space glyphs ("Giantpandamilkproteins"): rebuild word spaces from glyph gaps, only in
    # lines that look run together (pdf/spacing.py); other pages cost one cheap test per line
    return respace_blocks(page, blocks, textpage)


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
                    # page numbers change from page to page, caption labels do not repeat: "Figure 1" and
                    # "Figure 3" alone at the top of two pages (over page-wide figures) are no running header
                    text = line.text.lower()
                    key = text.strip() if CAPTION_LABEL.match(line.text) else _DIGITS.sub("#", text).strip()
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

    Boxes are in the page's unrotated space (as text extraction gives them). More than SLIVERS image strips too
    thin to count alone are one picture cut into tiles: they come back joined.

    Uses the page's bbox log (one C call) rather than get_drawings(), which builds Python objects for every path
    and took two thirds of the run time on plot-heavy papers."""
    page_rect = page.rect * page.derotation_matrix  # the bbox log is in unrotated space, page.rect is not
    page_area = page_rect.get_area()
    px0, py0, px1, py1 = page_rect
    images, paths, slivers = [], [], []
    for kind, (x0, y0, x1, y1) in page.get_bboxlog():
        x0, y0, x1, y1 = max(x0, px0), max(y0, py0), min(x1, px1), min(y1, py1)
        if x1 <= x0 and y1 <= y0:
            continue
        if kind == "fill-image":
            if x1 - x0 > min_side and y1 - y0 > min_side:
                images.append(pymupdf.Rect(x0, y0, x1, y1))
            else:
                slivers.append((x0, y0, x1, y1))
        elif kind in _VECTOR and (x1 - x0) * (y1 - y0) < 0.95 * page_area:  # a page background is not a figure
            paths.append((x0, y0, x1, y1))
    clusters = [c for c in cluster_rects(paths) if c.width > min_side or c.height > min_side]
    if len(slivers) > SLIVERS:  # one raster cut into strips: the strips together are the image
        images += [c for c in cluster_rects(slivers, tolerance=1.0) if c.width > min_side and c.height > min_side]
    return images, clusters


SLIVERS = 100
"""More thin image strips than this on a page are tiles of one picture, not stray marks (a few hairline
images, such as rules drawn as 1-pixel rasters, stay out)."""


def graphics_rects(page: pymupdf.Page) -> list[pymupdf.Rect]:
    """Boxes of embedded images and of clustered vector drawings on a page."""
    images, clusters = page_graphics(page)
    return images + clusters
