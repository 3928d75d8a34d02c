"""`judge`: every answer of the shard scored by every configured judge, with LLaVA's review protocol (reference
answer vs the model's, in both orders against position bias) and/or a single 0-10 score. A GPU array stage (a 70B
judge spans the GPUs of one node: vLLM tensor parallelism or transformers `device_map="auto"`); resumable per
judge and answer (WORK/judge/_state/shard-N/). A reply whose scores cannot be parsed is asked again
(`stages.judge.retries`) and then recorded as missing (NaN, `parsed` false) with the judge's raw text for audit.
The domain code is ldrt_hpc/evaluate/judging.py; this module only drives it over one shard.
"""

from __future__ import annotations

import json
import math
from typing import Any

from tqdm import tqdm

from ..config import JudgeConfig, JudgeModel, PipelineConfig
from ..errors import ConfigError
from ..shards import Schema, append_jsonl_log, read_jsonl_log
from . import Shard

SCHEMA = Schema(
    version=1,
    fields={
        "sample_id": "str", "paper_id": "str", "task": "str", "model": "str", "judge": "str", "protocol": "str",
        "score": "float64", "reference_score": "float64", "parsed": "bool", "orders": "int64", "flipped": "str",
        "attempts": "int64", "error": "str", "raw": "str", "prompt_version": "str",
    },
)
"""score / reference_score are NaN when missing (never -1); flipped is 'yes', 'no' or '' (not both orders)."""

NO_SIGNAL_MODELS = ("embedded:",)
"""Judges whose scores carry no information (the tiny embedded model of the demo): the stats say so."""


def preflight(cfg: PipelineConfig) -> None:
    if not cfg.stages.judge.judges:
        raise ConfigError(f"{cfg._source or 'the pipeline config'}: stages.judge.judges is empty: name the judges")


def _key(item: dict[str, Any]) -> str:
    return f"{item['sample_id']}|{item['model']}|{item['protocol']}"


def _progress_path(shard: Shard, settings: JudgeConfig, judge: JudgeModel, version: str):
    return shard.resume_log(f"judge-{judge.name}", {
        "judge": judge.model_dump(mode="json", exclude={"batch_size", "base_url", "api_key_env"}),
        "settings": settings.model_dump(mode="json", exclude={"judges"}), "prompts": version})


def judge_items(shard: Shard) -> list[dict[str, Any]]:
    """The shard's answers with the figure's caption and the sentences that mention it."""
    from ..evaluate.judging import JudgeItem
    from .context import answers_with_figures

    return [{**answer, "item": JudgeItem(answer["sample_id"], answer["task"], figure["caption"], figure["mentions"],
                                         answer["question"], answer["reference"], answer["answer"])}
            for answer, figure in answers_with_figures(shard)]


def run(shard: Shard, cfg: PipelineConfig) -> dict[str, Any]:
    from ..evaluate.judging import load_judge_prompts

    settings = cfg.stages.judge
    preflight(cfg)
    prompts = load_judge_prompts(settings.prompts)
    answers = judge_items(shard)
    todo_total, records = 0, []
    for judge in settings.judges:
        progress = _progress_path(shard, settings, judge, prompts.version)
        done = {_key(r): r for r in read_jsonl_log(progress)}
        wanted = [{**a, "protocol": p} for a in answers for p in settings.protocols]
        todo = [w for w in wanted if _key(w) not in done]
        if todo:
            _judge_all(cfg, settings, judge, prompts, todo, progress, done)
            todo_total += len(todo)
        records += [done[_key(w)] for w in wanted]
    for record in records:
        shard.write(record)
    return _stats(records, todo_total, settings)


