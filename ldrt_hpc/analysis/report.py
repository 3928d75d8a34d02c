"""The evaluation report (`ldrt-hpc report all`): one folder with `index.html` (self-contained: CSS and tables
inline, PNGs beside it by relative name, no external URL), `report.md` (the same content in Markdown), CSVs and
PNGs. Sections, each present only when its data exists (a missing one is one line saying why):

1. pipeline funnel   the `stats` of every stage's completion markers, and the train/eval split (analysis/funnel.py)
2. Table 1           analysis/results.py `write_table1` over the complete `judge` shards
3. judge scores      box plots per judge x model x task, one figure per protocol; position-bias flip rates
4. hallucination     the `hallucination` stage's complete shards, summarised by analysis/hallucination.py `summarize`:
                     ROUGE and length-ratio box plots per model (the paper's Fig. 4), the hedging table, the
                     unsupported-content rate; CSVs per model and per model x task
5. training          the loss curves of the training log (`pipeline.train_config` -> output_dir/<phase>/train_log.csv)

Every section is a list of blocks rendered twice, to HTML and to Markdown, so that both say the same thing.
"""

from __future__ import annotations

import csv
import html
import logging
import math
import re
import shutil
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .. import layout
from ..config import PipelineConfig
from ..errors import ConfigError, PlanError, ShardError
from ..plan import load_plan
from ..shards import is_complete, iter_stage, shard_path

log = logging.getLogger(__name__)

INDEX = "index.html"
MARKDOWN = "report.md"

# ---- blocks -------------------------------------------------------------------------------------------------------


@dataclass
class Section:
    title: str
    blocks: list[tuple] = field(default_factory=list)
    """("p", text) | ("caption", text) | ("quote", text) | ("h", text) | ("table", header, rows) |
    ("img", file, alt) | ("files", [file, ...])"""
    missing: str = ""
    """Why the section has no data (then it is rendered as this one line)."""
    summary: str = ""
    """One line for the CLI."""

    def add(self, *block) -> None:
        self.blocks.append(tuple(block))


def _missing(title: str, reason: str) -> Section:
    return Section(title, missing=reason, summary=reason)


# ---- 1. funnel ----------------------------------------------------------------------------------------------------


def funnel_section(cfg: PipelineConfig, out_dir: Path) -> Section:
    from .figures import funnel_chart
    from .funnel import funnel, write_funnel_csv

    title = "Pipeline funnel"
    steps, notes = funnel(cfg)
    if not steps:
        return _missing(title, "no stage has completed a shard yet")
    section = Section(title, summary=f"{len(steps)} steps")
    write_funnel_csv(steps, out_dir / "funnel.csv")
    funnel_chart([s.step for s in steps], [s.count for s in steps], out_dir / "funnel.png", [s.partial for s in steps])
    section.add("p", "Counts from the `stats` of each stage's completion markers (summed over its complete shards), "
                     "and the train/eval split of the kept QA samples by paper.")
    section.add("table", ["step", "stage", "count", "shards"],
                [[s.step, s.stage, f"{s.count:,}",
                  f"{s.shards_complete}/{s.shards_planned}" + (" (partial)" if s.partial else "")] for s in steps])
    for note in notes:
        section.add("p", note)
    section.add("img", "funnel.png", "pipeline funnel")
    section.add("files", ["funnel.csv"])
    return section


# ---- 2./3. judge --------------------------------------------------------------------------------------------------


def _judge_records(cfg: PipelineConfig) -> tuple[list[dict[str, Any]] | None, str]:
    """The judgements of the complete judge stage, or None and why not."""
    from .results import judgements

    if load_plan(layout.stage_dir(cfg.work_dir, "judge")) is None:
        return None, "no judge shards yet (`ldrt-hpc run judge`)"
    try:
        records = judgements(cfg)
    except (PlanError, ShardError) as exc:
        return None, str(exc)
    if not records:
        return None, "the judge shards hold no judgements"
    return records, ""


def table1_section(cfg: PipelineConfig, out_dir: Path, records, why: str, seed: int, resamples: int) -> Section:
    from .results import write_table1

    title = "Table 1: judge scores"
    if records is None:
        return _missing(title, why)
    written = write_table1(cfg, out_dir, seed=seed, resamples=resamples)
    protocols = [p.stem.removeprefix("table1-") for p in written if p.suffix == ".md"]
    section = Section(title, summary=f"{len(protocols)} protocol(s): {', '.join(protocols)}")
    for path in written:
        if path.suffix == ".md":
            section.blocks += _markdown_blocks(path.read_text(encoding="utf-8"))
    section.add("files", [p.name for p in written])
    return section


