"""Exports of stage shards to the formats other tools read."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

from .plan import load_plan
from .shards import ShardReader, is_complete, shard_path


def export_figures(work_dir: Path, out_dir: Path) -> dict[str, int]:
    """pdffigures2-compatible output: OUT/<paper>.json (a list of figures) and OUT/<paper>-<Type><name>.png."""
    stage_dir = Path(work_dir) / "figures"
    plan = load_plan(stage_dir)
    if plan is None:
        raise FileNotFoundError(f"no figures stage in {work_dir}: run `ldrt-hpc run figures` first")
    out_dir.mkdir(parents=True, exist_ok=True)
    counts = {"papers": 0, "figures": 0, "images": 0, "incomplete_shards": 0}
    for index in range(plan.num_shards):
        if not is_complete(stage_dir, index):
            counts["incomplete_shards"] += 1
            continue
        papers: dict[str, list] = defaultdict(list)
        with ShardReader(shard_path(stage_dir, index)) as reader:
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
                    entry["renderURL"] = str(png)
                    counts["images"] += 1
                papers[record["paper_id"]].append(entry)
        for paper_id, figures in papers.items():
            (out_dir / f"{paper_id}.json").write_text(json.dumps(figures, indent=1, ensure_ascii=False) + "\n")
            counts["papers"] += 1
            counts["figures"] += len(figures)
    return counts


def _box(values) -> dict[str, float] | None:
    values = [float(v) for v in values]
    if len(values) != 4:
        return None
    return dict(zip(("x1", "y1", "x2", "y2"), values))
