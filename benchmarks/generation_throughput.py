#!/usr/bin/env python3
"""Generation throughput of the transformers backend: prompts/s and tokens/s for batch sizes 1, 8, 32.
Prints numbers; asserts nothing. CPU: the embedded SmolLM2-135M-Instruct. With --random-7b on a GPU: a randomly
initialised 7B-shaped Llama in bf16 (no download).

    python benchmarks/generation_throughput.py [--prompts 32] [--max-tokens 32] [--batch-sizes 1 8 32]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ldrt_hpc.config import LLMConfig  # noqa: E402
from ldrt_hpc.llm import Sampling  # noqa: E402

TOPICS = ["tumour volume after 0.5 Gy", "survival curves after low-dose whole-lung irradiation",
          "gamma-H2AX foci counts versus dose", "cytokine release by macrophages after 0.3 Gy"]


def prompts(n: int) -> list[list[dict[str, str]]]:
    return [[{"role": "system", "content": "You are a biomedical assistant."},
             {"role": "user", "content": f"Describe a figure showing {TOPICS[i % len(TOPICS)]} (variant {i})."}]
            for i in range(n)]


def random_7b_backend(batch_size: int):  # pragma: no cover - GPU sessions only
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from ldrt_hpc.llm.hf import TransformersBackend, convert_embedded

    tokenizer_dir = convert_embedded(Path(tempfile.gettempdir()) / "ldrt-models")
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prompts", type=int, default=32)
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--random-7b", action="store_true", help="GPU: a random-init 7B-shaped model in bf16")
    args = parser.parse_args()
    from ldrt_hpc.llm import make_backend

    cache = Path(tempfile.gettempdir()) / "ldrt-models"
    backend = random_7b_backend(1) if args.random_7b else make_backend(LLMConfig(cache_dir=cache))
    work = prompts(args.prompts)
    # greedy with a fixed length budget; every batch size does the same work
    sampling = Sampling(temperature=0.0, max_tokens=args.max_tokens)
    backend.generate(work[:2], sampling)  # warm-up
    baseline = None
    for batch_size in args.batch_sizes:
        backend.cfg = backend.cfg.model_copy(update={"batch_size": batch_size})
        started = time.perf_counter()
        outputs = backend.generate(work, sampling)
        seconds = time.perf_counter() - started
        tokens = sum(o.completion_tokens for o in outputs)
        rate = len(work) / seconds
        baseline = baseline or rate
        print(f"batch {batch_size:>3}: {rate:6.2f} prompts/s, {tokens / seconds:7.1f} tokens/s "
              f"({seconds:.1f} s for {len(work)} prompts, {tokens} tokens), {rate / baseline:.1f}x batch 1")


if __name__ == "__main__":
    main()
