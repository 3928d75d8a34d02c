"""Hallucination measures of one answer against its figure's ground truth: pure functions, no I/O.

The ground truth ("reference") is what the paper says about the figure: its caption followed by the sentences of
the paper that mention it (the `context` stage's `mentions`), built by `reference_text`. The `qa` reference answer
is *not* used: it is itself LLM-written.

Definitions (each one is used everywhere in this module):

- **Normalised text** (`normalize`): Unicode NFKC (the micro sign becomes Greek mu, a non-breaking hyphen a
  hyphen), every Unicode dash or minus (U+2010-U+2015, U+2212, U+FE58, U+FE63, U+FF0D) replaced by '-', whitespace
  runs collapsed to one space, case-folded. Comparisons of terms are made on normalised text.
- **Word** (`WORD`): a run of word characters, possibly joined by internal hyphens or apostrophes:
  `\\w+(?:['-]\\w+)*` on the normalised text. "PD-1", "don't" and "dose-dependent" are one word each; "0.5" is two
  ("0" and "5"). Used for the length ratio and the hedge rate.
- **ROUGE-1/2/L**: F-measures of the `rouge-score` package (its tokenizer: lower case, ASCII letters and digits
  only, Porter stemmer when `stemming`), answer against reference. F is symmetric in the two texts.
- **Hedges** (`count_hedges`): each lexicon entry is matched on its own over the case-folded text, as whole words
  (no word character right before or after it; the words of a phrase separated by any whitespace), counting the
  non-overlapping occurrences of that entry (`re.finditer`). Entries are not matched against each other: "it is
  possible" counts once for "it is possible" *and* once for "possible" when both are in the lexicon. The total is
  the sum over entries. "Appears" counts for "appears"; "disappears" and "Mayo" count for nothing.
- **Length ratio**: answer words / reference words (NaN when the reference has no word).
- **Specific terms** (`specific_terms`), found in the answer (NFKC + dashes, case kept), distinct by normalised
  form, in order of first appearance; a span claimed by an earlier rule is not used by a later one:
  (a) *number with a unit*: a number (`12`, `0.5`, `1,000`; not preceded by a word character or by a digit and a
      '.' or ',') followed by nothing, one space or a hyphen, then a unit of `UNITS` (case-sensitive), optionally
      `/` and a second unit (`5 Gy/min`, `2 mg/kg`), not followed by a word character: "2 Gy", "0.5 mGy", "30 %",
      "14 days", "24h". In a range "0.5-2 Gy" the term is "2 Gy". A number right after "Fig.", "Figure(s)",
      "Table(s)" or "panel(s)" is a figure label ("Fig. 3d" is panel d, not 3 days) and is skipped.
  (b) *gene/protein/drug-like token*: a word that starts with a letter and contains a digit (p53, CD8, IL-6,
      CTLA-4, PD-1, A549, H2AX, Ki-67), or a hyphenated word with a part of two or more upper-case letters (and
      digits) and no all-lower-case part of three or more letters (TGF-β, NF-κB, 5-FU, DNA-PKcs; not
      "LDRT-induced", not "X-ray").
  (c) *capitalised multi-word term*: two or more consecutive capitalised words (letters only, hyphens and
      apostrophes inside, each hyphenated part starting with an upper-case letter: "Kaplan-Meier", "Parkinson's",
      not "LDRT-induced" or "X-ray"), separated by spaces or tabs only, none claimed by (a) or (b).
      When the run begins a sentence (start of text or line, or after . ! ? : ; possibly with markdown markers or
      a list number between) its first word is dropped, since it may be capitalised only for its position; what
      is left must still be two words: "the Kaplan Meier curve" and "The Kaplan Meier curve" give "Kaplan Meier",
      "Monte Carlo simulations show" at a sentence start gives nothing.
- **Supported**: a term is supported when it occurs in the normalised reference, split at spaces and hyphens into
  pieces that may there be joined by nothing, a space or a hyphen ("PD-1" is supported by "PD‑1", "PD1" and "pd 1";
  "30 %" by "30%"), with no word character right before or after it and, for a leading number, no digit and '.'
  or ',' before it ("2 Gy" is not supported by "12 Gy" or "0.2 Gy", but is by "1-2 Gy").
- **Unsupported rate**: unsupported terms / terms (NaN when the answer has no specific term, or no reference).
"""

from __future__ import annotations

import json
import math
import re
import statistics
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import Any

from ..config import DEFAULT_HEDGES

