"""Region failure classes of issue 15 (class 6), each on a generated page with exact ground truth: a full-width
table in a two-column paper, a table followed by a heading and a paragraph, a caption under a publisher box, a
multi-panel figure and a figure drawn as many image slivers."""

from __future__ import annotations

import pymupdf
import pytest

from ldrt_hpc.pdf.detector import detect
from ldrt_hpc.pdf.evaluate import iou

COLUMN = ("{start} the dose response of the irradiated cells in all patients of the trial, and the effect was small "
          "but consistent over the whole follow-up period. The cells were counted every day and compared between "
          "the groups with a mixed model for repeated measures.")
LEFT, RIGHT = pymupdf.Rect(50, 0, 295, 0), pymupdf.Rect(317, 0, 562, 0)
"""The two text columns of a page (x only)."""


def _image(page: pymupdf.Page, rect: pymupdf.Rect) -> None:
    """A raster with some structure that fills `rect` exactly (the ground truth)."""
    pixmap = pymupdf.Pixmap(pymupdf.csRGB, pymupdf.IRect(0, 0, 60, 40), False)
    pixmap.clear_with(90)
    for x in range(0, 60, 7):
        for y in range(40):
            pixmap.set_pixel(x, y, (200, 30, 30))
    page.insert_image(rect, pixmap=pixmap, keep_proportion=False)


def _paragraph(page: pymupdf.Page, x0: float, x1: float, y: float, start: str = "We measured") -> pymupdf.Rect:
    rect = pymupdf.Rect(x0, y, x1, y + 70)
    assert page.insert_textbox(rect, COLUMN.format(start=start), fontsize=9) >= 0
    return rect


def _text_table(page: pymupdf.Page, rect: pymupdf.Rect, rows: int = 5, columns: int = 5, size: float = 8,
                outer_rules: bool = True) -> None:
    """A table of short cells filling `rect` (no vertical rules): a rule above and below it, or (`outer_rules`
    False) only one under its header row."""
    step_y, step_x = rect.height / rows, rect.width / columns
    rules = [rect.y0, rect.y1] if outer_rules else [rect.y0 + step_y]
    for y in rules:
        page.draw_line((rect.x0, y), (rect.x1, y), width=0.8)
    for r in range(rows):
        for c in range(columns):
            page.insert_text((rect.x0 + 4 + c * step_x, rect.y0 + 12 + r * step_y), f"{r * 7 + c}.{c} ± 1",
                             fontsize=size)


def _caption(page: pymupdf.Page, top: float, text: str) -> None:
    """A bold 8 pt caption across the page's text width, its box from `top`."""
    assert page.insert_textbox(pymupdf.Rect(72, top, 540, top + 22), text, fontsize=8, fontname="hebo") >= 0


def _found(doc: pymupdf.Document, kind: str, name: str, truth: pymupdf.Rect):
    found = {(d.fig_type, d.name): d for d in detect(doc)}
    assert (kind, name) in found, [(d.fig_type, d.name) for d in found.values()]
    region = found[kind, name].region
    assert region is not None and iou(region, truth) >= 0.7, (region, truth)
    return region


def _clear_of(region: pymupdf.Rect, rect: pymupdf.Rect) -> None:
    overlap = region & rect
    assert overlap.is_empty or overlap.get_area() < 0.05 * rect.get_area(), (region, rect)


# --- (a) a full-width table in a two-column paper -------------------------------------------------------------


def test_full_width_table_leaves_the_text_columns_alone():
    doc = pymupdf.open()
    page = doc.new_page()
    for x in (LEFT, RIGHT):
        _paragraph(page, x.x0, x.x1, 60)
    page.insert_textbox(pymupdf.Rect(50, 140, 562, 160), "Table 1. Baseline characteristics of the patients.",
                        fontsize=9, fontname="hebo")
    table = pymupdf.Rect(50, 165, 562, 305)
    _text_table(page, table, columns=7)
    # the left column goes on with short lines (a list), the right one with a paragraph
    items = [page.insert_text((50, 330 + 12 * i), f"({i + 1}) dose group {i + 1}", fontsize=9) for i in range(4)]
    assert items
    right = _paragraph(page, RIGHT.x0, RIGHT.x1, 320)
    _paragraph(page, LEFT.x0, LEFT.x1, 390)
    region = _found(doc, "Table", "1", table)
    _clear_of(region, pymupdf.Rect(50, 320, 295, 380))
    _clear_of(region, right)


# --- (b) a table stops at the next heading and paragraph ------------------------------------------------------


