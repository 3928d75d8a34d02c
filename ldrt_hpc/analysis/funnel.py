"""The pipeline funnel of the report: how many papers, figures and samples each stage kept, from the `stats` of the
stages' completion markers (nothing is re-read from the shards), plus the train/eval split of the kept QA samples.

A stage without a plan is left out; a stage whose shards are not all complete gives the sum over its complete
shards and says so (`shards_complete` < `shards_planned`).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import layout
from ..config import PipelineConfig
from ..errors import PlanError, ShardError
from ..plan import load_plan
from ..shards import is_complete, read_marker

STEPS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("keyword strings searched", "search", ("keywords",)),
    ("papers found (unique)", "search", ("unique",)),
    ("with an open-access PDF link", "search", ("with_pdf_url",)),
    ("PDFs attempted", "download", ("papers",)),
    ("PDFs downloaded", "download", ("downloaded",)),
    ("papers ingested", "ingest", ("papers",)),
    ("papers ingested ok", "ingest", ("ok",)),
    ("papers converted to Markdown", "convert", ("converted",)),
    ("figures + tables extracted", "figures", ("figures", "tables")),
    ("kept by the image filter", "filter", ("kept",)),
    ("kept figures with context sentences", "context", ("with_mentions",)),
    ("QA samples kept", "qa", ("samples_kept",)),
)
"""(label, stage, marker stats summed) in pipeline order; the split and the answered items follow."""

FIELDS = ("step", "stage", "count", "shards_complete", "shards_planned", "source")


@dataclass(frozen=True)
class FunnelStep:
    step: str
    """What is counted."""
    stage: str
    count: int
    shards_complete: int
    shards_planned: int
    source: str
    """Where the number comes from (marker stats keys, or the split)."""

    @property
    def partial(self) -> bool:
        return self.shards_complete < self.shards_planned


def _markers(work_dir: Path, stage: str) -> tuple[list[dict[str, Any]], int] | None:
    """The markers of the complete shards of a stage and its planned shard count; None when it has no plan."""
    directory = layout.stage_dir(work_dir, stage)
    try:
        plan = load_plan(directory)
    except PlanError:
        return None
    if plan is None:
        return None
    markers = []
    for index in range(plan.num_shards):
        try:  # complete as everywhere else: a marker *and* the file of the size it records
            marker = read_marker(directory, index) if is_complete(directory, index) else None
        except ShardError:
            marker = None
        if marker is not None:
            markers.append(marker)
    return markers, plan.num_shards


def _total(markers: list[dict[str, Any]], keys: tuple[str, ...]) -> int | None:
    """Sum of the stats keys over the markers; None when no marker has any of them."""
    values = [m.get("stats", {}).get(k) for m in markers for k in keys]
    numbers = [v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
    return int(sum(numbers)) if numbers else None


def funnel(cfg: PipelineConfig) -> tuple[list[FunnelStep], list[str]]:
    """The funnel steps of the stages that have run, and notes (one line each) on what is missing or partial."""
    work_dir = Path(cfg.work_dir)
    steps: list[FunnelStep] = []
    notes: list[str] = []
    cache: dict[str, tuple[list[dict[str, Any]], int] | None] = {}
    for label, stage, keys in STEPS:
        if stage not in cache:
            cache[stage] = _markers(work_dir, stage)
            found = cache[stage]
            if found is not None and len(found[0]) < found[1]:
                notes.append(f"{stage}: {len(found[0])} of {found[1]} shards complete (partial counts)")
        found = cache[stage]
        if found is None:
            continue
        markers, planned = found
        total = _total(markers, keys)
        if total is None:
            continue
        steps.append(FunnelStep(label, stage, total, len(markers), planned,
                                "marker stats " + " + ".join(keys)))
    split, note = _split(cfg)
    steps += split
    if note:
        notes.append(note)
    answer = _markers(work_dir, "answer")
    if answer is not None and answer[0]:
        total = _total(answer[0], ("items",))
        if total is not None:
            steps.append(FunnelStep("eval items answered (per model)", "answer", total, len(answer[0]), answer[1],
                                    "marker stats items"))
    missing = [s for s in dict.fromkeys(stage for _, stage, _ in STEPS) if cache.get(s) is None]
    if missing:
        notes.append(f"not run yet: {', '.join(missing)}")
    return steps, notes


def _split(cfg: PipelineConfig) -> tuple[list[FunnelStep], str]:
    """Train and eval samples of the kept QA samples, split by paper as `export llava`, training and `answer` do."""
    from ..instruct.split import kept_samples, split_samples

    plan = load_plan(layout.stage_dir(cfg.work_dir, "qa"))
    if plan is None:
        return [], ""
    try:
        samples = kept_samples(cfg.work_dir)
    except (PlanError, ShardError) as exc:
        return [], f"train/eval split: {exc}"
    answer = cfg.stages.answer
    train, held_out, papers = split_samples(samples, answer.eval_share, answer.split_seed)
    shards = plan.num_shards
    source = f"split by paper: eval_share {answer.eval_share}, split_seed {answer.split_seed}"
    return [FunnelStep("train samples", "split", len(train), shards, shards, source),
            FunnelStep(f"eval samples ({len(papers)} papers)", "split", len(held_out), shards, shards, source)], ""


def write_funnel_csv(steps: list[FunnelStep], path: Path) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, FIELDS, lineterminator="\n")
        writer.writeheader()
        for step in steps:
            writer.writerow({name: getattr(step, name) for name in FIELDS})
    return path
