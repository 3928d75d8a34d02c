#!/usr/bin/env python3
"""Pages per second per core of each preprocessing step and backend on the real papers of ../shared/corpus.
Prints numbers; asserts nothing. Single process (one core), no isolation overhead except where stated.

    python benchmarks/preprocess_throughput.py [--corpus ../shared/corpus/pdfs] [--repeat 2]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import pymupdf

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ldrt_hpc.config import FilterConfig  # noqa: E402
from ldrt_hpc.isolate import run_isolated  # noqa: E402
from ldrt_hpc.pdf.detector import detect, render  # noqa: E402
from ldrt_hpc.pdf.markdown import to_markdown  # noqa: E402
from ldrt_hpc.images.quality import decide  # noqa: E402


def timed(label: str, pages: int, func, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        func()
        best = min(best, time.perf_counter() - started)
    print(f"{label:<46} {pages / best:8.1f} pages/s   ({best:.2f} s for {pages} pages)")
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", default=str(Path(__file__).resolve().parent.parent.parent / "shared/corpus/pdfs"))
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    pdfs = sorted(Path(args.corpus).glob("*.pdf"))
    if not pdfs:
        sys.exit(f"no PDFs in {args.corpus}")
    pages = sum(pymupdf.open(p).page_count for p in pdfs)
    print(f"{len(pdfs)} papers, {pages} pages, one core")

    timed("PyMuPDF plain text (reference)", pages, lambda: [page.get_text() for p in pdfs for page in pymupdf.open(p)],
          args.repeat)
    t_convert = timed("convert native", pages, lambda: [to_markdown(pymupdf.open(p)) for p in pdfs], args.repeat)
    crops = []

    def figures() -> None:
        crops.clear()
        for path in pdfs:
            doc = pymupdf.open(path)
            for found in detect(doc):
                if found.region is not None:
                    png, width, height = render(doc[found.page], found.region, 150)
                    crops.append({"fig_type": found.fig_type, "png": png, "width": width, "height": height})

    t_figures = timed("figures native (detect + render at 150 dpi)", pages, figures, args.repeat)
    t_filter = timed("filter (decode + Laplacian variance)", pages, lambda: [decide(c, FilterConfig()) for c in crops],
                     args.repeat)
    total = t_convert + t_figures + t_filter
    print(f"{'convert + figures + filter (default backends)':<46} {pages / total:8.1f} pages/s per core")
    timed("convert native, isolated (1 worker, fork/paper)", pages,
          lambda: list(run_isolated(lambda p: to_markdown(pymupdf.open(p)), pdfs, workers=1)), args.repeat)
    try:
        import pymupdf4llm
    except ImportError:
        print("convert pymupdf4llm: not installed")
    else:
        sample = pdfs[:3]
        sample_pages = sum(pymupdf.open(p).page_count for p in sample)
        timed(f"convert pymupdf4llm ({len(sample)} papers)", sample_pages,
              lambda: [pymupdf4llm.to_markdown(str(p), show_progress=False) for p in sample], 1)


if __name__ == "__main__":
    main()
