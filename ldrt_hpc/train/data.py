"""Instruction data for training: examples from the pipeline's HDF5 shards (image bytes read straight from the
`figures` shards: a few files, not one per image) or from LLaVA-format JSON + an image folder; tokenised with the
model's chat template, labels masked on everything but the answers; a deterministic, resumable batch order.

HDF5 handles are opened lazily in the process that reads (DataLoader workers are forked; h5py handles are not
fork-safe), and reopened when the process id changes.
"""

from __future__ import annotations

import io
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from .. import layout
from .config import DataConfig
from .models import IMAGE_TOKEN, render_chat

log = logging.getLogger(__name__)
IGNORE = -100
"""Label of tokens that are not learned (prompt, image, padding): the loss skips them."""


@dataclass(frozen=True)
class Example:
    """One training sample before tokenisation."""

    sample_id: str
    image: tuple[str, int] | str
    """(figures shard path, record index) or an image file path."""
    turns: tuple[tuple[str, str], ...]
    """(role, text) pairs, roles 'user'/'assistant', alternating, starting with the user."""

    @property
    def length_hint(self) -> int:
        """Characters of text: a cheap proxy for the token count (length-grouped batching)."""
        return sum(len(text) for _, text in self.turns)


def from_shards(work_dir: Path, eval_share: float, seed: int) -> list[Example]:
    """The training split of the pipeline's kept `qa` samples (the eval papers of `export llava` left out)."""
    from ..instruct.split import kept_samples, split_samples

    train, _, _ = split_samples(kept_samples(work_dir), eval_share, seed)
    figures_dir = layout.stage_dir(work_dir, "figures")
    return [Example(s["sample_id"], (str(layout.shard_path(figures_dir, index)), int(s["figure_index"])),
                    (("user", f"{IMAGE_TOKEN}\n{s['question']}"), ("assistant", s["answer"])))
            for index, s in train]


SPLIT_FILE = "ldrt_split.json"
"""Written into a trained model's folder: the papers training left out (the `answer` stage checks its eval items
against it, so that a model is never evaluated on papers it was trained on)."""


def held_out_papers(cfg: DataConfig) -> list[str] | None:
    """The eval papers training leaves out (None for LLaVA-JSON data: no paper ids to check against)."""
    if cfg.work_dir is None:
        return None
    from ..instruct.split import eval_papers

    return sorted(eval_papers(cfg.work_dir, cfg.eval_share, cfg.split_seed))


def from_llava_json(path: Path, image_folder: Path | None = None) -> list[Example]:
    """LLaVA-format entries ({"id", "image", "conversations": [{"from": "human"|"gpt", "value"}]}); entries without
    an image are left out (every batch row must carry one: ZeRO-3 hangs when ranks take different code paths)."""
    try:
        entries = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: cannot read LLaVA JSON: {exc}") from None
    if not isinstance(entries, list):
        raise ValueError(f"{path}: expected a JSON list of samples, found {type(entries).__name__}")
    folder = Path(image_folder) if image_folder else Path(path).parent
    examples, skipped = [], 0
    roles = {"human": "user", "gpt": "assistant"}
    for number, entry in enumerate(entries):
        if not entry.get("image"):
            skipped += 1
            continue
        try:
            turns = tuple((roles[turn["from"]], turn["value"]) for turn in entry["conversations"])
        except (KeyError, TypeError):
            raise ValueError(f"{path}: sample {number} ({entry.get('id')}): conversations must be a list of "
                             "{from: human|gpt, value}") from None
        if not turns or turns[0][0] != "user" or any(r == turns[i - 1][0] for i, (r, _) in enumerate(turns) if i):
            raise ValueError(f"{path}: sample {number} ({entry.get('id')}): turns must alternate human/gpt, "
                             "starting with human")
        if IMAGE_TOKEN not in turns[0][1]:
            turns = ((turns[0][0], f"{IMAGE_TOKEN}\n{turns[0][1]}"),) + turns[1:]
        examples.append(Example(str(entry.get("id", number)), str(folder / entry["image"]), turns))
    if skipped:
        log.warning("%s: %d samples without an image left out", path, skipped)
    return examples


def load_examples(cfg: DataConfig) -> list[Example]:
    if cfg.work_dir is not None:
        examples = from_shards(cfg.work_dir, cfg.eval_share, cfg.split_seed)
    else:
        examples = from_llava_json(cfg.llava_json, cfg.image_folder)
    if cfg.max_samples:
        examples = examples[: cfg.max_samples]
    if not examples:
        raise ValueError(f"no training samples in {cfg.work_dir or cfg.llava_json}")
    return examples


class ImageLoader:
    """Decodes an example's image to RGB; keeps one open handle per figures shard per process."""

    def __init__(self) -> None:
        self._pid = -1
        self._readers: dict[str, Any] = {}

    def __call__(self, ref: tuple[str, int] | str):
        from PIL import Image

        if isinstance(ref, str):
            with Image.open(ref) as image:
                return image.convert("RGB")
        return Image.open(io.BytesIO(self.png(*ref))).convert("RGB")

    def png(self, shard: str, index: int) -> bytes:
        from ..shards import ShardReader

        if self._pid != os.getpid():  # a forked worker: never use the parent's handles
            self._readers, self._pid = {}, os.getpid()
        if shard not in self._readers:
            self._readers[shard] = ShardReader(Path(shard))
        return self._readers[shard].fields(index, ["png"])["png"]


