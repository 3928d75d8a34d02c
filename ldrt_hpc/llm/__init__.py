"""One interface over three LLM backends: `generate(prompts, sampling) -> outputs`.

- `transformers`: a local checkpoint (never a hub download), chat template from the tokenizer, batched
  generation with left padding; bf16 and `device_map="auto"` on GPU; FlashAttention-2 when importable, else SDPA.
- `vllm`: the offline engine with tensor parallelism over the node's GPUs (when vllm is importable).
- `openai`: any OpenAI-compatible chat endpoint, key from an environment variable, retries with backoff.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from ..config import LLMConfig
from ..errors import BackendUnavailable  # noqa: F401  (backends raise it)

Messages = list[dict[str, str]]


@dataclass(frozen=True)
class Sampling:
    temperature: float = 0.2
    top_p: float = 1.0
    max_tokens: int = 1024
    seed: int | None = None


@dataclass
class Output:
    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str
    """'stop' (end of sequence) or 'length' (max_tokens reached)."""


class Backend(Protocol):
    name: str

    def generate(self, prompts: list[Messages], sampling: Sampling) -> list[Output]: ...


def attention_kernel(requested: str = "auto") -> str:
    """The attention implementation for transformers models: FlashAttention-2 when asked for, or ('auto') when the
    flash_attn package is importable and a GPU is there; otherwise PyTorch SDPA."""
    import importlib.util

    import torch

    if requested != "auto":
        return requested
    if importlib.util.find_spec("flash_attn") is not None and torch.cuda.is_available():
        return "flash_attention_2"
    return "sdpa"


def make_backend(cfg: LLMConfig, work_dir=None) -> Backend:
    if cfg.backend == "openai":
        from .openai import OpenAIBackend

        return OpenAIBackend(cfg)
    if cfg.backend == "vllm":
        from .vllm import VLLMBackend

        return VLLMBackend(cfg)
    from .hf import TransformersBackend

    return TransformersBackend(cfg, work_dir)
