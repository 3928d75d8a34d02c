"""PDF -> Markdown, the `native` backend: PyMuPDF text blocks put in reading order.

Keeps two-column reading order (left column, then right, between full-width blocks), marks headings (larger or
bold short blocks), joins words hyphenated across line ends, drops running headers/footers and page numbers and
the text inside figures (axis labels), and keeps each figure/table caption as its own paragraph.
"""

from __future__ import annotations

import re

import pymupdf

from .layout import Block, body_size, graphics_rects, parse_label, running_lines, text_blocks

_SENTENCE_END = re.compile(r"[.!?:;)\]\"']$")


def reading_order(blocks: list[Block], page_rect: pymupdf.Rect) -> list[Block]:
    """Blocks in reading order: segments separated by full-width blocks; in each, the left column then the right."""
    if not blocks:
        return []
    left_edge = min(b.bbox.x0 for b in blocks)
    right_edge = max(b.bbox.x1 for b in blocks)
    mid = (left_edge + right_edge) / 2
    slack = 0.02 * page_rect.width

    def column(block: Block) -> str:
        if block.bbox.x1 <= mid + slack:
            return "left"
        if block.bbox.x0 >= mid - slack:
            return "right"
        return "full"

    ordered: list[Block] = []
    segment: list[Block] = []

    def flush() -> None:
        ordered.extend(sorted((b for b in segment if column(b) == "left"), key=lambda b: (b.bbox.y0, b.bbox.x0)))
        ordered.extend(sorted((b for b in segment if column(b) == "right"), key=lambda b: (b.bbox.y0, b.bbox.x0)))
        segment.clear()

    for block in sorted(blocks, key=lambda b: (b.bbox.y0, b.bbox.x0)):
        if column(block) == "full":
            flush()
            ordered.append(block)
        else:
            segment.append(block)
    flush()
    return ordered


def join_lines(lines: list[str]) -> str:
    """Join lines of a paragraph; a word hyphenated across a line end is joined ('irradi-' + 'ation')."""
    text = ""
    for line in lines:
        line = line.strip()
        if not line:
            continue
        if text.endswith("-") and len(text) > 1 and text[-2].isalpha() and line[:1].islower():
            text = text[:-1] + line
        elif text:
            text += " " + line
        else:
            text = line
    return re.sub(r"\s+", " ", text)


def _paragraphs(block: Block) -> list[list[str]]:
    """Split a block into paragraphs at vertical gaps larger than a line's height."""
    paragraphs: list[list[str]] = [[]]
    previous = None
    for line in block.lines:
        if previous is not None and line.bbox.y0 - previous.bbox.y1 > 0.8 * max(previous.bbox.height, 1):
            paragraphs.append([])
        paragraphs[-1].append(line.text)
        previous = line
    return [p for p in paragraphs if p]


def _inside(rect: pymupdf.Rect, container: pymupdf.Rect, share: float = 0.8) -> bool:
    overlap = rect & container
    return not overlap.is_empty and overlap.get_area() >= share * max(rect.get_area(), 1e-6)


def _page_blocks(page: pymupdf.Page) -> list[Block]:
    """Text blocks of a page (text_blocks rebuilds word spaces in run-together lines: pdf/spacing.py)."""
    return text_blocks(page, page.get_textpage(flags=pymupdf.TEXTFLAGS_TEXT))


def to_markdown(doc: pymupdf.Document) -> str:
    pages_blocks = [_page_blocks(page) for page in doc]
    body = body_size(pages_blocks)
    running = running_lines(doc, pages_blocks)
    title_size = max((b.size for b in pages_blocks[0]), default=0.0) if pages_blocks else 0.0
    paragraphs: list[str] = []
    last_body: int | None = None  # index of the last body paragraph (not a heading, not a caption)
    for page_no, blocks in enumerate(pages_blocks):
        page = doc[page_no]
        graphics = graphics_rects(page)
        kept = []
        for block_no, block in enumerate(blocks):
            block.lines = [ln for i, ln in enumerate(block.lines) if (page_no, block_no, i) not in running]
            if not block.lines:
                continue
            label = parse_label(block.text)
            is_caption = label is not None and label[2]
            # text inside a figure (axis labels, legends) is not prose; captions and body-size paragraphs stay.
            # Axis titles sit just outside the drawn paths: small text within 12 pt of a graphic is the figure's too.
            if not is_caption and any(_inside(block.bbox, g) for g in graphics):
                if block.size < body - 0.5 or block.chars < 120:
                    continue
            if not is_caption and block.size < body - 0.5 and block.chars < 120 and any(
                    _inside(block.bbox, pymupdf.Rect(g.x0 - 12, g.y0 - 12, g.x1 + 12, g.y1 + 12)) for g in graphics):
                continue
            kept.append(block)
        for block in reading_order(kept, page.rect):
            label = parse_label(block.text)
            is_caption = label is not None and label[2]
            heading = (
                not is_caption
                and len(block.lines) <= 3
                and block.chars < 150
                and not block.text.rstrip().endswith(".")
                and (block.size >= body + 1.5 or all(line.bold for line in block.lines))
            )
            if heading:
                level = "#" if page_no == 0 and block.size >= title_size - 0.1 and block.size > body + 2 else "##"
                paragraphs.append(f"{level} {join_lines([ln.text for ln in block.lines])}")
                last_body = None
                continue
            for lines in ([[ln.text for ln in block.lines]] if is_caption else _paragraphs(block)):
                text = join_lines(lines)
                if not text:
                    continue
                if is_caption:
                    paragraphs.append(text)
                    continue
                # a paragraph cut by a column or page break, or by a figure placed inside it, continues in
                # lowercase: join it back to the last body paragraph (captions in between stay where they are)
                previous = paragraphs[last_body] if last_body is not None else ""
                if previous and not _SENTENCE_END.search(previous) and text[:1].islower():
                    paragraphs[last_body] = join_lines([previous, text])
                else:
                    paragraphs.append(text)
                    last_body = len(paragraphs) - 1
    return "\n\n".join(paragraphs) + "\n"