__all__ = ["DEFAULT_HEDGES", "UNITS", "WORD", "count_hedges", "item_metrics", "length_ratio", "normalize",
           "reference_text", "rouge", "specific_terms", "summarize", "unsupported", "words"]

WORD = re.compile(r"\w+(?:['-]\w+)*")
"""One word: word characters, possibly joined by internal hyphens or apostrophes."""

_DASHES = re.compile("[\u2010-\u2015\u2212\ufe58\ufe63\uff0d]")

UNITS = (
    # dose and dose rate (a "/unit" suffix is generic: Gy/min, mGy/h, Gy/fraction)
    "Gy", "cGy", "mGy", "μGy", "Sv", "mSv", "μSv", "Bq", "kBq", "MBq", "GBq", "keV", "MeV", "kV", "kVp", "MV",
    # share, time
    "%", "s", "sec", "second", "seconds", "min", "minute", "minutes", "h", "hr", "hrs", "hour", "hours", "d", "day",
    "days", "wk", "week", "weeks", "month", "months", "yr", "yrs", "year", "years",
    # amounts, concentrations, lengths, temperature, fold changes
    "g", "mg", "μg", "ng", "kg", "mL", "ml", "μL", "μl", "L", "M", "mM", "μM", "nM", "nm", "μm", "mm", "cm", "m",
    "°C", "fold",
    # counted things
    "fraction", "fractions", "fx", "cycle", "cycles", "cell", "cells", "mouse", "mice", "rat", "rats", "patient",
    "patients",
)
"""Units of rule (a), after NFKC (so the micro sign is Greek mu), matched case-sensitively, longest first."""

_NUMBER_START = r"(?<!\w)(?<!\d[.,])"
_UNIT = "(?:" + "|".join(re.escape(u) for u in sorted(UNITS, key=len, reverse=True)) + ")"
_NUMBER_UNIT = re.compile(_NUMBER_START + r"\d+(?:[.,]\d+)?(?: |-)?" + _UNIT + f"(?:/{_UNIT})?" + r"(?!\w)")
_CAPITALISED = re.compile(r"[^\W\d_][^\W\d_]*(?:['-][^\W\d_]+)*")
_FIGURE_LABEL = re.compile(r"(?i)\b(?:fig(?:ure)?s?\.?|tables?|panels?)[ \t]*$")
_SENTENCE_START = re.compile(r"(?:^|[.!?:;\n])[ \t*#>•\-]*(?:\d+[.)][ \t]*)?$")


# --------------------------------------------------------------------------------------------------------------
# Text


def _dashes_nfkc(text: str) -> str:
    return _DASHES.sub("-", unicodedata.normalize("NFKC", text))


def normalize(text: str) -> str:
    """NFKC, Unicode dashes -> '-', whitespace collapsed, case-folded: the form in which terms are compared."""
    return " ".join(_dashes_nfkc(text).split()).casefold()


def words(text: str) -> list[str]:
    """The words of a text (`WORD` on its normalised form)."""
    return WORD.findall(normalize(text))


def reference_text(caption: str, mentions: str) -> str:
    """The ground truth of a figure: its caption, then the sentences that mention it ('' when both are empty)."""
    return "\n".join(part for part in (caption.strip(), mentions.strip()) if part)


def length_ratio(answer_words: int, reference_words: int) -> float:
    """Answer words per reference word (NaN without reference words: there is nothing to compare with)."""
    return answer_words / reference_words if reference_words else math.nan


# --------------------------------------------------------------------------------------------------------------
# ROUGE


@lru_cache(maxsize=2)
def _scorer(stemming: bool):
    from rouge_score import rouge_scorer  # the analysis extra; imported when first scored

    return rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=stemming)


def rouge(answer: str, reference: str, stemming: bool = True) -> dict[str, float]:
    """ROUGE-1, ROUGE-2 and ROUGE-L F-measures of the answer against the reference (NaN for all three when the
    reference is empty: a 0 would read as a wrong answer)."""
    if not reference.strip():
        return {"rouge1": math.nan, "rouge2": math.nan, "rougeL": math.nan}
    scores = _scorer(stemming).score(reference, answer)  # score(target, prediction)
    return {name: float(score.fmeasure) for name, score in scores.items()}


# --------------------------------------------------------------------------------------------------------------
# Hedging


@lru_cache(maxsize=256)
def _hedge_pattern(hedge: str) -> re.Pattern[str]:
    # whole words: no word character on either side; the words of a phrase may be split by any whitespace
    body = r"\s+".join(re.escape(part) for part in hedge.casefold().split())
    return re.compile(rf"(?<!\w){body}(?!\w)")


