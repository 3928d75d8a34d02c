"""The `vllm` backend: the offline engine, tensor parallel over the GPUs of one node (GPU nodes only)."""

from __future__ import annotations

from ..config import LLMConfig
from . import BackendUnavailable, Messages, Output, Sampling


class VLLMBackend:
    name = "vllm"

    def __init__(self, cfg: LLMConfig):
        try:
            import vllm
        except ImportError:
            raise BackendUnavailable("llm backend 'vllm' needs the vllm package (GPU nodes: pip install vllm); "
                                     "it is not installed here — use 'transformers' or 'openai'") from None
        import torch

        parallel = cfg.tensor_parallel_size or max(1, torch.cuda.device_count())
        self.engine = vllm.LLM(model=cfg.model, tensor_parallel_size=parallel, dtype="bfloat16")
        self.vllm = vllm

    def generate(self, prompts: list[Messages], sampling: Sampling) -> list[Output]:  # pragma: no cover - GPU only
        params = self.vllm.SamplingParams(temperature=sampling.temperature, top_p=sampling.top_p,
                                          max_tokens=sampling.max_tokens, seed=sampling.seed)
        results = self.engine.chat(prompts, params, use_tqdm=True)
        return [Output(r.outputs[0].text, len(r.prompt_token_ids), len(r.outputs[0].token_ids),
                       r.outputs[0].finish_reason or "stop") for r in results]