def _markdown_blocks(text: str) -> list[tuple]:
    """The blocks of the Markdown that table1.py writes: headings, quotes, bold captions, pipe tables, text."""
    blocks: list[tuple] = []
    table: list[list[str]] = []
    for line in text.splitlines() + [""]:
        if line.startswith("|"):
            cells = [c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
            if not all(re.fullmatch(r":?-{3,}:?", c) for c in cells):
                table.append(cells)
            continue
        if table:
            blocks.append(("table", table[0], table[1:]))
            table = []
        line = line.strip()
        if not line:
            continue
        if line.startswith("#"):
            blocks.append(("h", line.lstrip("#").strip()))
        elif line.startswith(">"):
            blocks.append(("quote", line.lstrip(">").strip()))
        elif line.startswith("**") and line.endswith("**"):
            blocks.append(("caption", line.strip("*")))
        else:
            blocks.append(("p", line))
    return blocks


def judge_section(cfg: PipelineConfig, out_dir: Path, records, why: str) -> Section:
    from .figures import boxplot_panels

    title = "Judge-score distributions"
    if records is None:
        return _missing(title, why)
    order = _model_order(cfg, {r["model"] for r in records})
    protocols = sorted({r["protocol"] for r in records})
    section = Section(title, summary=f"{len(records)} judgements, {len(protocols)} protocol(s)")
    section.add("p", "Judge scores (0-10) per judge, model and task; the box spans the quartiles, the triangle is the "
                     "mean, n counts parsed scores (a missing score is never plotted).")
    summary_rows = []
    for protocol in protocols:
        chosen = [r for r in records if r["protocol"] == protocol]
        by_key: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
        for r in chosen:
            by_key.setdefault((r["judge"], r["model"], r["task"]), []).append(r)
        panels: dict[str, dict[str, list[float]]] = {}
        for judge in sorted({r["judge"] for r in chosen}):
            groups: dict[str, list[float]] = {}
            for model in order:
                for task in sorted({r["task"] for r in chosen}):
                    items = by_key.get((judge, model, task))
                    if not items:
                        continue
                    scores = [float(r["score"]) for r in items if _is_number(r["score"])]
                    groups[f"{model}\n{task}"] = scores
                    summary_rows.append([protocol, judge, model, task, len(scores), len(items) - len(scores),
                                         *_quantiles(scores)])
            panels[judge] = groups
        name = f"judge-scores-{protocol}.png"
        boxplot_panels(panels, out_dir / name, ylabel="score", title=f"{protocol} protocol", ylim=(-0.5, 10.5))
        section.add("img", name, f"judge scores, {protocol} protocol")
    header = ["protocol", "judge", "model", "task", "n", "missing", "mean", "median", "q1", "q3"]
    _write_csv(out_dir / "judge-scores.csv", header, summary_rows)
    flips = _flip_rows([r for r in records if r["protocol"] == "review"], order)
    if flips:
        section.add("caption", "Position bias (review protocol, both orders asked): items whose two orders disagree on "
                               "which answer is better.")
        section.add("table", ["judge", "model", "both orders parsed", "flipped", "flip rate"], flips)
    section.add("files", ["judge-scores.csv"])
    return section


def _flip_rows(review: list[dict[str, Any]], order: list[str]) -> list[list[str]]:
    rows = []
    for judge in sorted({r["judge"] for r in review}):
        for model in order:
            both = [r for r in review if (r["judge"], r["model"]) == (judge, model) and r.get("flipped") in ("yes", "no")]
            if both:
                flipped = sum(r["flipped"] == "yes" for r in both)
                rows.append([judge, model, str(len(both)), str(flipped), f"{flipped / len(both):.1%}"])
    return rows


# ---- 4. hallucination ---------------------------------------------------------------------------------------------

METRICS = {"rouge1": "ROUGE-1 F1", "rouge2": "ROUGE-2 F1", "rougeL": "ROUGE-L F1", "length_ratio": "length ratio"}
TOP_HEDGES = 5
PAPER_HEDGING = ('The reference study: LLaVA v1.6-vicuna-13B wrote "appears" 1,451 times on its 1,574 eval items, '
                 "the fine-tuned model 49 times.")


def hallucination_rows(work_dir: Path) -> tuple[list[dict[str, Any]], int, int] | None:
    """The rows of the complete `hallucination` shards, with the complete and planned shard counts; None when the
    stage has no plan. Unlike `stages.hallucination.read_all`, a partly complete stage is read (and reported as
    partial)."""
    from ..stages.hallucination import SCHEMA

    directory = layout.stage_dir(work_dir, "hallucination")
    plan = load_plan(directory)
    if plan is None:
        return None
    complete = [index for index in range(plan.num_shards) if is_complete(directory, index)]
    rows: list[dict[str, Any]] = []
    for index in complete:
        shard = list(iter_stage(directory, [index]))
        lacking = [name for name in SCHEMA.fields if shard and name not in shard[0]]
        if lacking:
            raise ShardError(f"{shard_path(directory, index)}: no field(s) {', '.join(lacking)}: written by another "
                             "version of the hallucination stage (`ldrt-hpc rerun hallucination`)")
        rows += shard
    return rows, len(complete), plan.num_shards


def hallucination_summaries(rows: list[dict[str, Any]], order: Sequence[str]) -> list[dict[str, Any]]:
    """`analysis.hallucination.summarize` of the rows (per model and task, then task 'overall'), models in `order`
    (every model of the rows must be in it)."""
    from .hallucination import summarize

    rank = {model: k for k, model in enumerate(order)}
    return summarize(sorted(rows, key=lambda r: rank[r["model"]]))  # stable: summarize keeps first appearance


SUMMARY_FIELDS = (
    "model", "items", "truncated", *(f"{m}_{s}" for m in METRICS for s in ("mean", "median")), "answer_words",
    "reference_words", "hedges", "hedges_per_1000_words", "top_hedges", "items_with_specific_terms",
    "unsupported_rate_mean", "specific_terms", "unsupported_terms", "unsupported_rate_pooled",
)
"""Columns of hallucination-summary.csv (one row per model, all tasks); hallucination-by-task.csv has `task` after
`model`."""


def _pooled_rate(s: dict[str, Any]) -> float | None:
    return s["unsupported_terms"] / s["specific_terms"] if s["specific_terms"] else None


def _summary_row(s: dict[str, Any]) -> list[Any]:
    stats = [s[f"{m}_{stat}"] for m in METRICS for stat in ("mean", "median")]
    return [s["model"], s["n"], s["truncated"], *stats, s["answer_words"], s["reference_words"], s["hedges"],
            s["hedges_per_1000_words"], _top_terms(s), s["n_unsupported_rate"], s["unsupported_rate_mean"],
            s["specific_terms"], s["unsupported_terms"], _pooled_rate(s)]


def _top_terms(s: dict[str, Any]) -> str:
    top = list(s["hedge_counts"].items())[:TOP_HEDGES]  # most frequent first, ties by term
    return ", ".join(f"{term} ({count:,})" for term, count in top) or "–"


def hallucination_section(cfg: PipelineConfig, out_dir: Path) -> Section:
    from .figures import boxplot_panels

    title = "Hallucination"
    try:
        found = hallucination_rows(Path(cfg.work_dir))
    except (PlanError, ShardError) as exc:
        return _missing(title, str(exc))
    if found is None:
        return _missing(title, "no hallucination shards yet (`ldrt-hpc run hallucination`)")
    rows, complete, planned = found
    if not rows:
        return _missing(title, f"no hallucination rows yet ({complete} of {planned} shards complete)")
    by_task = hallucination_summaries(rows, _model_order(cfg, {r["model"] for r in rows}))
    summaries = [s for s in by_task if s["task"] == "overall"]
    section = Section(title, summary=f"{len(rows)} answers of {len(summaries)} model(s), {complete}/{planned} shards")
    if complete < planned:
        section.add("p", f"Partial: {complete} of {planned} hallucination shards complete.")
    section.add("p", "Each answer against its ground truth (the figure's caption and the sentences of the paper that "
                     "mention it): ROUGE F1, length ratio (answer words / ground-truth words; closer to 1 is better), "
                     "hedging words, and the answer's specific terms that the ground truth does not contain "
                     "(unsupported content; the `hallucination` stage decides what a specific term is).")
    panels = {METRICS[m]: {s["model"]: [r[m] for r in rows if r["model"] == s["model"]] for s in summaries}
              for m in METRICS}
    boxplot_panels(panels, out_dir / "hallucination-boxplots.png", title="per model, all eval items")
    section.add("img", "hallucination-boxplots.png", "ROUGE-1/2/L and length ratio per model (the paper's Fig. 4)")
    section.add("table", ["model", "items", *(f"{label} median (mean)" for label in METRICS.values())],
                [[s["model"], str(s["n"])] + [f"{_fmt(s[f'{m}_median'])} ({_fmt(s[f'{m}_mean'])})" for m in METRICS]
                 for s in summaries])
    section.add("caption", "Hedging words per model.")
    section.add("table", ["model", "answer words", "hedges", "per 1,000 words", f"top {TOP_HEDGES} terms (count)"],
                [[s["model"], f"{s['answer_words']:,}", f"{s['hedges']:,}", _fmt(s["hedges_per_1000_words"], 2),
                  _top_terms(s)] for s in summaries])
    section.add("quote", PAPER_HEDGING)
    section.add("caption", "Unsupported content: specific terms of the answer not found in the ground truth.")
    section.add("table", ["model", "items with specific terms", "mean unsupported rate", "unsupported / specific terms",
                          "pooled rate", "truncated answers"],
                [[s["model"], str(s["n_unsupported_rate"]), _fmt(s["unsupported_rate_mean"]),
                  f"{s['unsupported_terms']:,} / {s['specific_terms']:,}", _fmt(_pooled_rate(s)), str(s["truncated"])]
                 for s in summaries])
    _write_csv(out_dir / "hallucination-summary.csv", SUMMARY_FIELDS, [_summary_row(s) for s in summaries])
    _write_csv(out_dir / "hallucination-by-task.csv", ["model", "task", *SUMMARY_FIELDS[1:]],
               [[s["model"], s["task"], *_summary_row(s)[1:]] for s in by_task])
    _write_csv(out_dir / "hedge-terms.csv", ["model", "term", "count"],
               [[s["model"], term, count] for s in summaries for term, count in s["hedge_counts"].items()])
    section.add("files", ["hallucination-summary.csv", "hallucination-by-task.csv", "hedge-terms.csv"])
    return section


# ---- 5. training --------------------------------------------------------------------------------------------------

TRAIN_LOG = "train_log.csv"
PHASES = ("align", "finetune")


def training_section(cfg: PipelineConfig, out_dir: Path) -> Section:
    from ..train.config import load_train
    from .figures import loss_curves

    title = "Training"
    path = cfg.pipeline.train_config
    if path is None:
        return _missing(title, "no training config (pipeline.train_config is not set)")
    try:
        train = load_train(path)
    except ConfigError as exc:
        return _missing(title, f"training config unreadable: {exc}")
    output = Path(train.output_dir)
    phases = [p for p in train.phases if (output / p / TRAIN_LOG).is_file()]
    phases += sorted(p.parent.name for p in output.glob(f"*/{TRAIN_LOG}") if p.parent.name not in phases)
    if not phases:
        return _missing(title, f"no training log yet in {output}")
    section = Section(title, summary=f"loss of {len(phases)} phase(s): {', '.join(phases)}")
    curves, rows, files = {}, [], []
    for phase in phases:
        with open(output / phase / TRAIN_LOG, newline="", encoding="utf-8") as handle:
            logged = [r for r in csv.DictReader(handle) if _is_number(r.get("loss")) and r.get("step")]
        shutil.copyfile(output / phase / TRAIN_LOG, out_dir / f"train-log-{phase}.csv")
        files.append(f"train-log-{phase}.csv")
        if (output / phase / "loss.png").is_file():
            shutil.copyfile(output / phase / "loss.png", out_dir / f"train-loss-{phase}.png")
            files.append(f"train-loss-{phase}.png")
        if not logged:
            rows.append([phase, "0", "–", "–", "–", "–", "–"])
            continue
        steps, losses = [int(r["step"]) for r in logged], [float(r["loss"]) for r in logged]
        curves[phase] = (steps, losses)
        speed = [float(r["tokens_per_s"]) for r in logged if _is_number(r.get("tokens_per_s"))]
        memory = [float(r["peak_memory_gb"]) for r in logged if _is_number(r.get("peak_memory_gb"))]
        rows.append([phase, str(len(logged)), str(steps[-1]), _fmt(losses[0]), _fmt(losses[-1]),
                     _fmt(statistics.fmean(speed) if speed else None, 1), _fmt(max(memory) if memory else None, 2)])
    section.add("p", f"From {output}.")
    section.add("table", ["phase", "rows logged", "last step", "first loss", "last loss", "mean tokens/s",
                          "peak memory GB"], rows)
    if curves:
        loss_curves(curves, out_dir / "train-loss.png")
        section.add("img", "train-loss.png", "training loss per optimizer step")
    section.add("files", files)
    return section


# ---- the report ---------------------------------------------------------------------------------------------------


def build_report(cfg: PipelineConfig, out_dir: Path, seed: int = 0, resamples: int = 2000, *,
                 echo: Callable[[str], None] | None = None) -> Path:
    """Write the report into `out_dir` (the report folder itself, e.g. WORK/report): index.html, report.md, CSVs,
    PNGs and the Table 1 files; returns the path of index.html. `echo` receives one line per section."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    records, why = _judge_records(cfg)
    judged: list[tuple[str, Callable[[], Section]]] = [
        ("Table 1: judge scores", lambda: table1_section(cfg, out_dir, records, why, seed, resamples)),
        ("Judge-score distributions", lambda: judge_section(cfg, out_dir, records, why)),
    ] if records is not None else [("Judge scores (Table 1, distributions)", lambda: _missing(
        "Judge scores (Table 1, distributions)", why))]
    builders: list[tuple[str, Callable[[], Section]]] = [
        ("Pipeline funnel", lambda: funnel_section(cfg, out_dir)),
        *judged,
        ("Hallucination", lambda: hallucination_section(cfg, out_dir)),
        ("Training", lambda: training_section(cfg, out_dir)),
    ]
    sections = []
    for title, build in builders:
        try:
            section = build()
        except (PlanError, ShardError, ConfigError, OSError, ValueError, KeyError) as exc:
            log.warning("report section %s failed", title, exc_info=True)
            section = _missing(title, f"could not be built: {type(exc).__name__}: {exc}")
        sections.append(section)
        if echo:
            echo(f"{title}: {section.summary}")
    meta = [f"work dir: {cfg.work_dir}", f"config: {cfg._source or '(not from a file)'}",
            f"generated: {time.strftime('%Y-%m-%d %H:%M:%S %Z')}", f"bootstrap: seed {seed}, {resamples} resamples"]
    (out_dir / MARKDOWN).write_text(render_markdown(sections, meta), encoding="utf-8")
    index = out_dir / INDEX
    index.write_text(render_html(sections, meta), encoding="utf-8")
    return index


# ---- rendering ----------------------------------------------------------------------------------------------------

CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 2em auto; max-width: 1100px;
       padding: 0 1em; color: #222; line-height: 1.45; }
h1 { border-bottom: 2px solid #4c72b0; padding-bottom: .2em; }
h2 { margin-top: 2em; border-bottom: 1px solid #ccc; }
h3 { margin-top: 1.5em; }
table { border-collapse: collapse; margin: .8em 0; font-size: 90%; }
th, td { border: 1px solid #ccc; padding: .25em .6em; text-align: left; vertical-align: top; }
th { background: #eef2f8; }
tr:nth-child(even) td { background: #fafafa; }
img { max-width: 100%; border: 1px solid #eee; }
figure { margin: 1em 0; }
figcaption, .meta { color: #666; font-size: 90%; }
.missing { color: #8a5a00; }
blockquote { border-left: 3px solid #ccc; margin: .8em 0; padding: .2em 1em; color: #555; }
.caption { font-weight: bold; margin-top: 1.2em; }
"""


def _esc(text: Any) -> str:
    """HTML text; a `//` (as in a URL a judge or a model wrote) is written as entities, so that the page holds no
    external address, even as text."""
    return html.escape(str(text)).replace("//", "&#47;&#47;")


def render_html(sections: list[Section], meta: list[str]) -> str:
    parts = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
             "<title>ldrt-hpc evaluation report</title>", f"<style>{CSS}</style>", "</head>", "<body>",
             "<h1>ldrt-hpc evaluation report</h1>",
             '<p class="meta">' + "<br>".join(_esc(line) for line in meta) + "</p>"]
    present = [s for s in sections if not s.missing]
    if present:
        parts.append("<ul>" + "".join(f'<li><a href="#{_anchor(s.title)}">{_esc(s.title)}</a></li>' for s in present)
                     + "</ul>")
    for section in sections:
        if section.missing:
            parts.append(f'<p class="missing"><b>{_esc(section.title)}:</b> {_esc(section.missing)}</p>')
            continue
        parts.append(f'<h2 id="{_anchor(section.title)}">{_esc(section.title)}</h2>')
        parts += [_html_block(block) for block in section.blocks]
    parts += ["</body>", "</html>", ""]
    return "\n".join(parts)