@pytest.mark.parametrize("heading, size", [("3. Results", 11), ("Results", 9)])
def test_table_stops_at_the_next_heading(heading, size):
    """A numbered heading larger than the body (a barrier), or an unnumbered bold one in the body size (9 pt
    here): that one stops the table as body-size text past its bottom rule."""
    doc = pymupdf.open()
    page = doc.new_page()
    _paragraph(page, 72, 540, 60)
    page.insert_textbox(pymupdf.Rect(72, 140, 540, 160), "Table 2. Doses and responses.", fontsize=9, fontname="hebo")
    table = pymupdf.Rect(72, 165, 540, 285)
    _text_table(page, table)
    page.insert_text((72, 310), heading, fontsize=size, fontname="hebo")
    paragraph = pymupdf.Rect(72, 318, 540, 348)
    page.insert_textbox(paragraph, "The doses were well tolerated.", fontsize=9)
    _paragraph(page, 72, 540, 360)
    region = _found(doc, "Table", "2", table)
    _clear_of(region, pymupdf.Rect(72, 298, 540, 348))


def _table_at_top(page: pymupdf.Page) -> pymupdf.Rect:
    """Table 2 under its caption at the top of the page, a rule above and below: its true region."""
    page.insert_textbox(pymupdf.Rect(72, 60, 540, 80), "Table 2. Doses and responses.", fontsize=9, fontname="hebo")
    table = pymupdf.Rect(72, 85, 540, 185)
    _text_table(page, table)
    return table


@pytest.mark.parametrize("baseline", [205, 199, 196])
def test_table_takes_no_body_line_below_its_bottom_rule(baseline):
    """The last line of a paragraph run over from the page before, set right under a table (the closest within
    3 pt of its bottom rule): body text beyond the table's outer rule is not a cell."""
    doc = pymupdf.open()
    page = doc.new_page()
    table = _table_at_top(page)
    page.insert_text((72, baseline), "significance (p = 0.71).", fontsize=9)
    _image(page, pymupdf.Rect(150, 225, 460, 400))
    _caption(page, 406, "Figure 1. Survival.")
    _paragraph(page, 72, 540, 450)
    region = _found(doc, "Table", "2", table)
    assert region.y1 <= table.y1 + 1, region


def test_body_size_table_with_one_rule_keeps_its_cells():
    """Cells in the body size and a single rule, under the header row: that rule is no outer rule."""
    doc = pymupdf.open()
    page = doc.new_page()
    _paragraph(page, 72, 540, 60)
    page.insert_textbox(pymupdf.Rect(72, 140, 540, 160), "Table 1. Doses and responses.", fontsize=9, fontname="hebo")
    table = pymupdf.Rect(72, 165, 540, 265)
    _text_table(page, table, size=9, outer_rules=False)
    _paragraph(page, 72, 540, 290)
    _found(doc, "Table", "1", table)


def test_stacked_figures_each_keep_their_own_graphic():
    """Figure 1 over its caption, Figure 2 starting closer under that caption than Figure 1 ends above it:
    Figure 2's graphic has its own caption under it and is not Figure 1's."""
    doc = pymupdf.open()
    page = doc.new_page()
    upper, lower = pymupdf.Rect(72, 60, 540, 250), pymupdf.Rect(72, 292, 540, 482)
    _image(page, upper)
    _caption(page, 276, "Figure 1. Dose response of the irradiated cells.")
    _image(page, lower)
    _caption(page, 488, "Figure 2. Tumour volume over time.")
    _paragraph(page, 72, 540, 540)
    _found(doc, "Figure", "1", upper)
    _found(doc, "Figure", "2", lower)


@pytest.mark.parametrize("figure_caption_above", [False, True])
def test_figure_and_table_stacked_keep_their_own(figure_caption_above):
    """A figure and, under it, a table set above its caption; or a figure under its caption and, under it, a
    table under its caption. The rule that a graphic with a caption close beyond it is that caption's holds for
    captions of the same kind only: here each region is on its caption's unusual side next to the other kind's
    caption."""
    doc = pymupdf.open()
    page = doc.new_page()
    _paragraph(page, 72, 540, 40)
    if figure_caption_above:
        figure, table = pymupdf.Rect(150, 140, 460, 280), pymupdf.Rect(72, 320, 540, 420)
        _caption(page, 116, "Figure 1. Survival of the cells.")
        _image(page, figure)
        _caption(page, 296, "Table 1. Doses and responses.")
        _text_table(page, table)
    else:
        figure, table = pymupdf.Rect(150, 120, 460, 260), pymupdf.Rect(72, 305, 540, 405)
        _image(page, figure)
        _caption(page, 266, "Figure 1. Survival of the cells.")
        _text_table(page, table)
        _caption(page, 411, "Table 1. Doses and responses.")
    _paragraph(page, 72, 540, 450)
    _found(doc, "Figure", "1", figure)
    _found(doc, "Table", "1", table)


