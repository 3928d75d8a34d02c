"""LLM-judge building blocks: the judge prompts (ldrt_hpc/configs/judges/*.yaml), the chat messages of the two
protocols, the parsing of the judges' scores, the retry policy and the position-bias bookkeeping.

Two protocols:
- 'review' (LLaVA's): the judge scores two answers, the reference answer of the instruction data (Assistant 1)
  and the model's (Assistant 2), 1-10 each; with position-bias control each pair is also judged in the swapped
  order and the scores are averaged over the orders that parsed.
- 'single' (the paper's Table 1): the judge scores the model's answer alone, 0-10, against the reference.

Everything here is pure: the `judge` stage supplies the LLM call and stores the results.
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field, model_validator

from ..config import SHIPPED, Strict, load_model

DEFAULT_JUDGE_PROMPTS = SHIPPED / "judges" / "judge.yaml"
"""The shipped judge prompts (stages.judge.prompts by default)."""

NO_CONTEXT = "(no further text)"
"""What stands in the context slot when the paper has no sentence that mentions the figure (as in the QA prompts)."""


# --------------------------------------------------------------------------------------------------------------
# Prompts


def _fields(template: str) -> set[str]:
    """The placeholder names of a str.format template (ValueError on a stray brace)."""
    return {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}


class _ProtocolPrompt(Strict):
    """The three texts of one judging protocol; `PLACEHOLDERS` are what its user message must name, exactly."""

    PLACEHOLDERS: ClassVar[frozenset[str]] = frozenset()
    system: str = Field(min_length=1)
    """System prompt of the judge."""
    user: str = Field(min_length=1)
    """User message; the protocol's placeholders ({caption} {context} {question} ... {rule}) are filled in."""
    rule: str = Field(min_length=1)
    """The instructions at the end of the user message ([System] section): what to rate and the reply format."""

    @model_validator(mode="after")
    def _placeholders(self) -> _ProtocolPrompt:
        _check_placeholders(self.user, set(self.PLACEHOLDERS))
        return self


class ReviewPrompt(_ProtocolPrompt):
    """LLaVA's review protocol: two answers, a score each."""

    PLACEHOLDERS = frozenset({"caption", "context", "question", "answer_1", "answer_2", "rule"})


class SinglePrompt(_ProtocolPrompt):
    """Single-answer scoring: the model's answer alone, 0-10, against the reference (the paper's Table 1)."""

    PLACEHOLDERS = frozenset({"caption", "context", "question", "reference", "answer", "rule"})


def _check_placeholders(template: str, expected: set[str]) -> None:
    """A typo in a placeholder, or a missing one (the judge would never see that answer), is a load-time error,
    not a KeyError in the middle of a judge job."""
    try:
        found = _fields(template)
    except ValueError as exc:
        raise ValueError(f"user: bad template ({exc}; write literal braces as {{{{ and }}}})") from None
    if found != expected:
        problems = [f"unknown {sorted(found - expected)}" if found - expected else "",
                    f"missing {sorted(expected - found)}" if expected - found else ""]
        raise ValueError(f"user: placeholders {' and '.join(p for p in problems if p)} "
                         f"(it needs exactly {', '.join('{' + n + '}' for n in sorted(expected))})")


class JudgePrompts(Strict):
    """A versioned judge prompt file (ldrt_hpc/configs/judges/*.yaml)."""

    version: str = Field(min_length=1)
    """Stored in every judgement: change the text, bump the version."""
    review: ReviewPrompt
    """LLaVA's two-answer review protocol."""
    single: SinglePrompt
    """Single-answer 0-10 scoring."""


def load_judge_prompts(path: str | Path = DEFAULT_JUDGE_PROMPTS) -> JudgePrompts:
    """Read a judge prompt file; every problem is a ConfigError naming the file and the key."""
    return load_model(JudgePrompts, path)


@dataclass(frozen=True)
class JudgeItem:
    """One answer to judge, with what the judge needs to know about the figure."""

    sample_id: str
    """The eval sample's id."""
    task: str
    """'description' or 'reasoning' (scores are reported per task)."""
    caption: str
    """The figure's caption."""
    context: str
    """The paper's sentences that mention the figure, joined by newlines ('' when there are none)."""
    question: str
    """The question the model was asked."""
    reference: str
    """The reference answer from the instruction data."""
    answer: str
    """The model's answer."""


def _slots(item: JudgeItem) -> dict[str, str]:
    return {"caption": item.caption.strip(), "context": item.context.strip() or NO_CONTEXT,
            "question": item.question.strip()}


