"""Instruction data: prompts, TF-IDF template matching, robust parsing of the reasoning Q&A, the LLaVA-Med style
post-filter, and the paper-grouped train/eval split. Pure functions; the `qa` stage drives them."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

from pydantic import Field

from .config import ConfigError, Strict, read_yaml


class PromptSet(Strict):
    """A versioned prompt file (configs/prompts/*.yaml)."""

    version: str = Field(min_length=1)
    """Stored in every generated sample."""
    system: str
    """System prompt: see-the-image persona, no 'caption'/'context'/'mentioned'."""
    description: str
    """Detailed-description request; {caption} and {mentions} are filled in."""
    reasoning: str
    """Complex-reasoning request returning JSON {"question", "answer"}; {caption} and {mentions} are filled in."""
    templates: list[str] = Field(min_length=1)
    """The template questions a description is paired with (the paper's 20)."""


def load_prompts(path: Path) -> PromptSet:
    from pydantic import ValidationError

    from .config import _format_errors

    try:
        return PromptSet.model_validate(read_yaml(path))
    except ValidationError as exc:
        raise ConfigError(_format_errors(path, exc)) from None


def messages(prompts: PromptSet, task: str, caption: str, mentions: list[str]) -> list[dict[str, str]]:
    template = prompts.description if task == "description" else prompts.reasoning
    text = template.format(caption=caption.strip(), mentions="\n".join(mentions) or "(no further text)")
    return [{"role": "system", "content": prompts.system}, {"role": "user", "content": text}]


class TemplateMatcher:
    """Pairs a description with the template question whose TF-IDF vector is most cosine-similar (as in the paper)."""

    def __init__(self, templates: list[str]):
        from sklearn.feature_extraction.text import TfidfVectorizer

        self.templates = templates
        self.vectorizer = TfidfVectorizer(stop_words="english", sublinear_tf=True).fit(templates)
        self.matrix = self.vectorizer.transform(templates)

    def best(self, description: str) -> tuple[int, float]:
        from sklearn.metrics.pairwise import cosine_similarity

        scores = cosine_similarity(self.vectorizer.transform([description]), self.matrix)[0]
        index = int(scores.argmax())
        return index, float(scores[index])


class ParseError(ValueError):
    """A reasoning answer that holds no usable question and answer."""


def parse_reasoning(text: str) -> tuple[str, str]:
    """(question, answer) from the model's reply: JSON (possibly fenced or surrounded by prose), else
    'Question: ... Answer: ...' lines."""
    for candidate in re.findall(r"\{.*\}", text, flags=re.S):
        try:
            data = json.loads(candidate)
        except ValueError:
            continue
        if isinstance(data, dict):
            question, answer = str(data.get("question", "")).strip(), str(data.get("answer", "")).strip()
            if question and answer:
                return question, answer
    match = re.search(r"(?:^|\n)\**\s*(?:Q|Question)\s*\**\s*[:.]\**\s*(.+?)\n+\**\s*(?:A|Answer)\s*\**\s*[:.]\**\s*(.+)",
                      text, flags=re.S | re.I)
    if match and match.group(1).strip() and match.group(2).strip():
        return match.group(1).strip(), match.group(2).strip()
    raise ParseError("no JSON object with question and answer, and no 'Question:'/'Answer:' lines")


REFUSAL = re.compile(r"\b(I'?m sorry|I am sorry|as an AI|I cannot|I can't|I am unable|I'm unable)\b", re.I)
LEAK = re.compile(r"\b(caption|context|mentioned|the text (says|states|provided)|provided text)\b", re.I)


@dataclass(frozen=True)
class FilterRules:
    min_words: int = 15
    max_words: int = 600


def post_filter(text: str, rules: FilterRules = FilterRules()) -> str:
    """'' when the output is kept, else the reason: refusal, mentions_source, too_short, too_long."""
    if REFUSAL.search(text):
        return "refusal"
    if LEAK.search(text):
        return "mentions_source"
    words = len(text.split())
    if words < rules.min_words:
        return "too_short"
    if words > rules.max_words:
        return "too_long"
    return ""


def split_papers(samples_per_paper: dict[str, dict[str, int]], eval_share: float, seed: int) -> set[str]:
    """Papers that go to the eval set: whole papers (no paper in both sets), in a seed-determined order, until the
    eval set holds `eval_share` of the samples of each task type (stratified: a paper is taken while it brings
    a task type closer to its target without overshooting the total by more than half a paper)."""
    totals: dict[str, int] = {}
    for counts in samples_per_paper.values():
        for task, n in counts.items():
            totals[task] = totals.get(task, 0) + n
    targets = {task: eval_share * n for task, n in totals.items()}
    taken: dict[str, float] = {task: 0 for task in totals}
    order = sorted(samples_per_paper, key=lambda p: hashlib.sha256(f"{seed}:{p}".encode()).hexdigest())
    chosen: set[str] = set()
    for paper in order:
        counts = samples_per_paper[paper]
        gain = sum(min(n, max(0.0, targets[t] - taken[t])) for t, n in counts.items())
        excess = sum(max(0.0, taken[t] + n - targets[t]) for t, n in counts.items())
        if gain > 0 and excess <= gain:
            chosen.add(paper)
            for task, n in counts.items():
                taken[task] += n
        if all(taken[t] >= targets[t] - 0.5 for t in totals):
            break
    return chosen
