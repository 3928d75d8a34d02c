"""Training data: chat-templated examples with only the answers learned, LLaVA JSON input and its errors, the
HDF5 shards of the pipeline as input (the same train split as `export llava`), the resumable batch order."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from ldrt_hpc.train.data import IGNORE, BatchOrder, Example, InstructionDataset, collate, encode, from_llava_json
from ldrt_hpc.train.models import build_debug
from tests.train.conftest import write_llava_data


@pytest.fixture(scope="module")
def debug_llava():
    return build_debug("llava")


def image(width=70, height=50):
    return Image.fromarray((np.random.default_rng(0).random((height, width, 3)) * 255).astype("uint8"))


def learned_text(row, tokenizer) -> str:
    return tokenizer.decode([t for t in row["labels"] if t != IGNORE])


def test_only_the_answers_are_learned(debug_llava):
    processor = debug_llava.processor
    example = Example("a", "unused", (("user", "<image>\nWhat is shown?"), ("assistant", "A bar chart."),
                                      ("user", "Which dose?"), ("assistant", "0.5 Gy.")))
    row = encode(example, image(), processor, 256)
    assert len(row["input_ids"]) == len(row["labels"])
    assert learned_text(row, processor.tokenizer) == "A bar chart.<|im_end|>\n0.5 Gy.<|im_end|>\n"
    image_id = processor.tokenizer.convert_tokens_to_ids("<image>")
    positions = [i for i, t in enumerate(row["input_ids"]) if t == image_id]
    assert len(positions) == 16 and all(row["labels"][i] == IGNORE for i in positions)  # 56 px / 14 px patches
    assert tuple(row["pixel_values"].shape) == (3, 56, 56)


def test_truncation_cuts_answers_never_the_prompt(debug_llava):
    processor = debug_llava.processor
    example = Example("long", "unused", (("user", "<image>\nDescribe."), ("assistant", "dose " * 200)))
    row = encode(example, image(), processor, 64)
    assert len(row["input_ids"]) == 64 and row["labels"][-1] != IGNORE
    with pytest.raises(ValueError, match="sample long: its prompt is .* tokens .* not less than data.max_length 20"):
        encode(example, image(), processor, 20)


def test_llava_next_batches_pad_the_tiles_and_compute_a_loss():
    loaded = build_debug("llava_next")
    rows = [encode(Example(str(i), "x", (("user", "<image>\nWhat?"), ("assistant", "A curve."))), image(*size),
                   loaded.processor, 512) for i, size in enumerate([(70, 50), (150, 40)])]
    batch = collate(rows, loaded.processor.tokenizer.pad_token_id)
    assert batch["pixel_values"].dim() == 5 and batch["image_sizes"].tolist() == [[50, 70], [40, 150]]
    loss = loaded.model(**batch).loss
    assert loss.isfinite() and loss > 0


def test_llava_json_input_and_its_errors(tmp_path, debug_llava):
    path = write_llava_data(tmp_path, samples=4)
    entries = json.loads(path.read_text())
    entries.append({"id": "text-only", "conversations": entries[0]["conversations"]})  # no image: left out
    entries[1]["conversations"][0]["value"] = "No image token here?"  # <image> is added in front
    path.write_text(json.dumps(entries))
    examples = from_llava_json(path)
    assert [e.sample_id for e in examples] == ["s0", "s1", "s2", "s3"]
    assert examples[1].turns[0][1] == "<image>\nNo image token here?"
    dataset = InstructionDataset(examples, debug_llava.processor, 256)
    assert learned_text(dataset[2], debug_llava.processor.tokenizer).startswith("Tumour volume decreases")
    entries[0]["conversations"] = [{"from": "gpt", "value": "x"}]
    path.write_text(json.dumps(entries))
    with pytest.raises(ValueError, match=r"data.json: sample 0 \(s0\): turns must alternate human/gpt"):
        from_llava_json(path)
    path.write_text("{not json")
    with pytest.raises(ValueError, match="data.json: cannot read LLaVA JSON"):
        from_llava_json(path)


def test_batch_order_is_deterministic_disjoint_and_resumable():
    order = BatchOrder(tuple(range(40)), per_device=2, ranks=2, accumulation=2, seed=3)
    assert order.steps_per_epoch == 5  # 40 samples / 8 per optimizer step
    rank0, rank1 = list(order.micro_batches(0, 0)), list(order.micro_batches(0, 1))
    assert len(rank0) == 10 and not {i for b in rank0 for i in b} & {i for b in rank1 for i in b}
    assert list(order.micro_batches(0, 1, start=4)) == rank1[4:]  # a resume skips exactly what was done
    assert list(order.micro_batches(1, 0)) != rank0  # another epoch, another order
    grouped = BatchOrder(tuple(range(40)), 2, 2, 2, seed=3, group_by_length=True)
    first_step = grouped.permutation(0)[:8]
    assert list(first_step) == sorted(first_step, reverse=True) and set(first_step) == set(order.permutation(0)[:8])


def test_the_pipeline_shards_are_read_directly_with_the_export_split(qa_work_dir, debug_llava, tmp_path):
    from ldrt_hpc.export import export_llava
    from ldrt_hpc.train.data import ImageLoader, from_shards

    examples = from_shards(qa_work_dir, eval_share=0.25, seed=0)
    export_llava(qa_work_dir, tmp_path / "llava", eval_share=0.25, seed=0)
    exported = json.loads((tmp_path / "llava" / "train.json").read_text())
    assert [e.sample_id for e in examples] == [e["id"] for e in exported]
    loader = ImageLoader()
    for example, entry in zip(examples, exported):
        assert isinstance(example.image, tuple) and example.image[0].endswith(".h5")  # no loose files
        assert example.turns[1][1] == entry["conversations"][1]["value"]
        assert loader.png(*example.image) == (tmp_path / "llava" / entry["image"]).read_bytes()
    row = InstructionDataset(examples, debug_llava.processor, 2048)[0]
    assert learned_text(row, debug_llava.processor.tokenizer).startswith(examples[0].turns[1][1][:20])


def test_forked_workers_open_the_shards_themselves(qa_work_dir, debug_llava):
    import torch
    from torch.utils.data import DataLoader

    from ldrt_hpc.train.data import from_shards

    examples = from_shards(qa_work_dir, eval_share=0.25, seed=0)
    dataset = InstructionDataset(examples, debug_llava.processor, 2048)
    dataset[0]  # the parent opens a handle first: the workers must not reuse it
    pad = debug_llava.processor.tokenizer.pad_token_id
    loader = DataLoader(dataset, batch_size=4, num_workers=2, collate_fn=lambda rows: collate(rows, pad),
                        multiprocessing_context="fork")
    batches = list(loader)
    assert sum(len(b["input_ids"]) for b in batches) == len(examples)
    assert all(torch.isfinite(b["pixel_values"]).all() for b in batches)


def test_an_answer_always_ends_with_the_end_of_sequence_token():
    """Vicuna-style templates (llava-hf v1.5) end a reply with a space, not </s>: without an added end token the
    model would never learn to stop."""
    loaded = build_debug("llava")
    tokenizer = loaded.processor.tokenizer
    tokenizer.chat_template = ("{% for m in messages %}{% if m['role'] == 'user' %}USER: {{ m['content'] }} "
                               "{% else %}ASSISTANT: {{ m['content'] }} {% endif %}{% endfor %}"
                               "{% if add_generation_prompt %}ASSISTANT:{% endif %}")
    row = encode(Example("v", "x", (("user", "<image>\nWhat?"), ("assistant", "A plot."))), image(), loaded.processor,
                 256)
    learned = [t for t in row["labels"] if t != IGNORE]
    assert learned[-1] == tokenizer.eos_token_id and tokenizer.decode(learned[:-1]).strip() == "A plot."