def review_messages(prompts: JudgePrompts, item: JudgeItem, swapped: bool) -> list[dict[str, str]]:
    """System + user chat messages of the review protocol. Forward: Assistant 1 is the reference, Assistant 2 the
    model; swapped: the other way round (so the judge's first score is then the model's)."""
    first, second = (item.answer, item.reference) if swapped else (item.reference, item.answer)
    text = prompts.review.user.format(**_slots(item), answer_1=first.strip(), answer_2=second.strip(),
                                      rule=prompts.review.rule)
    return [{"role": "system", "content": prompts.review.system}, {"role": "user", "content": text}]


def single_messages(prompts: JudgePrompts, item: JudgeItem) -> list[dict[str, str]]:
    """System + user chat messages of single-answer scoring."""
    text = prompts.single.user.format(**_slots(item), reference=item.reference.strip(), answer=item.answer.strip(),
                                      rule=prompts.single.rule)
    return [{"role": "system", "content": prompts.single.system}, {"role": "user", "content": text}]


# --------------------------------------------------------------------------------------------------------------
# Parsing the judges' replies


class ScoreParseError(ValueError):
    """A judge reply that holds no usable score; the message is the reason (stored with the missing judgement)."""


LOW, HIGH = 0.0, 10.0
"""Valid scores (the review rule asks for 1-10, the single rule for 0-10; both fit 0-10)."""

_NUMBER = re.compile(r"(?<![\w.\-/])(-?\d+(?:\.\d+)?)(?!\w|\.\d)")
"""A stand-alone number: not part of a word or identifier ('p53', '53BP1', 'H2AX', '2A'), not a denominator."""

_REFERENCE_BEFORE = re.compile(
    r"(?:\b(?:fig(?:ure)?s?|tables?|tab|panels?|supplementary|suppl|days?|weeks?|months?|years?|hours?|"
    r"assistants?|answers?|eq(?:uation)?s?|sections?|steps?|lines?|refs?|groups?|doses?|"
    r"(?:scale|range)\s+(?:of|from))\.?\s*"
    r"(?:\d+(?:\.\d+)?[a-z]?\s*(?:,|and|&|-|–|to|or)\s*)*"  # 'Figures 2 and 3', 'days 7-14', 'scale of 1 to 10'
    r"|\bp\s*[<=>≤≥]\s*|\bn\s*=\s*|/\s*|\bout\s+of\s+)$",
    re.I)
"""Text right before a number that makes it a reference or a measure, not a score: 'Figure 2', 'Fig. 3',
'Table 1', 'panel 4', 'day 14', 'Assistant 1' (a label), 'p < 0.05', 'n = 6', the 10 of '8/10' and 'out of 10',
the bounds of 'a scale of 1 to 10'."""

_UNIT_AFTER = re.compile(
    r"\s*(?:%|°|×|(?:[cm]?Gy|Gray|Sv|mSv|Bq|[kM]eV|[kM]V|h|hrs?|hours?|min(?:utes?)?|sec(?:onds?)?|d|days?|"
    r"weeks?|wks?|months?|years?|mm|cm|[µμu]m|nm|mg|kg|g|m[lL]|[µμu][lL]|[mnµμu]M|fold|x|cells?|mice|rats|"
    r"patients?|samples?|genes?|times|per)\b)",
    re.I)
"""Text right after a number that makes it a measure: '0.5 Gy', '24 h', '14 days', '50%', '3 mice'."""

_LABELED = re.compile(
    r"\b(?:overall\s+)?(?:score|rating|grade)\b(?:\s*\([^)\n]*\))?\s*(?:[:=\-–]|\bis\b|\bof\b)?\s*"
    r"(?:\bis\b|\bof\b)?\s*(-?\d+(?:\.\d+)?)(?!\w|\.\d|\s*(?:-|–|to)\s*\d)",
    re.I)
"""'Score: 8', 'Rating: 7.5', 'Overall score (0-10): 6', 'a score of 8'; not 'a score of 0 to 10'."""

_DOUBLE_BRACKETS = re.compile(r"\[\[\s*(-?\d+(?:\.\d+)?)\s*\]\]")
"""'[[8]]', the format of the MT-Bench judges."""

_OUT_OF_TEN = re.compile(r"(?<![\w.\-/])(-?\d+(?:\.\d+)?)\s*(?:/|out\s+of)\s*10(?:\.0+)?(?!\w|\.\d)", re.I)
"""'8/10', '7.5 out of 10'."""

_ASSISTANT_SCORE = {
    k: re.compile(rf"\bassistant\s*{k}\b[^\d\n]{{0,40}}?(?<![\w.\-/])(-?\d+(?:\.\d+)?)(?!\w|\.\d)", re.I)
    for k in (1, 2)}
