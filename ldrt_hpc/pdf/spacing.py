"""Word spaces rebuilt from glyph gaps, for text layers that place each word by position without space glyphs.

Some PDFs draw every word at its own position and never draw a space, so the text reads
"Giantpandamilkproteins". MuPDF adds a space itself only where the gap between two glyphs exceeds 0.15 of the
font size (its SPACE_DIST); narrower word gaps (tight justification, negative tracking) come out run together.
Here such a line gets a space wherever the gap to the previous glyph is clearly wider than the line's usual
gap between letters.

Only lines that look run together are rebuilt (`needs_respace`: long, almost no spaces), so text that already
has normal spaces is never touched and the per-character work (a "rawdict" extraction) is done only on the rare
pages that need it.
"""

from __future__ import annotations

from itertools import pairwise
from statistics import median

import pymupdf

# A line is a candidate when it has at least MIN_CHARS characters, fewer than one space per SPACE_EVERY
# characters (prose has about one per 6), and reads like words run together: at least LOWER_SHARE lower-case
# letters and no "/" or "@". The last test keeps URLs, DOIs and e-mail addresses out: on the corpus they made 60
# of 149 pages extract "rawdict" (+12 ms a page) for nothing; with it, 4 pages do, all of them run together.
# Being a candidate splits nothing by itself: a single real word ("immunohistochemistry") has no wide gaps.
MIN_CHARS = 20
SPACE_EVERY = 30
LOWER_SHARE = 0.6

# A gap is a word gap when it exceeds the line's median letter gap by WORD_GAP_EM of the font size. Letter gaps
# are ~0 (a glyph's box is its advance) give or take kerning (< 0.03 em); MuPDF spaces gaps from about 0.15 em
# itself (measured its own way: the corpus paper's unspaced word gaps are 0.155 em by glyph boxes), so what is
# left lies at or below ~0.16 em; 0.06 em sits well above kerning noise and below those word gaps.
WORD_GAP_EM = 0.06

# Never a word gap, whatever its width: before closing punctuation, after opening punctuation, either side of a
# dash. Their glyphs have wide side bearings (an en dash in "219–226" sits 0.12 em from its digits in one corpus
# paper, the run-together paper's word gaps are 0.155 em), so width alone cannot tell them apart.
NO_SPACE_BEFORE = frozenset(",.;:!?)]}%'\u2019\u201d-\u2010\u2011\u2013\u2014")
NO_SPACE_AFTER = frozenset("([{/\u2018\u201c-\u2010\u2011\u2013\u2014")

# On a page whose long lines did turn out run together, shorter lines without a space (a paragraph's last line,
# "inthestudy.") are rebuilt too; elsewhere short space-free lines are real single words and stay unread.
SHORT_MIN_CHARS = 6


def needs_respace(text: str) -> bool:
    """Cheap test: a long line with (almost) no spaces that reads like prose. Everything else is left as extracted.
    The counting runs in C; the per-character share only for the rare lines that pass it."""
    text = text.strip()
    if len(text) < MIN_CHARS or text.count(" ") * SPACE_EVERY >= len(text) or "/" in text or "@" in text:
        return False
    return sum(c.islower() for c in text) >= LOWER_SHARE * len(text)


def respace_chars(chars: list[tuple[str, float, float, float]]) -> str:
    """Text of one horizontal line from its glyphs (character, x0, x1, font size), in order, with a space
    inserted where the gap to the previous glyph is a word gap (see WORD_GAP_EM)."""
    gaps = [cur[1] - prev[2] for prev, cur in pairwise(chars) if not prev[0].isspace() and not cur[0].isspace()]
    if not gaps:
        return "".join(c[0] for c in chars)
    # the median gap is the letter gap: most neighbouring glyphs lie inside a word (this also absorbs tracking)
    letter_gap = median(gaps)
    out = [chars[0][0]]
    for prev, cur in pairwise(chars):
        if (not prev[0].isspace() and not cur[0].isspace()
                and cur[0] not in NO_SPACE_BEFORE and prev[0] not in NO_SPACE_AFTER
                and cur[1] - prev[2] - letter_gap > WORD_GAP_EM * max(prev[3], cur[3])):
            out.append(" ")
        out.append(cur[0])
    return "".join(out)


def respace_line(raw_line: dict, force: bool = False) -> str:
    """Text of a PyMuPDF "rawdict" line (spans with "chars"), with word spaces rebuilt if it needs them (or, with
    `force`, whenever its gaps say so). Returned stripped, like layout.text_blocks' line text. Non-horizontal
    lines are returned as extracted."""
    chars = [(ch["c"], ch["bbox"][0], ch["bbox"][2], span["size"])
             for span in raw_line["spans"] for ch in span["chars"]]
    text = "".join(c[0] for c in chars)
    dx, dy = raw_line.get("dir", (1.0, 0.0))
    if not (force or needs_respace(text)) or dx < 0.99 or abs(dy) > 0.01:
        return text.strip()
    return respace_chars(chars).strip()


def respace_blocks(page: pymupdf.Page, blocks: list, textpage: pymupdf.TextPage | None = None) -> list:
    """Rebuild word spaces in the lines of layout.text_blocks(page, textpage) that need it (in place; returns
    `blocks`). The page's "rawdict" is extracted only if some line needs it; lines are matched to it by their box,
    which is the same in both extractions (same page, same flags, or the same textpage)."""
    todo = [line for block in blocks for line in block.lines if needs_respace(line.text)]
    if not todo:
        return blocks
    raw_lines = {}
    for raw in page.get_text("rawdict", flags=pymupdf.TEXTFLAGS_TEXT, textpage=textpage)["blocks"]:
        for raw_line in raw.get("lines", ()):
            raw_lines[tuple(raw_line["bbox"])] = raw_line
    run_together = False
    for line in todo:
        raw_line = raw_lines.get(tuple(line.bbox))
        if raw_line is not None:
            text = respace_line(raw_line)
            run_together |= text != line.text
            line.text = text
    if run_together:
        for block in blocks:
            for line in block.lines:
                if len(line.text) >= SHORT_MIN_CHARS and " " not in line.text and tuple(line.bbox) in raw_lines:
                    line.text = respace_line(raw_lines[tuple(line.bbox)], force=True)
    return blocks
