"""Caption-label failure classes of issue 15, each on a generated page with exact ground truth: unnumbered labels
(class 2), panel letters extracted before the label (class 3) and further label forms (class 7: "Figure-1:",
"Table I", "FIGURE 1" without a delimiter, a label alone above its graphic with the legend in a later block).
Every page also holds body paragraphs that start with a label ("Figure 1 shows ...", "Table I lists ..."), which
must stay undetected."""

from __future__ import annotations

import pymupdf
import pytest

from ldrt_hpc.pdf.detector import detect
from ldrt_hpc.pdf.evaluate import iou, similarity
from ldrt_hpc.pdf.layout import HEAVIER, bold_fonts, parse_label, stroke_width, text_blocks
from ldrt_hpc.text import is_caption

BODY = ("{start} the dose response of the irradiated cells in all patients of the trial, and the effect was "
        "small but consistent over the whole follow-up period of the study. The cells were counted every day "
        "and the counts were compared between the groups with a mixed model for repeated measures.")
LEGEND = "Flow chart of the patients screened, randomised and analysed in the low-dose radiotherapy trial."
GRAPHIC = pymupdf.Rect(72, 200, 372, 400)
"""Where the figure or table of a page is drawn (a raster image), its true region."""


def _image(page: pymupdf.Page, rect: pymupdf.Rect) -> None:
    pixmap = pymupdf.Pixmap(pymupdf.csRGB, pymupdf.IRect(0, 0, 120, 80), False)
    pixmap.clear_with(90)
    for x in range(0, 120, 7):  # some structure, not a flat fill
        for y in range(80):
            pixmap.set_pixel(x, y, (200, 30, 30))
    page.insert_image(rect, pixmap=pixmap)


def _body(page: pymupdf.Page, y: float, start: str, size: float = 10) -> None:
    assert page.insert_textbox(pymupdf.Rect(72, y, 540, y + 66), BODY.format(start=start), fontsize=size) >= 0


def _page(doc: pymupdf.Document, caption: str, below: bool = True, font: str = "helv",
          above_label: str | None = None) -> pymupdf.Rect:
    """A page with body paragraphs, the graphic and its caption (below the graphic, or above it for tables);
    `above_label`: a label set alone above the graphic (the caption is then the legend under it)."""
    page = doc.new_page()
    _body(page, 60, "Figure 1 shows")
    _image(page, GRAPHIC)
    if above_label is not None:
        page.insert_text((72, GRAPHIC.y0 - 8), above_label, fontsize=10, fontname="hebo")
    y = GRAPHIC.y1 + 6 if below else GRAPHIC.y0 - 66
    assert page.insert_textbox(pymupdf.Rect(72, y, 372, y + 60), caption, fontsize=10, fontname=font) >= 0
    _body(page, 480, "Table I lists")
    _body(page, 560, "Figure 2 shows")
    return GRAPHIC


def _check(doc: pymupdf.Document, expected: list[tuple[str, str, int, str]]) -> None:
    """`expected`: (figType, name, page, caption) of every item; nothing else may be detected."""
    found = {(d.fig_type, d.name): d for d in detect(doc)}
    assert set(found) == {(kind, name) for kind, name, _, _ in expected}, [(d.fig_type, d.name, d.caption)
                                                                           for d in found.values()]
    for kind, name, page, caption in expected:
        detection = found[kind, name]
        assert detection.page == page
        assert similarity(detection.caption, caption) >= 0.9, detection.caption
        assert detection.region is not None and iou(detection.region, GRAPHIC) >= 0.7, detection.region


# --- class 2: unnumbered labels ----------------------------------------------------------------------------------


@pytest.mark.parametrize("label", ["Figure:", "Figure.", "FIGURE:"])
def test_unnumbered_figure(label):
    doc = pymupdf.open()
    _page(doc, f"{label} {LEGEND}")
    _check(doc, [("Figure", "1", 0, LEGEND)])


def test_unnumbered_table_above_its_table():
    doc = pymupdf.open()
    _page(doc, "Table: Baseline characteristics of the patients.", below=False)
    _check(doc, [("Table", "1", 0, "Baseline characteristics of the patients.")])


def test_two_unnumbered_figures_keep_both():
    doc = pymupdf.open()
    _page(doc, f"Figure. {LEGEND}")
    _page(doc, "Figure. Trial profile.")
    _check(doc, [("Figure", "1", 0, LEGEND), ("Figure", "2", 1, "Trial profile.")])


