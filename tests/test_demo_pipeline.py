"""A reduced `make demo`, end to end: one `pipeline run` on this machine from generated PDFs to the report --
ingest .. context, qa (a scripted OpenAI-compatible server), training (debug LLaVA, align + LoRA, 2 CPU ranks,
DeepSpeed ZeRO-3), answer (the base and the fine-tuned model), judge (a scripted server), hallucination, report.
A second run submits nothing: every stage and the training are complete."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml

from ldrt_hpc.config import load_pipeline
from ldrt_hpc.launch import pipeline
from ldrt_hpc.runner import stage_dir
from ldrt_hpc.shards import iter_stage
from tests.llm_server import ScriptedChatServer

pytest.importorskip("deepspeed")
pytest.importorskip("peft")

DESCRIPTION = ("The image shows surviving fractions of A549 cells after single doses between 0 and 2 Gy; the curve "
               "appears to fall slowly below 0.5 Gy and faster above it.")
REASONING = json.dumps({"question": "Why could the response flatten below 0.5 Gy?",
                        "answer": "Low doses may trigger adaptive DNA repair, so fewer cells die than a linear model "
                                  "predicts at these doses."})


def write_configs(folder: Path, pdfs: Path, qa_url: str, judge_url: str) -> Path:
    work, train = folder / "work", folder / "train"
    (folder / "train.yaml").write_text("# ldrt-hpc train --config train.yaml (a test)\n" + yaml.safe_dump({
        "output_dir": str(train), "model": {"flavour": "debug"},
        "data": {"work_dir": str(work), "eval_share": 0.25, "max_length": 256, "num_workers": 0},
        "align": {"max_steps": 1, "global_batch_size": 2, "per_device_batch_size": 1, "lr": 1.0e-2},
        "finetune": {"max_steps": 2, "global_batch_size": 2, "per_device_batch_size": 1, "lora": {"r": 8, "alpha": 16}},
        "checkpoint": {"every_steps": 2}}))
    (folder / "pipeline.yaml").write_text("# ldrt-hpc pipeline run --config pipeline.yaml (a test)\n" + yaml.safe_dump({
        "work_dir": str(work), "cluster": "local",
        "llm": {"backend": "openai", "model": "scripted", "base_url": qa_url, "batch_size": 1},
        "stages": {
            "ingest": {"input_dir": str(pdfs), "num_shards": 2},
            "answer": {"eval_share": 0.25, "max_new_tokens": 6, "batch_size": 4, "models": [
                {"name": "base", "path": str(train / "base-model")},
                {"name": "ours", "path": str(train / "finetune" / "merged"), "base": "base"}]},
            "judge": {"retries": 0, "judges": [{"name": "scripted", "backend": "openai", "model": "m",
                                                "base_url": judge_url, "batch_size": 1, "max_retries": 0}]}},
        "pipeline": {"train_config": str(folder / "train.yaml"), "report": True}}))
    return folder / "pipeline.yaml"


def test_the_whole_pipeline_on_this_machine(tmp_path, synth_pdfs, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setenv("TORCH_EXTENSIONS_DIR", os.environ.get("TORCH_EXTENSIONS_DIR",
                                                              str(Path.home() / ".cache" / "torch_extensions")))
    with ScriptedChatServer([DESCRIPTION, REASONING] * 500) as qa, ScriptedChatServer(["7 6\nScore: 7"]) as judge:
        cfg = load_pipeline(write_configs(tmp_path, synth_pdfs, qa.base_url, judge.base_url))
        steps = pipeline.run(cfg, "local", "ingest")
        assert [s.stage for s in steps] == ["ingest", "convert", "figures", "filter", "context", "qa", "train",
                                            "answer", "judge", "hallucination", "report"]
        assert all(s.kind == "local" and "not done" not in s.note for s in steps), [s.line() for s in steps]
        table = pipeline.stage_counts(cfg, pipeline.GRAPH.between("ingest"))
        assert all(c.shards == 2 and c.done == 2 for c in table), pipeline.format_table(table)

        answers = list(iter_stage(stage_dir(cfg, "answer"), [0, 1]))
        assert {a["model"] for a in answers} == {"base", "ours"}
        measured = list(iter_stage(stage_dir(cfg, "hallucination"), [0, 1]))
        assert len(measured) == len(answers) and all(0.0 <= m["rouge1"] <= 1.0 for m in measured if m["reference_words"])
        report = Path(steps[-1].note.split("; ")[-1])
        assert report == cfg.work_dir / "report" / "index.html" and report.is_file()
        html = report.read_text()
        for name in ("table1-review.md", "hallucination-boxplots.png", "funnel.png", "train-loss.png"):
            assert (report.parent / name).is_file(), name
        assert "http://" not in html and "https://" not in html

        again = pipeline.run(cfg, "local", "ingest")  # rerunning skips every complete shard and the training
        assert all(not s.shards for s in again if s.stage != "report")
        assert next(s for s in again if s.stage == "train").kind == "skip"
