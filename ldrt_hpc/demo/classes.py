"""The caption-layout failure classes of issue 15 as generated papers (``synth_corpus(..., classes=True)``, CLI
``synth-corpus --classes``), and their per-class scoring.

With classes on, paper ``i`` exhibits ``CLASSES[i % len(CLASSES)]``; its ground truth carries ``failure_class``
(per paper, and per figure/table: the class when that float shows it, else None).  With classes off nothing here
is used and the corpus is byte-for-byte the default one.

* ``unnumbered``: every float labelled "Figure:" / "Table:"; names are the reading order (page, top, left), as a
  detector numbers unnumbered items;
* ``panel_letters``: panel letters ("A", "B") on their own lines at the top of the caption block, above the label;
* ``hyphenated``: "Figure-1:" / "Table-1:";
* ``roman_table``: the paper's table (always present) labelled "Table I" alone on its line, the legend below it;
* ``caps_no_delimiter``: "FIGURE 1 Flow chart ..." / "TABLE 1 ...", label in the regular body-caption font;
* ``label_above``: "Figure 1" alone on a line above the graphic, the legend in its own block below the graphic
  (``captionBoundary`` is the legend, ``labelBoundary`` the label line);
* ``no_spaces``: the text layer has no space glyphs: every word is drawn on its own, 0.1 em after the previous one
  (below the gap at which MuPDF inserts a space), in the body and in the captions;
* ``hidden_weight`` (issue class 1): "Figure 1 Flow chart ..." / "Table 1 Endpoint ..." without a delimiter, the
  whole caption in the body type size, the label in a bold face whose name, span flags and font descriptor hide
  the weight (`fonts`): only the glyph strokes are bold.

The region classes move one float of the paper onto a page of its own, appended after the flowed pages
(`region_classes`; that float alone shows the class; ``sections`` does not list the page's filler text):

* ``rotated`` (issue class 5): a landscape page with a wide table under its caption, or a wide figure over its
  caption; class papers 0, 4, 8, ... (counted within the class) show it with /Rotate 90, papers 2, 6, ... with
  /Rotate 270 and a figure, the odd ones as a sideways table on a portrait page (/Rotate 0, text running up or
  down).  Boxes are given as the page is shown (``page.rect`` of the rotated page, where
  ``get_pixmap(clip=...)`` crops);
* ``full_width_table`` (issue class 6, two-column papers): a table across both columns with its caption in the
  left column, paragraphs in both columns above it (the right one running on beside the caption) and below it,
  and a section heading right under it;
* ``publisher_box``: a stroked, grey box with "Received ... Accepted ... Published ..." under a figure, the
  figure's caption right under the box (the region is the figure only);
* ``multi_panel``: a figure of 3 or 4 separate raster panels 8-20 pt apart, sometimes with panel titles between
  the rows (the region is the union of the panels);
* ``slivers``: a figure drawn as more than 100 raster strips 1.2-2 pt tall, each its own image (the region is their
  union).
"""

from __future__ import annotations

from pathlib import Path

from .page import ASCENDER, BODY_TYPE, BOLD, CAPTION_LEADING, CAPTION_SIZE, HIDDEN_BOLD, REGULAR, Box, TextOp, text_width
from .typeset import Token, text_block, words

CLASSES = ["unnumbered", "panel_letters", "hyphenated", "roman_table", "caps_no_delimiter", "label_above",
           "no_spaces", "hidden_weight", "rotated", "full_width_table", "publisher_box", "multi_panel", "slivers"]
REGION_CLASSES = ("rotated", "full_width_table", "publisher_box", "multi_panel", "slivers")
TABLE_CLASSES = ("roman_table", "rotated", "full_width_table")
"""Classes whose papers always have a table (the float that shows the class, or may)."""
TWO_COLUMN_CLASSES = ("full_width_table",)
NO_SPACE_GAP = 0.1  # em between words of the no_spaces class
ROMAN = ["I", "II", "III", "IV", "V"]


def paper_class(index: int, classes: bool) -> str | None:
    return CLASSES[index % len(CLASSES)] if classes else None


def class_round(index: int) -> int:
    """How many papers of the same class come before paper `index` (variants alternate on it)."""
    return index // len(CLASSES)