def _judge_all(cfg, settings: JudgeConfig, judge: JudgeModel, prompts, todo: list[dict], progress, done: dict) -> None:
    """Judge `todo` in batches of the backend's size; each finished batch is saved (resume after a kill)."""
    from ..llm import make_backend

    backend = make_backend(judge, cfg.work_dir)
    for start in tqdm(range(0, len(todo), judge.batch_size), desc=f"judge {judge.name}", unit="batch", mininterval=5):
        batch = todo[start : start + judge.batch_size]
        replied = _with_replies(backend, settings, prompts, batch)
        records = [_judgement(backend, settings, judge, prompts, w) for w in replied]
        append_jsonl_log(progress, records)
        done.update({_key(r): r for r in records})


def _conversations(settings: JudgeConfig, prompts, wanted: dict) -> list[list[dict[str, str]]]:
    """The prompts of one judgement: review in one or both orders, or the single score."""
    from ..evaluate.judging import review_messages, single_messages

    if wanted["protocol"] == "single":
        return [single_messages(prompts, wanted["item"])]
    orders = (False, True) if settings.both_orders else (False,)
    return [review_messages(prompts, wanted["item"], swapped) for swapped in orders]


def _sampling(settings: JudgeConfig, attempt: int):
    from ..llm import Sampling

    # a greedy retry would repeat the unparsable reply: retries sample (and use another seed)
    temperature = settings.temperature if attempt == 0 else max(settings.temperature, 0.7)
    return Sampling(temperature, 1.0, settings.max_tokens, seed=attempt)


def _with_replies(backend, settings: JudgeConfig, prompts, batch: list[dict]) -> list[dict]:
    """First replies of a whole batch in one generate call (retries, rare, are asked one by one)."""
    conversations = [_conversations(settings, prompts, w) for w in batch]
    flat = [c for group in conversations for c in group]
    outputs = iter(backend.generate(flat, _sampling(settings, 0)))
    return [{**w, "conversations": group, "first": [next(outputs).text for _ in group]}
            for w, group in zip(batch, conversations)]


def _judgement(backend, settings: JudgeConfig, judge: JudgeModel, prompts, wanted: dict) -> dict[str, Any]:
    from ..evaluate.judging import combine_review, judge_once, parse_pair, parse_single

    question = wanted["item"].question
    results = []
    for order, messages in enumerate(wanted["conversations"]):
        def generate(messages, attempt, order=order):
            if attempt == 0:
                return wanted["first"][order]
            return backend.generate([messages], _sampling(settings, attempt))[0].text

        parse = (lambda text: parse_single(text, question)) if wanted["protocol"] == "single" else (
            lambda text: parse_pair(text, question))
        results.append(judge_once(generate, messages, parse, settings.retries))
    record = {"sample_id": wanted["sample_id"], "paper_id": wanted["paper_id"], "task": wanted["task"],
              "model": wanted["model"], "judge": judge.name, "protocol": wanted["protocol"],
              "attempts": sum(r.attempts for r in results), "raw": json.dumps([r.raw for r in results]),
              "error": "; ".join(r.error for r in results if r.error), "prompt_version": prompts.version}
    if wanted["protocol"] == "single":
        value = results[0].value
        return {**record, "score": _number(value), "reference_score": math.nan, "parsed": value is not None,
                "orders": int(value is not None), "flipped": ""}
    forward = results[0].value
    swapped = results[1].value if len(results) > 1 else None
    review = combine_review(forward, swapped)
    flipped = "" if review.flipped is None else ("yes" if review.flipped else "no")
    return {**record, "score": _number(review.model_score), "reference_score": _number(review.reference_score),
            "parsed": review.orders > 0, "orders": review.orders, "flipped": flipped}


def _number(value) -> float:
    return math.nan if value is None else float(value)


def _stats(records: list[dict], judged: int, settings: JudgeConfig) -> dict[str, Any]:
    flips = [r["flipped"] for r in records if r["flipped"]]
    stats = {"judgements": len(records), "judged_now": judged, "missing": sum(not r["parsed"] for r in records),
             "flip_rate": round(flips.count("yes") / len(flips), 4) if flips else None}
    if any(j.model.startswith(NO_SIGNAL_MODELS) for j in settings.judges):
        stats["note"] = "a judge is the tiny embedded demo model: its scores carry no information"
    return stats
