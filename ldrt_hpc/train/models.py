"""The vision-language models the recipe trains: LLaVA checkpoints from a local path, and two flavours built
in-process (no download) for tests and the demo.

- `debug`: a tiny CLIP tower, a tiny Llama and a byte-level BPE tokenizer trained here (a few hundred thousand
  parameters; seconds per step on a CPU). `kind='llava_next'` gives the v1.6 (any-resolution) architecture.
- `smol`: a small random CLIP tower + the SmolLM2-135M-Instruct language model of the embedded default, with an
  `<image>` token added.

Facts of transformers 5.x this module relies on: the processor needs `patch_size`, the model's
`vision_feature_select_strategy` and `num_additional_image_tokens=1` (CLIP's CLS token) or image tokens and image
features do not match; `CLIPImageProcessorPil` works without torchvision; two models never share a config object.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

log = logging.getLogger(__name__)

IMAGE_TOKEN = "<image>"
CHATML_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
"""ChatML, the template of SmolLM2-Instruct; the debug tokenizer uses it too."""

Kind = Literal["llava", "llava_next"]
PROJECTOR = "multi_modal_projector"
"""The projector's module name in both LLaVA classes (what phase 1 trains and what is exported)."""
LANGUAGE_MODEL = "language_model"
VISION_TOWER = "vision_tower"


@dataclass
class Loaded:
    model: Any
    processor: Any
    source: str
    """Where it came from: 'flavour:debug', or the checkpoint path."""


def render_chat(processor, messages: list[dict[str, str]], add_generation_prompt: bool = False) -> str:
    """A conversation as the model's prompt text, `<image>` where the image goes. The tokenizer's chat template
    when it has one (the flavours, most chat LMs); otherwise the processor's (llava-hf checkpoints keep theirs
    there and want typed content: an image item, then the text)."""
    tokenizer = processor.tokenizer
    if tokenizer.chat_template:
        return tokenizer.apply_chat_template(messages, add_generation_prompt=add_generation_prompt, tokenize=False)
    if not getattr(processor, "chat_template", None):
        raise ValueError("neither the tokenizer nor the processor of this model has a chat template")
    typed = []
    for message in messages:
        text = message["content"]
        content = [{"type": "text", "text": text.replace(IMAGE_TOKEN, "").lstrip("\n")}]
        if IMAGE_TOKEN in text:
            content.insert(0, {"type": "image"})
        typed.append({"role": message["role"], "content": content})
    return processor.apply_chat_template(typed, add_generation_prompt=add_generation_prompt, tokenize=False)


def model_class(kind: Kind):
    from transformers import LlavaForConditionalGeneration, LlavaNextForConditionalGeneration

    return LlavaNextForConditionalGeneration if kind == "llava_next" else LlavaForConditionalGeneration


def load_checkpoint(path: Path, dtype=None, attention: str = "sdpa") -> Loaded:
    """A Hugging Face-format LLaVA (v1.5) or LLaVA-NeXT (v1.6) checkpoint and its processor, from a local folder."""
    from transformers import AutoProcessor

    path = Path(path)
    config_file = path / "config.json"
    if not config_file.is_file():
        raise FileNotFoundError(f"{path}: not a Hugging Face model folder (no config.json)")
    model_type = json.loads(config_file.read_text()).get("model_type")
    if model_type not in ("llava", "llava_next"):
        raise ValueError(f"{config_file}: model_type '{model_type}' is not a LLaVA model (llava or llava_next)")
    model = model_class(model_type).from_pretrained(path, dtype=dtype, attn_implementation=attention)
    return Loaded(model, AutoProcessor.from_pretrained(path), str(path))


# --------------------------------------------------------------------------------------------------------------
# flavours

_DEBUG_TEXT = (
    "Low-dose radiation therapy (LDRT) reduces inflammation. The figure shows a bar chart of cytokine levels "
    "in mice after 0.5 Gy. Error bars are standard deviations. What does the panel show? The x-axis is dose, "
    "the y-axis is survival. Kaplan-Meier curves, microscopy, tumour volume, Alzheimer's disease, COVID-19 "
    "pneumonia, osteoarthritis, lymphocytes, macrophages, p < 0.05, 1 2 3 4 5 6 7 8 9 0 % ( ) , . ; : ? ! - "
)


