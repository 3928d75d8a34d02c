"""The typed training config (`ldrt-hpc train --config configs/train/<model>.yaml`): model, data, the two phases,
DeepSpeed, checkpoints and the cluster resources of the training job."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from ..config import Strict, _resolve_paths, load_model


class ModelConfig(Strict):
    """Which model is trained: a local checkpoint folder, or a flavour built in-process."""

    path: Path | None = None
    """A Hugging Face-format LLaVA v1.5 (`llava`) or v1.6 (`llava_next`) checkpoint folder; no hub downloads."""
    flavour: Literal["debug", "smol"] | None = None
    """A model built in-process instead of `path`: 'debug' (~200k parameters) or 'smol' (SmolLM2-135M inside)."""
    kind: Literal["llava", "llava_next"] = "llava"
    """The architecture of a flavour (a checkpoint's own config.json says which it is)."""
    attention: Literal["auto", "flash_attention_2", "sdpa", "eager"] = "auto"
    """Attention kernel; 'auto' uses FlashAttention-2 when the flash_attn package is importable (and a GPU is
    there), else PyTorch SDPA; the choice is logged."""

    @model_validator(mode="after")
    def _one_source(self) -> ModelConfig:
        if (self.path is None) == (self.flavour is None):
            raise ValueError("set exactly one of model.path (a checkpoint folder) and model.flavour (debug, smol)")
        return self


class DataConfig(Strict):
    """Where the instruction data comes from: the pipeline's HDF5 shards, or LLaVA-format JSON + images."""

    work_dir: Path | None = None
    """A pipeline work directory: training reads its `qa` shards and the figure images of its `figures` shards
    directly (no loose image files); the eval papers of the 97/3 split are left out."""
    llava_json: Path | None = None
    """Instead of `work_dir`: a LLaVA-format JSON list ({"image", "conversations"}), e.g. LLaVA-Med data."""
    image_folder: Path | None = None
    """Folder the `image` entries of `llava_json` are relative to (default: the JSON file's folder)."""
    eval_share: float = Field(0.03, ge=0, lt=1)
    """Share of papers held out for evaluation (the same split as `ldrt-hpc export llava`)."""
    split_seed: int = 0
    """Seed of the train/eval split of papers."""
    max_samples: int | None = Field(None, ge=1)
    """Use only the first N training samples (quick runs)."""
    max_length: int = Field(2048, ge=64)
    """Tokens per sample; longer answers are truncated (prompt and image tokens are never cut)."""
    group_by_length: bool = False
    """Batch samples of similar length together (less padding); order stays deterministic."""
    num_workers: int = Field(2, ge=0)
    """DataLoader worker processes per rank (each opens the HDF5 files itself, lazily)."""

    @model_validator(mode="after")
    def _one_source(self) -> DataConfig:
        if (self.work_dir is None) == (self.llava_json is None):
            raise ValueError("set exactly one of data.work_dir (pipeline shards) and data.llava_json (LLaVA JSON)")
        return self


class LoraSettings(Strict):
    """LoRA adapters of the finetune phase."""

    r: int = Field(128, ge=1)
    """Rank of the LoRA matrices."""
    alpha: int = Field(256, ge=1)
    """LoRA scaling numerator (scale = alpha / r)."""
    dropout: float = Field(0.05, ge=0, lt=1)
    """Dropout on the LoRA input."""
    target_modules: list[str] = Field(default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj",
                                                               "up_proj", "down_proj"])
    """Projection names in the language model's attention and MLP blocks that get adapters."""
    vision_tower: bool = False
    """Also put adapters on the vision tower's attention and MLP layers (the paper did both)."""


class PhaseConfig(Strict):
    """One training phase: `align` trains only the projector; `finetune` trains LoRA adapters + the projector."""

    epochs: float = Field(1.0, gt=0)
    """Passes over the training data."""
    max_steps: int | None = Field(None, ge=1)
    """Stop after this many optimizer steps (overrides epochs; quick runs and tests)."""
    lr: float = Field(2e-4, gt=0)
    """Peak learning rate of the LoRA adapters (finetune) or of the projector (align)."""
    projector_lr: float = Field(2e-5, gt=0)
    """Peak learning rate of the projector in the finetune phase (its own optimizer group)."""
    weight_decay: float = Field(0.0, ge=0)
    """AdamW weight decay."""
    warmup_ratio: float = Field(0.03, ge=0, lt=1)
    """Share of the steps with linear warm-up before the cosine decay."""
    global_batch_size: int = Field(16, ge=1)
    """Samples per optimizer step = per_device_batch_size x ranks x accumulation (checked at start)."""
    per_device_batch_size: int = Field(4, ge=1)
    """Samples per rank per forward pass."""
    max_grad_norm: float = Field(1.0, gt=0)
    """Gradient clipping."""
    lora: LoraSettings | None = None
    """LoRA settings (finetune only; default: r=128, alpha=256, dropout 0.05)."""


