"""`answer`: every eval item of a shard answered by every configured model (base and fine-tuned LLaVA), with the
same image and question. A GPU array stage; resumable per model and item (WORK/answer/_state/shard-N/); each
answer carries its model, generation settings, token counts, finish reason (truncated or not) and seconds.

The eval items are the kept `qa` samples of the eval papers: the same 97/3 paper split as `export llava` and
training. The domain code is ldrt_hpc/evaluate/; this module only drives it over one shard.
"""

from __future__ import annotations

import io
import json
from typing import Any

from tqdm import tqdm

from ..config import AnswerConfig, EvalModel, PipelineConfig
from ..errors import ConfigError
from ..shards import Schema, append_jsonl_log, read_jsonl_log
from . import Shard

SCHEMA = Schema(
    version=1,
    fields={
        "sample_id": "str", "paper_id": "str", "task": "str", "figure_index": "int64", "model": "str",
        "model_path": "str", "question": "str", "reference": "str", "answer": "str", "prompt_tokens": "int64",
        "completion_tokens": "int64", "finish_reason": "str", "truncated": "bool", "seconds": "float64",
        "settings": "str",
    },
)


def eval_items(shard: Shard, papers: set[str]) -> list[dict[str, Any]]:
    """The kept qa samples of this shard whose paper is in the eval set."""
    with shard.read("qa") as reader:
        return [r for r in reader if r["kept"] and r["paper_id"] in papers]


def _eval_papers(cfg: PipelineConfig) -> set[str]:
    from ..instruct.split import eval_papers

    return eval_papers(cfg.work_dir, cfg.stages.answer.eval_share, cfg.stages.answer.split_seed)


def generation_settings(settings: AnswerConfig) -> dict[str, Any]:
    """What shapes an answer (stored with it; another value starts the model's answers afresh)."""
    return {"temperature": settings.temperature, "max_new_tokens": settings.max_new_tokens, "seed": settings.seed}


def _progress_path(shard: Shard, settings: AnswerConfig, model: EvalModel):
    return shard.resume_log(f"answers-{model.name}", {"model": [model.name, str(model.path)],
                                                      **generation_settings(settings)})


def preflight(cfg: PipelineConfig, papers: set[str] | None = None) -> None:
    """Before submitting (and in each task): models are configured, their folders exist, none was trained on an
    eval paper (`papers`: the eval papers, when the caller has them already)."""
    models = cfg.stages.answer.models
    if not models:
        raise ConfigError(f"{cfg._source or 'the pipeline config'}: stages.answer.models is empty: name the models to "
                          "evaluate (a base model folder and the fine-tuned merged model)")
    missing = [f"{m.name}: {m.path}" for m in models if not (m.path / "config.json").is_file()]
    if missing:
        raise ConfigError(f"model folders without config.json: {'; '.join(missing)}")
    check_held_out(cfg, papers)


def check_held_out(cfg: PipelineConfig, papers: set[str] | None = None) -> None:
    """A fine-tuned model must not be evaluated on papers it was trained on: its folder names the papers its
    training left out (ldrt_hpc/train/data.py SPLIT_FILE); every eval paper here must be one of them."""
    from ..train.data import SPLIT_FILE

    records = {m.name: json.loads((m.path / SPLIT_FILE).read_text()) for m in cfg.stages.answer.models
               if (m.path / SPLIT_FILE).is_file()}
    if not records:
        return
    eval_papers = _eval_papers(cfg) if papers is None else papers
    for name, record in records.items():
        if record["eval_papers"] is None:
            continue
        seen = sorted(eval_papers - set(record["eval_papers"]))
        if seen:
            raise ConfigError(f"model '{name}' was trained on {len(seen)} of the {len(eval_papers)} eval papers "
                              f"(e.g. {seen[0]}): set stages.answer.eval_share / split_seed to the training config's "
                              "data.eval_share / split_seed, on the same qa shards")


def run(shard: Shard, cfg: PipelineConfig) -> dict[str, Any]:
    settings = cfg.stages.answer
    papers = _eval_papers(cfg)  # reads every qa shard: once per task
    preflight(cfg, papers)
    items = eval_items(shard, papers)
    answers: dict[str, dict[str, dict]] = {}
    generated = 0
    for model in settings.models:
        progress = _progress_path(shard, settings, model)
        done = {r["sample_id"]: r for r in read_jsonl_log(progress)}
        todo = [item for item in items if item["sample_id"] not in done]
        if todo:
            generated += _answer_all(shard, settings, model, todo, progress, done)
        answers[model.name] = done
    for model in settings.models:
        for item in items:
            shard.write(answers[model.name][item["sample_id"]])
    truncated = sum(answers[m.name][i["sample_id"]]["truncated"] for m in settings.models for i in items)
    return {"items": len(items), "models": len(settings.models), "generated": generated, "truncated": truncated}


def _answer_all(shard: Shard, settings: AnswerConfig, model: EvalModel, todo: list[dict], progress, done: dict) -> int:
    """Answer `todo` with one model, saving each finished batch (a killed task resumes after it)."""
    from PIL import Image

    from ..evaluate.vlm import LlavaAnswerer

    answerer = LlavaAnswerer(model.path, settings.attention)
    stored = json.dumps(generation_settings(settings), sort_keys=True)
    with shard.read("figures") as figures:
        for start in tqdm(range(0, len(todo), settings.batch_size), desc=f"answer {shard.index} {model.name}",
                          unit="batch", mininterval=5):
            batch = todo[start : start + settings.batch_size]
            images = [Image.open(io.BytesIO(figures.fields(i["figure_index"], ["png"])["png"])).convert("RGB")
                      for i in batch]
            replies = answerer.answer(list(zip(images, [i["question"] for i in batch])), settings.temperature,
                                      settings.max_new_tokens, settings.seed + start)
            records = {i["sample_id"]: _record(i, model, reply, stored) for i, reply in zip(batch, replies)}
            append_jsonl_log(progress, list(records.values()))
            done.update(records)
    return len(todo)


def _record(item: dict, model: EvalModel, reply, settings: str) -> dict[str, Any]:
    return {"sample_id": item["sample_id"], "paper_id": item["paper_id"], "task": item["task"],
            "figure_index": item["figure_index"], "model": model.name, "model_path": str(model.path),
            "question": item["question"], "reference": item["answer"], "answer": reply.text,
            "prompt_tokens": reply.prompt_tokens, "completion_tokens": reply.completion_tokens,
            "finish_reason": reply.finish_reason, "truncated": reply.finish_reason == "length",
            "seconds": reply.seconds, "settings": settings}