def debug_tokenizer():
    """A byte-level BPE tokenizer (vocab 384) trained in-process on a fixed text: deterministic, no download."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    specials = ["<pad>", "<|im_start|>", "<|im_end|>", IMAGE_TOKEN]
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=384, special_tokens=specials, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tokenizer.train_from_iterator([_DEBUG_TEXT] * 4, trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tokenizer, pad_token="<pad>", eos_token="<|im_end|>",
                                   bos_token="<|im_start|>", extra_special_tokens={"image_token": IMAGE_TOKEN})
    fast.chat_template = CHATML_TEMPLATE
    return fast


def _clip_parts(image_size: int, patch_size: int, hidden: int, layers: int):
    from transformers import CLIPImageProcessorPil, CLIPVisionConfig

    vision = CLIPVisionConfig(hidden_size=hidden, intermediate_size=hidden * 2, num_hidden_layers=layers,
                              num_attention_heads=max(1, hidden // 16), image_size=image_size, patch_size=patch_size,
                              projection_dim=hidden)
    images = CLIPImageProcessorPil(size={"shortest_edge": image_size},
                                   crop_size={"height": image_size, "width": image_size})
    return vision, images


def _assemble(kind: Kind, vision, text_config, tokenizer, images, patch_size: int, seed: int):
    """Model + matching processor from fresh configs (never shared between two models)."""
    import torch
    from transformers import LlavaConfig, LlavaNextConfig, LlavaNextProcessor, LlavaProcessor

    image_token_id = tokenizer.convert_tokens_to_ids(IMAGE_TOKEN)
    common = dict(vision_config=vision, text_config=text_config, image_token_index=image_token_id,
                  vision_feature_select_strategy="default", vision_feature_layer=-2)
    size = vision.image_size
    if kind == "llava_next":
        config = LlavaNextConfig(**common, image_grid_pinpoints=[[size, size], [size, 2 * size], [2 * size, size],
                                                                 [2 * size, 2 * size]])
        images.image_grid_pinpoints = config.image_grid_pinpoints
        processor_class = LlavaNextProcessor
    else:
        config = LlavaConfig(**common, image_seq_length=(size // patch_size) ** 2)
        processor_class = LlavaProcessor
    torch.manual_seed(seed)
    model = model_class(kind)(config)
    processor = processor_class(image_processor=images, tokenizer=tokenizer, patch_size=patch_size,
                                vision_feature_select_strategy="default", num_additional_image_tokens=1,
                                chat_template=tokenizer.chat_template)
    return model, processor


def build_debug(kind: Kind = "llava", seed: int = 0) -> Loaded:
    """The `debug` flavour: ~200k parameters, 56-pixel images (16 image tokens)."""
    from transformers import LlamaConfig

    tokenizer = debug_tokenizer()
    if kind == "llava_next":
        from transformers import CLIPImageProcessorPil  # noqa: F401  (the any-res processor below tiles images)
    vision, images = _clip_parts(image_size=56, patch_size=14, hidden=32, layers=2)
    if kind == "llava_next":
        from transformers import LlavaNextImageProcessorPil

        images = LlavaNextImageProcessorPil(size={"shortest_edge": 56}, crop_size={"height": 56, "width": 56})
    text = LlamaConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                       num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096,
                       pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
                       bos_token_id=tokenizer.bos_token_id, tie_word_embeddings=False)
    model, processor = _assemble(kind, vision, text, tokenizer, images, 14, seed)
    return Loaded(model, processor, f"flavour:debug-{kind}")


def build_smol(cache_dir: Path, seed: int = 0) -> Loaded:
    """The `smol` flavour: a random 4-layer CLIP tower (224 px, 28-px patches: 64 image tokens) in front of the
    embedded SmolLM2-135M-Instruct, with `<image>` added to its vocabulary."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from ..llm.hf import convert_embedded

    language_path = convert_embedded(cache_dir)
    tokenizer = AutoTokenizer.from_pretrained(language_path)
    tokenizer.add_special_tokens({"additional_special_tokens": [IMAGE_TOKEN]})
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if not tokenizer.chat_template:
        tokenizer.chat_template = CHATML_TEMPLATE
    vision, images = _clip_parts(image_size=224, patch_size=28, hidden=128, layers=4)
    language = AutoModelForCausalLM.from_pretrained(language_path)
    language.resize_token_embeddings(len(tokenizer))
    text = language.config.__class__.from_dict(language.config.to_dict())
    model, processor = _assemble("llava", vision, text, tokenizer, images, 28, seed)
    model.model.language_model.load_state_dict(language.model.state_dict())
    model.lm_head.load_state_dict(language.lm_head.state_dict())
    return Loaded(model, processor, "flavour:smol")


def build_flavour(name: str, kind: Kind = "llava", seed: int = 0, cache_dir: Path | None = None) -> Loaded:
    if name == "debug":
        return build_debug(kind, seed)
    if name == "smol":
        if kind != "llava":
            raise ValueError("the smol flavour is a LLaVA v1.5 model (kind: llava)")
        return build_smol(Path(cache_dir or "."), seed)
    raise ValueError(f"unknown model flavour '{name}' (known: debug, smol)")


def parameter_count(model) -> int:
    """Parameters, also under ZeRO-3 (where a partitioned parameter's local tensor is empty)."""
    return sum(getattr(p, "ds_numel", p.numel()) for p in model.parameters())
