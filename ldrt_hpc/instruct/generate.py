"""Writing the samples of a batch of figures: one prompt per (figure, task), reasoning replies that cannot be
parsed asked again (a new seed per attempt) up to `max_attempts`, every sample post-filtered and carrying its
provenance. The caller decides what a batch is and where finished figures are saved."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..config import QAConfig
from ..llm import Backend, Output, Sampling
from .filtering import FilterRules, post_filter
from .parsing import ParseError, parse_reasoning
from .prompts import PromptSet, messages
from .templates import TemplateMatcher


@dataclass
class Counts:
    """What the generation did, for the shard's marker."""

    prompts: int = 0
    completion_tokens: int = 0
    malformed: int = 0
    filtered: dict[str, int] = field(default_factory=dict)


@dataclass
class SampleWriter:
    prompts: PromptSet
    settings: QAConfig
    backend: Backend
    provenance: dict[str, str]
    """prompt_version, generator, config_hash: stored in every sample."""
    counts: Counts = field(default_factory=Counts)

    def __post_init__(self) -> None:
        self.matcher = TemplateMatcher(self.prompts.templates)
        self.rules = FilterRules(self.settings.min_words, self.settings.max_words)

    def batch(self, figures: list[dict[str, Any]]) -> dict[int, list[dict[str, Any]]]:
        """The samples of each figure (by figure_index), in the configured task order."""
        samples: dict[int, list[dict[str, Any]]] = {f["figure_index"]: [] for f in figures}
        pending = [(figure, task, 1) for figure in figures for task in self.settings.tasks]
        while pending:
            attempt = pending[0][2]  # every item of a round is at the same attempt
            outputs = self.backend.generate(
                [messages(self.prompts, task, figure["caption"], [m for m in figure["mentions"].split("\n") if m])
                 for figure, task, _ in pending],
                Sampling(self.settings.temperature, 1.0, self.settings.max_tokens, self.settings.seed + attempt - 1))
            retry = []
            for (figure, task, attempt), output in zip(pending, outputs):
                sample = self._sample(figure, task, attempt, output)
                if sample is None:
                    retry.append((figure, task, attempt + 1))
                else:
                    samples[figure["figure_index"]].append(sample)
            pending = retry
        order = self.settings.tasks
        return {index: sorted(items, key=lambda s: order.index(s["task"])) for index, items in samples.items()}

    def _sample(self, figure: dict[str, Any], task: str, attempt: int, output: Output) -> dict[str, Any] | None:
        """The sample of one reply; None when a reasoning reply cannot be parsed and attempts are left."""
        self.counts.prompts += 1
        self.counts.completion_tokens += output.completion_tokens
        sample = {"sample_id": f"{figure['paper_id']}:{figure['fig_type']}{figure['name']}:{task}",
                  "paper_id": figure["paper_id"], "figure_name": figure["name"], "fig_type": figure["fig_type"],
                  "figure_index": figure["figure_index"], "page": figure["page"], "task": task,
                  "template_index": -1, "template_score": 0.0, "attempts": attempt, **self.provenance}
        if task == "description":
            template, score = self.matcher.best(output.text)
            sample.update(question=self.prompts.templates[template], answer=output.text.strip(),
                          template_index=template, template_score=score)
            return self._filtered(sample, sample["answer"])
        try:
            question, answer = parse_reasoning(output.text)
        except ParseError as exc:
            self.counts.malformed += 1
            if attempt < self.settings.max_attempts:
                return None
            return {**sample, "question": "", "answer": output.text.strip(), "kept": False,
                    "reason": f"malformed: {exc}"}
        sample.update(question=question, answer=answer)
        return self._filtered(sample, question + "\n" + answer)

    def _filtered(self, sample: dict[str, Any], text: str) -> dict[str, Any]:
        reason = post_filter(text, self.rules)
        if reason:
            self.counts.filtered[reason] = self.counts.filtered.get(reason, 0) + 1
        return {**sample, "kept": not reason, "reason": reason}
