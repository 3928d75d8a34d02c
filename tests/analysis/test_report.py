"""The report (`ldrt-hpc report`) from a small hand-made work dir: tiny shards written with the project's shard writer
for `qa`, `judge` and `hallucination`, markers with stats for the upstream stages, a training log. Checks that every
file the pages reference exists, that index.html names no external resource, the hedging totals, the one-line
missing sections and the CLI's last line."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest
import yaml

from ldrt_hpc import layout
from ldrt_hpc.config import load_pipeline
from ldrt_hpc.plan import Plan
from ldrt_hpc.shards import Schema, ShardWriter, atomic_write_text

pytest.importorskip("matplotlib")
pytest.importorskip("scipy")

BASE, TUNED = "base", "ours"
PAPERS = [f"p{i}" for i in range(8)]

HALLUCINATION_SCHEMA = Schema(version=1, fields={
    "sample_id": "str", "paper_id": "str", "task": "str", "model": "str", "rouge1": "float64", "rouge2": "float64",
    "rougeL": "float64", "answer_words": "int64", "reference_words": "int64", "length_ratio": "float64",
    "hedges": "int64", "hedge_counts": "str", "specific_terms": "int64", "unsupported_terms": "int64",
    "unsupported_rate": "float64", "unsupported_examples": "str", "truncated": "bool",
})
QA_SCHEMA = Schema(version=1, fields={"sample_id": "str", "paper_id": "str", "task": "str", "kept": "bool"})
STATS_SCHEMA = Schema(version=1, fields={"item": "str"})

HEDGES = {  # model -> hedge_counts of its items (4 items each); totals: base 9 (appears 7), ours 1
    BASE: [{"appears": 3, "likely": 1}, {"appears": 2}, {"appears": 2, "may": 1}, {}],
    TUNED: [{}, {"appears": 1}, {}, {}],
}
ANSWER_WORDS = 50  # per item: base 9 hedges / 200 words = 45.00 per 1,000 words; ours 1 / 200 = 5.00


def _plan(work: Path, stage: str, shards: int) -> None:
    directory = layout.stage_dir(work, stage)
    directory.mkdir(parents=True, exist_ok=True)
    atomic_write_text(layout.plan_path(directory), Plan(stage, shards, (), None).to_json())


def _shard(work: Path, stage: str, index: int, count: int, schema: Schema, records, stats=None) -> None:
    with ShardWriter(layout.stage_dir(work, stage), index, stage=stage, count=count, schema=schema,
                     config_hash="test") as writer:
        for record in records:
            writer.append(record)
        writer.commit(stats=stats or {})


def _stage_with_stats(work: Path, stage: str, stats_per_shard: list[dict | None]) -> None:
    """A stage whose markers carry `stats` (None: that shard is not complete)."""
    _plan(work, stage, len(stats_per_shard))
    for index, stats in enumerate(stats_per_shard):
        if stats is not None:
            _shard(work, stage, index, len(stats_per_shard), STATS_SCHEMA, [], stats)


def _items():
    return [(f"{paper}-{task}", paper, task) for paper in PAPERS[:2] for task in ("description", "reasoning")]


def _judge(work: Path) -> None:
    from ldrt_hpc.stages.judge import SCHEMA

    _plan(work, "judge", 1)
    records = []
    for model, offset in ((BASE, 0), (TUNED, 3)):
        for k, (sid, paper, task) in enumerate(_items()):
            for protocol in ("review", "single"):
                score = math.nan if (model, k, protocol) == (BASE, 1, "single") else float(2 + k + offset)
                records.append({
                    "sample_id": sid, "paper_id": paper, "task": task, "model": model, "judge": "judge-a",
                    "protocol": protocol, "score": score, "reference_score": 8.0 if protocol == "review" else math.nan,
                    "parsed": not math.isnan(score), "orders": 2 if protocol == "review" else 1,
                    "flipped": ("yes" if k == 0 else "no") if protocol == "review" else "", "attempts": 1,
                    "error": "", "raw": "[]", "prompt_version": "1"})
    _shard(work, "judge", 0, 1, SCHEMA, records, {"judgements": len(records)})


def _hallucination(work: Path, incomplete_shard: bool = False) -> None:
    _plan(work, "hallucination", 3 if incomplete_shard else 2)
    rows = []
    for model in (BASE, TUNED):
        for k, (sid, paper, task) in enumerate(_items()):
            counts = HEDGES[model][k]
            specific = 0 if k == 3 else 4
            unsupported = (2 if model == BASE else 1) if specific else 0
            rows.append({
                "sample_id": sid, "paper_id": paper, "task": task, "model": model, "rouge1": 0.2 + 0.1 * k,
                "rouge2": 0.05 * k, "rougeL": 0.15 + 0.1 * k, "answer_words": ANSWER_WORDS, "reference_words": 40,
                "length_ratio": ANSWER_WORDS / 40, "hedges": sum(counts.values()), "hedge_counts": json.dumps(counts),
                "specific_terms": specific, "unsupported_terms": unsupported,
                "unsupported_rate": unsupported / specific if specific else math.nan,
                "unsupported_examples": json.dumps(["see https://example.org/x"] if unsupported else []),
                "truncated": k == 2})
    _shard(work, "hallucination", 0, 2, HALLUCINATION_SCHEMA, rows[:5])
    _shard(work, "hallucination", 1, 2, HALLUCINATION_SCHEMA, rows[5:])


def _qa(work: Path) -> None:
    _plan(work, "qa", 2)
    for index in range(2):
        records = [{"sample_id": f"{paper}-{task}", "paper_id": paper, "task": task, "kept": task != "junk"}
                   for paper in PAPERS[index::2] for task in ("description", "reasoning", "junk")]
        _shard(work, "qa", index, 2, QA_SCHEMA, records, {"samples_kept": 8, "figures": 5})


def _training(folder: Path) -> Path:
    output = folder / "train-out"
    (output / "finetune").mkdir(parents=True)
    rows = ["step,loss,lr_projector,lr_lora,tokens_per_s,samples_per_s,peak_memory_gb,seconds"]
    rows += [f"{s},{2.5 - 0.2 * s:.6f},2e-05,0.0002,100.0,1.000,0.500,1.000" for s in range(1, 6)]
    (output / "finetune" / "train_log.csv").write_text("\n".join(rows) + "\n")
    path = folder / "train.yaml"
    path.write_text(yaml.safe_dump({"output_dir": str(output), "model": {"flavour": "debug"},
                                    "data": {"work_dir": str(folder / "work")}}))
    return path


def _config(folder: Path, train: Path | None = None) -> Path:
    data = {"work_dir": str(folder / "work"),
            "stages": {"answer": {"models": [{"name": BASE, "path": str(folder / "m-base")},
                                             {"name": TUNED, "path": str(folder / "m-ours"), "base": BASE}],
                                  "eval_share": 0.25}},
            "pipeline": {"train_config": str(train) if train else None}}
    path = folder / "pipeline.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.fixture(scope="module")
def full(tmp_path_factory):
    folder = tmp_path_factory.mktemp("report")
    work = folder / "work"
    _stage_with_stats(work, "search", [{"keywords": 3, "unique": 40, "with_pdf_url": 30}])
    _stage_with_stats(work, "download", [{"papers": 15, "downloaded": 9}, {"papers": 15, "downloaded": 11}])
    _stage_with_stats(work, "figures", [{"figures": 20, "tables": 4}, None])  # one shard still running
    _stage_with_stats(work, "filter", [{"figures": 24, "kept": 18}])
    _qa(work)
    _judge(work)
    _hallucination(work)
    cfg = load_pipeline(_config(folder, _training(folder)))
    from ldrt_hpc.analysis.report import build_report

    lines: list[str] = []
    index = build_report(cfg, work / "report", resamples=50, echo=lines.append)
    return cfg, index, lines


def _references(text: str) -> set[str]:
    html = re.findall(r'(?:src|href)="([^"#][^"]*)"', text)
    markdown = re.findall(r"\]\(([^)#][^)]*)\)", text)
    return set(html + markdown)


def test_every_referenced_file_exists(full):
    _, index, lines = full
    folder = index.parent
    html, markdown = index.read_text(), (folder / "report.md").read_text()
    for text in (html, markdown):
        refs = _references(text)
        assert {"funnel.png", "funnel.csv", "hallucination-boxplots.png", "hallucination-summary.csv",
                "judge-scores-review.png", "judge-scores-single.png", "table1-single.csv", "train-loss.png",
                "train-log-finetune.csv"} <= refs
        for ref in refs:
            assert (folder / ref).is_file(), ref
            assert (folder / ref).stat().st_size > 0
    for png in folder.glob("*.png"):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(lines) == 5 and all(":" in line for line in lines)


def test_index_names_no_external_resource(full):
    _, index, _ = full
    html = index.read_text()
    for bad in ("http://", "https://", "//cdn", "<link", "@import", "<script"):
        assert bad not in html
    assert "<style>" in html and "<table>" in html


def test_funnel_counts_from_markers_and_split(full):
    import csv

    _, index, _ = full
    with open(index.parent / "funnel.csv", newline="") as handle:
        rows = {r["step"]: r for r in csv.DictReader(handle)}
    assert rows["papers found (unique)"]["count"] == "40"
    assert rows["PDFs downloaded"]["count"] == "20"
    figures = rows["figures + tables extracted"]
    assert (figures["count"], figures["shards_complete"], figures["shards_planned"]) == ("24", "1", "2")
    assert rows["QA samples kept"]["count"] == "16"
    train = int(rows["train samples"]["count"])
    held_out = int(next(r for k, r in rows.items() if k.startswith("eval samples"))["count"])
    assert train + held_out == 16 and held_out > 0  # 8 papers x 2 kept samples, split by paper
    assert "figures: 1 of 2 shards complete" in index.read_text()


def test_hedging_table_totals(full):
    _, index, _ = full
    markdown = (index.parent / "report.md").read_text()
    assert "| base | 200 | 9 | 45.00 | appears (7), likely (1), may (1) |" in markdown
    assert "| ours | 200 | 1 | 5.00 | appears (1) |" in markdown
    html = index.read_text()
    assert "<td>base</td><td>200</td><td>9</td><td>45.00</td><td>appears (7), likely (1), may (1)</td>" in html
    import csv

    with open(index.parent / "hallucination-summary.csv", newline="") as handle:
        summary = {r["model"]: r for r in csv.DictReader(handle)}
    assert (summary[BASE]["hedges"], summary[TUNED]["hedges"]) == ("9", "1")
    assert summary[BASE]["items"] == "4" and summary[BASE]["truncated"] == "1"
    # mean unsupported rate over the 3 items with specific terms: 2/4 each (base), 1/4 each (ours)
    assert float(summary[BASE]["unsupported_rate_mean"]) == pytest.approx(0.5)
    assert float(summary[TUNED]["unsupported_rate_pooled"]) == pytest.approx(3 / 12)
    assert float(summary[BASE]["rouge1_median"]) == pytest.approx(0.35)


def test_table1_and_judge_sections(full):
    _, index, _ = full
    html = index.read_text()
    assert "Table 1. Judge score" in html and "Position bias" in html
    assert (index.parent / "table1-review.tex").is_file()
    markdown = (index.parent / "report.md").read_text()
    assert "| judge-a | base | 4 | 1 | 25.0% |" in markdown  # review: item 0 of 4 flipped


def test_missing_sections_are_one_line(tmp_path):
    from ldrt_hpc.analysis.report import build_report

    work = tmp_path / "work"
    _stage_with_stats(work, "search", [{"keywords": 2, "unique": 5, "with_pdf_url": 3}])
    cfg = load_pipeline(_config(tmp_path))
    index = build_report(cfg, tmp_path / "out", resamples=20)
    html, markdown = index.read_text(), (index.parent / "report.md").read_text()
    for text in ("no judge shards yet", "no hallucination shards yet", "pipeline.train_config is not set"):
        assert sum(text in line for line in html.splitlines()) == 1
        assert sum(text in line for line in markdown.splitlines()) == 1
    assert "<h2" in html and "Hallucination</h2>" not in html
    assert "funnel.png" in html
    for ref in _references(html) | _references(markdown):
        assert (index.parent / ref).is_file()


def test_an_incomplete_hallucination_stage_reports_the_complete_shards(tmp_path):
    from ldrt_hpc.analysis.report import build_report

    _hallucination(tmp_path / "work", incomplete_shard=True)
    index = build_report(load_pipeline(_config(tmp_path)), tmp_path / "out", resamples=20)
    assert "Partial: 2 of 3 hallucination shards complete." in index.read_text()


def test_cli_prints_index_last(full, capsys, tmp_path):
    from ldrt_hpc.cli import main

    cfg, _, _ = full
    out = tmp_path / "cli-report"
    assert main(["report", "--config", str(cfg._source), "--out", str(out), "--resamples", "30"]) == 0
    printed = capsys.readouterr().out.strip().splitlines()
    assert printed[-1] == str(out / "index.html") and Path(printed[-1]).is_file()
    assert main(["report", "table1", "--config", str(cfg._source), "--out", str(out / "t1"),
                 "--resamples", "30"]) == 0
    printed = capsys.readouterr().out.strip().splitlines()
    assert sorted(Path(p).name for p in printed) == sorted(f"table1-{p}.{s}" for p in ("review", "single")
                                                           for s in ("csv", "md", "tex"))


def test_an_incomplete_judge_stage_is_one_line(tmp_path):
    from ldrt_hpc.analysis.report import build_report

    work = tmp_path / "work"
    _judge(work)
    _plan(work, "judge", 2)  # a second shard planned, never written
    index = build_report(load_pipeline(_config(tmp_path)), tmp_path / "out", resamples=20)
    lines = [line for line in index.read_text().splitlines() if "judge shards [1] are not complete" in line]
    assert len(lines) == 1 and lines[0].startswith('<p class="missing">')
    assert not list(index.parent.glob("table1-*"))
