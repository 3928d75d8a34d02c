"""Answering eval items with a LLaVA model (transformers): the same chat format as training, left-padded batches,
sampling at the configured temperature, token counts and a finish reason per answer (a truncated answer says so).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

from ..train.models import IMAGE_TOKEN, load_checkpoint, render_chat

log = logging.getLogger(__name__)


@dataclass
class Answer:
    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str
    """'stop' (the model ended its answer) or 'length' (cut at max_new_tokens: truncated)."""
    seconds: float
    """Wall time of the batch, shared out evenly over its items."""


class LlavaAnswerer:
    """One model folder, loaded once per task; bf16 on a GPU, float32 on a CPU."""

    def __init__(self, path: Path, attention: str = "auto"):
        import torch

        from ..llm import attention_kernel

        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        dtype = torch.bfloat16 if self.device == "cuda" else torch.float32
        self.attention = attention_kernel(attention)
        loaded = load_checkpoint(path, dtype=dtype, attention=self.attention)
        self.model = loaded.model.to(self.device).eval()
        self.processor = loaded.processor
        self.processor.tokenizer.padding_side = "left"  # generation continues every row at the same position
        log.info("%s: %s attention on %s", path, self.attention, self.device)

    def answer(self, items: list[tuple[object, str]], temperature: float, max_new_tokens: int,
               seed: int) -> list[Answer]:
        """Answers to (image, question) pairs, generated as one batch."""
        import torch

        prompts = [render_chat(self.processor, [{"role": "user", "content": f"{IMAGE_TOKEN}\n{question}"}],
                               add_generation_prompt=True) for _, question in items]
        inputs = self.processor(text=prompts, images=[image for image, _ in items], return_tensors="pt",
                                padding=True).to(self.device)
        torch.manual_seed(seed)
        started = time.perf_counter()
        sampling = {"do_sample": True, "temperature": temperature} if temperature > 0 else {"do_sample": False}
        with torch.no_grad():
            output = self.model.generate(**inputs, max_new_tokens=max_new_tokens, **sampling,
                                         pad_token_id=self.processor.tokenizer.pad_token_id)
        seconds = (time.perf_counter() - started) / len(items)
        width = inputs["input_ids"].shape[1]
        return [self._answer(row[width:], int(mask.sum()), max_new_tokens, seconds)
                for row, mask in zip(output, inputs["attention_mask"])]

    def _answer(self, generated, prompt_tokens: int, max_new_tokens: int, seconds: float) -> Answer:
        tokenizer = self.processor.tokenizer
        ids = generated.tolist()
        ended = tokenizer.eos_token_id in ids
        if ended:
            ids = ids[: ids.index(tokenizer.eos_token_id)]
        ids = [t for t in ids if t != tokenizer.pad_token_id]
        finish = "stop" if ended or len(ids) < max_new_tokens else "length"
        return Answer(tokenizer.decode(ids, skip_special_tokens=True).strip(), prompt_tokens, len(ids), finish, seconds)
