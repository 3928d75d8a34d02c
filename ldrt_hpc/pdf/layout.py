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

import pymupdf

# A caption label at the start of a block. Group 'sep' is the delimiter after the number: captions have one
# ("Figure 3." "Fig. 3:" "Table 2 |"), body sentences that start with a label usually do not ("Figure 3 shows").
CAPTION_LABEL = re.compile(
    r"^\s*(?P<supp>Supplementa(?:ry|l)\s+)?(?P<kind>Fig(?:ure)?s?\.?|FIG(?:URE)?S?\.?|Table|TABLE)\s*"
    r"(?P<name>S?\d+|[IVX]+)(?P<panel>[A-Za-z](?![a-z]))?\s*(?P<sep>[.:|\u2014\u2013-]|\s{2,})?",
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


@dataclass
class Line:
    text: str
    bbox: pymupdf.Rect
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


def text_blocks(page: pymupdf.Page) -> list[Block]:
    """Text blocks of a page (lines keep their font size and boldness)."""
    blocks = []
    for raw in page.get_text("dict", flags=pymupdf.TEXTFLAGS_TEXT)["blocks"]:
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
            block.lines.append(Line(text, pymupdf.Rect(raw_line["bbox"]), size, bold, _is_bold(spans[0])))
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


def running_lines(doc: pymupdf.Document, pages_blocks: list[list[Block]], margin: float = 0.09) -> set[tuple[int, int, int]]:
    """(page, block, line) indices of running headers/footers and page numbers in the top/bottom margins."""
    counts: Counter = Counter()
    candidates = []
    for page_no, blocks in enumerate(pages_blocks):
        height = doc[page_no].rect.height
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


def image_rects(page: pymupdf.Page) -> list[pymupdf.Rect]:
    """Boxes of the embedded raster images of a page."""
    return [pymupdf.Rect(info["bbox"]) & page.rect for info in page.get_image_info()]


def graphics_rects(page: pymupdf.Page, min_side: float = 2.0) -> list[pymupdf.Rect]:
    """Boxes of embedded images and of clustered vector drawings on a page (clipped to the page)."""
    page_rect = page.rect
    rects = []
    for info in page.get_image_info():
        rect = pymupdf.Rect(info["bbox"]) & page_rect
        if not rect.is_empty and rect.width > min_side and rect.height > min_side:
            rects.append(rect)
    try:
        clusters = page.cluster_drawings(x_tolerance=4, y_tolerance=4)
    except Exception:  # noqa: BLE001 - a broken drawing list must not stop the page
        clusters = []
    for rect in clusters:
        rect = pymupdf.Rect(rect) & page_rect
        # a page-sized background or a lone rule is not a figure
        if rect.is_empty or rect.width * rect.height > 0.95 * page_rect.width * page_rect.height:
            continue
        if rect.width > min_side or rect.height > min_side:
            rects.append(rect)
    return rects
