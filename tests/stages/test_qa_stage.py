"""The `qa` stage on generated papers: scripted answers through the real openai backend (exact parse results,
retries, filter reasons, resume), and the real embedded model on CPU; then the LLaVA export."""

from __future__ import annotations

import json

import pytest

from ldrt_hpc.config import LLMConfig, load_pipeline
from ldrt_hpc.runner import stage_dir
from ldrt_hpc.shards import iter_stage
from tests.conftest import REPO, run_inline, write_config
from tests.llm_server import ScriptedChatServer

GOOD_DESCRIPTION = ("The image shows surviving fractions of A549 cells after single doses between 0 and 2 Gy; the "
                    "curve falls slowly below 0.5 Gy and faster above it, the experimental results of the study.")
GOOD_REASONING = json.dumps({"question": "Why could the response flatten below 0.5 Gy?",
                             "answer": "Low doses may trigger adaptive DNA repair and antioxidant defences, so fewer "
                                       "cells die than a linear model predicts at these doses."})


@pytest.fixture(scope="module")
def upstream(tmp_path_factory, synth_pdfs):
    """ingest -> context on the generated corpus, once (3 shards)."""
    folder = tmp_path_factory.mktemp("qa")
    cfg = load_pipeline(write_config(folder, synth_pdfs, num_shards=3), base=REPO)
    for stage in ("ingest", "convert", "figures", "filter", "context"):
        run_inline(cfg, stage)
    return cfg


def with_llm(cfg, **llm):
    return cfg.model_copy(update={"llm": LLMConfig(**llm)})


def test_scripted_generation_parse_retry_filter_resume(upstream):
    figures = sum(1 for _ in iter_stage(stage_dir(upstream, "context"), [0, 1, 2]))
    assert figures >= 10
    # per batch of 1 figure: description, reasoning; the first reasoning reply is malformed, the retry is fine;
    # then the replies cycle through a refusal and a caption leak as well
    answers = [GOOD_DESCRIPTION, "I cannot produce JSON, sorry", GOOD_REASONING,
               "I'm sorry, as an AI I cannot see images, so I will not describe this one in any detail here.",
               GOOD_REASONING, "According to the caption the curve falls with dose, as the text explains in detail here.",
               GOOD_REASONING] + [GOOD_DESCRIPTION, GOOD_REASONING] * 200
    with ScriptedChatServer(answers) as server:
        cfg = with_llm(upstream, backend="openai", model="qwen2-72b-instruct", base_url=server.base_url, batch_size=1)
        server.inject("503")  # a transient failure of the endpoint: retried by the backend
        markers = run_inline(cfg, "qa")
        requests_made = len(server.requests)
    samples = list(iter_stage(stage_dir(cfg, "qa"), [0, 1, 2]))
    assert len(samples) == 2 * figures
    key = (samples[0]["figure_index"], samples[0]["paper_id"])
    first = [s for s in samples if (s["figure_index"], s["paper_id"]) == key]
    assert [s["task"] for s in first] == ["description", "reasoning"]
    described = next(s for s in samples if s["task"] == "description" and s["kept"])
    assert described["question"] == "Describe the experimental results shown in this image."  # TF-IDF template
    reasoned = [s for s in samples if s["task"] == "reasoning"]
    assert reasoned[0]["attempts"] == 2 and reasoned[0]["question"] == "Why could the response flatten below 0.5 Gy?"
    reasons = {}
    for sample in samples:
        reasons[sample["reason"]] = reasons.get(sample["reason"], 0) + 1
        assert sample["prompt_version"] == "qa-v1" and sample["generator"] == "openai:qwen2-72b-instruct"
        assert sample["config_hash"] and sample["sample_id"].startswith(sample["paper_id"]) and sample["page"] >= 0
    assert reasons.get("refusal") == 1 and reasons.get("mentions_source") == 1
    stats = [m["stats"] for m in markers]
    assert sum(s["malformed"] for s in stats) == 1 and sum(s["prompts"] for s in stats) == 2 * figures + 1
    assert requests_made == 2 * figures + 1 + 1  # + the injected 503
    # resume: progress survives, a rerun of a shard generates nothing again
    with ScriptedChatServer([GOOD_DESCRIPTION]) as server:
        cfg = with_llm(upstream, backend="openai", model="qwen2-72b-instruct", base_url=server.base_url, batch_size=1)
        from ldrt_hpc.config import freeze
        from ldrt_hpc.runner import run_shard

        marker = run_shard(freeze(cfg), "qa", 0, force=True)
        assert server.requests == [] and marker["stats"]["resumed"] == marker["stats"]["figures"]


