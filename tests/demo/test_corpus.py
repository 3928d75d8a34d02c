"""The generated corpus: deterministic PDFs whose ground truth (captions, boxes, filter labels, mentions) is exact."""

from __future__ import annotations

import json
import re
from pathlib import Path

import cv2
import numpy as np
import pymupdf
import pytest

from ldrt_hpc.demo import synth_corpus

SEED, PAPERS = 0, 6
PAGE = pymupdf.Rect(0, 0, 612, 792)
CONTENT = pymupdf.Rect(54, 54, 558, 738)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> tuple[Path, list[dict]]:
    folder = tmp_path_factory.mktemp("synth") / "pdfs"
    return folder, synth_corpus(folder, PAPERS, SEED)


def rect(box: dict) -> pymupdf.Rect:
    return pymupdf.Rect(box["x1"], box["y1"], box["x2"], box["y2"])


def norm(text: str) -> str:
    return " ".join(text.split())


def floats(truth):
    for paper in truth:
        for fig in paper["figures"]:
            yield paper, fig


def render_gray(page, r: pymupdf.Rect) -> np.ndarray:
    pix = page.get_pixmap(clip=r, dpi=150)
    rgb = np.frombuffer(pix.samples, np.uint8).reshape(pix.h, pix.w, pix.n)[..., :3]
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)


def laplacian_var(gray: np.ndarray) -> float:
    return float(cv2.Laplacian(gray, cv2.CV_64F).var())


def dehyphenated_text(doc) -> str:
    text = "\n".join(page.get_text() for page in doc)
    return norm(re.sub(r"([a-z])-\n([a-z])", r"\1\2", text))


def references(sentence: str) -> set[tuple[str, str]]:
    """(figType, name) pairs a sentence refers to, in every form the generator uses."""
    refs = set()
    for a, b in re.findall(r"Figs\. (\d+) and (\d+)", sentence):
        refs |= {("Figure", a), ("Figure", b)}
    for a, b in re.findall(r"Figs\. (\d+)–(\d+)", sentence):
        refs |= {("Figure", str(k)) for k in range(int(a), int(b) + 1)}
    refs |= {("Figure", k) for k in re.findall(r"\b(?:Fig\.|Figure) (\d+)", sentence)}
    refs |= {("Table", k) for k in re.findall(r"\bTable (\d+)", sentence)}
    return refs


def test_ground_truth_schema(corpus):
    folder, truth = corpus
    assert json.loads((folder / "ground_truth.json").read_text(encoding="utf-8")) == truth
    assert len(truth) == PAPERS
    assert len({p["paper"] for p in truth}) == PAPERS
    for i, paper in enumerate(truth):
        assert paper["paper"] == f"synth-{SEED}-{i:05d}" and paper["file"] == paper["paper"] + ".pdf"
        assert paper["layout"] in ("one-column", "two-column") and 2 <= paper["pages"] <= 4
        assert paper["title"] and paper["abstract"]
        assert [s["heading"] for s in paper["sections"]] == ["1. Introduction", "2. Methods", "3. Results",
                                                              "4. Discussion"]
        names = [f["name"] for f in paper["figures"] if f["figType"] == "Figure"]
        assert names == [str(k) for k in range(1, len(names) + 1)] and 2 <= len(names) <= 4
        assert [f["name"] for f in paper["figures"] if f["figType"] == "Table"] in ([], ["1"])
        for fig in paper["figures"]:
            assert set(fig) >= {"name", "figType", "page", "caption", "captionBoundary", "regionBoundary", "kind",
                                "must_filter", "mentions"}
            assert fig["kind"] in (("raster", "vector") if fig["figType"] == "Figure" else ("table",))
            assert fig["must_filter"] in (None, "blurry", "too_small")
            assert fig["caption"].startswith(f"{fig['figType']} {fig['name']}. ")
            assert fig["caption"] == norm(fig["caption"]) and 0 <= fig["page"] < paper["pages"]


