#!/usr/bin/env python3
"""Generation throughput of the project's generation workloads, batch 1 against batched, on one model.
Prints numbers; asserts nothing.

Workloads (--workload):
- qa (default): short QA-generation prompts through an LLM backend (ldrt_hpc.llm); prompts/s and tokens/s.
- judge: the evaluation's judge prompts (ldrt_hpc.evaluate.judging: LLaVA's review protocol in both orders, or
  single-answer scoring) on synthetic items: caption ~60 words, 3-5 context sentences, a question, a reference
  answer ~120 words and a model answer ~150 words (seeded). Long prefill, judge-sized replies (--max-tokens,
  256 by default); prompts/s, prefill (prompt) tokens/s and completion tokens/s.
- answer: LLaVA answering (ldrt_hpc.evaluate.vlm.LlavaAnswerer) of random figure-sized RGB images; the model is
  --model-path, or by default the `debug` flavour saved to a temporary folder; answers/s and tokens/s.

CPU: the embedded SmolLM2-135M-Instruct (qa, judge; converted once into --cache-dir, ~30 s). With --random-7b on
a GPU: a randomly initialised 7B-shaped Llama in bf16 (no download; qa, judge).

On a GPU, compare on the same model: batch-1 transformers, batched transformers and vLLM, e.g.
    python benchmarks/generation_throughput.py --workload judge --model /path/to/Llama-3.1-70B-Instruct \\
        --backend transformers --batch-sizes 1,8,32
    python benchmarks/generation_throughput.py --workload judge --model /path/to/Llama-3.1-70B-Instruct \\
        --backend vllm --batch-sizes 1,256
Anchor: vLLM serves Llama-3.1-70B with TP4 on 4xH100 at 2.2-3.5k output tokens/s (LambdaLabs benchmark).

    python benchmarks/generation_throughput.py [--workload qa|answer|judge] [--prompts N] [--max-tokens N]
        [--batch-sizes 1,8 | 1 8 32] [--model PATH] [--backend transformers|vllm|openai] [--model-path DIR]
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ldrt_hpc.config import LLMConfig  # noqa: E402
from ldrt_hpc.llm import Sampling  # noqa: E402

TOPICS = ["tumour volume after 0.5 Gy", "survival curves after low-dose whole-lung irradiation",
          "gamma-H2AX foci counts versus dose", "cytokine release by macrophages after 0.3 Gy"]
ANCHOR = ("anchor: vLLM serves Llama-3.1-70B with TP4 on 4xH100 at 2.2-3.5k output tokens/s (LambdaLabs benchmark); "
          "on a GPU compare batch-1 transformers, batched transformers and vLLM on the same model")
DEFAULTS = {  # workload: (prompts, max new tokens, batch sizes)
    "qa": (32, 32, [1, 8, 32]),
    "judge": (16, 256, [1, 8]),
    "answer": (16, 64, [1, 8]),
}
FIGURE_SIZES = [(600, 400), (800, 600), (1000, 700), (640, 480)]
"""Width x height of the random images: the size range of cropped paper figures."""


def prompts(n: int) -> list[list[dict[str, str]]]:
    return [[{"role": "system", "content": "You are a biomedical assistant."},
             {"role": "user", "content": f"Describe a figure showing {TOPICS[i % len(TOPICS)]} (variant {i})."}]
            for i in range(n)]


# --------------------------------------------------------------------------------------------------------------
# synthetic judge items: sentences from domain phrases, so that tokenisation looks like the real texts

SUBJECTS = ["Tumour volume", "The fraction of gamma-H2AX positive nuclei", "IL-6 release by alveolar macrophages",
            "Median survival", "The Ashcroft lung fibrosis score", "CD8+ T-cell infiltration", "Body weight",
            "TGF-beta expression in lung tissue", "The number of 53BP1 foci per nucleus", "Clonogenic survival"]
VERBS = ["decreased", "increased", "did not change", "peaked", "recovered", "was reduced by about 40 %"]
CONDITIONS = ["after 0.5 Gy whole-lung irradiation", "at 24 h after a single dose of 0.3 Gy",
              "in C57BL/6 mice treated with 1 Gy", "compared with sham-irradiated controls",
              "over 14 days of follow-up", "in patients with COVID-19 pneumonia after low-dose radiotherapy"]
DETAILS = ["(n = 6 per group; mean ± SD)", "with p < 0.05 by two-way ANOVA", "as the error bars in panel B show",
           "in both cohorts", "relative to the 0 Gy baseline", "on Kaplan-Meier analysis (log-rank test)"]
QUESTIONS = ["What does the figure show about the effect of low-dose irradiation?",
             "How do the treated groups differ from the controls, and is the difference significant?",
             "What trend over time does panel B show, and what could explain it?",
             "Describe the figure in detail."]


def sentence(rng: random.Random) -> str:
    return f"{rng.choice(SUBJECTS)} {rng.choice(VERBS)} {rng.choice(CONDITIONS)} {rng.choice(DETAILS)}."


def text_of(rng: random.Random, words: int) -> str:
    """Whole sentences, as close to `words` words as they come."""
    parts: list[str] = []
    total = 0
    while total < words:
        next_one = sentence(rng)
        length = len(next_one.split())
        if parts and total + length - words > words - total:  # closer to the target without it
            break
        parts.append(next_one)
        total += length
    return " ".join(parts)


def judge_items(n: int, seed: int):
    from ldrt_hpc.evaluate.judging import JudgeItem

    rng = random.Random(seed)
    return [JudgeItem(sample_id=f"synthetic-{i}", task=("description", "reasoning")[i % 2],
                      caption=f"Figure {i % 6 + 1}. " + text_of(rng, 60),
                      context="\n".join(sentence(rng) for _ in range(rng.randint(3, 5))),
                      question=rng.choice(QUESTIONS), reference=text_of(rng, 120), answer=text_of(rng, 150))
            for i in range(n)]


def judge_prompts(n: int, protocol: str, seed: int) -> list[list[dict[str, str]]]:
    """n judge conversations; review: every item in both orders (position-bias control), as the judge stage."""
    from ldrt_hpc.evaluate.judging import load_judge_prompts, review_messages, single_messages

    texts = load_judge_prompts()
    if protocol == "single":
        return [single_messages(texts, item) for item in judge_items(n, seed)]
    items = judge_items((n + 1) // 2, seed)
    return [review_messages(texts, item, swapped) for item in items for swapped in (False, True)][:n]


# --------------------------------------------------------------------------------------------------------------
# backends and timing


def random_7b_backend(batch_size: int, cache: Path):  # pragma: no cover - GPU sessions only
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from ldrt_hpc.llm.hf import TransformersBackend, convert_embedded

    tokenizer_dir = convert_embedded(cache)
    config = LlamaConfig(hidden_size=4096, intermediate_size=11008, num_hidden_layers=32, num_attention_heads=32,
                         num_key_value_heads=32, vocab_size=49152, max_position_embeddings=4096)
    backend = TransformersBackend.__new__(TransformersBackend)
    backend.cfg = LLMConfig(batch_size=batch_size)
    backend.torch = torch
    backend.tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    backend.tokenizer.padding_side = "left"
    with torch.device("cuda"):
        backend.model = LlamaForCausalLM(config).to(torch.bfloat16).eval()
    return backend


@dataclass
class Run:
    """One timed pass over the whole workload at one batch size."""

    batch_size: int
    seconds: float
    items: int
    prompt_tokens: int
    completion_tokens: int
    cut: int
    """Replies that hit the token budget (finish_reason 'length')."""


def chunks(items: list, size: int) -> list[list]:
    return [items[start : start + size] for start in range(0, len(items), size)]


def time_llm(backend, work: list, sampling: Sampling, batch_size: int) -> Run:
    # the script does the batching, so vLLM (which batches whatever one call gets) runs batch 1 too
    if hasattr(backend, "cfg"):
        backend.cfg = backend.cfg.model_copy(update={"batch_size": batch_size})
    started = time.perf_counter()
    outputs = [o for batch in chunks(work, batch_size) for o in backend.generate(batch, sampling)]
    return summarise(batch_size, time.perf_counter() - started, outputs)


def summarise(batch_size: int, seconds: float, outputs: list) -> Run:
    return Run(batch_size, seconds, len(outputs), sum(o.prompt_tokens for o in outputs),
               sum(o.completion_tokens for o in outputs), sum(o.finish_reason == "length" for o in outputs))


def report(run: Run, baseline: float, unit: str) -> None:
    rate = run.items / run.seconds
    print(f"batch {run.batch_size:>3}: {rate:6.2f} {unit}/s, {run.completion_tokens / run.seconds:7.1f} tokens/s, "
          f"prefill {run.prompt_tokens / run.seconds:8.1f} tokens/s ({run.seconds:.1f} s for {run.items} {unit}, "
          f"{run.completion_tokens} tokens, {run.prompt_tokens} prompt tokens, {run.cut} cut at max tokens), "
          f"{rate / baseline:.1f}x batch 1", flush=True)


def run_llm(args) -> None:
    from ldrt_hpc.llm import make_backend

    if args.random_7b:
        backend = random_7b_backend(1, args.cache_dir)
    else:
        backend = make_backend(LLMConfig(backend=args.backend, model=args.model, cache_dir=args.cache_dir))
    work = prompts(args.prompts) if args.workload == "qa" else judge_prompts(args.prompts, args.protocol, args.seed)
    # greedy with a fixed length budget; every batch size does the same work
    sampling = Sampling(temperature=0.0, max_tokens=args.max_tokens, seed=args.seed)
    backend.generate(work[:2], sampling)  # warm-up
    baseline = None
    for batch_size in args.batch_sizes:
        run = time_llm(backend, work, sampling, batch_size)
        baseline = baseline or run.items / run.seconds
        report(run, baseline, "prompts")


# --------------------------------------------------------------------------------------------------------------
# LLaVA answering


def figure_images(n: int, seed: int) -> list:
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    return [Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), "RGB")
            for w, h in (FIGURE_SIZES[i % len(FIGURE_SIZES)] for i in range(n))]


def debug_llava(folder: Path) -> Path:
    from ldrt_hpc.train.models import build_debug

    loaded = build_debug("llava")
    loaded.model.save_pretrained(folder)
    loaded.processor.save_pretrained(folder)
    return folder


def time_answers(answerer, items: list, args, batch_size: int) -> Run:
    started = time.perf_counter()
    answers = [a for batch in chunks(items, batch_size)
               for a in answerer.answer(batch, temperature=0.0, max_new_tokens=args.max_tokens, seed=args.seed)]
    # wall time, image preprocessing included (Answer.seconds counts generate() alone)
    return summarise(batch_size, time.perf_counter() - started, answers)


def run_answer(args) -> None:
    from ldrt_hpc.evaluate.vlm import LlavaAnswerer

    with tempfile.TemporaryDirectory(prefix="ldrt-llava-") as scratch:
        path = args.model_path or debug_llava(Path(scratch))
        answerer = LlavaAnswerer(path, args.attention)
        questions = [QUESTIONS[i % len(QUESTIONS)] for i in range(args.prompts)]
        items = list(zip(figure_images(args.prompts, args.seed), questions))
        print(f"model {path} on {answerer.device}, {answerer.attention} attention", flush=True)
        answerer.answer(items[:2], temperature=0.0, max_new_tokens=args.max_tokens, seed=args.seed)  # warm-up
        baseline = None
        for batch_size in args.batch_sizes:
            run = time_answers(answerer, items, args, batch_size)
            baseline = baseline or run.items / run.seconds
            report(run, baseline, "answers")


# --------------------------------------------------------------------------------------------------------------


def batch_sizes(values: list[str]) -> list[int]:
    """'1,8,32' and '1 8 32' alike (the old CLI took the space-separated form)."""
    return [int(v) for value in values for v in value.split(",") if v]


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workload", choices=sorted(DEFAULTS), default="qa")
    parser.add_argument("--prompts", type=int, help="prompts (answers) per pass; default per workload (qa 32)")
    parser.add_argument("--max-tokens", type=int, help="new tokens per reply; default qa 32, judge 256, answer 64")
    parser.add_argument("--batch-sizes", nargs="+", help="e.g. 1,8 or 1 8 32; default qa 1,8,32, else 1,8")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--backend", choices=["transformers", "vllm", "openai"], default="transformers")
    parser.add_argument("--model", default="embedded:smollm2-135m-instruct", help="LLM checkpoint folder (qa, judge)")
    parser.add_argument("--cache-dir", type=Path, default=Path(tempfile.gettempdir()) / "ldrt-models",
                        help="where the embedded model is converted once")
    parser.add_argument("--protocol", choices=["review", "single"], default="review", help="judge prompts")
    parser.add_argument("--model-path", type=Path, help="LLaVA folder (answer); default the debug flavour")
    parser.add_argument("--attention", default="auto", help="answer: auto, sdpa, eager or flash_attention_2")
    parser.add_argument("--random-7b", action="store_true", help="GPU: a random-init 7B-shaped model in bf16")
    args = parser.parse_args()
    count, tokens, sizes = DEFAULTS[args.workload]
    args.prompts = args.prompts or count
    args.max_tokens = args.max_tokens or tokens
    args.batch_sizes = batch_sizes(args.batch_sizes) if args.batch_sizes else sizes
    return args


def main() -> None:
    args = parse_args()
    if args.workload == "judge":
        print(ANCHOR, flush=True)
    if args.workload == "answer":
        run_answer(args)
    else:
        run_llm(args)


if __name__ == "__main__":
    main()