def _plot(page: pymupdf.Page, rect: pymupdf.Rect) -> None:
    """A vector plot with axis labels as text: a frame, bars and tick labels."""
    page.draw_rect(rect + (30, 0, 0, -20), color=(0, 0, 0), width=0.8)
    for i in range(6):
        page.draw_rect(pymupdf.Rect(rect.x0 + 50 + 60 * i, rect.y1 - 60 - 15 * i, rect.x0 + 80 + 60 * i, rect.y1 - 20),
                       color=(0, 0, 0), fill=(0.5, 0.5, 0.8))
        page.insert_text((rect.x0 + 55 + 60 * i, rect.y1 - 6), f"{i} Gy", fontsize=7)
    for i in range(4):
        page.insert_text((rect.x0, rect.y0 + 8 + 40 * i), f"{100 - 25 * i}", fontsize=7)


@pytest.mark.parametrize("draw, figure", [(_image, pymupdf.Rect(150, 205, 460, 400)),
                                          (_plot, pymupdf.Rect(72, 196, 500, 380))])
def test_table_over_a_figure_neither_takes_the_other(draw, figure):
    """A table, then a figure (a raster close under the table's bottom rule, or a vector plot whose tick labels
    come close to it) over a caption as wide as the page (so the table's rule lies in its column): the figure
    takes no rule of the table, the table no text of the figure."""
    doc = pymupdf.open()
    page = doc.new_page()
    table = _table_at_top(page)
    draw(page, figure)
    page.insert_textbox(pymupdf.Rect(72, 406, 540, 440), "Figure 1. Survival of the irradiated cells in every dose "
                        "group of the trial over the whole follow-up period, with the sham group for reference.",
                        fontsize=8, fontname="hebo")
    _paragraph(page, 72, 540, 450)
    _clear_of(_found(doc, "Figure", "1", figure), table)
    _clear_of(_found(doc, "Table", "2", table), figure)


def test_one_column_caption_under_a_figure_across_both_columns():
    """The caption in the left column only, the right column's text running on beside it."""
    doc = pymupdf.open()
    page = doc.new_page()
    for x in (LEFT, RIGHT):
        _paragraph(page, x.x0, x.x1, 40)
    figure = pymupdf.Rect(50, 120, 562, 340)
    _image(page, figure)
    page.insert_textbox(pymupdf.Rect(50, 346, 295, 380), "Figure 1. Dose response of the irradiated cells.",
                        fontsize=8, fontname="hebo")
    beside = _paragraph(page, RIGHT.x0, RIGHT.x1, 346)
    _paragraph(page, LEFT.x0, LEFT.x1, 390)
    _clear_of(_found(doc, "Figure", "1", figure), beside)


def test_caption_set_beside_its_figure():
    doc = pymupdf.open()
    page = doc.new_page()
    _paragraph(page, 50, 562, 40)
    figure = pymupdf.Rect(50, 120, 380, 340)
    _image(page, figure)
    page.insert_textbox(pymupdf.Rect(395, 200, 562, 300), "Figure 2. Dose response of the irradiated cells in the "
                        "trial over the whole follow-up.", fontsize=8, fontname="hebo")
    _paragraph(page, 50, 562, 360)
    _found(doc, "Figure", "2", figure)


# --- (c) a caption under a publisher box ----------------------------------------------------------------------


def test_caption_under_a_publisher_box_takes_the_figure_not_the_box():
    doc = pymupdf.open()
    page = doc.new_page()
    figure = pymupdf.Rect(50, 70, 562, 300)
    _image(page, figure)
    box = pymupdf.Rect(50, 312, 295, 372)
    page.draw_rect(box, color=(0, 0, 0), fill=(0.92, 0.92, 0.92))
    page.insert_textbox(box + (4, 4, -4, -4), "Received: 3 May 2020\nAccepted: 9 June 2020\nPublished: 1 July 2020",
                        fontsize=8)
    page.insert_textbox(pymupdf.Rect(50, 380, 295, 420), "Figure 1. Flow chart of the patients in the trial.",
                        fontsize=9, fontname="hebo")
    _paragraph(page, RIGHT.x0, RIGHT.x1, 312)
    _paragraph(page, LEFT.x0, LEFT.x1, 430)
    region = _found(doc, "Figure", "1", figure)
    _clear_of(region, box)


# --- (d) a multi-panel figure -------------------------------------------------------------------------------------