def test_same_seed_same_bytes_other_seed_differs(corpus, tmp_path):
    folder, truth = corpus
    again = synth_corpus(tmp_path / "again", 2, SEED)
    assert again == truth[:2]  # a paper does not depend on how many papers are generated
    for paper in again:
        assert (tmp_path / "again" / paper["file"]).read_bytes() == (folder / paper["file"]).read_bytes()
    other = synth_corpus(tmp_path / "other", 2, SEED + 1)
    assert [p["file"] for p in other] == [f"synth-{SEED + 1}-{i:05d}.pdf" for i in range(2)]
    for a, b in zip(other, truth):
        assert (tmp_path / "other" / a["file"]).read_bytes() != (folder / b["file"]).read_bytes()
    assert [p["figures"] for p in other] != [p["figures"] for p in truth[:2]]


@pytest.mark.parametrize("class_name", ["hidden_weight", "rotated", "slivers"])
def test_class_papers_same_bytes(tmp_path, class_name):
    """A class paper is the same file every time: the embedded renamed font (fontTools), the turned page and
    the PNG strips (OpenCV) included."""
    from ldrt_hpc.demo.classes import CLASSES
    from ldrt_hpc.demo.corpus import make_paper

    index = CLASSES.index(class_name)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = make_paper(tmp_path / "a" / "paper.pdf", SEED, index, classes=True)
    again = make_paper(tmp_path / "b" / "paper.pdf", SEED, index, classes=True)
    assert first["failure_class"] == class_name and first == again
    assert (tmp_path / "a" / "paper.pdf").read_bytes() == (tmp_path / "b" / "paper.pdf").read_bytes()


def test_pdfs_open_with_recorded_pages_header_and_footer(corpus):
    folder, truth = corpus
    for paper in truth:
        with pymupdf.open(folder / paper["file"]) as doc:
            assert doc.page_count == paper["pages"]
            assert doc.metadata["creationDate"].startswith("D:20260101")
            numbers = []
            for page in doc:
                assert page.rect == PAGE
                header = norm(page.get_text("text", clip=pymupdf.Rect(0, 0, 612, 50)))
                assert paper["running_header"][0] in header and paper["running_header"][1] in header
                numbers.append(int(norm(page.get_text("text", clip=pymupdf.Rect(0, 745, 612, 792)))))
            assert numbers == list(range(numbers[0], numbers[0] + doc.page_count))
            assert f"{numbers[0]}–{numbers[-1]}" in paper["running_header"][0]
            first = norm(doc[0].get_text())
            assert norm(paper["title"]) in first and "Abstract" in first


def test_captions_are_inside_their_boundaries(corpus):
    folder, truth = corpus
    for paper in truth:
        with pymupdf.open(folder / paper["file"]) as doc:
            for fig in paper["figures"]:
                page, box = doc[fig["page"]], rect(fig["captionBoundary"])
                assert norm(page.get_text("text", clip=box)) == fig["caption"], (paper["paper"], fig["name"])
                spans = [s for b in page.get_text("dict", clip=box)["blocks"] for line in b.get("lines", [])
                         for s in line["spans"] if s["text"].strip()]
                assert "Bold" in spans[0]["font"] and spans[0]["text"].strip() == f"{fig['figType']} {fig['name']}."
                assert all("Bold" not in s["font"] for s in spans[1:])
                union = pymupdf.Rect(spans[0]["bbox"])
                for s in spans[1:]:
                    union |= pymupdf.Rect(s["bbox"])
                assert all(abs(a - b) < 0.5 for a, b in zip(union, box)), (paper["paper"], fig["name"], union, box)


