"""Model flavours built in-process: image tokens match image features; the smol flavour carries the embedded
SmolLM2-135M with `<image>` added."""

from __future__ import annotations

import pytest

from ldrt_hpc.train.data import Example, encode
from ldrt_hpc.train.models import build_debug, build_flavour, parameter_count
from tests.train.test_data import image


@pytest.mark.parametrize("kind", ["llava", "llava_next"])
def test_debug_flavours_are_tiny_and_consistent(kind):
    loaded = build_debug(kind)
    assert 100_000 < parameter_count(loaded.model) < 500_000
    row = encode(Example("a", "x", (("user", "<image>\nWhat?"), ("assistant", "A plot."))), image(), loaded.processor, 512)
    from ldrt_hpc.train.data import collate

    loss = loaded.model(**collate([row], loaded.processor.tokenizer.pad_token_id)).loss
    assert loss.isfinite()
    assert build_debug(kind).model.state_dict().keys() == loaded.model.state_dict().keys()


def test_unknown_flavour_is_refused():
    with pytest.raises(ValueError, match="unknown model flavour 'huge' \\(known: debug, smol\\)"):
        build_flavour("huge")


def test_smol_flavour_wraps_the_embedded_language_model(model_cache):
    from ldrt_hpc.errors import BackendUnavailable
    from ldrt_hpc.llm.hf import embedded_gguf

    try:
        embedded_gguf()
    except BackendUnavailable as exc:
        pytest.skip(str(exc))
    loaded = build_flavour("smol", cache_dir=model_cache)
    tokenizer = loaded.processor.tokenizer
    assert tokenizer.convert_tokens_to_ids("<image>") == loaded.model.config.image_token_index
    assert 130e6 < parameter_count(loaded.model) < 160e6
    row = encode(Example("a", "x", (("user", "<image>\nWhat?"), ("assistant", "A plot."))), image(), loaded.processor,
                 512)
    assert row["input_ids"].count(loaded.model.config.image_token_index) == 64  # 224 px / 28 px patches
    from ldrt_hpc.train.data import collate

    assert loaded.model(**collate([row], tokenizer.pad_token_id)).loss.isfinite()
