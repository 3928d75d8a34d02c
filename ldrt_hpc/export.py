"""Exports of stage shards to the formats other tools read: pdffigures2-style figures, LLaVA instruction data."""

from __future__ import annotations

import json
import os
import shutil
from collections import defaultdict
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from . import layout
from .plan import load_plan
from .shards import ShardReader, is_complete, shard_path


@contextmanager
def staged(out_dir: Path) -> Iterator[Path]:
    """Write an export into a hidden sibling folder and move it into `out_dir` only when it is complete: an
    unreadable shard half way leaves `out_dir` as it was (no half export mixed with an older one)."""
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = out_dir.parent / f".{out_dir.name}.partial-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        yield staging
        out_dir.mkdir(exist_ok=True)
        for source in sorted(staging.rglob("*")):
            target = out_dir / source.relative_to(staging)
            if source.is_dir():
                target.mkdir(exist_ok=True)
            else:
                os.replace(source, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def export_figures(work_dir: Path, out_dir: Path, contact_sheet: bool = False, sheet_dpi: int = 60) -> dict[str, int]:
    with staged(out_dir) as staging:
        counts = _export_figures(work_dir, staging, Path(out_dir).resolve(), contact_sheet, sheet_dpi)
    return counts


CONTACT_SHEETS = "contact-sheets"
"""OUT/contact-sheets/<paper_id>/page-001.png ... (1-based page numbers; the JSON's `page` is 0-based)."""


def _export_figures(work_dir: Path, out_dir: Path, final_dir: Path, contact_sheet: bool = False,
                    sheet_dpi: int = 60) -> dict[str, int]:
    """pdffigures2-compatible output: OUT/<paper>.json (a list of figures) and OUT/<paper>-<Type><name>.png.

    Every paper that a complete figures shard processed gets its JSON, `[]` when nothing was found in it, so
    "none found" differs from "not processed" (a paper of an incomplete shard, one quarantined by the figures
    stage, or one that ingest rejected has no JSON). `without_crop` counts detections that have no image (no
    region found, or a backend that rendered none): their `renderURL` is null."""
    stage_dir = layout.stage_dir(work_dir, "figures")
    plan = load_plan(stage_dir)
    if plan is None:
        raise FileNotFoundError(f"no figures stage in {work_dir}: run `ldrt-hpc run figures` first")
    out_dir.mkdir(parents=True, exist_ok=True)
    counts = {"papers": 0, "figures": 0, "images": 0, "without_crop": 0, "papers_without_figures": 0,
              "incomplete_shards": 0}
    if contact_sheet:
        counts.update(contact_sheets=0, contact_sheet_pages=0, contact_sheets_missing_pdf=0)
    for index in range(plan.num_shards):
        if not is_complete(stage_dir, index):
            counts["incomplete_shards"] += 1
            continue
        papers: dict[str, list] = defaultdict(list)
        boxes: dict[str, list] = defaultdict(list)
        with ShardReader(shard_path(stage_dir, index)) as reader:
            quarantined = {q["item_id"] for q in reader.quarantine}
            for record in reader:
                entry = {
                    "name": record["name"], "figType": record["fig_type"], "page": record["page"],
                    "caption": record["caption"], "captionBoundary": _box(record["caption_box"]),
                    "regionBoundary": _box(record["region_box"]), "imageText": record["image_text"].split(),
                    "renderDpi": record["dpi"], "renderURL": None,
                }
                if record["png"]:
                    png = out_dir / f"{record['paper_id']}-{record['fig_type']}{record['name']}-1.png"
                    png.write_bytes(record["png"])
                    entry["renderURL"] = str(final_dir / png.name)
                    counts["images"] += 1
                else:
                    counts["without_crop"] += 1
                papers[record["paper_id"]].append(entry)
                if contact_sheet:
                    boxes[record["paper_id"]].append(record)
        processed = _processed_papers(work_dir, index, quarantined)
        for paper_id in processed:
            papers.setdefault(paper_id, [])
        for paper_id, figures in papers.items():
            (out_dir / f"{paper_id}.json").write_text(json.dumps(figures, indent=1, ensure_ascii=False) + "\n")
            counts["papers"] += 1
            counts["figures"] += len(figures)
            counts["papers_without_figures"] += not figures
        if contact_sheet:
            for paper_id in papers:
                path = processed.get(paper_id)
                if not path or not Path(path).is_file():
                    counts["contact_sheets_missing_pdf"] += 1
                    continue
                counts["contact_sheet_pages"] += _write_contact_sheet(
                    Path(path), boxes.get(paper_id, []), out_dir / CONTACT_SHEETS / paper_id, sheet_dpi)
                counts["contact_sheets"] += 1
    return counts


def _processed_papers(work_dir: Path, index: int, quarantined: set[str]) -> dict[str, str]:
    """paper_id -> PDF path of the papers that figures shard `index` processed: the accepted papers of the ingest
    shard it read (shard i reads shard i), less those it quarantined. Empty when that ingest shard is gone."""
    ingest_dir = layout.stage_dir(work_dir, "ingest")
    if not is_complete(ingest_dir, index):
        return {}
    with ShardReader(shard_path(ingest_dir, index)) as reader:
        return {r["paper_id"]: r["path"] for r in reader if r["ok"] and r["paper_id"] not in quarantined}


def _write_contact_sheet(pdf: Path, records: list[dict], folder: Path, dpi: int) -> int:
    """One PNG per page of `pdf` with the detected caption and region boxes drawn on it; returns the page count."""
    import pymupdf

    from .pdf.contact_sheet import Box, draw_page_png

    by_page: dict[int, list[Box]] = defaultdict(list)
    for record in records:
        label = f"{record['fig_type']} {record['name']}".strip()
        if len(record["region_box"]) == 4:
            by_page[record["page"]].append(Box(list(record["region_box"]), "region", label))
            by_page[record["page"]].append(Box(list(record["caption_box"]), "caption", f"{label} caption"))
        else:
            by_page[record["page"]].append(Box(list(record["caption_box"]), "caption", f"{label} caption, no region"))
    folder.mkdir(parents=True, exist_ok=True)
    with pymupdf.open(pdf) as doc:
        for number, page in enumerate(doc):
            (folder / f"page-{number + 1:03d}.png").write_bytes(draw_page_png(page, by_page.get(number, []), dpi))
        return doc.page_count


def _box(values) -> dict[str, float] | None:
    values = [float(v) for v in values]
    if len(values) != 4:
        return None
    return dict(zip(("x1", "y1", "x2", "y2"), values))


def export_llava(work_dir: Path, out_dir: Path, eval_share: float = 0.03, seed: int = 0) -> dict[str, int]:
    with staged(out_dir) as staging:
        counts = _export_llava(work_dir, staging, eval_share, seed)
    return counts


def _export_llava(work_dir: Path, out_dir: Path, eval_share: float = 0.03, seed: int = 0) -> dict[str, int]:
    """LLaVA-format train.json / eval.json (+ images/) from the kept `qa` samples, split by paper.

    Each entry: {"id", "image", "conversations": [{"from": "human", "value": "<image>\\n" + question},
    {"from": "gpt", "value": answer}]}, which the official LLaVA training scripts read as they are."""
    from .instruct.split import kept_samples, split_samples

    samples = kept_samples(work_dir)
    _, _, eval_papers = split_samples(samples, eval_share, seed)
    figures_dir = layout.stage_dir(work_dir, "figures")
    images = out_dir / "images"
    images.mkdir(parents=True, exist_ok=True)
    sets: dict[str, list] = {"train": [], "eval": []}
    readers: dict[int, ShardReader] = {}
    try:
        for index, sample in samples:
            name = f"{sample['paper_id']}-{sample['fig_type']}{sample['figure_name']}.png"
            if not (images / name).exists():
                if index not in readers:
                    readers[index] = ShardReader(shard_path(figures_dir, index))
                (images / name).write_bytes(readers[index][sample["figure_index"]]["png"])
            entry = {"id": sample["sample_id"], "image": f"images/{name}", "conversations": [
                {"from": "human", "value": "<image>\n" + sample["question"]},
                {"from": "gpt", "value": sample["answer"]}]}
            sets["eval" if sample["paper_id"] in eval_papers else "train"].append(entry)
    finally:
        for reader in readers.values():
            reader.close()
    for name, entries in sets.items():
        (out_dir / f"{name}.json").write_text(json.dumps(entries, indent=1, ensure_ascii=False) + "\n")
    return {"train": len(sets["train"]), "eval": len(sets["eval"]), "eval_papers": len(eval_papers),
            "papers": len({s["paper_id"] for _, s in samples})}