def test_region_boxes(corpus):
    folder, truth = corpus
    for paper in truth:
        with pymupdf.open(folder / paper["file"]) as doc:
            by_page: dict[int, list] = {}
            for fig in paper["figures"]:
                page, region, caption = doc[fig["page"]], rect(fig["regionBoundary"]), rect(fig["captionBoundary"])
                assert region.width > 0 and region.height > 0
                assert CONTENT.contains(region) and CONTENT.contains(caption)
                assert (region & caption).is_empty or (region & caption).get_area() == 0
                if fig["figType"] == "Figure":
                    assert caption.y0 == pytest.approx(region.y1 + 6, abs=0.01)  # caption below the figure
                    below = caption.y1
                else:
                    assert region.y0 == pytest.approx(caption.y1 + 6, abs=0.01)  # table caption above the table
                    below = region.y1
                gap = pymupdf.Rect(min(region.x0, caption.x0), below + 0.5, max(region.x1, caption.x1), below + 11.5)
                assert page.get_text("words", clip=gap) == [], (paper["paper"], fig["name"])
                if fig["kind"] == "raster":
                    assert page.get_text("words", clip=region) == []
                    placed = [pymupdf.Rect(info["bbox"]) for info in page.get_image_info()]
                    assert any(all(abs(a - b) < 0.01 for a, b in zip(p, region)) for p in placed)
                by_page.setdefault(fig["page"], []).extend([region, caption])
            for boxes in by_page.values():
                for i, a in enumerate(boxes):
                    for b in boxes[i + 1:]:
                        assert (a & b).is_empty or (a & b).get_area() == 0


def test_layouts_and_figure_kinds(corpus):
    _, truth = corpus
    assert {p["layout"] for p in truth} == {"one-column", "two-column"}
    assert {f["kind"] for _, f in floats(truth)} == {"raster", "vector", "table"}
    widths = {round(rect(f["regionBoundary"]).width) for p, f in floats(truth)
              if p["layout"] == "two-column" and f["figType"] == "Figure" and f["must_filter"] != "too_small"}
    assert {243, 504} <= widths  # column-wide and page-wide figures in two-column papers
    assert any(f["figType"] == "Table" for _, f in floats(truth))


def test_filter_labels_match_rendered_regions(corpus):
    folder, truth = corpus
    seen = set()
    for paper in truth:
        with pymupdf.open(folder / paper["file"]) as doc:
            for fig in paper["figures"]:
                if fig["figType"] != "Figure":
                    continue
                gray = render_gray(doc[fig["page"]], rect(fig["regionBoundary"]))
                var, small_side = laplacian_var(gray), min(gray.shape)
                label = fig["must_filter"]
                seen.add(label)
                where = (paper["paper"], fig["name"], label, var, gray.shape)
                if label == "blurry":
                    assert var < 20 and small_side >= 100, where
                elif label == "too_small":
                    assert small_side < 100, where
                else:
                    assert var >= 100 and small_side >= 100, where
    assert seen == {None, "blurry", "too_small"}


def test_mentions(corpus):
    folder, truth = corpus
    forms = {"shows": 0, "figs_and": 0, "figs_range": 0, "panel_upper": 0, "panel_paren": 0, "table_paren": 0}
    for paper in truth:
        body = " ".join(p for s in paper["sections"] for p in s["paragraphs"])
        with pymupdf.open(folder / paper["file"]) as doc:
            text = dehyphenated_text(doc)
        words = set(text.split())
        shows = False
        for fig in paper["figures"]:
            assert fig["mentions"], (paper["paper"], fig["name"])
            for sentence in fig["mentions"]:
                assert sentence == norm(sentence) and sentence in body
                assert (fig["figType"], fig["name"]) in references(sentence), sentence
                missing = [w for w in sentence.split() if w not in words]
                assert not missing, (paper["paper"], sentence, missing)
                shows |= sentence.startswith(f"Figure {fig['name']} shows ")
                forms["shows"] += sentence.startswith("Figure ")
                forms["figs_and"] += bool(re.search(r"Figs\. \d+ and \d+", sentence))
                forms["figs_range"] += bool(re.search(r"Figs\. \d+–\d+", sentence))
                forms["panel_upper"] += bool(re.search(r"Fig\. \d+[AB]\b", sentence))
                forms["panel_paren"] += bool(re.search(r"Fig\. \d+\([ab]\)", sentence))
                forms["table_paren"] += "(Table 1)" in sentence
                assert not sentence.startswith(("Figure 1.", "Table 1."))  # body sentences, not captions
        assert shows, paper["paper"]
    assert all(forms.values()), forms