def count_hedges(text: str, hedges: Iterable[str]) -> dict[str, int]:
    """Occurrences of each hedge in the text (every entry, zeros included, in lexicon order); see the module doc."""
    folded = normalize(text)
    return {hedge: sum(1 for _ in _hedge_pattern(hedge).finditer(folded)) for hedge in hedges}


# --------------------------------------------------------------------------------------------------------------
# Specific terms


def _gene_like(word: str) -> bool:
    """Rule (b) of the module doc."""
    if word[0].isalpha() and any(c.isdigit() for c in word):
        return True
    parts = word.split("-")
    upper = any(p.isupper() and sum(c.isupper() for c in p) >= 2 for p in parts)
    plain = any(len(p) >= 3 and p.isascii() and p.isalpha() and p.islower() for p in parts)
    return len(parts) >= 2 and upper and not plain


def _capitalised(word: str) -> bool:
    """Letters only (apostrophes, hyphens inside), every hyphenated part upper-case first: Kaplan-Meier, Parkinson's;
    not LDRT-induced, X-ray, p53."""
    return _CAPITALISED.fullmatch(word) is not None and all(part[:1].isupper() for part in word.split("-"))


def _overlaps(span: tuple[int, int], claimed: list[tuple[int, int]]) -> bool:
    return any(start < span[1] and span[0] < end for start, end in claimed)


def _quantities(text: str) -> list[tuple[int, int]]:
    """Rule (a): spans of numbers with a unit, except figure labels ("Fig. 3d" is panel d, not 3 days)."""
    return [m.span() for m in _NUMBER_UNIT.finditer(text) if not _FIGURE_LABEL.search(text[: m.start()])]


