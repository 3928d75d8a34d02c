"""A generated corpus of small LDRT-like papers (PDF), deterministic for a seed: the embedded default input.

Minimal for now (title, abstract, body text that mentions figures, one or two figures with labelled captions);
the preprocessing stages grow it into a corpus with exact figure/caption ground truth.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pymupdf

TOPICS = [
    ("Low-dose whole-lung irradiation", "COVID-19 pneumonia", "oxygen saturation"),
    ("Low-dose radiation therapy", "knee osteoarthritis", "pain score"),
    ("Radiation hormesis", "murine lymphocytes", "proliferation index"),
    ("Low-dose total body irradiation", "non-Hodgkin lymphoma", "progression-free survival"),
    ("Adaptive response to 0.1 Gy", "human fibroblasts", "micronucleus frequency"),
    ("Low-dose radiotherapy", "Alzheimer's disease models", "amyloid plaque burden"),
]


def _figure_png(rng: random.Random, size: int = 240) -> bytes:
    """A textured grayscale 'microscopy-like' image as PNG bytes (sharp enough to pass a blur filter)."""
    gen = np.random.default_rng(rng.randrange(1 << 30))
    image = (gen.random((size, size)) * 255).astype(np.uint8)
    pixmap = pymupdf.Pixmap(pymupdf.csGRAY, size, size, image.tobytes(), False)
    return pixmap.tobytes("png")


def make_paper(path: Path, index: int, rng: random.Random) -> dict:
    title_topic, population, endpoint = TOPICS[index % len(TOPICS)]
    title = f"{title_topic} in {population}: study {index + 1}"
    dose = rng.choice([0.1, 0.3, 0.5, 1.0, 1.5])
    n_figures = rng.randint(1, 2)
    doc = pymupdf.open()
    figures = []
    for page_no in range(n_figures):
        page = doc.new_page(width=612, height=792)
        if page_no == 0:
            page.insert_textbox(pymupdf.Rect(72, 60, 540, 110), title, fontsize=16, fontname="helv")
            abstract = (f"Abstract. We studied {title_topic.lower()} at {dose} Gy in {population}. "
                        f"The primary endpoint was {endpoint}.")
            page.insert_textbox(pymupdf.Rect(72, 115, 540, 170), abstract, fontsize=10, fontname="helv")
        body = (f"Results. As shown in Fig. {page_no + 1}, {endpoint} improved after {dose} Gy "
                f"compared with sham irradiation (p < 0.05). The effect persisted for {rng.randint(2, 12)} weeks.")
        page.insert_textbox(pymupdf.Rect(72, 180, 540, 240), body, fontsize=10, fontname="helv")
        box = pymupdf.Rect(156, 260, 456, 560)
        page.insert_image(box, stream=_figure_png(rng))
        caption = f"Figure {page_no + 1}. {endpoint.capitalize()} after {dose} Gy in {population}."
        page.insert_textbox(pymupdf.Rect(72, 570, 540, 610), caption, fontsize=9, fontname="helv")
        figures.append({"name": str(page_no + 1), "page": page_no, "caption": caption,
                        "regionBoundary": {"x1": box.x0, "y1": box.y0, "x2": box.x1, "y2": box.y1}})
    doc.set_metadata({"title": title, "creationDate": "D:20260101000000", "modDate": "D:20260101000000"})
    doc.save(path, garbage=3, deflate=True, no_new_id=True)
    doc.close()
    return {"paper": path.stem, "title": title, "pages": n_figures, "figures": figures}


def synth_corpus(out_dir: Path, papers: int, seed: int) -> list[dict]:
    """Write `papers` PDFs and `ground_truth.json` to out_dir; returns the ground truth."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    truth = [make_paper(out_dir / f"synth-{seed}-{i:05d}.pdf", i, rng) for i in range(papers)]
    (out_dir / "ground_truth.json").write_text(json.dumps(truth, indent=1) + "\n")
    return truth
