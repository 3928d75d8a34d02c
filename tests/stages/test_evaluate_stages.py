"""`answer` and `judge` on the generated corpus: two debug LLaVA models answer the eval items; a scripted
OpenAI-compatible judge returns well-formed, malformed, out-of-range and order-disagreeing replies; the test checks
the exact scores, the missing ones, the flips, resume without new requests, and Table 1 from the shards."""

from __future__ import annotations

import json
import math

import pytest

from ldrt_hpc.config import AnswerConfig, EvalModel, JudgeConfig, JudgeModel
from ldrt_hpc.runner import stage_dir
from ldrt_hpc.shards import iter_stage
from tests.conftest import run_inline
from tests.llm_server import ScriptedChatServer

pytest.importorskip("transformers")

JUDGE_REPLIES = [
    "8 6\nThe reference is more precise.", "5 7\nAssistant 2 is better.",  # 1st answer, review: both orders parse
    "Score: 7\nRelevant and mostly accurate.",  # 1st answer, single
    "I cannot rate this.", "4 8\nThe second is better.", "9 3\nThe first is better.",  # 2nd: forward retried once
    "12 out of 10!", "no score here either",  # 2nd answer, single: out of range, then nothing: missing
    "6 8\nThe second is better.", "5 7\nThe second is better.",  # 3rd answer, review: the orders disagree
    "[[9]]",  # 3rd answer, single
    "7 7\nScore: 7",  # every later reply (parses for both protocols)
]


def save_model(path, seed: int):
    from ldrt_hpc.train.models import build_debug

    loaded = build_debug("llava", seed=seed)
    loaded.model.save_pretrained(path)
    loaded.processor.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def evaluated(qa_pipeline, tmp_path_factory):
    folder = tmp_path_factory.mktemp("models")
    models = [EvalModel(name="base", path=save_model(folder / "base", 0)),
              EvalModel(name="ours", path=save_model(folder / "ours", 1), base="base")]
    answer = AnswerConfig(models=models, max_new_tokens=6, batch_size=3, eval_share=0.25)
    with ScriptedChatServer(JUDGE_REPLIES) as server:
        judge = JudgeConfig(judges=[JudgeModel(name="scripted", backend="openai", model="m", base_url=server.base_url,
                                               batch_size=1, max_retries=0)])
        stages = qa_pipeline.stages.model_copy(update={"answer": answer, "judge": judge})
        cfg = qa_pipeline.model_copy(update={"stages": stages})
        answer_markers = run_inline(cfg, "answer")
        judge_markers = run_inline(cfg, "judge")
        requests = len(server.requests)
    return cfg, answer_markers, judge_markers, requests


def test_every_eval_item_is_answered_by_every_model(evaluated):
    cfg, markers, _, _ = evaluated
    answers = list(iter_stage(stage_dir(cfg, "answer"), [0, 1]))
    by_model = {m: [a for a in answers if a["model"] == m] for m in ("base", "ours")}
    assert by_model["base"] and len(by_model["base"]) == len(by_model["ours"])
    assert [a["question"] for a in by_model["base"]] == [a["question"] for a in by_model["ours"]]
    assert sum(m["stats"]["items"] for m in markers) == len(by_model["base"])
    for answer in answers:
        # a random tiny model may end at once (0 tokens) or run to the limit (truncated)
        assert 0 <= answer["completion_tokens"] <= 6 and answer["truncated"] == (answer["finish_reason"] == "length")
        assert json.loads(answer["settings"]) == {"temperature": 0.2, "max_new_tokens": 6, "seed": 0}
        assert answer["reference"] and answer["prompt_tokens"] > 16  # 16 image tokens + the question
    assert any(a["truncated"] for a in answers) and any(a["answer"] for a in answers)
    from ldrt_hpc.instruct.split import kept_samples, split_samples

    _, _, eval_papers = split_samples(kept_samples(cfg.work_dir), 0.25, 0)
    assert {a["paper_id"] for a in answers} == eval_papers