def test_hyphenated_line_ends_join_to_ground_truth_words(corpus):
    folder, truth = corpus
    joined = []
    for paper in truth:
        gt = paper["abstract"] + " " + " ".join(p for s in paper["sections"] for p in s["paragraphs"])
        with pymupdf.open(folder / paper["file"]) as doc:
            for page in doc:
                for head, tail in re.findall(r"([a-z]+)-\n([a-z]+)", page.get_text()):
                    assert head + tail in gt, (paper["paper"], head, tail)
                    joined.append(head + tail)
    assert len(joined) >= 5, joined


def test_justified_body_lines_extract_as_single_lines(corpus):
    """Word gaps of justified lines stay small enough that PyMuPDF keeps each body line whole."""
    folder, truth = corpus
    for paper in truth:
        size = 9.0 if paper["layout"] == "two-column" else 10.0
        with pymupdf.open(folder / paper["file"]) as doc:
            for page in doc:
                count: dict[tuple, int] = {}
                for block in page.get_text("dict")["blocks"]:
                    for line in block.get("lines", []):
                        span = line["spans"][0]
                        if span["size"] == size and span["font"] == "Helvetica":
                            key = (round(span["origin"][1], 2), line["bbox"][0] < 300)
                            count[key] = count.get(key, 0) + 1
                assert count and max(count.values()) == 1, (paper["paper"], page.number)


def test_cli_takes_count_seed_and_folder_from_the_config(corpus, tmp_path, capsys):
    from ldrt_hpc.cli import main

    folder, truth = corpus
    config = tmp_path / "pipeline.yaml"
    config.write_text(f"# ldrt-hpc synth-corpus --config pipeline.yaml\nwork_dir: work\nsynth:\n  papers: 1\n  seed: {SEED}\n"
                      "stages:\n  ingest:\n    input_dir: pdfs\n")
    assert main(["synth-corpus", "--config", str(config)]) == 0
    written = tmp_path / "pdfs"  # relative to the config's folder
    assert json.loads((written / "ground_truth.json").read_text(encoding="utf-8")) == truth[:1]
    assert (written / truth[0]["file"]).read_bytes() == (folder / truth[0]["file"]).read_bytes()
    assert main(["synth-corpus"]) == 2 and "give the output folder" in capsys.readouterr().err


def shown_clip(page, box: dict) -> pymupdf.Rect:
    """A ground-truth box (as the page is shown) in the unrotated page space that get_text(clip=...) takes."""
    return rect(box) * page.derotation_matrix


def test_failure_class_corpus(tmp_path):
    """synth_corpus(..., classes=True): paper i shows class i mod len(CLASSES), recorded per paper and per float,
    with exact boxes; the default corpus carries no failure_class."""
    from ldrt_hpc.demo.classes import CLASSES

    truth = synth_corpus(tmp_path, len(CLASSES), SEED, classes=True)
    assert [p["failure_class"] for p in truth] == CLASSES
    assert all(p["file"].startswith(f"synth-classes-{SEED}-") for p in truth)
    for paper in truth:
        style = paper["failure_class"]
        shown = [f for f in paper["figures"] if f["failure_class"] == style]
        assert shown and all(f["failure_class"] in (None, style) for f in paper["figures"])
        with pymupdf.open(tmp_path / paper["file"]) as doc:
            for fig in paper["figures"]:
                page = doc[fig["page"]]
                text = norm(page.get_text("text", clip=shown_clip(page, fig["captionBoundary"])))
                region = rect(fig["regionBoundary"])
                assert (region & rect(fig["captionBoundary"])).get_area() == 0
                if style == "no_spaces":
                    lines = page.get_text("text", clip=rect(fig["captionBoundary"])).strip().split("\n")
                    assert all(" " not in line for line in lines), lines  # no space glyphs: words run together
                    assert "".join(lines) == fig["caption"].replace(" ", ""), lines
                elif style == "label_above" and fig["figType"] == "Figure":
                    label = norm(page.get_text("text", clip=rect(fig["labelBoundary"])))
                    assert label == f"Figure {fig['name']}" and f"{label} {text}" == fig["caption"]
                    assert rect(fig["labelBoundary"]).y1 < region.y0
                else:
                    assert text == fig["caption"], (style, text)
                if fig["failure_class"] is None:
                    continue
                head = fig["caption"].split(" ")[0]
                assert head == {"unnumbered": f"{fig['figType']}:", "hyphenated": f"{fig['figType']}-{fig['name']}:",
                                "caps_no_delimiter": fig["figType"].upper()}.get(style, head)
                if style == "roman_table":
                    assert fig["caption"].startswith("Table I ")
            if style == "panel_letters":
                fig = shown[0]
                above = rect(fig["captionBoundary"])
                letters = norm(doc[fig["page"]].get_text("text", clip=pymupdf.Rect(above.x0, fig["regionBoundary"]["y2"],
                                                                                   above.x1, above.y0)))
                assert letters in ("A B", "a b"), letters
    assert "failure_class" not in synth_corpus(tmp_path / "plain", 1, SEED)[0]


