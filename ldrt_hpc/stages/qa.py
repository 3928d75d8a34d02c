"""`qa`: for each kept figure, a detailed description (paired with the closest of the 20 template questions by
TF-IDF cosine) and a complex-reasoning question + answer, written by the LLM from the caption and the sentences
that mention the figure. A GPU array stage; resumable per figure; every sample carries its provenance.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from typing import Any

from ..config import PipelineConfig, config_hash
from ..llm import Sampling, make_backend
from ..qa import FilterRules, ParseError, TemplateMatcher, load_prompts, messages, parse_reasoning, post_filter
from ..shards import Schema, read_jsonl_log
from . import Shard, Stage

SCHEMA = Schema(
    version=1,
    fields={
        "sample_id": "str", "paper_id": "str", "figure_name": "str", "fig_type": "str", "figure_index": "int64",
        "page": "int64",
        "task": "str", "question": "str", "answer": "str", "template_index": "int64", "template_score": "float64",
        "kept": "bool", "reason": "str", "attempts": "int64", "prompt_version": "str", "generator": "str",
        "config_hash": "str",
    },
)


def _progress_path(cfg: PipelineConfig, index: int):
    """Finished figures of a shard, keyed by what shapes the samples (the qa settings and the generator): another
    prompt, model or temperature starts afresh; another endpoint address or batch size resumes."""
    key = json.dumps({"qa": cfg.stages.qa.model_dump(mode="json"), "llm": [cfg.llm.backend, cfg.llm.model]},
                     sort_keys=True)
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    return cfg.work_dir / "qa" / "_progress" / f"shard-{index:05d}-{digest}.jsonl"


def run(shard: Shard, cfg: PipelineConfig) -> dict[str, Any]:
    settings = cfg.stages.qa
    prompts = load_prompts(settings.prompts)
    matcher = TemplateMatcher(prompts.templates)
    rules = FilterRules(settings.min_words, settings.max_words)
    with shard.read("context") as reader:
        figures = list(reader)
    progress = _progress_path(cfg, shard.index)
    progress.parent.mkdir(parents=True, exist_ok=True)
    done: dict[int, list[dict]] = {item["figure_index"]: item["records"] for item in read_jsonl_log(progress)}
    todo = [f for f in figures if f["figure_index"] not in done]
    provenance = {"prompt_version": prompts.version, "generator": f"{cfg.llm.backend}:{cfg.llm.model}",
                  "config_hash": config_hash(cfg)}
    counts: dict[str, Any] = {"figures": len(figures), "resumed": len(done), "prompts": 0, "completion_tokens": 0,
                              "malformed": 0, "filtered": {}}
    started = time.perf_counter()
    backend = make_backend(cfg.llm, cfg.work_dir) if todo else None
    for start in range(0, len(todo), cfg.llm.batch_size):
        batch = todo[start : start + cfg.llm.batch_size]
        records = {f["figure_index"]: [] for f in batch}
        pending = [(f, task, 1) for f in batch for task in settings.tasks]
        while pending:
            outputs = backend.generate(
                [messages(prompts, task, f["caption"], [m for m in f["mentions"].split("\n") if m])
                 for f, task, _ in pending],
                Sampling(settings.temperature, 1.0, settings.max_tokens, settings.seed + pending[0][2] - 1))
            retry = []
            for (figure, task, attempt), output in zip(pending, outputs):
                counts["prompts"] += 1
                counts["completion_tokens"] += output.completion_tokens
                record = {"sample_id": f"{figure['paper_id']}:{figure['fig_type']}{figure['name']}:{task}",
                          "paper_id": figure["paper_id"], "figure_name": figure["name"], "fig_type": figure["fig_type"],
                          "figure_index": figure["figure_index"], "page": figure["page"], "task": task,
                          "template_index": -1,
                          "template_score": 0.0, "attempts": attempt, **provenance}
                if task == "description":
                    template, score = matcher.best(output.text)
                    record.update(question=prompts.templates[template], answer=output.text.strip(),
                                  template_index=template, template_score=score)
                else:
                    try:
                        question, answer = parse_reasoning(output.text)
                    except ParseError as exc:
                        counts["malformed"] += 1
                        if attempt < settings.max_attempts:
                            retry.append((figure, task, attempt + 1))
                            continue
                        record.update(question="", answer=output.text.strip(), kept=False, reason=f"malformed: {exc}")
                        records[figure["figure_index"]].append(record)
                        continue
                    record.update(question=question, answer=answer)
                reason = post_filter(record["question"] + "\n" + record["answer"] if task == "reasoning"
                                     else record["answer"], rules)
                record.update(kept=not reason, reason=reason)
                if reason:
                    counts["filtered"][reason] = counts["filtered"].get(reason, 0) + 1
                records[figure["figure_index"]].append(record)
            pending = retry
        with open(progress, "a") as handle:  # finished figures survive a killed task
            for figure_index, items in records.items():
                handle.write(json.dumps({"figure_index": figure_index, "records": items}) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        done.update(records)
    seconds = time.perf_counter() - started
    kept = 0
    for figure in figures:
        for record in sorted(done.get(figure["figure_index"], []), key=lambda r: settings.tasks.index(r["task"])):
            shard.write(record)
            kept += record["kept"]
    counts.update(samples_kept=kept, seconds=round(seconds, 2),
                  prompts_per_s=round(counts["prompts"] / seconds, 3) if counts["prompts"] else None,
                  tokens_per_s=round(counts["completion_tokens"] / seconds, 1) if counts["prompts"] else None)
    return counts


STAGE = Stage(
    name="qa",
    doc="LLM-written detailed descriptions and complex-reasoning Q&A per kept figure (GPU)",
    schema=SCHEMA,
    resource_class="gpu",
    reads=("context",),
    run=run,
)
