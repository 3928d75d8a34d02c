"""The LLM backend layer: the real embedded model on CPU (transformers), the openai backend against a scripted
local server, and clear errors for what cannot run here."""

from __future__ import annotations

import pytest

from ldrt_hpc.config import LLMConfig
from ldrt_hpc.llm import BackendUnavailable, Sampling, make_backend
from tests.llm_server import ScriptedChatServer

PROMPTS = [
    [{"role": "user", "content": "What is low-dose radiation therapy? One sentence."}],
    [{"role": "system", "content": "You are a biomedical assistant."},
     {"role": "user", "content": "Name a unit of absorbed radiation dose."}],
    [{"role": "user", "content": "Say hello."}],
]


@pytest.fixture(scope="session")
def embedded(model_cache):
    pytest.importorskip("transformers")
    try:
        return make_backend(LLMConfig(batch_size=3, cache_dir=model_cache))
    except BackendUnavailable as exc:
        pytest.skip(str(exc))


def test_embedded_model_generates_in_batches(embedded):
    assert embedded.attention == "sdpa"  # no flash-attn on CPU: SDPA, and it is logged
    greedy = Sampling(temperature=0.0, max_tokens=24)
    batched = embedded.generate(PROMPTS, greedy)
    assert len(batched) == 3
    for output in batched:
        assert output.text and output.prompt_tokens > 5 and 0 < output.completion_tokens <= 24
        assert output.finish_reason in ("stop", "length")
    # left padding is right: each prompt alone gives the same greedy answer as inside the padded batch
    alone = [embedded.generate([prompt], greedy)[0].text for prompt in PROMPTS]
    assert alone == [o.text for o in batched]


def test_embedded_model_respects_max_tokens_and_seed(embedded):
    sampled = Sampling(temperature=0.9, max_tokens=8, seed=3)
    first = embedded.generate(PROMPTS[:1], sampled)[0]
    assert first.completion_tokens <= 8
    assert embedded.generate(PROMPTS[:1], sampled)[0].text == first.text  # same seed, same sample


def test_openai_backend_retries_and_parses():
    with ScriptedChatServer(["first answer", "second answer"]) as server:
        backend = make_backend(LLMConfig(backend="openai", model="served", base_url=server.base_url, max_retries=3))
        server.inject("429", "malformed", "503")
        outputs = backend.generate(PROMPTS[:2], Sampling(temperature=0.2, max_tokens=64))
        assert [o.text for o in outputs] == ["first answer", "second answer"]
        assert backend.retries == 3 and outputs[0].completion_tokens == 2 and outputs[0].finish_reason == "stop"
        body = server.requests[-1]["body"]
        assert body["temperature"] == 0.2 and body["max_tokens"] == 64 and body["messages"] == PROMPTS[1]
        server.inject("400")
        with pytest.raises(RuntimeError, match="400"):
            backend.generate(PROMPTS[:1], Sampling())


@pytest.mark.parametrize("status", ["429", "503"])
def test_openai_backend_honours_retry_after(status):
    """The backoff here is 10 ms; the endpoint asks for 1 s and gets it."""
    import time

    with ScriptedChatServer(["answer"]) as server:
        backend = make_backend(LLMConfig(backend="openai", model="m", base_url=server.base_url, backoff_s=0.01))
        server.inject(f"{status}:retry-after=1")
        started = time.monotonic()
        assert backend.generate(PROMPTS[:1], Sampling())[0].text == "answer"
        assert time.monotonic() - started >= 0.9 and backend.retries == 1 and len(server.requests) == 2


def test_openai_backend_gives_up_with_what_came():
    with ScriptedChatServer(["answer"]) as server:
        backend = make_backend(LLMConfig(backend="openai", model="m", base_url=server.base_url, max_retries=1,
                                         backoff_s=0.01))
        server.inject("malformed", "malformed")
        with pytest.raises(RuntimeError, match=r"no answer after 2 attempts \(last: malformed_response\): "
                                               r"HTTP 200 application/json.*body starts b'\{\"choices\": \[\]\}'"):
            backend.generate(PROMPTS[:1], Sampling())
        server.inject("500", "500")
        with pytest.raises(RuntimeError, match=r"after 2 attempts \(last: http_500\): .*injected 500"):
            backend.generate(PROMPTS[:1], Sampling())
        assert backend.retries == 2 and len(server.requests) == 4


def test_unavailable_backends_say_what_is_missing(tmp_path):
    with pytest.raises(BackendUnavailable, match="vllm package"):
        make_backend(LLMConfig(backend="vllm", model=str(tmp_path)))
    pytest.importorskip("transformers")
    with pytest.raises(BackendUnavailable, match="not a local checkpoint folder"):
        make_backend(LLMConfig(model=str(tmp_path / "nowhere")))
