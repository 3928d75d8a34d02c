"""`qa`: for each kept figure, a detailed description (paired with the closest of the 20 template questions by
TF-IDF cosine) and a complex-reasoning question + answer, written by the LLM from the caption and the sentences
that mention the figure. A GPU array stage; resumable per figure (WORK/qa/_state/shard-N/progress-<settings>.jsonl); every sample carries
its provenance. The domain code is ldrt_hpc/instruct/; this module only drives it over one shard.
"""

from __future__ import annotations

import importlib.util
import time
from pathlib import Path
from typing import Any

from tqdm import tqdm

from ..config import PipelineConfig, config_hash
from ..errors import BackendUnavailable
from ..instruct.generate import SampleWriter
from ..instruct.prompts import load_prompts
from ..llm import make_backend
from ..shards import Schema, append_jsonl_log, read_jsonl_log
from . import Shard

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


def _progress_path(shard: Shard, cfg: PipelineConfig) -> Path:
    """Finished figures of a shard, keyed by what shapes the samples (the qa settings and the generator): another
    prompt, model or temperature starts afresh; another endpoint address or batch size resumes."""
    return shard.resume_log("progress", {"qa": cfg.stages.qa.model_dump(mode="json"),
                                         "llm": [cfg.llm.backend, cfg.llm.model]})


def _save(progress: Path, samples: dict[int, list[dict]]) -> None:
    """Append finished figures (one line each): they survive a killed task."""
    append_jsonl_log(progress, [{"figure_index": index, "records": items} for index, items in samples.items()])


def preflight(cfg: PipelineConfig) -> None:
    """Before submitting: the LLM backend's package is installed (found, not imported: torch is slow to load)."""
    package = {"vllm": "vllm", "transformers": "transformers"}.get(cfg.llm.backend)  # openai: plain HTTP
    if package and importlib.util.find_spec(package) is None:
        raise BackendUnavailable(f"llm backend '{cfg.llm.backend}' needs the {package} package, which is not "
                                 f"installed here (pip install {package}); nothing was submitted")


def run(shard: Shard, cfg: PipelineConfig) -> dict[str, Any]:
    settings = cfg.stages.qa
    prompts = load_prompts(settings.prompts)
    with shard.read("context") as reader:
        figures = list(reader)
    progress = _progress_path(shard, cfg)
    done: dict[int, list[dict]] = {item["figure_index"]: item["records"] for item in read_jsonl_log(progress)}
    todo = [f for f in figures if f["figure_index"] not in done]
    writer = SampleWriter(prompts, settings, make_backend(cfg.llm, cfg.work_dir) if todo else None,
                          {"prompt_version": prompts.version, "generator": f"{cfg.llm.backend}:{cfg.llm.model}",
                           "config_hash": config_hash(cfg)})
    started = time.perf_counter()
    batches = range(0, len(todo), cfg.llm.batch_size)
    for start in tqdm(batches, desc=f"qa {shard.index}", unit="batch", mininterval=5, disable=not todo):
        samples = writer.batch(todo[start : start + cfg.llm.batch_size])
        _save(progress, samples)
        done.update(samples)
    kept = 0
    for figure in figures:
        for sample in sorted(done.get(figure["figure_index"], []), key=lambda s: settings.tasks.index(s["task"])):
            shard.write(sample)
            kept += sample["kept"]
    return _stats(writer.counts, len(figures), len(figures) - len(todo), kept, time.perf_counter() - started)


def _stats(counts, figures: int, resumed: int, kept: int, seconds: float) -> dict[str, Any]:
    generated = counts.prompts > 0
    return {"figures": figures, "resumed": resumed, "prompts": counts.prompts,
            "completion_tokens": counts.completion_tokens, "malformed": counts.malformed, "filtered": counts.filtered,
            "samples_kept": kept, "seconds": round(seconds, 2),
            "prompts_per_s": round(counts.prompts / seconds, 3) if generated else None,
            "tokens_per_s": round(counts.completion_tokens / seconds, 1) if generated else None}