def test_llava_export_is_grouped_by_paper(upstream, tmp_path):
    from ldrt_hpc.export import export_llava
    from ldrt_hpc.shards import is_complete

    if not all(is_complete(stage_dir(upstream, "qa"), i) for i in range(3)):  # when run on its own
        with ScriptedChatServer([GOOD_DESCRIPTION, GOOD_REASONING]) as server:
            run_inline(with_llm(upstream, backend="openai", model="m", base_url=server.base_url), "qa")

    counts = export_llava(upstream.work_dir, tmp_path / "llava", eval_share=0.25, seed=0)
    train = json.loads((tmp_path / "llava" / "train.json").read_text())
    evaluation = json.loads((tmp_path / "llava" / "eval.json").read_text())
    assert counts["train"] == len(train) and counts["eval"] == len(evaluation) and evaluation and train
    paper = lambda entry: entry["id"].split(":")[0]  # noqa: E731
    assert not {paper(e) for e in train} & {paper(e) for e in evaluation}
    for entry in train + evaluation:
        assert entry["conversations"][0]["from"] == "human" and entry["conversations"][0]["value"].startswith("<image>\n")
        assert entry["conversations"][1]["from"] == "gpt" and entry["conversations"][1]["value"]
        assert (tmp_path / "llava" / entry["image"]).read_bytes().startswith(b"\x89PNG")


def test_embedded_model_writes_samples(upstream, model_cache):
    pytest.importorskip("transformers")
    from ldrt_hpc.llm import BackendUnavailable
    from ldrt_hpc.llm.hf import embedded_gguf

    try:
        embedded_gguf()
    except BackendUnavailable as exc:
        pytest.skip(str(exc))
    cfg = upstream.model_copy(update={
        "llm": LLMConfig(batch_size=16, cache_dir=model_cache),
        "stages": upstream.stages.model_copy(update={"qa": upstream.stages.qa.model_copy(
            update={"max_tokens": 32, "max_attempts": 1})}),  # short, one attempt: the CPU budget of a test
    })
    from ldrt_hpc.config import freeze
    from ldrt_hpc.launch.launcher import wanted_plan
    from ldrt_hpc.plan import pin_plan
    from ldrt_hpc.runner import run_shard

    pin_plan(stage_dir(cfg, "qa"), wanted_plan(cfg, "qa", None))
    marker = run_shard(freeze(cfg), "qa", 0, force=True)
    samples = list(iter_stage(stage_dir(cfg, "qa"), [0]))
    assert len(samples) == 2 * marker["stats"]["figures"] and marker["stats"]["tokens_per_s"] > 0
    for sample in samples:
        assert sample["generator"] == "transformers:embedded:smollm2-135m-instruct" and sample["answer"]
        assert sample["kept"] or sample["reason"]


@pytest.mark.slurm
def test_qa_as_slurm_array_tasks(slurm, synth_pdfs, tmp_path):
    """QA shards as real Slurm array tasks with the localslurm 'gpu' class (mapped to a CPU slot here)."""
    import yaml

    from ldrt_hpc.launch import stage_status, submit, wait

    with ScriptedChatServer([GOOD_DESCRIPTION, GOOD_REASONING]) as server:
        config = write_config(tmp_path, synth_pdfs, num_shards=2, cluster="localslurm")
        data = yaml.safe_load(config.read_text())
        data["llm"] = {"backend": "openai", "model": "scripted", "base_url": server.base_url}
        config.write_text("# ldrt-hpc run qa --config pipeline.yaml (test)\n" + yaml.safe_dump(data))
        cfg = load_pipeline(config, base=REPO)
        for stage in ("ingest", "convert", "figures", "filter", "context"):
            run_inline(cfg, stage)
        slurm.append((cfg, "qa"))
        result = submit(cfg, "qa")
        assert result.shards == [0, 1] and "#SBATCH --mem=4096M" in result.script  # the profile's gpu class
        rows = wait(cfg, "qa", timeout_s=300)
        assert [r.state for r in rows] == ["done", "done"] and rows[0].job_id == result.job_ids[0]
        assert len(server.requests) == 2 * sum(1 for _ in iter_stage(stage_dir(cfg, "context"), [0, 1]))
    samples = list(iter_stage(stage_dir(cfg, "qa"), [0, 1]))
    assert samples and all(s["generator"] == "openai:scripted" and s["kept"] for s in samples)
    assert [r.state for r in stage_status(cfg, "qa")] == ["done", "done"]