def _gene_tokens(text: str, claimed: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Rule (b): spans of gene/protein/drug-like words outside the claimed spans."""
    return [m.span() for m in WORD.finditer(text) if _gene_like(m.group()) and not _overlaps(m.span(), claimed)]


def _capitalised_runs(text: str, claimed: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Rule (c): spans of runs of capitalised words outside the claimed spans, separated by spaces or tabs."""
    found: list[tuple[int, int]] = []
    run: list[re.Match] = []
    for match in WORD.finditer(text):
        usable = _capitalised(match.group()) and not _overlaps(match.span(), claimed)
        if usable and (not run or re.fullmatch(r"[ \t]+", text[run[-1].end() : match.start()])):
            run.append(match)
            continue
        found += _run_span(text, run)
        run = [match] if usable else []
    return found + _run_span(text, run)


def _run_span(text: str, run: list[re.Match]) -> list[tuple[int, int]]:
    if run and _SENTENCE_START.search(text[: run[0].start()]):
        run = run[1:]  # capitalised perhaps only because it begins a sentence
    return [(run[0].start(), run[-1].end())] if len(run) >= 2 else []


def specific_terms(answer: str) -> list[str]:
    """The distinct specific terms of a text (rules (a), (b), (c) of the module doc), in order of appearance."""
    text = _dashes_nfkc(answer)
    spans = _quantities(text)
    spans += _gene_tokens(text, spans)
    spans += _capitalised_runs(text, spans)
    distinct: dict[str, str] = {}
    for start, end in sorted(spans):
        distinct.setdefault(normalize(text[start:end]), text[start:end])
    return list(distinct.values())


@lru_cache(maxsize=4096)
def _support_pattern(term: str) -> re.Pattern[str]:
    pieces = [re.escape(p) for p in re.split(r"[ -]+", normalize(term)) if p]
    start = _NUMBER_START if pieces and pieces[0][:1].isdigit() else r"(?<!\w)"
    return re.compile(start + r"[ -]?".join(pieces) + r"(?!\w)")


def unsupported(terms: Sequence[str], reference: str) -> list[str]:
    """The terms that do not occur in the reference (see 'Supported' in the module doc)."""
    folded = normalize(reference)
    return [term for term in terms if not _support_pattern(term).search(folded)]


# --------------------------------------------------------------------------------------------------------------
# One answer, and a summary


def item_metrics(answer: str, reference: str, hedges: list[str], stemming: bool = True,
                 max_examples: int = 5) -> dict[str, Any]:
    """Every measure of one answer against its reference: rouge1, rouge2, rougeL, answer_words,
    reference_words, length_ratio, hedges (total), hedge_counts (dict, non-zero entries only), specific_terms,
    unsupported_terms, unsupported_rate, unsupported_examples (list, at most `max_examples`). An empty reference
    gives NaN ROUGE, length ratio and unsupported rate (hedges and terms are still counted)."""
    answer_words, reference_words = len(words(answer)), len(words(reference))
    counts = {h: n for h, n in count_hedges(answer, hedges).items() if n}
    terms = specific_terms(answer)
    missing = unsupported(terms, reference) if reference.strip() else []
    has_rate = bool(terms) and bool(reference.strip())
    return {
        **rouge(answer, reference, stemming),
        "answer_words": answer_words, "reference_words": reference_words,
        "length_ratio": length_ratio(answer_words, reference_words),
        "hedges": sum(counts.values()), "hedge_counts": counts,
        "specific_terms": len(terms), "unsupported_terms": len(missing),
        "unsupported_rate": len(missing) / len(terms) if has_rate else math.nan,
        "unsupported_examples": missing[:max_examples],
    }


def _finite(values: Iterable[float]) -> list[float]:
    return [float(v) for v in values if v is not None and not math.isnan(float(v))]


def _mean(values: Iterable[float]) -> float:
    kept = _finite(values)
    return statistics.fmean(kept) if kept else math.nan


def _median(values: Iterable[float]) -> float:
    kept = _finite(values)
    return float(statistics.median(kept)) if kept else math.nan


def _hedge_counts(item: dict[str, Any]) -> dict[str, int]:
    # stage rows hold JSON text, item_metrics a dict
    counts = item["hedge_counts"]
    return json.loads(counts) if isinstance(counts, str) else counts


def _summary(model: str, task: str, rows: list[dict[str, Any]], hedges: Sequence[str] | None) -> dict[str, Any]:
    totals: Counter[str] = Counter()
    for row in rows:
        totals.update(_hedge_counts(row))
    if hedges is not None:
        per_hedge = {h: totals.get(h, 0) for h in hedges}
    else:
        per_hedge = dict(sorted(totals.items(), key=lambda kv: (-kv[1], kv[0])))
    answer_words = sum(int(r["answer_words"]) for r in rows)
    hedge_total = sum(int(r["hedges"]) for r in rows)
    summary: dict[str, Any] = {"model": model, "task": task, "n": len(rows),
                               "n_reference": sum(not math.isnan(r["rouge1"]) for r in rows),
                               "n_unsupported_rate": len(_finite(r["unsupported_rate"] for r in rows))}
    for name in ("rouge1", "rouge2", "rougeL"):
        summary[f"{name}_mean"] = _mean(r[name] for r in rows)
        summary[f"{name}_median"] = _median(r[name] for r in rows)
    summary.update({
        "length_ratio_mean": _mean(r["length_ratio"] for r in rows),
        "length_ratio_median": _median(r["length_ratio"] for r in rows),
        "answer_words": answer_words, "reference_words": sum(int(r["reference_words"]) for r in rows),
        "hedges": hedge_total, "hedge_counts": per_hedge,
        # pooled over the group's words (a mean of per-answer rates would weigh a 3-word answer like a long one)
        "hedges_per_1000_words": 1000 * hedge_total / answer_words if answer_words else math.nan,
        "specific_terms": sum(int(r["specific_terms"]) for r in rows),
        "unsupported_terms": sum(int(r["unsupported_terms"]) for r in rows),
        "unsupported_rate_mean": _mean(r["unsupported_rate"] for r in rows),
        "truncated": sum(bool(r.get("truncated", False)) for r in rows),
    })
    return summary


def summarize(items: list[dict], hedges: Sequence[str] | None = None, overall: bool = True) -> list[dict]:
    """One row per model and task (models in order of first appearance, tasks sorted, then task 'overall' over
    all tasks when `overall`): n (items), n_reference (items with a reference), n_unsupported_rate (items with
    a defined unsupported rate: specific terms and a reference), mean and median ROUGE-1/2/L and length ratio,
    total answer and reference words, total hedges, hedge_counts (per-hedge totals: every entry of `hedges` in
    lexicon order when given, else the non-zero ones, most frequent first, ties by term), hedges_per_1000_words
    (pooled), total specific and unsupported terms, mean unsupported rate, truncated answers. Means and medians
    skip NaN (NaN when nothing is left).

    `items` are stage rows (`hedge_counts` JSON text) or `item_metrics` results (a dict) with 'model' and 'task'."""
    models = list(dict.fromkeys(item["model"] for item in items))
    rows = []
    for model in models:
        mine = [item for item in items if item["model"] == model]
        for task in sorted({item["task"] for item in mine}):
            rows.append(_summary(model, task, [item for item in mine if item["task"] == task], hedges))
        if overall:
            rows.append(_summary(model, "overall", mine, hedges))
    return rows