def test_multi_panel_figure_takes_every_panel():
    doc = pymupdf.open()
    page = doc.new_page()
    panels = [pymupdf.Rect(72 + 240 * c, 80 + 170 * r, 300 + 240 * c, 200 + 170 * r) for r in range(2) for c in range(2)]
    for i, panel in enumerate(panels):
        _image(page, panel)
        page.insert_text((panel.x0, panel.y1 + 14), f"{'ABCD'[i]}  Survival of the cells in dose group {i + 1}",
                         fontsize=9)
    figure = panels[0] | panels[-1]
    page.insert_textbox(pymupdf.Rect(72, 400, 540, 430), "Figure 3. Survival of irradiated cells over time in the "
                        "four dose groups of the trial, measured every day over the whole follow-up period.",
                        fontsize=9, fontname="hebo")
    _paragraph(page, 72, 540, 440)
    _found(doc, "Figure", "3", figure)


# --- (e) a figure drawn as image slivers --------------------------------------------------------------------------


def test_figure_of_image_slivers_is_one_region():
    doc = pymupdf.open()
    page = doc.new_page()
    _paragraph(page, 72, 540, 60)
    figure = pymupdf.Rect(72, 150, 540, 390)
    step = figure.height / 160
    for i in range(160):  # one raster split into 160 strips, 1.5 pt high each
        _image(page, pymupdf.Rect(figure.x0, figure.y0 + i * step, figure.x1, figure.y0 + (i + 1) * step))
    page.insert_textbox(pymupdf.Rect(72, 396, 540, 430), "Figure 2. Dose maps of the irradiated region.",
                        fontsize=9, fontname="hebo")
    _paragraph(page, 72, 540, 440)
    _found(doc, "Figure", "2", figure)


# --- class 5: rotated pages and sideways tables ------------------------------------------------------------------


def _landscape(kind: str = "Figure") -> tuple[pymupdf.Document, pymupdf.Rect]:
    """A landscape page with a paragraph, a figure (or a table under its caption) and another paragraph; the
    rectangle of the figure or table."""
    source = pymupdf.open()
    page = source.new_page(width=842, height=595)
    _paragraph(page, 72, 770, 50)
    if kind == "Figure":
        graphic = pymupdf.Rect(72, 130, 600, 400)
        _image(page, graphic)
        caption_y = 408
    else:
        graphic = pymupdf.Rect(72, 150, 770, 400)
        _text_table(page, graphic, columns=8)
        caption_y = 125
    page.insert_textbox(pymupdf.Rect(72, caption_y, 770, caption_y + 20), f"{kind} 4. Doses of the irradiated region.",
                        fontsize=9, fontname="hebo")
    _paragraph(page, 72, 770, 460)
    return source, graphic


def _turned(rotate: int, kind: str = "Figure") -> tuple[pymupdf.Document, pymupdf.Page]:
    """A portrait page that shows the landscape page turned by `rotate` degrees (the text runs sideways)."""
    source, _ = _landscape(kind)
    doc = pymupdf.open()
    page = doc.new_page(width=595, height=842)
    page.show_pdf_page(page.rect, source, 0, rotate=rotate)
    return doc, page


def _drawn(page: pymupdf.Page, kind: str) -> pymupdf.Rect:
    """Where the figure (its image) or the table (its rules) lies on the page: the ground truth."""
    log = [pymupdf.Rect(r) for k, r in page.get_bboxlog() if k == ("fill-image" if kind == "Figure" else "stroke-path")]
    rect = log[0]
    for r in log[1:]:
        rect |= r
    return rect


def test_rotated_page_region_in_display_coordinates():
    """A /Rotate 90 page whose content is drawn turned so that a viewer shows it upright: the region is where the
    figure is seen (and where render() crops), not where it sits in the unrotated page."""
    _, figure = _landscape()
    for rotate in (90, -90):
        doc, page = _turned(rotate)
        page.set_rotation((rotate + 360) % 360)
        doc = pymupdf.open("pdf", doc.tobytes())
        if iou(_drawn(doc[0], "Figure") * doc[0].rotation_matrix, figure) >= 0.99:  # shown upright
            break
    else:
        raise AssertionError("no rotation shows the page upright")
    _found(doc, "Figure", "4", figure)


@pytest.mark.parametrize("kind", ["Figure", "Table"])
@pytest.mark.parametrize("rotate", [90, -90])
def test_sideways_figure_or_table_on_a_portrait_page(kind, rotate):
    """A landscape figure or table turned onto a portrait page without /Rotate: found, its region on the page."""
    doc, _ = _turned(rotate, kind)
    doc = pymupdf.open("pdf", doc.tobytes())
    _found(doc, kind, "4", _drawn(doc[0], kind))