def caption_type(style: str | None, two_columns: bool) -> tuple[float, float]:
    """Type size and leading of the captions: the body's in the hidden_weight class."""
    return BODY_TYPE[two_columns] if style == "hidden_weight" else (CAPTION_SIZE, CAPTION_LEADING)


def figure_label(style: str | None, fig_type: str, number: int) -> tuple[str, str, bool]:
    """The label as printed, its font, and whether it sits alone on its own line (legend below it)."""
    word = fig_type
    if style == "unnumbered":
        return f"{word}:", BOLD, False
    if style == "hyphenated":
        return f"{word}-{number}:", BOLD, False
    if style == "caps_no_delimiter":
        return f"{word.upper()} {number}", REGULAR, False
    if style == "hidden_weight":
        return f"{word} {number}", HIDDEN_BOLD, False
    if style == "label_above" and fig_type == "Figure":
        return f"{word} {number}", BOLD, True
    if style in ("roman_table", "label_above") and fig_type == "Table":
        return f"{word} {ROMAN[number - 1] if style == 'roman_table' else number}", BOLD, True
    return f"{word} {number}.", BOLD, False


def shows_class(style: str | None, fig_type: str) -> bool:
    """Whether a float of this type in a paper of this class exhibits the class."""
    if style is None or style in REGION_CLASSES:  # there the float moved onto the class's page shows it
        return False
    if style == "roman_table":
        return fig_type == "Table"
    if style == "panel_letters":
        return fig_type == "Figure"
    return True


def label_then_text(label: Token, text: list[Token], width: float, top: float) -> tuple[list[TextOp], Box, Box]:
    """A label alone on its line at `top`, the text's lines one leading below: ops, label box and text box."""
    label_ops, label_box = text_block([label], CAPTION_SIZE, CAPTION_LEADING, width, 0.0, top)
    text_top = label_ops[0].baseline + CAPTION_LEADING - ASCENDER[REGULAR] * CAPTION_SIZE
    text_ops, text_box = text_block(text, CAPTION_SIZE, CAPTION_LEADING, width, 0.0, text_top)
    return label_ops + text_ops, label_box, text_box


def label_tokens(label: str, font: str) -> list[Token]:
    return words(label, font)


# ------------------------------------------------------------------------------------------------ no_spaces

def squeeze_spaces(op: TextOp) -> TextOp:
    """The line with every word as its own run, 0.1 em after the previous word: no space glyph is drawn.  A run
    more than 0.7 em after the previous one (a table cell; justified word gaps stay under 0.6 em) keeps its x."""
    runs: list[tuple[float, str, str]] = []
    x = end = None
    for start, text, font in op.runs:
        if end is None or start - end > 0.7 * op.size:
            x = start
        end = start + text_width(text, font, op.size)
        for word in text.split(" "):
            if word:
                runs.append((x, word, font))
                x += text_width(word, font, op.size) + NO_SPACE_GAP * op.size
    return TextOp(op.baseline, op.size, runs)


def squeezed_end(op: TextOp) -> float:
    x, text, font = op.runs[-1]
    return x + text_width(text, font, op.size)


# ------------------------------------------------------------------------------------------------ scoring

def class_scores(folder: Path, truth: list[dict]) -> dict[str, dict]:
    """Per class ("default" for floats that show none): caption recall, share of regions with IoU >= 0.7 and
    false detections (those of a paper count for the paper's class), as `evaluate.summarise` gives them."""
    import pymupdf

    from ..pdf.detector import detect
    from ..pdf.evaluate import score_paper, summarise

    per_class: dict[str, list] = {}
    for paper in truth:
        pdf = Path(folder) / paper["file"]
        with pymupdf.open(pdf) as doc:
            detections = detect(doc)
        whole = score_paper(pdf, paper["figures"], detections)
        paper_class_name = paper.get("failure_class") or "default"
        groups: dict[str, list[dict]] = {}
        for fig in paper["figures"]:
            groups.setdefault(fig.get("failure_class") or "default", []).append(fig)
        groups.setdefault(paper_class_name, [])
        for name, figures in groups.items():
            score = score_paper(pdf, figures, detections)
            score.false = whole.false if name == paper_class_name else 0
            score.detections = whole.detections if name == paper_class_name else 0
            per_class.setdefault(name, []).append(score)
    return {name: summarise(scores) | {"misses": [f"{s.paper}: {m}" for s in scores for m in s.misses]}
            for name, scores in per_class.items()}