# --- the hidden_weight class and the region classes, each on papers of several rounds ----------------------------

CLASS_ROUNDS = {"hidden_weight": (0, 1), "rotated": (0, 1, 2, 3), "full_width_table": (0,), "publisher_box": (0, 1),
                "multi_panel": (0, 1, 2), "slivers": (0,)}


@pytest.fixture(scope="module")
def class_papers(tmp_path_factory) -> dict[str, list[tuple[dict, pymupdf.Document]]]:
    """Per class, (ground truth, open document) of its papers of the rounds in CLASS_ROUNDS."""
    from ldrt_hpc.demo.classes import CLASSES
    from ldrt_hpc.demo.corpus import make_paper

    folder = tmp_path_factory.mktemp("class-papers")
    papers: dict[str, list] = {}
    for name, rounds in CLASS_ROUNDS.items():
        for number in rounds:
            index = number * len(CLASSES) + CLASSES.index(name)
            path = folder / f"synth-classes-{SEED}-{index:05d}.pdf"
            truth = make_paper(path, SEED, index, classes=True)
            assert truth["failure_class"] == name
            papers.setdefault(name, []).append((truth, pymupdf.open(path)))
    yield papers
    for entries in papers.values():
        for _, doc in entries:
            doc.close()


def shown_float(truth: dict) -> dict:
    """The one float of a region-class paper that shows the class."""
    (fig,) = [f for f in truth["figures"] if f["failure_class"] == truth["failure_class"]]
    return fig


def drawn(page, kinds: tuple[str, ...], within: pymupdf.Rect | None = None) -> pymupdf.Rect:
    """Union of what the page draws of these kinds (get_bboxlog), as the page is shown; only what lies within
    `within` (1 pt slack) when given."""
    rects = [pymupdf.Rect(r) * page.rotation_matrix for kind, r in page.get_bboxlog() if kind in kinds]
    if within is not None:
        rects = [r for r in rects if (within + (-1, -1, 1, 1)).contains(r)]
    assert rects, kinds
    union = rects[0]
    for r in rects[1:]:
        union |= r
    return union


def close(a: pymupdf.Rect, b: pymupdf.Rect, tolerance: float = 0.5) -> bool:
    return all(abs(x - y) <= tolerance for x, y in zip(a, b))


def stroke_width(page, box: pymupdf.Rect) -> float:
    """Mean stroke width of the glyphs in box, in pixels at 8x: twice the ink area over its outline length."""
    pix = page.get_pixmap(clip=box, matrix=pymupdf.Matrix(8, 8), colorspace=pymupdf.csGRAY)
    ink = (np.frombuffer(pix.samples, np.uint8).reshape(pix.h, pix.w) < 128).astype(np.uint8)
    outline = int(ink.sum()) - int(cv2.erode(ink, np.ones((3, 3), np.uint8)).sum())
    return 2.0 * float(ink.sum()) / outline


