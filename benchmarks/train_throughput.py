#!/usr/bin/env python3
"""Fine-tuning throughput of the LoRA recipe on one device: samples/s, tokens/s, MFU and peak memory. Prints
numbers; asserts nothing.

The model is a random-init LLaVA-1.5 (no download): a CLIP ViT-L/14-336 vision tower (576 image tokens), the
two-layer MLP projector and a Llama language model of 7B or 13B shape (`--shape debug`: the tiny `debug` flavour of
ldrt_hpc.train.models). As in the recipe's `finetune` phase: LoRA r=128 α=256 on the language model's projections
(`lora_pattern`), the projector trainable, everything else frozen, non-reentrant gradient checkpointing, the
attention kernel of `attention_kernel("auto")`, bf16 on a GPU. Random token ids and pixels, `--seq` tokens per
sample (576 image tokens + text), AdamW, a plain single-process loop.

It measures per-GPU compute efficiency: no DeepSpeed, so ZeRO-3's gathers and reduce-scatters are not included
(and the weights and AdamW states of the trainable parameters are bf16 here, where DeepSpeed keeps fp32 master
copies: more memory there, the same compute).

MFU = model FLOPs per second / the device's peak dense bf16 FLOPs. Model FLOPs per sample, the usual convention
(every weight forward + backward: 3 × forward), gradient-checkpointing recompute not counted:
    forward = 2·N_lm·T + 4·L·h·T² (language model: N_lm its weights without the input embedding, lm_head and LoRA
              included; attention scores and values over T tokens counted in full, as Megatron/PaLM do)
            + 2·N_vision·P + 4·L_v·h_v·P² (vision tower over P = 577 patches) + 2·N_projector·576
    model FLOPs = 3 × forward
`needed-work MFU` counts only what this recipe must compute: the frozen tower forward only (nothing upstream of it
learns), frozen language-model weights forward + input gradients (2 × forward), LoRA and projector 3 × forward.

Anchors: the official LLaVA-1.5-13B full fine-tune runs ≈ 1.15 samples/s per A100; goal ≥ 40 % MFU on an H100
(≈ 4 samples/s per GPU for 13B by the issue's estimate; by the formula above a 13B sample of 900 tokens is 75 TFLOP,
so 40 % of an H100 SXM is 5.2 samples/s).

    python benchmarks/train_throughput.py --shape debug                       # CPU, seconds
    python benchmarks/train_throughput.py --shape 7b --layers 1 --seq 640 --steps 2 --warmup 1   # CPU smoke test
    python benchmarks/train_throughput.py --shape 13b                          # one GPU
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ldrt_hpc.train.config import LoraSettings  # noqa: E402
from ldrt_hpc.train.models import PROJECTOR, VISION_TOWER, build_debug  # noqa: E402
from ldrt_hpc.llm import attention_kernel  # noqa: E402
from ldrt_hpc.train.recipe import lora_pattern  # noqa: E402

LLAMA_SHAPES = {
    "7b": dict(hidden_size=4096, num_hidden_layers=32, num_attention_heads=32, intermediate_size=11008),
    "13b": dict(hidden_size=5120, num_hidden_layers=40, num_attention_heads=40, intermediate_size=13824),
}
CLIP_L_336 = dict(hidden_size=1024, intermediate_size=4096, num_hidden_layers=24, num_attention_heads=16,
                  image_size=336, patch_size=14, projection_dim=768)
VOCAB = 32064
"""llava-hf's LLaVA-1.5 vocabulary: Llama's 32000 + `<image>` (id 32000) padded to a multiple of 64."""
IMAGE_TOKEN_ID = 32000
PEAK_BF16 = [("H200", 989e12), ("H100 PCIe", 756e12), ("H100 NVL", 835e12), ("H100", 989e12), ("A100", 312e12)]
"""Dense bf16 peaks by device-name substring, the first match wins (so PCIe/NVL before the SXM default)."""


@dataclass
class Parts:
    """Parameter counts and shapes the FLOP formula needs."""

    lm_frozen: int
    lm_trainable: int
    vision: int
    projector: int
    layers: int
    hidden: int
    vision_layers: int
    vision_hidden: int
    patches: int
    """Vision tower tokens per image (CLS included)."""
    image_tokens: int


# --------------------------------------------------------------------------------------------------------------
# model


def build_model(shape: str, layers: int | None, vision_layers: int | None):
    """Random-init LLaVA of the shape; (model, image token id, image tokens per sample, image size)."""
    if shape == "debug":
        loaded = build_debug("llava")
        image_id = loaded.processor.tokenizer.convert_tokens_to_ids("<image>")
        config = loaded.model.config
        return loaded.model, image_id, config.image_seq_length, config.vision_config.image_size
    from transformers import CLIPVisionConfig, LlamaConfig, LlavaConfig, LlavaForConditionalGeneration

    dims = dict(LLAMA_SHAPES[shape], num_hidden_layers=layers or LLAMA_SHAPES[shape]["num_hidden_layers"])
    text = LlamaConfig(**dims, vocab_size=VOCAB, max_position_embeddings=4096, tie_word_embeddings=False)
    vision = CLIPVisionConfig(**dict(CLIP_L_336, num_hidden_layers=vision_layers or 24))
    image_tokens = (336 // 14) ** 2
    config = LlavaConfig(vision_config=vision, text_config=text, image_token_index=IMAGE_TOKEN_ID,
                         vision_feature_select_strategy="default", vision_feature_layer=-2,
                         image_seq_length=image_tokens)
    return LlavaForConditionalGeneration(config), IMAGE_TOKEN_ID, image_tokens, 336


def apply_recipe(model, attention: str, dtype):
    """The finetune phase's trainable set: LoRA on the language model, the projector; checkpointing on."""
    from peft import LoraConfig, get_peft_model

    model.to(dtype)
    model.set_attn_implementation(attention)
    model.config.text_config.use_cache = False  # no KV cache in training (and none with checkpointing)
    model.requires_grad_(False)
    settings = LoraSettings(r=128, alpha=256)
    lora = LoraConfig(r=settings.r, lora_alpha=settings.alpha, lora_dropout=settings.dropout,
                      target_modules=lora_pattern(settings), bias="none")
    model = get_peft_model(model, lora, autocast_adapter_dtype=False)  # adapters in the model's dtype, as recipe
    for name, parameter in model.named_parameters():
        if f"{PROJECTOR}." in name or "lora_" in name:
            parameter.requires_grad_(True)
    if hasattr(model, "activation_checkpointing_enable"):  # transformers >= 5.x, as in recipe.prepare
        model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
    else:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model.config.use_cache = False
    return model


