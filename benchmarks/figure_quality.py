#!/usr/bin/env python3
"""Figure/caption extraction quality: real papers of ../shared/corpus (caption ground truth) and a generated
corpus (exact boxes), and a generated corpus of the failure classes of issue 15 reported per class
(``synth_corpus(..., classes=True)``). Prints numbers; asserts nothing (the floors live in the tests).

    python benchmarks/figure_quality.py [--papers 24] [--seed 0] [--class-papers 28]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ldrt_hpc.demo import synth_corpus  # noqa: E402
from ldrt_hpc.demo.classes import CLASSES, class_scores  # noqa: E402
from ldrt_hpc.pdf.evaluate import real_ground_truth, score_paper, summarise  # noqa: E402

SHARED = Path(__file__).resolve().parent.parent.parent / "shared"


def show(label: str, summary: dict) -> None:
    print(f"{label}: {summary['found']}/{summary['expected']} captions found (similarity >= 0.9, "
          f"{summary['recall']:.1%}); {summary['false']}/{summary['detections']} detections match nothing "
          f"({summary['false_share']:.1%})" + (f"; regions with IoU >= 0.7: {summary['iou_ge_0_7']:.1%} of "
                                               f"{summary['regions']}" if summary["regions"] else ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--papers", type=int, default=24)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--class-papers", type=int, default=4 * len(CLASSES),
                        help=f"papers of the classes corpus (paper i shows class i mod {len(CLASSES)}; 0: skip it)")
    args = parser.parse_args()
    if SHARED.is_dir():
        scores = []
        for pdf, (items, types) in real_ground_truth(SHARED).items():
            score = score_paper(SHARED / "corpus" / "pdfs" / pdf, items, types=types)
            scores.append(score)
            print(f"  {pdf}: {score.found}/{score.expected} found, {score.detections} detections, {score.false} false"
                  + (f", missed {score.misses}" if score.misses else ""))
        show("real papers with caption ground truth", summarise(scores))
    else:
        print("../shared is absent: real papers skipped")
    with tempfile.TemporaryDirectory() as tmp:
        truth = synth_corpus(Path(tmp), args.papers, args.seed)
        scores = [score_paper(Path(tmp) / paper["file"], paper["figures"]) for paper in truth]
        show(f"generated corpus ({args.papers} papers, seed {args.seed})", summarise(scores))
    if args.class_papers:
        with tempfile.TemporaryDirectory() as tmp:
            truth = synth_corpus(Path(tmp), args.class_papers, args.seed, classes=True)
            per_class = class_scores(Path(tmp), truth)
        print(f"generated failure-class corpus ({args.class_papers} papers, seed {args.seed}), per class "
              "(default: the floats of those papers that show no class):")
        for name in CLASSES + ["default"]:
            if name in per_class:
                summary = per_class[name]
                show(f"  {name}", summary)
                if summary["misses"]:
                    print(f"    missed: {', '.join(summary['misses'])}")


if __name__ == "__main__":
    main()
