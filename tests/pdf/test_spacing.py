"""Issue 15, class 4: text layers without space glyphs ("Giantpandamilkproteins") get their word spaces back from
the glyph gaps, in `convert` (Markdown) and in caption blocks; lines with normal spaces and long real words stay."""

from __future__ import annotations

import pymupdf
import pytest

from ldrt_hpc.pdf.layout import text_blocks
from ldrt_hpc.pdf.spacing import needs_respace, respace_blocks, respace_chars
from ldrt_hpc.stages.convert import convert_pdf

RUN_TOGETHER = "Giant panda milk proteins change over the first month of lactation in captivity."
NORMAL = "The normal line keeps the spaces that its text layer already has."
LONG_WORD = "Immunohistochemistry"
CAPTION = "Figure 1. Milk protein bands of giant panda samples collected on days one to thirty."


def _place_words(page: pymupdf.Page, y: float, text: str, gap: float, size: float = 10) -> None:
    """Each word drawn on its own at increasing x with `gap` points between words: no space glyph in the text
    layer. The gaps are below 0.15 em, where MuPDF would add a space itself."""
    x = 72.0
    for word in text.split():
        page.insert_text((x, y), word, fontsize=size, fontname="helv")
        x += pymupdf.get_text_length(word, "helv", size) + gap


def _paper(path, gap: float = 0.8) -> None:
    doc = pymupdf.open()
    page = doc.new_page()
    _place_words(page, 100, RUN_TOGETHER, gap)
    page.insert_text((72, 160), NORMAL, fontsize=10, fontname="helv")
    page.insert_text((72, 220), LONG_WORD, fontsize=10, fontname="helv")
    _place_words(page, 280, CAPTION, gap)
    doc.save(path)


def test_generated_layer_has_no_spaces(tmp_path):
    """The fixture is what the issue describes: PyMuPDF's own extraction runs the words together."""
    _paper(tmp_path / "p.pdf")
    assert "Giantpandamilkproteins" in pymupdf.open(tmp_path / "p.pdf")[0].get_text()


@pytest.mark.parametrize("gap", [0.8, 1.4])
def test_convert_rebuilds_word_spaces(tmp_path, gap):
    _paper(tmp_path / "p.pdf", gap)
    markdown, pages = convert_pdf(str(tmp_path / "p.pdf"), "native")
    assert pages == 1
    assert RUN_TOGETHER in markdown, markdown
    assert CAPTION in markdown, markdown
    assert NORMAL in markdown
    assert LONG_WORD in markdown
    assert "Immuno histo" not in markdown and "Immunohisto chemistry" not in markdown


def test_caption_blocks_respaced(tmp_path):
    """What layout.text_blocks gives the figure detector once it calls respace_blocks (and textpage reuse)."""
    _paper(tmp_path / "p.pdf")
    page = pymupdf.open(tmp_path / "p.pdf")[0]
    textpage = page.get_textpage(flags=pymupdf.TEXTFLAGS_TEXT)
    texts = [b.text for b in respace_blocks(page, text_blocks(page, textpage), textpage)]
    assert CAPTION in texts and RUN_TOGETHER in texts and NORMAL in texts and LONG_WORD in texts


def test_needs_respace_is_cheap_gate():
    assert needs_respace("Giantpandamilkproteinschange")
    assert needs_respace("Fig.1.Giantpandamilkproteinschange overthefirstmonth")  # almost no spaces
    assert not needs_respace(NORMAL)
    assert not needs_respace("Short")


def _glyphs(words: list[str], advance: float, letter_gap: float, word_gap: float, size: float = 10.0):
    chars, x = [], 0.0
    for w, word in enumerate(words):
        if w:
            x += word_gap - letter_gap
        for c in word:
            chars.append((c, x, x + advance, size))
            x += advance + letter_gap
    return chars


def test_respace_chars_rule():
    # word gaps of 0.1 em found over letter gaps that carry tracking (0.3 pt) and kerning noise
    chars = _glyphs(["Giant", "panda", "milk", "proteins"], 5.0, 0.3, 1.3)
    chars[1] = (chars[1][0], chars[1][1] - 0.2, chars[1][2] - 0.2, 10.0)  # kerned pair
    assert respace_chars(chars) == "Giant panda milk proteins"
    # one long word, evenly set (tracked or not): never split
    assert respace_chars(_glyphs(["immunohistochemistry"], 5.0, 0.0, 0.0)) == "immunohistochemistry"
    assert respace_chars(_glyphs(["immunohistochemistry"], 5.0, 0.4, 0.4)) == "immunohistochemistry"
    # a gap of 0.03 em is kerning noise, not a word gap
    assert respace_chars(_glyphs(["ab", "cd", "ef", "gh"], 5.0, 0.0, 0.3)) == "abcdefgh"