def count_parts(model, image_tokens: int) -> Parts:
    """Parameter counts by role, from the PEFT-wrapped model's names."""
    counts = {"lm_frozen": 0, "lm_trainable": 0, "vision": 0, "projector": 0}
    for name, parameter in model.named_parameters():
        if "embed_tokens" in name:
            continue  # a lookup, no FLOPs
        if f"{VISION_TOWER}." in name:
            counts["vision"] += parameter.numel()
        elif f"{PROJECTOR}." in name:
            counts["projector"] += parameter.numel()
        else:  # the language model and lm_head
            counts["lm_trainable" if parameter.requires_grad else "lm_frozen"] += parameter.numel()
    config = model.config
    vision = config.vision_config
    return Parts(**counts, layers=config.text_config.num_hidden_layers, hidden=config.text_config.hidden_size,
                 vision_layers=vision.num_hidden_layers, vision_hidden=vision.hidden_size,
                 patches=(vision.image_size // vision.patch_size) ** 2 + 1, image_tokens=image_tokens)


def flops_per_sample(parts: Parts, seq: int) -> tuple[float, float]:
    """(model FLOPs by the 3 × forward convention, FLOPs this recipe needs); see the module docstring."""
    lm_attention = 4 * parts.layers * parts.hidden * seq**2
    lm_frozen = 2 * parts.lm_frozen * seq + lm_attention
    lm_trainable = 2 * parts.lm_trainable * seq
    vision = 2 * parts.vision * parts.patches + 4 * parts.vision_layers * parts.vision_hidden * parts.patches**2
    projector = 2 * parts.projector * parts.image_tokens
    convention = 3 * (lm_frozen + lm_trainable + vision + projector)
    needed = 2 * lm_frozen + 3 * (lm_trainable + projector) + vision
    return convention, needed


# --------------------------------------------------------------------------------------------------------------
# run


def random_batch(batch: int, seq: int, image_id: int, image_tokens: int, image_size: int, vocab: int, device, dtype):
    """[bos, <image> × image_tokens, random text]; labels on the text only (as the recipe masks the image)."""
    import torch

    if seq <= image_tokens + 1:
        raise SystemExit(f"--seq {seq} leaves no text after the {image_tokens} image tokens")
    text = torch.randint(0, vocab, (batch, seq - image_tokens - 1), device=device)
    text[text == image_id] = 1
    bos = torch.ones((batch, 1), dtype=torch.long, device=device)
    ids = torch.cat([bos, torch.full((batch, image_tokens), image_id, device=device), text], dim=1)
    labels = ids.clone()
    labels[:, : image_tokens + 1] = -100
    pixels = torch.randn((batch, 3, image_size, image_size), device=device, dtype=dtype)
    return {"input_ids": ids, "labels": labels, "attention_mask": torch.ones_like(ids), "pixel_values": pixels}


def timed_steps(model, optimizer, inputs: dict, steps: int, device) -> float:
    """Seconds for `steps` optimizer steps (forward, backward, AdamW) on the same batch."""
    import torch

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    sync()
    started = time.perf_counter()
    for _ in range(steps):
        loss = model(**inputs).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    sync()
    return time.perf_counter() - started


def peak_tflops(device, override: float | None) -> tuple[float | None, str]:
    """(peak dense bf16 FLOP/s or None, the device's name)."""
    import torch

    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    if override:
        return override * 1e12, f"{name}, peak {override:g} TFLOP/s from --peak-tflops"
    return next((peak for key, peak in PEAK_BF16 if key in name and device.type == "cuda"), None), name


def peak_memory_gib(device) -> float:
    import torch

    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**30
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux: the whole process


def main() -> None:
    args = parse_args()
    warnings.filterwarnings("ignore", category=FutureWarning)  # transformers 5 deprecations, once per forward
    import torch

    torch.manual_seed(args.seed)
    device = torch.device("cuda:0" if torch.cuda.is_available() else "cpu")
    dtype = {"bf16": torch.bfloat16, "fp32": torch.float32}[args.dtype or ("bf16" if device.type == "cuda" else "fp32")]
    batch = args.batch or (4 if device.type == "cuda" else 1)
    attention = attention_kernel("auto")
    started = time.perf_counter()
    default_dtype = torch.get_default_dtype()
    # random init straight on the device and in the run's dtype: a 13B init on the CPU takes minutes, and an fp32
    # copy beside the bf16 one would not fit an 80 GB GPU
    torch.set_default_dtype(dtype)
    with device:
        model, image_id, image_tokens, image_size = build_model(args.shape, args.layers, args.vision_layers)
    torch.set_default_dtype(default_dtype)
    model = apply_recipe(model, attention, dtype).train()
    build_s = time.perf_counter() - started
    parts = count_parts(model, image_tokens)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=1e-5)
    inputs = random_batch(batch, args.seq, image_id, image_tokens, image_size, model.config.text_config.vocab_size,
                          device, dtype)
    timed_steps(model, optimizer, inputs, args.warmup, device)
    seconds = timed_steps(model, optimizer, inputs, args.steps, device)
    report(args, device, dtype, attention, batch, parts, sum(p.numel() for p in trainable), build_s, seconds)


def report(args, device, dtype, attention, batch, parts, trainable, build_s, seconds) -> None:
    samples_per_s = batch * args.steps / seconds
    convention, needed = flops_per_sample(parts, args.seq)
    peak, peak_source = peak_tflops(device, args.peak_tflops)
    cut = args.layers or args.vision_layers
    mfu = needed_mfu = None
    if peak and not cut:
        mfu, needed_mfu = convention * samples_per_s / peak, needed * samples_per_s / peak
    total = parts.lm_frozen + parts.lm_trainable + parts.vision + parts.projector
    print(f"shape {args.shape}" + (f" cut to {args.layers or 'all'} LM / {args.vision_layers or 'all'} vision layers"
                                   if cut else "")
          + f", {device} ({peak_source}), {str(dtype).split('.')[-1]}, {attention} attention, batch {batch} x "
            f"{args.seq} tokens, {args.steps} steps after {args.warmup} warm-up; built in {build_s:.1f} s")
    print(f"parameters: {total / 1e6:.1f} M (without input embeddings), trainable {trainable / 1e6:.1f} M "
          f"(LoRA r=128 + projector)")
    print(f"{samples_per_s:.3f} samples/s, {samples_per_s * args.seq:.0f} tokens/s, {seconds / args.steps:.2f} s per "
          f"step, peak memory {peak_memory_gib(device):.2f} GiB")
    why = "layers cut: not the full shape" if cut else f"no peak known for {peak_source}: pass --peak-tflops"
    print("MFU (3 x forward): " + (f"{mfu:.1%}" if mfu is not None else f"n/a ({why})")
          + ", needed-work MFU: " + (f"{needed_mfu:.1%}" if needed_mfu is not None else "n/a")
          + f"; model GFLOP per sample {convention / 1e9:.1f} (needed {needed / 1e9:.1f}), achieved "
            f"{convention * samples_per_s / 1e12:.3f} TFLOP/s (needed work {needed * samples_per_s / 1e12:.3f})")
    print("anchors: LLaVA-1.5-13B full fine-tune ~1.15 samples/s per A100; goal >= 40 % MFU on an H100 "
          "(~4 samples/s per GPU at 13B by the issue's estimate, 5.2 by this formula at 900 tokens)")
    print(json.dumps({"shape": args.shape, "layers": args.layers, "vision_layers": args.vision_layers,
                      "device": peak_source, "dtype": str(dtype).split(".")[-1], "attention": attention,
                      "batch": batch, "seq": args.seq, "samples_per_s": round(samples_per_s, 4),
                      "tokens_per_s": round(samples_per_s * args.seq, 1),
                      "mfu": None if mfu is None else round(mfu, 4),
                      "needed_mfu": None if needed_mfu is None else round(needed_mfu, 4),
                      "peak_memory_gib": round(peak_memory_gib(device), 2)}))


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shape", choices=["debug", "7b", "13b"], default="13b")
    parser.add_argument("--layers", type=int, help="cut the language model to N layers (CPU smoke test; MFU n/a)")
    parser.add_argument("--vision-layers", type=int, help="cut the vision tower to N layers (smoke test; MFU n/a)")
    parser.add_argument("--seq", type=int, default=900, help="tokens per sample, image tokens included")
    parser.add_argument("--batch", type=int, help="samples per step (default 4 on a GPU, 1 on the CPU)")
    parser.add_argument("--steps", type=int, default=10, help="timed optimizer steps")
    parser.add_argument("--warmup", type=int, default=2, help="untimed optimizer steps first")
    parser.add_argument("--dtype", choices=["bf16", "fp32"], help="default bf16 on a GPU, fp32 on the CPU")
    parser.add_argument("--peak-tflops", type=float, help="the device's peak dense bf16 TFLOP/s (overrides the table)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.shape == "debug" and (args.layers or args.vision_layers):
        parser.error("--layers/--vision-layers apply to the 7b and 13b shapes")
    return args


if __name__ == "__main__":
    main()