"""'Assistant 1: 8', 'Assistant 2 receives a score of 6' (the same line, the first number after the label)."""

_MARKDOWN = re.compile(r"\*\*?|__?|`+|#+|~~")
"""Bold, italics, code, headings and strike-through: dropped before numbers are looked for ('**8**' -> ' 8 ')."""


def _strip_markdown(text: str) -> str:
    return _MARKDOWN.sub(" ", text)


def _check_range(value: float, what: str) -> float:
    # An out-of-range score is the judge misreading the scale (or a number that is not a score): a retry beats a
    # clamped or silently skipped value.
    if not LOW <= value <= HIGH:
        raise ScoreParseError(f"{what} {value:g} is outside {LOW:g}-{HIGH:g}")
    return value


def _question_numbers(question: str) -> set[float]:
    return {float(m.group(1)) for m in _NUMBER.finditer(question)}


def _candidates(line: str, question: str) -> list[float]:
    """The numbers in a line that may be scores, in order.

    Skipped: a number named as a reference or a measure by the text around it ('Figure 2', 'day 14', '0.5 Gy',
    'Assistant 1', the 10 of '8/10'), and a number that the question holds when it is outside 0-10 (the judge
    quoting the question: '24 weeks' -> 24). Any other number is kept, even when the question holds it (a
    question about 'group 7' must not forbid the score 7); kept numbers outside 0-10 reject the reply.
    """
    asked = _question_numbers(question)
    found = []
    for match in _NUMBER.finditer(line):
        value = float(match.group(1))
        if _REFERENCE_BEFORE.search(line[:match.start()]) or _UNIT_AFTER.match(line, match.end()):
            continue
        if value in asked and not LOW <= value <= HIGH:
            continue
        found.append(value)
    return found


def _first_lines(text: str) -> list[str]:
    """The non-empty lines from the first one on, after stripping markdown; leading headers without a number
    ('Scores:', 'Evaluation:') are skipped, so that the score line is the first one."""
    lines = [line.strip() for line in _strip_markdown(text).splitlines() if line.strip()]
    while lines and lines[0].endswith(":") and not _NUMBER.search(lines[0]):
        lines.pop(0)
    return lines


def parse_pair(text: str, question: str = "") -> tuple[float, float]:
    """(Assistant 1's score, Assistant 2's score) from a review-protocol reply.

    The two numbers of the first line (LLaVA's format), markdown stripped ('**8** **6**', '[[8]] [[6]]', '8, 6');
    else 'Assistant 1: 8' and 'Assistant 2: 6' labels anywhere. Numbers that are references or measures
    ('Figure 2', '0.5 Gy', 'day 14'; see `_candidates`) are not scores. ScoreParseError when there is no pair
    or a score is outside 0-10.
    """
    lines = _first_lines(text)
    if not lines:
        raise ScoreParseError("empty reply")
    first = _candidates(lines[0], question)
    if len(first) >= 2:
        return _check_range(first[0], "Assistant 1's score"), _check_range(first[1], "Assistant 2's score")
    plain = "\n".join(lines)
    labeled = [_ASSISTANT_SCORE[k].search(plain) for k in (1, 2)]
    if labeled[0] and labeled[1]:
        return (_check_range(float(labeled[0].group(1)), "Assistant 1's score"),
                _check_range(float(labeled[1].group(1)), "Assistant 2's score"))
    if first:
        raise ScoreParseError(f"one score on the first line ({first[0]:g}), two expected: {lines[0][:80]!r}")
    raise ScoreParseError(f"no scores on the first line: {lines[0][:80]!r}")


def _explicit(text: str) -> float | None:
    """The first score the text states in so many words: '[[8]]', 'Score: 8' / 'Rating: 7.5', '8/10'."""
    for pattern, what in ((_DOUBLE_BRACKETS, "[[score]]"), (_LABELED, "labelled score"), (_OUT_OF_TEN, "score /10")):
        match = pattern.search(_strip_markdown(text))
        if match:
            return _check_range(float(match.group(1)), what)
    return None


