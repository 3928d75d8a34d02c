"""From the `judge` stage's shards to Table 1 files: one table per judging protocol, written as CSV, Markdown and
LaTeX (`ldrt-hpc report table1`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .. import layout
from ..config import PipelineConfig
from ..plan import require_complete
from ..shards import iter_stage
from .table1 import table1, to_latex, to_markdown, write_csv


def judgements(cfg: PipelineConfig) -> list[dict[str, Any]]:
    """Every judgement of the complete `judge` shards (an incomplete stage is an error: Table 1 would be biased)."""
    plan = require_complete(cfg.work_dir, "judge", "Table 1")
    return list(iter_stage(layout.stage_dir(cfg.work_dir, "judge"), range(plan.num_shards)))


def write_table1(cfg: PipelineConfig, out_dir: Path, seed: int = 0, resamples: int = 2000) -> list[Path]:
    """table1-<protocol>.{csv,md,tex} for each protocol judged; the models in config order, each fine-tuned model
    paired with its `base`."""
    records = judgements(cfg)
    models = cfg.stages.answer.models
    order = [m.name for m in models]
    baselines = {m.name: m.base for m in models if m.base}
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for protocol in sorted({r["protocol"] for r in records}):
        table = table1([r for r in records if r["protocol"] == protocol], order, baselines, seed, resamples)
        stem = out_dir / f"table1-{protocol}"
        write_csv(table, stem.with_suffix(".csv"))
        note = _note(cfg)
        stem.with_suffix(".md").write_text(f"# Table 1 ({protocol} protocol)\n\n{note}" + to_markdown(table))
        stem.with_suffix(".tex").write_text(to_latex(table))
        written += [stem.with_suffix(s) for s in (".csv", ".md", ".tex")]
    return written


def _note(cfg: PipelineConfig) -> str:
    tiny = [j.name for j in cfg.stages.judge.judges if j.model.startswith("embedded:")]
    if not tiny:
        return ""
    return (f"> Judges {', '.join(tiny)} are the tiny embedded demo model: their scores carry no information about "
            "the answers; use 70B judges (Qwen2-72B, Llama-3.1-70B) for real numbers.\n\n")
