"""What a phase leaves behind, written by rank 0 from the consolidated (ZeRO-3-gathered) state dict: the projector
weights, the LoRA adapter (peft format) and a merged plain Hugging Face model that loads with `from_pretrained`.

Each file is checked after writing: a known ZeRO-3 failure saves adapters whose tensors are empty."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from .models import PROJECTOR, load_checkpoint


class EmptyWeights(RuntimeError):
    """A saved weights file holds no tensors or empty ones (ZeRO-3 parameters saved without gathering)."""


def check_weights(path: Path, expected: int | None = None) -> int:
    """Tensors in a safetensors file, all non-empty; raises EmptyWeights otherwise."""
    from safetensors import safe_open

    with safe_open(str(path), "pt") as handle:
        names = list(handle.keys())
        empty = [n for n in names if not all(handle.get_slice(n).get_shape() or [0])]  # [] (a scalar) or a 0 dim
    if not names or empty or (expected is not None and len(names) != expected):
        raise EmptyWeights(f"{path}: {len(names)} tensors (expected {expected}), empty: {empty[:5]}")
    return len(names)


def _replace_dir(tmp: Path, target: Path) -> None:
    shutil.rmtree(target, ignore_errors=True)
    tmp.rename(target)


def projector_state(full_state: dict[str, Any]) -> dict[str, Any]:
    marker = f"{PROJECTOR}."
    return {key.split(marker, 1)[1]: value.detach().clone().contiguous()
            for key, value in full_state.items() if marker in key}


def write_outputs(full_state: dict[str, Any], module, cfg, phase_name: str, processor, base_dir: Path) -> dict[str, Any]:
    from safetensors.torch import save_file

    folder = cfg.output_dir / phase_name
    projector = projector_state(full_state)
    tmp = folder / ".projector.safetensors.tmp"
    save_file(projector, str(tmp))
    tmp.rename(folder / "projector.safetensors")
    outputs: dict[str, Any] = {"projector_tensors": check_weights(folder / "projector.safetensors", len(projector))}
    if phase_name != "finetune":
        return outputs
    lora_keys = [key for key in full_state if "lora_" in key]
    tmp = folder / ".adapter.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    module.save_pretrained(tmp, state_dict=full_state)
    _replace_dir(tmp, folder / "adapter")
    outputs["adapter_tensors"] = check_weights(folder / "adapter" / "adapter_model.safetensors", len(lora_keys))
    if cfg.merge:
        outputs["merged"] = str(merge(folder, base_dir, processor, cfg.precision))
    return outputs


def merge(folder: Path, base_dir: Path, processor, precision: str) -> Path:
    """Base model + trained projector + adapters folded in (`merge_and_unload`): a plain LLaVA folder."""
    import torch
    from peft import PeftModel
    from safetensors.torch import load_file

    base = load_checkpoint(base_dir, dtype=torch.float32, attention="sdpa").model
    getattr(base.model, PROJECTOR).load_state_dict(load_file(folder / "projector.safetensors"))
    merged = PeftModel.from_pretrained(base, folder / "adapter").merge_and_unload()
    if precision == "bf16":
        merged = merged.to(torch.bfloat16)
    tmp = folder / ".merged.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    merged.save_pretrained(tmp)
    processor.save_pretrained(tmp)
    _replace_dir(tmp, folder / "merged")
    return folder / "merged"
