"""Instruction-data building blocks: prompts, TF-IDF template matching, reasoning parsing, post-filter, split."""

from __future__ import annotations

import random

import pytest

from ldrt_hpc.config import SHIPPED
from ldrt_hpc.instruct.filtering import post_filter
from ldrt_hpc.instruct.parsing import ParseError, parse_reasoning
from ldrt_hpc.instruct.prompts import load_prompts, messages
from ldrt_hpc.instruct.split import split_papers
from ldrt_hpc.instruct.templates import TemplateMatcher

PROMPTS = load_prompts(SHIPPED / "prompts" / "qa-v1.yaml")


def test_prompts_fill_caption_and_mentions_and_forbid_source_words():
    chat = messages(PROMPTS, "reasoning", "Figure 2. Survival after 0.5 Gy.", ["As shown in Fig. 2, survival rose."])
    assert chat[0]["role"] == "system" and 'never\nuse the words "caption"' not in chat[0]["content"]
    assert '"caption", "context" or "mentioned"' in chat[0]["content"]
    assert "Figure 2. Survival after 0.5 Gy." in chat[1]["content"] and "survival rose" in chat[1]["content"]
    assert '{"question": "...", "answer": "..."}' in chat[1]["content"]
    assert "(no further text)" in messages(PROMPTS, "description", "Figure 1. X.", [])[1]["content"]


@pytest.mark.parametrize("description, expected", [
    ("The figure shows the experimental results of irradiation: surviving fraction falls with dose.",
     "Describe the experimental results shown in this image."),
    ("These data are interpreted as a threshold response; the figure presents the data per group.",
     "Interpret the data presented in this figure."),
    ("The main findings: tumour volume halves after 0.5 Gy, the key finding of the study.",
     "What are the main findings shown in this figure?"),
    ("The effects of the radiation dose on foci counts rise linearly with the dose.",
     "What does this figure tell us about the effects of the radiation dose?"),
])
def test_tfidf_picks_the_expected_template(description, expected):
    matcher = TemplateMatcher(PROMPTS.templates)
    index, score = matcher.best(description)
    assert PROMPTS.templates[index] == expected and score > 0


@pytest.mark.parametrize("text, expected", [
    ('{"question": "Why does survival plateau?", "answer": "Because of repair."}',
     ("Why does survival plateau?", "Because of repair.")),
    ('Sure! Here it is:\n```json\n{"question": "Q1?", "answer": "A1."}\n```',
     ("Q1?", "A1.")),
    ("Question: What drives the bell-shaped response?\nAnswer: Competing anti-inflammatory pathways.",
     ("What drives the bell-shaped response?", "Competing anti-inflammatory pathways.")),
    ("**Question:** Is 0.5 Gy optimal?\n\n**Answer:** It gave the largest effect.",
     ("Is 0.5 Gy optimal?", "It gave the largest effect.")),
])
def test_parse_reasoning(text, expected):
    assert parse_reasoning(text) == expected


@pytest.mark.parametrize("text", ['{"question": "", "answer": "x"}', "Just some prose.", '{"question": "Q?"'])
def test_parse_reasoning_rejects(text):
    with pytest.raises(ParseError):
        parse_reasoning(text)


@pytest.mark.parametrize("text, reason", [
    ("I'm sorry, but I cannot describe an image I cannot see in this case at all really.", "refusal"),
    ("As an AI language model I do not see images, but the plot probably shows something relevant.", "refusal"),
    ("According to the caption, the survival curve shows a clear benefit at low doses of radiation.", "mentions_source"),
    ("As mentioned in the text, foci increase with dose in the irradiated group of A549 cells here.", "mentions_source"),
    ("Too short.", "too_short"),
    (" ".join(["dose"] * 700), "too_long"),
    ("The image shows Kaplan-Meier survival curves for irradiated and sham mice; survival is higher after 0.5 Gy.", ""),
])
def test_post_filter(text, reason):
    assert post_filter(text) == reason


def synthetic_corpus(figures: int, seed: int = 1) -> dict[str, dict[str, int]]:
    rng = random.Random(seed)
    papers: dict[str, dict[str, int]] = {}
    made = 0
    while made < figures:
        n = rng.randint(1, 8)
        papers[f"paper{len(papers):04d}"] = {"description": n, "reasoning": n - (rng.random() < 0.1)}
        made += n
    return papers


def test_split_is_grouped_stratified_deterministic():
    papers = synthetic_corpus(600)
    eval_papers = split_papers(papers, 0.03, seed=0)
    assert eval_papers == split_papers(papers, 0.03, seed=0)
    assert eval_papers != split_papers(papers, 0.03, seed=1)
    for task in ("description", "reasoning"):
        total = sum(p[task] for p in papers.values())
        in_eval = sum(papers[p][task] for p in eval_papers)
        assert abs(in_eval / total - 0.03) <= 0.01, (task, in_eval, total)
    train = set(papers) - eval_papers
    assert train and eval_papers and not train & eval_papers  # grouped by paper: no paper in both