class CheckpointConfig(Strict):
    """Checkpoints for resume after a time limit, preemption or failure."""

    every_steps: int = Field(100, ge=1)
    """Save a full checkpoint (ZeRO shards, optimizer, scheduler, data position, RNG) every N optimizer steps."""
    keep: int = Field(2, ge=1)
    """Complete checkpoints kept (older ones are deleted after a newer one is complete)."""
    stop_before_limit_s: int = Field(600, ge=0)
    """When $LDRT_TRAIN_DEADLINE (epoch seconds, set by the job scripts) is this close, save and stop for a
    requeue; the warning signal (USR2) or SIGTERM does the same at any time."""


class TrainConfig(Strict):
    """`ldrt-hpc train`: LLaVA projector alignment and LoRA instruction tuning with DeepSpeed ZeRO-3."""

    output_dir: Path
    """Everything the run writes: <phase>/checkpoints, <phase>/adapter, projector, merged model, log CSV, plot."""
    model: ModelConfig
    """The model to train."""
    data: DataConfig
    """The instruction data."""
    phases: list[Literal["align", "finetune"]] = Field(default_factory=lambda: ["align", "finetune"], min_length=1)
    """Phases run in order; finetune starts from the projector of align when both run."""
    align: PhaseConfig = Field(default_factory=lambda: PhaseConfig(lr=1e-3, warmup_ratio=0.03))
    """Settings of the align phase (LLaVA-1.5 pre-training uses lr 1e-3)."""
    finetune: PhaseConfig = Field(default_factory=lambda: PhaseConfig(lora=LoraSettings()))
    """Settings of the finetune phase (the paper: LoRA r=128 alpha=256, lr 2e-4, projector 2e-5)."""
    precision: Literal["bf16", "fp32"] = "bf16"
    """Training precision (fp16 is not offered: it is refused on CPU and needs loss scaling)."""
    zero_stage: Literal[0, 1, 2, 3] = 3
    """DeepSpeed ZeRO stage."""
    gradient_checkpointing: bool = True
    """Recompute activations in the backward pass (less memory, ~30 % more compute)."""
    checkpoint: CheckpointConfig = Field(default_factory=CheckpointConfig)
    """Checkpoint cadence and the stop before the time limit."""
    seed: int = 0
    """Seed of the model flavours, data order and dropout."""
    log_every: int = Field(1, ge=1)
    """Log a row of the training CSV every N optimizer steps."""
    merge: bool = True
    """After finetune, also save a merged plain Hugging Face model (adapters folded in)."""
    resource_class: str = "multinode_gpu"
    """Resource class of the cluster profile the job asks for (nodes, GPUs = ranks per node, time)."""
    resources: dict[str, Any] = Field(default_factory=dict)
    """Changes to that resource class for this run, e.g. {nodes: 1, time_min: 60}."""

    @model_validator(mode="after")
    def _phases(self) -> TrainConfig:
        if len(set(self.phases)) != len(self.phases) or (self.phases == ["finetune", "align"]):
            raise ValueError("phases: each phase once, align before finetune")
        return self

    def phase(self, name: str) -> PhaseConfig:
        settings = getattr(self, name)
        if name == "finetune" and settings.lora is None:
            settings = settings.model_copy(update={"lora": LoraSettings()})
        return settings


def load_train(path: str | os.PathLike) -> TrainConfig:
    """Load a training config; relative paths resolve against the config file's folder."""
    path = Path(path)
    config = load_model(TrainConfig, path)
    return _resolve_paths(config, path.resolve().parent)


def freeze_train(config: TrainConfig, write: bool = True) -> Path:
    """The resolved config under OUTPUT/_configs/<hash>.yaml: the job receives this path, never the object."""
    from ..config import freeze_into

    return freeze_into(config, config.output_dir / "_configs", "python -m ldrt_hpc.train --config", write)
