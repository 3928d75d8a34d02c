"""The question and answer in a complex-reasoning reply, however the model formatted it."""

from __future__ import annotations

import json
import re


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
