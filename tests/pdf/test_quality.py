"""Floors under the figure/caption extraction quality on the real papers of ../shared/corpus (numbers in
docs/benchmarks.md; measured by benchmarks/figure_quality.py)."""

from __future__ import annotations

import pymupdf
import pytest

from ldrt_hpc.demo import synth_corpus
from ldrt_hpc.demo.classes import CLASSES, class_scores
from ldrt_hpc.pdf.detector import detect
from ldrt_hpc.pdf.evaluate import normalise, real_ground_truth, score_paper, similarity, summarise
from ldrt_hpc.pdf.layout import parse_label


@pytest.mark.parametrize("text, expected", [
    ("Figure 3. Dose response", ("Figure", "3", True)),
    ("Fig. 2: Survival", ("Figure", "2", True)),
    ("FIGURE 4 | Tumour volume", ("Figure", "4", True)),
    ("Table II. Patients", ("Table", "2", True)),
    ("Supplementary Figure 1. Extra", ("Figure", "S1", True)),
    ("Figure S2. Extra", ("Figure", "S2", True)),
    ("Figure 2 shows the dose", ("Figure", "2", False)),
    ("Figures are shown", None),
])
def test_caption_labels(text, expected):
    assert parse_label(text) == expected


def test_normalised_similarity():
    text = "Figure 1: Over a set of ten rela-\n tions, \u201cTEXTRUNNER\u201d"
    assert normalise(text) == "over a set of ten rela-tions, 'textrunner'"
    assert similarity("Fig. 1. Dots show the 52 villages.", "Dots show the 52 villages.") == 1.0


@pytest.mark.shared
def test_caption_quality_floors(shared_dir):
    scores = [score_paper(shared_dir / "corpus" / "pdfs" / pdf, items, types=types)
              for pdf, (items, types) in real_ground_truth(shared_dir).items()]
    summary = summarise(scores)
    assert summary["expected"] >= 20
    assert summary["recall"] >= 0.97, [s.misses for s in scores]
    assert summary["false_share"] <= 0.05


@pytest.mark.shared
def test_regions_on_real_papers(shared_dir):
    """Every detected figure on the real papers gets a region that holds its graphics and no body paragraph."""
    with_region = total = 0
    for pdf in sorted((shared_dir / "corpus" / "pdfs").glob("*.pdf")):
        with pymupdf.open(pdf) as doc:
            for found in detect(doc):
                total += 1
                if found.region is None:
                    continue
                with_region += 1
                assert not found.region.intersects(found.caption_box) or found.region.y1 <= found.caption_box.y0 + 1 \
                    or found.region.y0 >= found.caption_box.y1 - 1 or found.region.x1 <= found.caption_box.x0 + 4 \
                    or found.region.x0 >= found.caption_box.x1 - 4, (pdf.name, found.name)
    assert total >= 70 and with_region / total >= 0.95


# --- issue 15: per-class floors on the generated failure-class corpus (synth_corpus(..., classes=True)) -----------

CLASS_PAPERS = 3 * len(CLASSES)  # three papers per class


@pytest.fixture(scope="module")
def class_scores_of_corpus(tmp_path_factory):
    folder = tmp_path_factory.mktemp("classes")
    truth = synth_corpus(folder, CLASS_PAPERS, 0, classes=True)
    return class_scores(folder, truth)


@pytest.mark.parametrize("failure_class", CLASSES)
def test_quality_floors_per_failure_class(class_scores_of_corpus, failure_class):
    """Caption recall >= 97 %, region IoU >= 0.7 for >= 95 % of the found items, false detections <= 5 %."""
    summary = class_scores_of_corpus[failure_class]
    assert summary["expected"] >= 3
    assert summary["recall"] >= 0.97, summary["misses"]
    assert summary["iou_ge_0_7"] >= 0.95, summary
    assert summary["false_share"] <= 0.05, summary
