"""`hallucination` over real shards: the generated corpus up to `qa` (tests/conftest.py), the eval items answered
by the `answer` stage with a scripted answerer in place of LLaVA (a debug model's random bytes would leave every
measure at zero), then every answer measured against its figure's caption + context. Each stored row must equal
`item_metrics` on the same inputs; the markers' stats must add up."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from ldrt_hpc.config import AnswerConfig, EvalModel, HallucinationConfig
from ldrt_hpc.runner import stage_dir
from ldrt_hpc.shards import iter_stage
from tests.conftest import run_inline

pytest.importorskip("transformers")  # the answer stage imports ldrt_hpc.evaluate.vlm
pytest.importorskip("rouge_score")

HEDGES = ["may", "could be", "likely", "appear"]
ANSWERS = {  # by model folder name; the demo captions name doses in Gy, "24 h", Kaplan–Meier, gamma-H2AX
    "base": ("The image may show Kaplan-Meier curves after 2 Gy; gamma-H2AX foci could be seen 24 h later, and "
             "9 Gy with PD-1 in the Monte Carlo Model is likely."),
    "ours": "Dose-response of cells 24 h after 2 Gy; the foci appear green.",
}


class ScriptedAnswerer:
    """Stands in for LlavaAnswerer: one fixed answer per model, every second answer of a batch cut (truncated)."""

    def __init__(self, path: Path, attention: str = "auto"):
        self.text = ANSWERS[Path(path).name]

    def answer(self, items, temperature, max_new_tokens, seed):
        from ldrt_hpc.evaluate.vlm import Answer

        return [Answer(self.text, 20, 12, "length" if i % 2 else "stop", 0.0) for i in range(len(items))]


@pytest.fixture(scope="module")
def measured(qa_pipeline, tmp_path_factory):
    from ldrt_hpc.evaluate import vlm

    folder = tmp_path_factory.mktemp("models")
    for name in ANSWERS:
        (folder / name).mkdir()
        (folder / name / "config.json").write_text("{}")  # what the answer stage's preflight looks for
    models = [EvalModel(name="base", path=folder / "base"), EvalModel(name="ours", path=folder / "ours", base="base")]
    answer = AnswerConfig(models=models, max_new_tokens=12, batch_size=3, eval_share=0.25)
    settings = HallucinationConfig(hedges=HEDGES, max_examples=2)
    cfg = qa_pipeline.model_copy(update={"stages": qa_pipeline.stages.model_copy(
        update={"answer": answer, "hallucination": settings})})
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(vlm, "LlavaAnswerer", ScriptedAnswerer)
        run_inline(cfg, "answer")
    return cfg, run_inline(cfg, "hallucination")


def _stage(cfg, name):
    return list(iter_stage(stage_dir(cfg, name), [0, 1]))


def _same(a, b) -> bool:
    return (math.isnan(a) and math.isnan(b)) if isinstance(a, float) and math.isnan(a) else a == b


def test_every_answer_is_measured_against_caption_and_context(measured):
    from ldrt_hpc.analysis.hallucination import item_metrics, reference_text
    from ldrt_hpc.stages.hallucination import SCHEMA

    cfg, _ = measured
    rows = _stage(cfg, "hallucination")
    for index in (0, 1):
        answers = list(iter_stage(stage_dir(cfg, "answer"), [index]))
        figures = {f["figure_index"]: f for f in iter_stage(stage_dir(cfg, "context"), [index])}
        mine = list(iter_stage(stage_dir(cfg, "hallucination"), [index]))
        assert [(r["sample_id"], r["model"]) for r in mine] == [(a["sample_id"], a["model"]) for a in answers]
        for answer, row in zip(answers, mine):
            assert set(row) == set(SCHEMA.fields)
            figure = figures[answer["figure_index"]]
            reference = reference_text(figure["caption"], figure["mentions"])
            assert reference.startswith(figure["caption"].strip()) and reference.strip()
            expected = item_metrics(answer["answer"], reference, HEDGES, max_examples=2)
            for key, value in expected.items():
                stored = json.loads(row[key]) if key in ("hedge_counts", "unsupported_examples") else row[key]
                assert _same(value, stored), key
            assert (row["paper_id"], row["task"], row["truncated"]) == (answer["paper_id"], answer["task"],
                                                                        answer["truncated"])
    assert len(rows) == len(_stage(cfg, "answer")) and {r["model"] for r in rows} == {"base", "ours"}
    assert all(r["reference_words"] > 0 for r in rows) and any(r["truncated"] for r in rows)
    base = [r for r in rows if r["model"] == "base"]
    assert all(r["hedges"] == 3 for r in base)  # may, could be, likely (not "appear": the other model's)
    assert all(json.loads(r["hedge_counts"]) == {"may": 1, "could be": 1, "likely": 1} for r in base)
    # 2 Gy, gamma-H2AX, 24 h, 9 Gy, PD-1, Monte Carlo Model ("Kaplan-Meier" is one word: not a term); the demo
    # captions name 2 Gy, 24 h or gamma-H2AX for some figures only, 9 Gy, PD-1 and the Monte Carlo Model for none
    assert all(r["specific_terms"] == 6 and r["unsupported_terms"] >= 3 for r in base)
    assert all(r["unsupported_rate"] == r["unsupported_terms"] / 6 for r in base)
    assert any(r["unsupported_terms"] < 6 for r in base)  # something is supported somewhere
    assert all(json.loads(r["unsupported_examples"])[0] in ("2 Gy", "gamma-H2AX", "24 h", "9 Gy") for r in base)


def test_the_markers_stats_add_up(measured):
    cfg, markers = measured
    rows = _stage(cfg, "hallucination")
    stats = [m["stats"] for m in markers]
    assert sum(s["answers"] for s in stats) == len(rows)
    assert all(s["models"] == 2 for s in stats if s["answers"])
    assert sum(s["no_reference"] for s in stats) == 0
    assert sum(s["hedges"] for s in stats) == sum(r["hedges"] for r in rows)
    assert sum(s["truncated"] for s in stats) == sum(r["truncated"] for r in rows)
    for stat, index in zip(stats, (0, 1)):
        shard = list(iter_stage(stage_dir(cfg, "hallucination"), [index]))
        for model, mean in stat["rougeL_mean"].items():
            values = [r["rougeL"] for r in shard if r["model"] == model]
            assert mean == round(sum(values) / len(values), 4)


def test_read_all_needs_the_whole_stage(measured, tmp_path):
    from ldrt_hpc.errors import PlanError
    from ldrt_hpc.stages.hallucination import read_all

    cfg, _ = measured
    assert [r["sample_id"] for r in read_all(cfg.work_dir)] == [r["sample_id"] for r in _stage(cfg, "hallucination")]
    with pytest.raises(PlanError, match="the report: `hallucination` has not run"):
        read_all(tmp_path)
