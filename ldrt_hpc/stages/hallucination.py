"""`hallucination`: every answer of the shard measured against what the paper says about its figure — the caption
followed by the sentences that mention it (shard i of `answer` and of `context`): ROUGE-1/2/L, hedging words,
length ratio and the share of specific terms (numbers with units, gene/protein/drug names, capitalised names)
that the caption and context do not contain. A CPU array stage; the measures are ldrt_hpc/analysis/hallucination.py
(pure), this module only drives them over one shard and reads the stage back for the report (`read_all`).

An answer whose figure has neither caption nor mention sentences (or no `context` row) is *recorded*, not
quarantined: its ROUGE, length ratio and unsupported rate are NaN (there is nothing to compare with) while its
words, hedges and specific terms are still counted; the marker's stats count these answers (`no_reference`).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from ..config import PipelineConfig
from ..shards import Schema
from . import Shard

SCHEMA = Schema(
    version=1,
    fields={
        "sample_id": "str", "paper_id": "str", "task": "str", "model": "str", "rouge1": "float64", "rouge2": "float64",
        "rougeL": "float64", "answer_words": "int64", "reference_words": "int64", "length_ratio": "float64",
        "hedges": "int64", "hedge_counts": "str", "specific_terms": "int64", "unsupported_terms": "int64",
        "unsupported_rate": "float64", "unsupported_examples": "str", "truncated": "bool",
    },
)
"""hedge_counts: JSON object hedge -> count (non-zero only); unsupported_examples: JSON list of the answer's terms
(as written); rouge*, length_ratio, unsupported_rate: NaN when not defined (no reference; no specific term)."""


def hallucination_items(shard: Shard) -> list[dict[str, Any]]:
    """The shard's answers, each with its reference text (caption + mention sentences; '' without a context row)."""
    from ..analysis.hallucination import reference_text
    from .context import answers_with_figures

    return [{**answer, "ground_truth": reference_text(figure["caption"], figure["mentions"])}
            for answer, figure in answers_with_figures(shard)]


def record(item: dict[str, Any], metrics: dict[str, Any]) -> dict[str, Any]:
    """The stored row of one answer: its ids, its metrics (`item_metrics`), JSON text for the dict and the list."""
    ids = {key: item[key] for key in ("sample_id", "paper_id", "task", "model")}
    return {**ids, **metrics, "hedge_counts": json.dumps(metrics["hedge_counts"], ensure_ascii=False),
            "unsupported_examples": json.dumps(metrics["unsupported_examples"], ensure_ascii=False),
            "truncated": bool(item["truncated"])}


def run(shard: Shard, cfg: PipelineConfig) -> dict[str, Any]:
    from ..analysis.hallucination import item_metrics

    settings = cfg.stages.hallucination
    rows = []
    for item in hallucination_items(shard):
        metrics = item_metrics(item["answer"], item["ground_truth"], settings.hedges, settings.stemming,
                               settings.max_examples)
        rows.append(record(item, metrics))
        shard.write(rows[-1])
    return _stats(rows)


def _mean(values: list[float]) -> float | None:
    kept = [v for v in values if not math.isnan(v)]
    return round(sum(kept) / len(kept), 4) if kept else None  # JSON has no NaN


def _stats(rows: list[dict[str, Any]]) -> dict[str, Any]:
    models = list(dict.fromkeys(r["model"] for r in rows))
    return {"answers": len(rows), "models": len(models),
            "no_reference": sum(math.isnan(r["rouge1"]) for r in rows),
            "truncated": sum(r["truncated"] for r in rows), "hedges": sum(r["hedges"] for r in rows),
            "rougeL_mean": {m: _mean([r["rougeL"] for r in rows if r["model"] == m]) for m in models},
            "unsupported_rate_mean": {m: _mean([r["unsupported_rate"] for r in rows if r["model"] == m])
                                      for m in models}}


def read_all(work_dir: Path) -> list[dict[str, Any]]:
    """Every row of the complete `hallucination` shards (an incomplete stage is an error: the report would be
    biased)."""
    from ..layout import stage_dir
    from ..plan import require_complete
    from ..shards import iter_stage

    plan = require_complete(work_dir, "hallucination", needed_by="the report")
    return list(iter_stage(stage_dir(work_dir, "hallucination"), range(plan.num_shards)))
