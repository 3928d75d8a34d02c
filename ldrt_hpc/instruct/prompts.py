"""The versioned prompt file (ldrt_hpc/configs/prompts/*.yaml) and the chat messages built from it."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from ..config import Strict, load_model


class PromptSet(Strict):
    """A versioned prompt file (ldrt_hpc/configs/prompts/*.yaml)."""

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
    return load_model(PromptSet, path)


def messages(prompts: PromptSet, task: str, caption: str, mentions: list[str]) -> list[dict[str, str]]:
    template = prompts.description if task == "description" else prompts.reasoning
    text = template.format(caption=caption.strip(), mentions="\n".join(mentions) or "(no further text)")
    return [{"role": "system", "content": prompts.system}, {"role": "user", "content": text}]