# --- class 3: panel letters extracted into the caption's block -------------------------------------------------


@pytest.mark.parametrize("panels", ["A\nB\n", "a\nb\nc\n", "(A)\n(B)\n"])
def test_panel_letters_before_the_label(panels):
    doc = pymupdf.open()
    _page(doc, f"{panels}Fig. 2. Survival of irradiated cells over time.", font="helv")
    _check(doc, [("Figure", "2", 0, "Survival of irradiated cells over time.")])


# --- class 7: label forms --------------------------------------------------------------------------------------


@pytest.mark.parametrize("label, kind", [("Figure-1:", "Figure"), ("Fig-1.", "Figure"), ("Table-1:", "Table")])
def test_hyphenated_labels(label, kind):
    doc = pymupdf.open()
    _page(doc, f"{label} {LEGEND}", below=kind == "Figure")
    _check(doc, [(kind, "1", 0, LEGEND)])


@pytest.mark.parametrize("label, name", [("Table I", "1"), ("TABLE II", "2"), ("TABLE IV", "4")])
def test_roman_table_label_alone_on_its_line(label, name):
    doc = pymupdf.open()
    _page(doc, f"{label}\nBaseline characteristics of the patients", below=False)
    _check(doc, [("Table", name, 0, "Baseline characteristics of the patients")])


def test_upper_case_label_without_delimiter():
    doc = pymupdf.open()
    _page(doc, f"FIGURE 1 {LEGEND}")
    _check(doc, [("Figure", "1", 0, LEGEND)])


def test_label_above_the_graphic_legend_below():
    doc = pymupdf.open()
    _page(doc, LEGEND, above_label="Figure 1")
    _check(doc, [("Figure", "1", 0, LEGEND)])


# --- class 1: a label without delimiter in body-size type, bold only by its descriptor or its glyphs ----------


def _hide_weight(doc: pymupdf.Document, page: pymupdf.Page, font: str) -> None:
    """Rename a bold font to a subset name that hides its weight ("AdvPECFD36"), as some publishers' fonts are,
    and give it a descriptor with its real weight: MuPDF then reports neither a bold name nor a bold flag."""
    xref = next(f[0] for f in page.get_fonts() if f[3] == font)
    descriptor = doc.get_new_xref()
    doc.update_object(descriptor, "<< /Type /FontDescriptor /FontName /ABCDEF+AdvPECFD36 /Flags 32 /FontBBox "
                                  "[0 -200 1000 900] /ItalicAngle 0 /Ascent 700 /Descent -200 /CapHeight 700 "
                                  "/StemV 140 /FontWeight 700 >>")
    doc.xref_set_key(xref, "BaseFont", "/ABCDEF+AdvPECFD36")
    doc.xref_set_key(xref, "FontDescriptor", f"{descriptor} 0 R")
    doc.xref_set_key(xref, "FirstChar", "32")
    doc.xref_set_key(xref, "LastChar", "126")
    doc.xref_set_key(xref, "Widths", "[" + " ".join(["556"] * 95) + "]")


def test_label_bold_only_by_its_font_descriptor():
    doc = pymupdf.open()
    page = doc.new_page()
    _body(page, 60, "Figure 1 shows")
    _image(page, GRAPHIC)
    page.insert_text((72, GRAPHIC.y1 + 16), "Figure 1", fontsize=10, fontname="hebo")
    page.insert_text((120, GRAPHIC.y1 + 16), "Flow chart of the patients screened.", fontsize=10, fontname="helv")
    _body(page, 480, "Figure 2 shows")
    _hide_weight(doc, page, "Helvetica-Bold")
    doc = pymupdf.open("pdf", doc.tobytes())
    assert not any(s["flags"] & 16 for b in doc[0].get_text("dict")["blocks"] for line in b.get("lines", [])
                   for s in line["spans"])
    _check(doc, [("Figure", "1", 0, "Flow chart of the patients screened.")])


# --- labels in running text stay undetected ---------------------------------------------------------------------


