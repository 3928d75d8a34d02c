"""Quality of figure/caption extraction against ground truth (real papers: captions; generated papers: boxes).

Used by `benchmarks/figure_quality.py` (prints the numbers for docs/benchmarks.md) and by the tests that hold
floors under them.
"""

from __future__ import annotations

import difflib
import json
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

import pymupdf

from .detector import Detection, detect
from .layout import caption_label, parse_label


def normalise(text: str) -> str:
    """Caption text for comparison: no label, NFKC, plain dashes and quotes, single spaces, lower case."""
    text = unicodedata.normalize("NFKC", text)
    text = re.sub(r"[\u2010-\u2015\u2212]", "-", text)
    text = re.sub(r"[\u2018\u2019\u201c\u201d]", "'", text)
    label = caption_label(text)
    if label is not None:  # the label with its number and delimiter
        text = text[label.end:]
    text = re.sub(r"-\s+", "-", text)
    return re.sub(r"\s+", " ", text).strip().lower()


def similarity(a: str, b: str) -> float:
    return difflib.SequenceMatcher(None, normalise(a), normalise(b), autojunk=False).ratio()


def iou(a: pymupdf.Rect, b: pymupdf.Rect) -> float:
    inter = a & b
    if inter.is_empty:
        return 0.0
    union = a.get_area() + b.get_area() - inter.get_area()
    return inter.get_area() / union if union else 0.0


@dataclass
class PaperScore:
    paper: str
    expected: int
    found: int = 0
    """Expected items detected with caption similarity >= 0.9."""
    detections: int = 0
    false: int = 0
    """Detections that match no expected item."""
    ious: list[float] = field(default_factory=list)
    misses: list[str] = field(default_factory=list)


def score_paper(pdf: Path, expected: list[dict], detections: list[Detection] | None = None,
                types: tuple[str, ...] = ("Figure", "Table")) -> PaperScore:
    """`expected`: dicts with figType, name, caption (and regionBoundary/page for generated papers). `types`: the
    kinds the ground truth lists completely (a detection of another kind can be neither right nor false)."""
    if detections is None:
        with pymupdf.open(pdf) as doc:
            detections = detect(doc)
    score = PaperScore(pdf.name, len(expected), detections=len(detections))
    by_key = {(d.fig_type, d.name): d for d in detections}
    for item in expected:
        found = by_key.get((item["figType"], item["name"]))
        if found is None or similarity(found.caption, item["caption"]) < 0.9:
            score.misses.append(f"{item['figType']} {item['name']}")
            continue
        score.found += 1
        if "regionBoundary" in item:
            box = item["regionBoundary"]
            truth = pymupdf.Rect(box["x1"], box["y1"], box["x2"], box["y2"])
            score.ious.append(iou(found.region, truth) if found.region is not None else 0.0)
    keys = {(item["figType"], item["name"]) for item in expected}
    score.false = sum(1 for d in detections if d.fig_type in types and (d.fig_type, d.name) not in keys)
    return score


def real_ground_truth(shared: Path) -> dict[str, tuple[list[dict], tuple[str, ...]]]:
    """Expected figures/tables of the real papers with caption ground truth (../shared/corpus), with the kinds
    each truth lists completely (the BMC XML of trials_16_1_1 lists no tables although the PDF has them)."""
    truth_dir = shared / "corpus" / "ground_truth"
    result: dict[str, tuple[list[dict], tuple[str, ...]]] = {}
    for path in sorted(truth_dir.glob("*.captions.json")):
        data = json.loads(path.read_text())
        items = []
        for item in data["items"]:
            label = parse_label(item["label"] + ".")
            name = label[1] if label else item["label"].split()[-1]
            items.append({"figType": item["figType"], "name": name, "caption": item["caption"]})
        types = tuple(kind for kind, count in (("Figure", data["n_figures"]), ("Table", data["n_tables"])) if count)
        result[path.name.split(".")[0] + ".pdf"] = (items, types)
    expected = json.loads((truth_dir / "pdffigures2_expected.json").read_text())
    for pdf, entry in expected.items():
        if isinstance(entry, dict) and entry.get("figures"):
            items = [{"figType": f["figType"], "name": f["name"], "caption": f["caption"]} for f in entry["figures"]]
            result[pdf] = (items, ("Figure", "Table"))
    return result


def summarise(scores: list[PaperScore]) -> dict[str, float]:
    expected = sum(s.expected for s in scores)
    found = sum(s.found for s in scores)
    detections = sum(s.detections for s in scores)
    false = sum(s.false for s in scores)
    ious = [v for s in scores for v in s.ious]
    return {
        "expected": expected,
        "found": found,
        "recall": found / expected if expected else 0.0,
        "detections": detections,
        "false": false,
        "false_share": false / detections if detections else 0.0,
        "regions": len(ious),
        "iou_ge_0_7": sum(v >= 0.7 for v in ious) / len(ious) if ious else 0.0,
    }