def _html_block(block: tuple) -> str:
    kind = block[0]
    if kind == "h":
        return f"<h3>{_esc(block[1])}</h3>"
    if kind == "p":
        return f"<p>{_inline_html(block[1])}</p>"
    if kind == "caption":
        return f'<p class="caption">{_inline_html(block[1])}</p>'
    if kind == "quote":
        return f"<blockquote>{_inline_html(block[1])}</blockquote>"
    if kind == "table":
        header, rows = block[1], block[2]
        head = "".join(f"<th>{_esc(c)}</th>" for c in header)
        body = "".join("<tr>" + "".join(f"<td>{_esc(c)}</td>" for c in row) + "</tr>" for row in rows)
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    if kind == "img":
        image = f'<img src="{_esc(block[1])}" alt="{_esc(block[2])}">'
        return f"<figure>{image}<figcaption>{_esc(block[2])}</figcaption></figure>"
    if kind == "files":
        return '<p class="meta">files: ' + ", ".join(f'<a href="{_esc(f)}">{_esc(f)}</a>' for f in block[1]) + "</p>"
    raise ValueError(f"unknown block {kind!r}")


def _inline_html(text: str) -> str:
    """Escaped text with `code` spans."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", _esc(text))


def _anchor(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")


def render_markdown(sections: list[Section], meta: list[str]) -> str:
    parts = ["# ldrt-hpc evaluation report", "\n".join(f"- {line}" for line in meta)]
    for section in sections:
        if section.missing:
            parts.append(f"**{section.title}:** {section.missing}")
            continue
        parts.append(f"## {section.title}")
        parts += [_markdown_block(block) for block in section.blocks]
    return "\n\n".join(parts) + "\n"


def _markdown_block(block: tuple) -> str:
    kind = block[0]
    if kind == "h":
        return f"### {block[1]}"
    if kind == "p":
        return block[1]
    if kind == "caption":
        return f"**{block[1]}**"
    if kind == "quote":
        return f"> {block[1]}"
    if kind == "table":
        rows = [block[1], ["---"] * len(block[1]), *block[2]]
        return "\n".join("| " + " | ".join(str(c).replace("|", "\\|").replace("\n", " ") for c in row) + " |"
                         for row in rows)
    if kind == "img":
        return f"![{block[2]}]({block[1]})"
    if kind == "files":
        return "files: " + ", ".join(f"[{f}]({f})" for f in block[1])
    raise ValueError(f"unknown block {kind!r}")


# ---- helpers ------------------------------------------------------------------------------------------------------


def _is_number(value: Any) -> bool:
    try:
        return value is not None and value != "" and math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def _fmt(value: float | None, digits: int = 3) -> str:
    """The number with `digits` decimals; '–' for None or NaN (not defined)."""
    return "–" if value is None or math.isnan(value) else f"{value:.{digits}f}"


def _quantiles(values: list[float]) -> list[Any]:
    if not values:
        return ["", "", "", ""]
    q1, median, q3 = np.percentile(values, [25, 50, 75])
    return [round(statistics.fmean(values), 4), float(median), float(q1), float(q3)]


def _model_order(cfg: PipelineConfig, present: set[str]) -> list[str]:
    order = [m.name for m in cfg.stages.answer.models if m.name in present]
    return order + sorted(present - set(order))


def _undefined(value: Any) -> bool:
    """None or a float NaN: an empty CSV cell."""
    return value is None or (isinstance(value, float) and math.isnan(value))


def _write_csv(path: Path, header: Sequence[str], rows: list[list[Any]]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        writer.writerows([["" if _undefined(v) else v for v in row] for row in rows])
    return path