def test_judge_scores_missing_and_flips_are_exact(evaluated):
    cfg, _, markers, _ = evaluated
    judged = list(iter_stage(stage_dir(cfg, "judge"), [0, 1]))
    review = [j for j in judged if j["protocol"] == "review"]
    single = [j for j in judged if j["protocol"] == "single"]
    assert (review[0]["reference_score"], review[0]["score"], review[0]["flipped"]) == (7.5, 5.5, "no")
    assert single[0]["score"] == 7.0
    assert (review[1]["reference_score"], review[1]["score"], review[1]["attempts"]) == (8.5, 3.5, 3)
    assert math.isnan(single[1]["score"]) and not single[1]["parsed"] and "unparsable" in single[1]["error"]
    assert json.loads(single[1]["raw"]) == [["12 out of 10!", "no score here either"]]
    assert (review[2]["reference_score"], review[2]["score"], review[2]["flipped"]) == (6.5, 6.5, "yes")
    assert single[2]["score"] == 9.0
    assert all(j["score"] == 7.0 for j in judged[6:])
    stats = [m["stats"] for m in markers]
    assert sum(s["missing"] for s in stats) == 1
    flips = [j["flipped"] for j in review]
    assert flips.count("yes") == 1 and flips.count("no") == len(review) - 1


def test_a_rerun_judges_nothing_again(evaluated):
    from ldrt_hpc.config import freeze
    from ldrt_hpc.runner import run_shard

    cfg, _, _, requests = evaluated
    answers = sum(1 for _ in iter_stage(stage_dir(cfg, "answer"), [0, 1]))
    assert requests == answers * 3 + 2  # review x2 + single per answer, plus two retries
    with ScriptedChatServer(["7 7"]) as server:
        judges = [j.model_copy(update={"base_url": server.base_url}) for j in cfg.stages.judge.judges]
        stages = cfg.stages.model_copy(update={"judge": cfg.stages.judge.model_copy(update={"judges": judges})})
        moved = cfg.model_copy(update={"stages": stages})  # another address, same judge: resumes
        marker = run_shard(freeze(moved), "judge", 0, force=True)
        answer_marker = run_shard(freeze(moved), "answer", 0, force=True)
        assert server.requests == [] and marker["stats"]["judged_now"] == 0
    assert answer_marker["stats"]["generated"] == 0


def test_table1_from_the_judge_shards(evaluated, tmp_path):
    from ldrt_hpc.analysis.results import write_table1
    from ldrt_hpc.analysis.table1 import read_csv

    cfg, _, _, _ = evaluated
    written = write_table1(cfg, tmp_path, resamples=50)
    assert sorted(p.name for p in written) == sorted(f"table1-{p}.{s}" for p in ("review", "single")
                                                     for s in ("csv", "md", "tex"))
    rows = {(r["model"], r["column"]): r for r in read_csv(tmp_path / "table1-single.csv")}
    judged = [j for j in iter_stage(stage_dir(cfg, "judge"), [0, 1]) if j["protocol"] == "single"]
    base = [j["score"] for j in judged if j["model"] == "base" and not math.isnan(j["score"])]
    assert rows[("base", "overall")]["n"] == len(base)
    assert rows[("base", "overall")]["mean"] == pytest.approx(sum(base) / len(base))
    assert rows[("base", "overall")]["parse_failures"] == 1  # the 2nd answer's single score is missing
    assert "| scripted |" in (tmp_path / "table1-single.md").read_text()