class InstructionDataset:
    """Examples -> model inputs: input_ids, labels (answers only), pixel values."""

    def __init__(self, examples: Sequence[Example], processor, max_length: int):
        self.examples = list(examples)
        self.processor = processor
        self.max_length = max_length
        self.images = ImageLoader()

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, index: int) -> dict[str, Any]:
        example = self.examples[index]
        return encode(example, self.images(example.image), self.processor, self.max_length)


def _pieces(example: Example, processor) -> list[tuple[str, bool]]:
    """The chat-templated text cut into (piece, learned) parts: each assistant reply is learned, the rest not."""
    messages = [{"role": role, "content": text} for role, text in example.turns]
    pieces, done = [], ""
    for end, (role, _) in enumerate(example.turns, start=1):
        if role != "assistant":
            continue
        prompt = render_chat(processor, messages[: end - 1], add_generation_prompt=True)
        full = render_chat(processor, messages[:end])
        if not (prompt.startswith(done) and full.startswith(prompt)):
            raise ValueError("the model's chat template does not extend a conversation by appending text: "
                             f"cannot mask the prompt of sample {example.sample_id}")
        pieces += [(prompt[len(done):], False), (full[len(prompt):], True)]
        done = full
    return pieces


def encode(example: Example, image, processor, max_length: int) -> dict[str, Any]:
    """Token ids and labels of one example; answers are truncated at max_length, the prompt never."""
    tokenizer = processor.tokenizer
    ids: list[int] = []
    labels: list[int] = []
    extra: dict[str, Any] = {}
    for number, (piece, learned) in enumerate(_pieces(example, processor)):
        if number == 0:  # the first prompt holds <image>: the processor expands it to the image's tokens
            batch = processor(text=[piece], images=[image], return_tensors="pt")
            piece_ids = batch["input_ids"][0].tolist()
            extra = {key: value[0] for key, value in batch.items() if key not in ("input_ids", "attention_mask")}
        else:
            piece_ids = tokenizer(piece, add_special_tokens=False)["input_ids"]
        if learned and tokenizer.eos_token_id is not None and tokenizer.eos_token_id not in piece_ids:
            piece_ids = piece_ids + [tokenizer.eos_token_id]  # templates such as Vicuna's end a reply with a space
        ids += piece_ids
        labels += piece_ids if learned else [IGNORE] * len(piece_ids)
    prompt_length = labels.index(next(label for label in labels if label != IGNORE)) if any(
        label != IGNORE for label in labels) else len(labels)
    if prompt_length >= max_length:
        raise ValueError(f"sample {example.sample_id}: its prompt is {prompt_length} tokens (image tokens included), "
                         f"not less than data.max_length {max_length}: raise max_length")
    return {"input_ids": ids[:max_length], "labels": labels[:max_length], **extra}


def collate(rows: list[dict[str, Any]], pad_id: int) -> dict[str, Any]:
    """Right-padded batch; LLaVA-NeXT's per-image patch stacks are padded to the longest (image_sizes says how many
    are real)."""
    import torch

    width = max(len(row["input_ids"]) for row in rows)
    batch = {
        "input_ids": torch.tensor([r["input_ids"] + [pad_id] * (width - len(r["input_ids"])) for r in rows]),
        "labels": torch.tensor([r["labels"] + [IGNORE] * (width - len(r["labels"])) for r in rows]),
        "attention_mask": torch.tensor([[1] * len(r["input_ids"]) + [0] * (width - len(r["input_ids"]))
                                        for r in rows]),
    }
    pixels = [row["pixel_values"] for row in rows]
    if pixels[0].dim() == 4:  # llava_next: (patches, 3, H, W)
        most = max(p.shape[0] for p in pixels)
        pixels = [torch.cat([p, p.new_zeros((most - p.shape[0], *p.shape[1:]))]) for p in pixels]
    batch["pixel_values"] = torch.stack(pixels)
    if "image_sizes" in rows[0]:
        batch["image_sizes"] = torch.stack([row["image_sizes"] for row in rows])
    return batch


# --------------------------------------------------------------------------------------------------------------
# batch order


@dataclass(frozen=True)
class BatchOrder:
    """Which samples every rank takes at every micro-step: a seeded permutation per epoch (optionally grouped by
    length), cut into global micro-batches of per_device x ranks samples; the tail that does not fill an optimizer
    step is dropped so that every rank runs the same number of steps."""

    lengths: tuple[int, ...]
    per_device: int
    ranks: int
    accumulation: int
    seed: int
    group_by_length: bool = False

    @property
    def steps_per_epoch(self) -> int:
        return len(self.lengths) // (self.per_device * self.ranks * self.accumulation)

    def permutation(self, epoch: int) -> np.ndarray:
        order = np.random.default_rng([self.seed, epoch]).permutation(len(self.lengths))
        if self.group_by_length:  # LLaVA's megabatches: sort inside windows of one optimizer step
            window = self.per_device * self.ranks * self.accumulation
            lengths = np.asarray(self.lengths)
            chunks = [order[start : start + window] for start in range(0, len(order), window)]
            order = np.concatenate([chunk[np.argsort(-lengths[chunk], kind="stable")] for chunk in chunks])
        return order

    def micro_batches(self, epoch: int, rank: int, start: int = 0) -> Iterator[list[int]]:
        """This rank's micro-batches of one epoch, from micro-step `start` (a resumed run skips what it did)."""
        order = self.permutation(epoch)
        size = self.per_device * self.ranks
        for micro in range(start, self.steps_per_epoch * self.accumulation):
            chunk = order[micro * size : (micro + 1) * size]
            yield chunk[rank * self.per_device : (rank + 1) * self.per_device].tolist()