def test_hidden_weight_label_is_bold_only_in_its_glyphs(class_papers):
    from ldrt_hpc.pdf.layout import bold_fonts

    for truth, doc in class_papers["hidden_weight"]:
        body = 9.0 if truth["layout"] == "two-column" else 10.0
        for fig in truth["figures"]:
            assert fig["failure_class"] == "hidden_weight"
            assert fig["caption"].startswith(f"{fig['figType']} {fig['name']} ")  # no delimiter
            page = doc[fig["page"]]
            spans = [s for b in page.get_text("dict", clip=rect(fig["captionBoundary"]))["blocks"]
                     for line in b.get("lines", []) for s in line["spans"] if s["text"].strip()]
            label, rest = spans[0], spans[1]
            assert label["text"].strip() == f"{fig['figType']} {fig['name']}" and label["font"] == "AdvPECFD36"
            assert not label["flags"] & 16 and "bold" not in label["font"].lower()
            assert all(s["size"] == body for s in spans)  # the whole caption in the body size
            assert label["font"] not in bold_fonts(page)
            assert stroke_width(page, pymupdf.Rect(label["bbox"])) > 1.3 * stroke_width(page, pymupdf.Rect(rest["bbox"]))
        fonts = [f for f in doc[truth["figures"][0]["page"]].get_fonts() if "AdvPECFD36" in f[3]]
        assert fonts and all("Bold" not in f[3] for f in fonts)
        descriptors = [xref for xref in range(1, doc.xref_length())
                       if doc.xref_get_key(xref, "Type")[1] == "/FontDescriptor"
                       and "AdvPECFD36" in doc.xref_get_key(xref, "FontName")[1]]
        assert descriptors
        for xref in descriptors:
            assert doc.xref_get_key(xref, "FontName")[1] == "/AdvPECFD36"
            assert doc.xref_get_key(xref, "FontWeight")[0] == "null"
            assert doc.xref_get_key(xref, "Flags")[1] == "32" and doc.xref_get_key(xref, "StemV")[1] == "80"


def test_region_class_caption_text_in_its_box(class_papers):
    for name in CLASS_ROUNDS:
        for truth, doc in class_papers[name]:
            for fig in truth["figures"]:
                page = doc[fig["page"]]
                text = norm(page.get_text("text", clip=shown_clip(page, fig["captionBoundary"])))
                assert text == fig["caption"], (truth["paper"], fig["name"], text)
                assert (rect(fig["regionBoundary"]) & rect(fig["captionBoundary"])).get_area() == 0
                assert page.rect.contains(rect(fig["regionBoundary"]))


def test_rotated_pages_and_sideways_tables(class_papers):
    turns = []
    for truth, doc in class_papers["rotated"]:
        fig = shown_float(truth)
        page = doc[fig["page"]]
        assert fig["page"] == truth["pages"] - 1 == doc.page_count - 1
        region = rect(fig["regionBoundary"])
        kinds = ("fill-image",) if fig["figType"] == "Figure" else ("stroke-path",)
        assert close(drawn(page, kinds, region), region), (truth["paper"], drawn(page, kinds, region), region)
        lines = [line for b in page.get_text("dict")["blocks"] for line in b.get("lines", [])]
        directions = {tuple(round(v) for v in line["dir"]) for line in lines}
        if page.rotation:
            assert page.rect == pymupdf.Rect(0, 0, 792, 612) and page.rotation in (90, 270)
            # shown upright: the text runs left to right as the page is shown
            assert {tuple(round(v) for v in pymupdf.Point(d) * pymupdf.Matrix(page.rotation)) for d in directions} \
                == {(1, 0)}
        else:
            assert page.rect == PAGE and fig["figType"] == "Table" and directions in ({(0, -1)}, {(0, 1)})
        turns.append((page.rotation, fig["figType"], directions.pop()))
    assert len(set(turns)) == 4, turns


