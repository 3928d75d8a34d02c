"""The LLaVA-Med style post-filter: refusals, outputs that name their source, too short or too long."""

from __future__ import annotations

import re
from dataclasses import dataclass

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
