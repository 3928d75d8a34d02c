"""`ldrt-hpc keywords generate` through the real `openai` backend against a scripted local server."""

from __future__ import annotations

import yaml

from ldrt_hpc.config import LLMConfig, load_keywords, load_pipeline
from ldrt_hpc.harvest.keywords import generate_keywords, parse_candidates
from tests.llm_server import ScriptedChatServer


def test_parse_candidates():
    text = ('Here are new search strings:\n1. "low-dose radiation" + microglia\n- "radiation hormesis"\n'
            '* ("low dose" | LDRT) + senescence*\n"unbalanced + quote\n\n`"low-dose" + (neuro*`\n'
            '"low-dose" + gut microbiota')
    kept, rejected = parse_candidates(text, ['"radiation hormesis"'])
    assert kept == ['"low-dose radiation" + microglia', '("low dose" | LDRT) + senescence*', '"low-dose" + gut microbiota']
    assert rejected == {"not a search string": 1, "duplicate": 1, "unbalanced quotes or parentheses": 2}


def test_generate_writes_a_reviewable_yaml(tmp_path, synth_pdfs, make_config, monkeypatch):
    answer = '"low-dose radiation" + microglia\n"low-dose radiation therapy"\n"radon" + spa + arthritis'
    monkeypatch.setenv("LDRT_TEST_LLM_KEY", "llm-secret")
    with ScriptedChatServer([answer]) as server:
        path, cfg = make_config(synth_pdfs)
        cfg = cfg.model_copy(update={"llm": LLMConfig(backend="openai", model="qwen2-72b", base_url=server.base_url,
                                                       api_key_env="LDRT_TEST_LLM_KEY")})
        server.inject("500")
        result = generate_keywords(cfg, 3, tmp_path / "new.yaml")
        assert server.requests[-1]["headers"]["Authorization"] == "Bearer llm-secret"
        assert server.requests[-1]["body"]["model"] == "qwen2-72b" and len(server.requests) == 2  # one retry
    assert result["kept"] == 2 and result["rejected"] == {"duplicate": 1}
    text = (tmp_path / "new.yaml").read_text()
    assert text.startswith("# ldrt-hpc run search") and "REVIEW" in text and "llm-secret" not in text
    assert load_keywords(tmp_path / "new.yaml") == ['"low-dose radiation" + microglia', '"radon" + spa + arthritis']
    assert yaml.safe_load(text)["keywords"][0] == '"low-dose radiation" + microglia'
    assert load_pipeline(path)  # the pipeline config itself is untouched