def parse_single(text: str, question: str = "") -> float:
    """The score of a single-answer reply.

    In order: a score stated explicitly on the first line ('Score: 8', 'Rating: 7.5', '[[8]]', '8/10'); a first
    line that is just a number; a score stated explicitly further down; a first line with exactly one number
    that may be a score (references and measures such as 'Figure 2', '0.5 Gy' are not; see `_candidates`). The
    first line wins over the rest because the rule asks for the score there, and an explanation may quote other
    scores ('a score of 9 would need ...'). ScoreParseError when there is none, when the first line holds several
    numbers and nothing says which is the score, or when the score is outside 0-10.
    """
    lines = _first_lines(text)
    if not lines:
        raise ScoreParseError("empty reply")
    value = _explicit(lines[0])
    if value is not None:
        return value
    bare = re.fullmatch(r"(-?\d+(?:\.\d+)?)\s*\.?", lines[0])
    if bare:
        return _check_range(float(bare.group(1)), "score")
    value = _explicit(text)
    if value is not None:
        return value
    found = _candidates(lines[0], question)
    if len(found) == 1:
        return _check_range(found[0], "score")
    if found:
        raise ScoreParseError(f"{len(found)} numbers on the first line and no 'Score: N': {lines[0][:80]!r}")
    raise ScoreParseError(f"no 'Score: N' and no score on the first line: {lines[0][:80]!r}")


# --------------------------------------------------------------------------------------------------------------
# Retry policy


@dataclass(frozen=True)
class JudgeResult:
    """One judgement: the parsed value, or None when every attempt failed to parse (missing, never -1)."""

    value: Any
    """The parsed score (a float, or a pair for the review protocol); None when missing."""
    raw: list[str] = field(default_factory=list)
    """Every reply of the judge, in order (kept for audit, also when one parsed)."""
    attempts: int = 0
    """How many replies were asked for."""
    error: str | None = None
    """Why the last reply could not be parsed; None when a reply parsed."""


def judge_once(generate: Callable[[list[dict[str, str]], int], str], messages: list[dict[str, str]],
               parse: Callable[[str], Any], retries: int = 1) -> JudgeResult:
    """Ask the judge (`generate(messages, attempt)`, attempt 0, 1, ...: the stage may change the seed with it) and
    parse its reply; a reply that does not parse is asked again `retries` times, then the judgement is missing.

    A missing judgement is value None with the reason, NEVER a score of -1: LLaVA's review scripts write -1 for
    an unparsable reply and their summary averages it in, which pulls a model's mean down by judge formatting
    noise. Missing judgements are left out of the means and counted instead. Only ScoreParseError is retried:
    an error of the call itself (HTTP, out of memory) is the stage's to handle.
    """
    if retries < 0:
        raise ValueError(f"retries must be >= 0, got {retries}")
    raw: list[str] = []
    error = None
    for attempt in range(retries + 1):
        text = generate(messages, attempt)
        raw.append(text)
        try:
            value = parse(text)
        except ScoreParseError as exc:
            error = str(exc)
            continue
        return JudgeResult(value=value, raw=raw, attempts=attempt + 1)
    return JudgeResult(value=None, raw=raw, attempts=retries + 1, error=f"{retries + 1} replies unparsable; last: {error}")


# --------------------------------------------------------------------------------------------------------------
# Position bias


@dataclass(frozen=True)
class ReviewScore:
    """The review protocol's scores of one answer, over the orders that parsed."""

    reference_score: float | None
    """Mean score of the reference answer (None when no order parsed)."""
    model_score: float | None
    """Mean score of the model's answer (None when no order parsed)."""
    orders: int
    """How many orders parsed (0, 1 or 2)."""
    flipped: bool | None
    """True when the two orders disagree on which answer is better (reference better / tie / model better);
    None unless both orders parsed."""


def _verdict(reference: float, model: float) -> int:
    return (reference > model) - (reference < model)


def combine_review(forward: tuple[float, float] | None, swapped: tuple[float, float] | None) -> ReviewScore:
    """Merge the two orders of one pair. `forward` is (reference, model) as the judge scored Assistant 1 and 2;
    `swapped` is the judge's (Assistant 1, Assistant 2) of the swapped order, i.e. (model, reference). None: that
    order is missing (not asked, or unparsable)."""
    pairs = []  # (reference, model)
    if forward is not None:
        pairs.append((float(forward[0]), float(forward[1])))
    if swapped is not None:
        pairs.append((float(swapped[1]), float(swapped[0])))  # in swapped order Assistant 1 is the model
    if not pairs:
        return ReviewScore(reference_score=None, model_score=None, orders=0, flipped=None)
    flipped = _verdict(*pairs[0]) != _verdict(*pairs[1]) if len(pairs) == 2 else None
    return ReviewScore(reference_score=sum(p[0] for p in pairs) / len(pairs),
                       model_score=sum(p[1] for p in pairs) / len(pairs), orders=len(pairs), flipped=flipped)


def flip_rate(scores: Iterable[ReviewScore]) -> float | None:
    """Share of the pairs judged in both orders whose verdict flipped with the order (None when there are none)."""
    both = [score.flipped for score in scores if score.flipped is not None]
    return sum(both) / len(both) if both else None