def test_full_width_table_between_paragraphs_of_both_columns(class_papers):
    for truth, doc in class_papers["full_width_table"]:
        assert truth["layout"] == "two-column"
        fig = shown_float(truth)
        page, region, caption = doc[fig["page"]], rect(fig["regionBoundary"]), rect(fig["captionBoundary"])
        assert fig["figType"] == "Table" and region.width == pytest.approx(504) and caption.x1 <= 54 + 243 + 0.01
        assert close(drawn(page, ("stroke-path",), region), region)
        words = page.get_text("words")
        for x0, x1 in ((54, 297), (315, 558)):  # both columns have text above and below the table
            assert any(w[3] < region.y0 and w[0] >= x0 and w[2] <= x1 and w[1] > 50 for w in words)
            assert any(w[1] > region.y1 and w[0] >= x0 and w[2] <= x1 and w[3] < 745 for w in words)
        beside = [w for w in words if w[0] >= 315 and caption.y0 <= w[1] <= caption.y1]
        assert beside  # the right column's text runs on beside the caption
        heading = page.search_for("5. Conclusions")
        assert heading and 0 < heading[0].y0 - region.y1 < 20


def test_publisher_box_between_figure_and_caption(class_papers):
    for truth, doc in class_papers["publisher_box"]:
        fig = shown_float(truth)
        page, region, caption = doc[fig["page"]], rect(fig["regionBoundary"]), rect(fig["captionBoundary"])
        boxes = [d["rect"] for d in page.get_drawings() if d["type"] == "fs" and region.y1 < d["rect"].y0
                 and d["rect"].y1 < caption.y0]
        assert len(boxes) == 1
        text = page.get_text("text", clip=boxes[0])
        assert all(word in text for word in ("Received", "Accepted", "Published"))
        assert caption.y0 - boxes[0].y1 < 10 and boxes[0].y0 - region.y1 < 15
        kinds = ("fill-image",) if fig["kind"] == "raster" else ("fill-path", "stroke-path", "fill-text")
        assert close(drawn(page, kinds, region), region, 1.0), (drawn(page, kinds, region), region)


def test_multi_panel_figure_of_separate_images(class_papers):
    counts, titled = set(), 0
    for truth, doc in class_papers["multi_panel"]:
        fig = shown_float(truth)
        page, region = doc[fig["page"]], rect(fig["regionBoundary"])
        panels = [pymupdf.Rect(info["bbox"]) for info in page.get_image_info()]
        assert len(panels) in (3, 4) and fig["kind"] == "raster"
        counts.add(len(panels))
        union = panels[0]
        for panel in panels[1:]:
            union |= panel
        assert close(union, region, 0.01)
        for a in panels:  # the gap to the next panel to the right and below
            right = [b.x0 - a.x1 for b in panels if abs(a.y0 - b.y0) < 1 and b.x0 > a.x1]
            below = [b for b in panels if abs(a.x0 - b.x0) < 1 and b.y0 > a.y1]
            gaps = sorted(right)[:1] + [b.y0 - a.y1 for b in below]
            assert all(8 - 0.01 <= gap <= 20 + 0.01 for gap in gaps) and len(right) <= 2, gaps
            titled += any(page.get_text("words", clip=pymupdf.Rect(a.x0, a.y1, a.x1, b.y0)) for b in below)
    assert counts == {3, 4} and titled  # panel titles between the rows of some figures


def test_slivers_make_one_picture(class_papers):
    for truth, doc in class_papers["slivers"]:
        fig = shown_float(truth)
        page, region = doc[fig["page"]], rect(fig["regionBoundary"])
        strips = [pymupdf.Rect(info["bbox"]) for info in page.get_image_info()]
        assert len(strips) > 100 and all(1.2 - 0.01 <= s.height <= 2.0 + 0.01 for s in strips)
        union = strips[0]
        for strip in strips[1:]:
            union |= strip
        assert close(union, region, 0.01)
        gray = render_gray(page, region)
        assert laplacian_var(gray) >= 100  # one sharp picture, not noise
