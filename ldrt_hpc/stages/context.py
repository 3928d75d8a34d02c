"""`context`: for each kept figure, the sentences of its paper's Markdown that mention it (not its caption)."""

from __future__ import annotations

from typing import Any

from ..config import PipelineConfig
from ..shards import Schema
from ..text import mentioning_sentences
from . import Shard

SCHEMA = Schema(
    version=1,
    fields={
        "paper_id": "str", "name": "str", "fig_type": "str", "figure_index": "int64", "page": "int64", "caption": "str",
        "mentions": "str", "mention_count": "int64",
    },
)


def run(shard: Shard, cfg: PipelineConfig) -> dict[str, Any]:
    settings = cfg.stages.context
    with shard.read("convert") as reader:
        markdown = {r["paper_id"]: r["markdown"] for r in reader}
    counts = {"figures": 0, "with_mentions": 0, "sentences": 0, "no_markdown": 0}
    with shard.read("filter") as decisions, shard.read("figures") as figures:
        for decision in decisions:
            if not decision["kept"]:
                continue
            figure = figures[decision["figure_index"]]
            counts["figures"] += 1
            text = markdown.get(decision["paper_id"])
            if text is None:
                counts["no_markdown"] += 1  # the paper's conversion was quarantined
                sentences: list[str] = []
            else:
                sentences = mentioning_sentences(text, figure["fig_type"], figure["name"], figure["caption"])
                sentences = sentences[: settings.max_sentences]
            counts["with_mentions"] += bool(sentences)
            counts["sentences"] += len(sentences)
            shard.write({"paper_id": decision["paper_id"], "name": decision["name"], "fig_type": decision["fig_type"],
                         "figure_index": decision["figure_index"], "page": figure["page"], "caption": figure["caption"],
                         "mentions": "\n".join(sentences), "mention_count": len(sentences)})
    return counts


def answers_with_figures(shard: Shard) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """The shard's answers (stage `answer`), each with the context row of its figure (caption, mentions; empty
    strings when the figure has none): what `judge` and `hallucination` compare an answer with."""
    with shard.read("context") as reader:
        figures = {r["figure_index"]: r for r in reader}
    with shard.read("answer") as reader:
        answers = list(reader)
    return [(answer, figures.get(answer["figure_index"], {"caption": "", "mentions": ""})) for answer in answers]