def _caption_under_graphic(label_font: str, text_font: str, legend: str = "Flow chart of the patients screened.",
                           size: float = 10) -> pymupdf.Document:
    """A page whose figure caption "Figure 1 <legend>" has no delimiter and the body text's size, the label in
    `label_font`, the legend in `text_font`; body paragraphs start "Figure 1 shows", "Figure 2 shows"."""
    from ldrt_hpc.demo.fonts import embed_hidden_bold

    doc = pymupdf.open()
    page = doc.new_page()
    if label_font == "hidden":
        embed_hidden_bold(page, "hidden")
    _body(page, 60, "Figure 1 shows", size)
    _image(page, GRAPHIC)
    y = GRAPHIC.y1 + 16
    page.insert_text((72, y), "Figure 1", fontsize=size, fontname=label_font)
    label_width = pymupdf.get_text_length("Figure 1 ", fontname="hebo" if label_font == "hidden" else label_font,
                                          fontsize=size)
    page.insert_text((72 + label_width, y), legend, fontsize=size, fontname=text_font)
    _body(page, 480, "Figure 2 shows", size)
    return pymupdf.open("pdf", doc.tobytes())


def test_label_bold_only_by_its_glyph_strokes():
    """A bold face renamed "AdvPECFD36" with the weight "Regular": no bold flag, no bold descriptor; only the
    stroke width of its glyphs says bold."""
    doc = _caption_under_graphic("hidden", "helv")
    spans = [s for b in doc[0].get_text("dict")["blocks"] for line in b.get("lines", []) for s in line["spans"]]
    assert not any(s["flags"] & 16 or "bold" in s["font"].lower() for s in spans)
    assert not bold_fonts(doc[0])
    _check(doc, [("Figure", "1", 0, "Flow chart of the patients screened.")])


def test_stroke_width_tells_bold_from_regular():
    doc = pymupdf.open()
    page = doc.new_page()
    for row, font in enumerate(["helv", "hebo", "tiro", "tibo"]):
        page.insert_text((72, 100 + 30 * row), "Figure 12 Table", fontsize=9, fontname=font)
    spans = [s for b in page.get_text("dict")["blocks"] for line in b["lines"] for s in line["spans"]]
    widths = [stroke_width(page, s["bbox"], s["size"]) for s in spans]
    assert widths[1] >= HEAVIER * widths[0] and widths[3] >= HEAVIER * widths[2], widths
    assert widths[0] < HEAVIER * widths[2] and widths[2] < HEAVIER * widths[0], widths


def test_label_set_apart_by_layout():
    """No bold anywhere, no delimiter, body size: a block at the column edge right under the graphic, set in
    another face than the body paragraphs, with a capitalised word after the label is the caption."""
    _check(_caption_under_graphic("tiro", "tiro"), [("Figure", "1", 0, "Flow chart of the patients screened.")])


@pytest.mark.parametrize("size", [10, 10.5])
def test_body_font_sentence_under_a_graphic_is_no_caption(size):
    """The same block in the body paragraphs' own face and size is running text (also where the body size is
    no whole point)."""
    assert detect(_caption_under_graphic("helv", "helv", size=size)) == []


def test_label_before_a_panel_letter_is_no_caption_by_layout():
    """"Figure 1 A and B show ..." in another face under the graphic: a capital after the label, but a panel
    letter, as running text refers to panels."""
    assert detect(_caption_under_graphic("tiro", "tiro", "A and B show the patients screened.")) == []


def test_no_ink_after_the_label_is_no_weight_evidence():
    """The text after a regular label draws no ink (an invisible OCR layer): its strokes say nothing."""
    doc = pymupdf.open()
    page = doc.new_page()
    page.insert_text((72, 100), "Figure 1", fontsize=10, fontname="helv")
    page.insert_text((72 + pymupdf.get_text_length("Figure 1 ", fontsize=10), 100), "Flow chart of the patients.",
                     fontsize=10, fontname="tiro", render_mode=3)
    line = text_blocks(page)[0].lines[0]
    assert line.text.startswith("Figure 1") and not line.first_span_bold
    assert stroke_width(page, (72, 300, 72, 320), 10) == 0.0  # an empty box
    assert stroke_width(page, (700, 900, 760, 920), 10) == 0.0  # off the page


def test_body_sentences_are_no_captions():
    doc = pymupdf.open()
    page = doc.new_page()
    for i, start in enumerate(["Figure 1 shows", "Table I lists", "FIGURE 2 shows", "Table-2 gives", "Figure: the"]):
        _body(page, 60 + 80 * i, start)
    _image(page, pymupdf.Rect(72, 480, 372, 680))
    assert detect(doc) == []