@pytest.mark.slurm
@pytest.mark.timeout(900)
def test_answer_and_judge_arrays_on_slurm_resume_without_asking_again(slurm, evaluated, tmp_path):
    """On the local Slurm cluster: `answer` gives the inline run's answers (same seed); a `judge` task fails at its
    4th request, the rerun asks only what was not judged: every judgement once, plus the failed request."""
    import shutil

    from ldrt_hpc.launch import stage_status, submit, wait

    cfg, _, _, _ = evaluated
    work = tmp_path / "work"
    shutil.copytree(cfg.work_dir, work, ignore=shutil.ignore_patterns("answer", "judge"))
    inline = [(a["model"], a["sample_id"], a["answer"]) for a in iter_stage(stage_dir(cfg, "answer"), [0, 1])]
    with ScriptedChatServer(["7 7\nScore: 7"]) as server:
        server.fail_requests(4)  # the first request of an answer's review: that shard fails after saving one answer
        judge = JudgeConfig(judges=[JudgeModel(name="slurm", backend="openai", model="m", base_url=server.base_url,
                                               batch_size=1, max_retries=0)])
        moved = cfg.model_copy(update={"work_dir": work, "cluster": "localslurm",
                                       "stages": cfg.stages.model_copy(update={"judge": judge})})
        slurm += [(moved, "answer"), (moved, "judge")]
        submit(moved, "answer")
        wait(moved, "answer")
        assert [(a["model"], a["sample_id"], a["answer"]) for a in iter_stage(stage_dir(moved, "answer"), [0, 1])] \
            == inline
        submit(moved, "judge")
        wait(moved, "judge")
        assert [r.state for r in stage_status(moved, "judge")].count("failed") == 1
        submit(moved, "judge")
        wait(moved, "judge")
        assert {r.state for r in stage_status(moved, "judge")} == {"done"}
        assert len(server.requests) == len(inline) * 3 + 1


@pytest.mark.parametrize("stage", ["answer", "judge"])
def test_each_array_task_is_one_gpu_node(evaluated, stage):
    """--dry-run on Polaris (PBS Pro) and a generic Slurm site: one node with its 4 GPUs per task (a 70B judge
    spans them); `resources: {answer: {gpus_per_node: 1}}` in the pipeline config gives one GPU per shard."""
    from ldrt_hpc.launch import submit

    cfg, _, _, _ = evaluated
    pbs = submit(cfg, stage, cluster="polaris", dry_run=True).script
    assert "#PBS -l select=1:ncpus=64:ngpus=4:system=polaris" in pbs.splitlines()
    slurm = submit(cfg, stage, cluster="generic-slurm", dry_run=True).script
    assert {"#SBATCH --gpus-per-node=4", "#SBATCH --nodes=1"} <= set(slurm.splitlines())
    narrow = cfg.model_copy(update={"resources": {stage: {"gpus_per_node": 1, "cpus_per_task": 8}}})
    assert "#SBATCH --gpus-per-node=1" in submit(narrow, stage, cluster="generic-slurm", dry_run=True).script


def test_a_model_trained_on_eval_papers_is_refused(evaluated, tmp_path):
    import shutil

    from ldrt_hpc.errors import ConfigError
    from ldrt_hpc.stages.answer import preflight
    from ldrt_hpc.train.data import SPLIT_FILE

    cfg, _, _, _ = evaluated
    trained = tmp_path / "ours"
    shutil.copytree(cfg.stages.answer.models[1].path, trained)
    (trained / SPLIT_FILE).write_text(json.dumps({"work_dir": str(cfg.work_dir), "eval_papers": ["another-paper"]}))
    models = [cfg.stages.answer.models[0], cfg.stages.answer.models[1].model_copy(update={"path": trained})]
    moved = cfg.model_copy(update={"stages": cfg.stages.model_copy(
        update={"answer": cfg.stages.answer.model_copy(update={"models": models})})})
    with pytest.raises(ConfigError, match="model 'ours' was trained on .* of the .* eval papers"):
        preflight(moved)
    from ldrt_hpc.instruct.split import kept_samples, split_samples

    held_out = sorted(split_samples(kept_samples(cfg.work_dir), 0.25, 0)[2])
    (trained / SPLIT_FILE).write_text(json.dumps({"work_dir": str(cfg.work_dir), "eval_papers": held_out}))
    preflight(moved)  # the same split: fine