@pytest.mark.parametrize("text, expected", [
    ("Figure-1: Flow", ("Figure", "1", True)),
    ("Table-1: Doses", ("Table", "1", True)),
    ("Figure: Trial profile", ("Figure", "", True)),
    ("Figure. Trial profile", ("Figure", "", True)),
    ("Figures are shown", None),
    ("Figure shows", None),
    ("Table I lists", ("Table", "1", False)),
])
def test_label_forms(text, expected):
    assert parse_label(text) == expected


@pytest.mark.parametrize("paragraph, expected", [
    ("Figure-1: Flow chart.", True),
    ("**Figure:** Trial profile.", True),
    ("Figure. Trial profile.", True),
    ("Table: Baseline characteristics.", True),
    ("Figures: a and b.", False),
    ("Figure: the dose rose.", False),
    ("Table-2 gives the doses.", False),
])
def test_markdown_captions_know_the_same_forms(paragraph, expected):
    assert is_caption(paragraph) is expected


@pytest.mark.parametrize("text", ["Fig. 1 is new.", "Fig. Trial", "Figures: A and B", "Figure: 3 arms", "Figure 2 shows"])
def test_sentences_are_no_unnumbered_labels(text):
    label = parse_label(text)
    assert label is None or label[1] != "" and not label[2]


def test_label_alone_without_legend_takes_no_paragraph_far_below():
    doc = pymupdf.open()
    page = doc.new_page()
    page.insert_text((72, GRAPHIC.y0 - 8), "Figure 1", fontsize=10, fontname="hebo")
    _image(page, GRAPHIC)
    _body(page, 480, "The cells")
    found = detect(doc)
    assert [(d.fig_type, d.name, d.caption) for d in found] == [("Figure", "1", "Figure 1")]


def test_label_alone_inside_a_drawing_is_its_text():
    doc = pymupdf.open()
    page = doc.new_page()
    _body(page, 60, "The cells")
    page.draw_rect(GRAPHIC, color=(0, 0, 0), fill=(0.9, 0.9, 0.9))
    page.insert_text((100, 250), "TABLE 2", fontsize=10)
    assert detect(doc) == []


def test_labels_alone_at_the_top_of_pages_are_no_running_header():
    """"Figure 1" and "Figure 3" alone at the top of two pages (over page-wide figures) differ only in their
    number, as page numbers do: they must not be taken for a running header."""
    doc = pymupdf.open()
    for number in (1, 3):
        page = doc.new_page()
        page.insert_text((72, 50), f"Figure {number}", fontsize=10, fontname="hebo")
        _image(page, pymupdf.Rect(72, 60, 540, 300))
        assert page.insert_textbox(pymupdf.Rect(72, 306, 540, 340), f"{LEGEND} Panel {number}.", fontsize=8) >= 0
        _body(page, 400, "The cells")
    found = {(d.fig_type, d.name): d.caption for d in detect(doc)}
    assert set(found) == {("Figure", "1"), ("Figure", "3")}, found
    assert all(caption.endswith(f"Panel {name}.") for (_, name), caption in found.items()), found


@pytest.mark.parametrize("legend", ["Schematic of the whole-joint irradiation field. Inset, not to scale.",
                                    "Schematic of the irradiation field."])
def test_label_above_a_small_centred_graphic_takes_the_legend_not_the_paragraph(legend):
    """An icon-sized graphic centred under its label, the legend a short left-aligned line under it (reaching
    under the graphic, or ending left of it) and a body paragraph after that: the legend is the line, and the
    label and legend bound the region, which is the graphic."""
    doc = pymupdf.open()
    page = doc.new_page()
    _body(page, 60, "The cells")
    icon = pymupdf.Rect(280, 208, 340, 248)
    page.insert_text((295, 200), "Figure 3", fontsize=8.5, fontname="hebo")
    _image(page, icon)
    page.insert_text((72, 262), legend, fontsize=8.5)
    _body(page, 276, "No acute toxicity")
    found = detect(doc)
    assert [(d.fig_type, d.name, d.caption) for d in found] == [("Figure", "3", f"Figure 3 {legend}")]
    assert iou(found[0].region, icon) >= 0.7, found[0].region
