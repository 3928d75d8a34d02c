"""The hallucination measures on hand-made answers whose values are worked out by hand."""

from __future__ import annotations

import json
import math

import pytest

from ldrt_hpc.analysis.hallucination import (
    DEFAULT_HEDGES,
    count_hedges,
    item_metrics,
    normalize,
    reference_text,
    rouge,
    specific_terms,
    summarize,
    unsupported,
    words,
)

pytest.importorskip("rouge_score")

EXACT = 1e-12


def test_rouge_by_hand_and_what_stemming_changes():
    # Porter stems: treated, treats -> treat; cells, cell -> cell; but treatment stays treatment
    # unigrams: answer [the, cell, treat], reference [treat, cell]: 2 shared, P = 2/3, R = 1, F = 0.8
    # bigrams: reference (treat cell) is not in the answer: 0; LCS = 1: P = 1/3, R = 1/2, F = 0.4
    stemmed = rouge("the cell treats", "treated cells")
    assert stemmed["rouge1"] == pytest.approx(0.8, abs=EXACT)
    assert stemmed["rouge2"] == 0.0
    assert stemmed["rougeL"] == pytest.approx(0.4, abs=EXACT)
    assert rouge("the cell treats", "treated cells", stemming=False) == {"rouge1": 0.0, "rouge2": 0.0, "rougeL": 0.0}
    assert rouge("treatment", "treated")["rouge1"] == 0.0
    assert rouge("Treated cells.", "treated cells")["rouge2"] == 1.0  # case and punctuation do not count
    assert all(math.isnan(v) for v in rouge("anything", " ").values())


def test_hedges_are_whole_words_case_folded_each_phrase_on_its_own():
    text = ("It Appears that the signal disappears; this may help Mayo Clinic patients. It is possible, and "
            "possibly likely. Could  be\nunclear. MAY might-have")
    counts = count_hedges(text, DEFAULT_HEDGES)
    assert list(counts) == list(DEFAULT_HEDGES)  # every entry, in lexicon order
    assert {h: n for h, n in counts.items() if n} == {
        "appears": 1,  # "Appears"; not "disappears"
        "may": 2,  # "may" and "MAY"; not "Mayo"
        "might": 1,  # "might-have": a hyphen is not a word character
        "it is possible": 1, "possible": 1,  # the phrase and the word inside it count independently
        "possibly": 1, "likely": 1, "could be": 1, "unclear": 1,  # "Could  be" across spaces; "unclear" after \n
    }
    assert count_hedges("may may may", ["may"]) == {"may": 3}
    assert count_hedges("could be could be", ["could be", "be"]) == {"could be": 2, "be": 2}


def test_words_and_length_ratio():
    assert words("PD‑1 blockade doesn't work: 0.5 Gy!") == ["pd-1", "blockade", "doesn't", "work", "0", "5", "gy"]
    metrics = item_metrics("PD-1 blockade doesn't work", "one two three four five six seven eight", [])
    assert (metrics["answer_words"], metrics["reference_words"], metrics["length_ratio"]) == (4, 8, 0.5)
    assert math.isnan(item_metrics("some words", "", [])["length_ratio"])


def test_normalize_folds_case_dashes_and_spaces():
    assert normalize("PD\u20111  and\tTGF\u2013β\nCTLA\u22124 5 µGy") == "pd-1 and tgf-β ctla-4 5 μgy"


def test_specific_terms_follow_the_three_rules():
    text = ("The Kaplan Meier curve after 2 Gy, 0.5 mGy, 30 %, 14 days, 10 cGy, 5 Gy/min and 24h (Fig. 3d): "
            "PD-1, CTLA-4, p53, IL-6, TGF\u2011β, CD8, 5-FU, LDRT-induced X-ray damage, 3D spheroids. "
            "Monte Carlo simulations agree with the Monte Carlo Model of the New England group.")
    assert specific_terms(text) == [
        "Kaplan Meier",  # "The" dropped: it begins the text
        "2 Gy", "0.5 mGy", "30 %", "14 days", "10 cGy", "5 Gy/min", "24h",  # not "3d": a figure panel
        "PD-1", "CTLA-4", "p53", "IL-6", "TGF-β", "CD8", "5-FU",  # not LDRT-induced, X-ray, 3D
        "Monte Carlo Model", "New England",  # not the sentence-initial "Monte Carlo" (one word left)
    ]
    assert specific_terms("2 Gy then 2 gy, and PD-1, pd-1") == ["2 Gy", "PD-1"]  # distinct, first spelling kept
    assert specific_terms("A dose of 12 Gy") == ["12 Gy"]


def test_unsupported_terms_against_caption_and_context():
    reference = reference_text("Survival after 2 Gy and PD\u20111 blockade.", "Kaplan-Meier curves are shown.")
    assert reference == "Survival after 2 Gy and PD\u20111 blockade.\nKaplan-Meier curves are shown."
    answer = ("After 2 Gy and 5 Gy the PD-1 level rose, as the Kaplan Meier analysis and the Monte Carlo Model "
              "showed; 30% of cells responded.")
    assert unsupported(["2 Gy", "5 Gy", "PD-1", "Kaplan Meier", "Monte Carlo Model", "30%"], reference) == [
        "5 Gy", "Monte Carlo Model", "30%"]
    metrics = item_metrics(answer, reference, DEFAULT_HEDGES, max_examples=2)
    assert (metrics["specific_terms"], metrics["unsupported_terms"], metrics["unsupported_rate"]) == (6, 3, 0.5)
    assert metrics["unsupported_examples"] == ["5 Gy", "Monte Carlo Model"]
    # a number is supported only by the same number: not 12 Gy or 0.2 Gy; a range's end is fine
    assert unsupported(["2 Gy"], "12 Gy and 0.2 Gy") == ["2 Gy"]
    assert unsupported(["2 Gy", "30 %", "PD-1"], "1\u20132Gy, 30%, pd1") == []
    assert math.isnan(item_metrics("no terms here", reference, [])["unsupported_rate"])


def test_item_metrics_without_a_reference_counts_what_it_can():
    metrics = item_metrics("It may show 2 Gy.", "", DEFAULT_HEDGES)
    assert all(math.isnan(metrics[k]) for k in ("rouge1", "rouge2", "rougeL", "length_ratio", "unsupported_rate"))
    assert (metrics["hedges"], metrics["hedge_counts"], metrics["specific_terms"]) == (1, {"may": 1}, 1)
    assert (metrics["unsupported_terms"], metrics["unsupported_examples"]) == (0, [])


def test_summarize_three_items():
    def item(model, task, r1, words, hedges, counts, rate, length):
        return {"model": model, "task": task, "rouge1": r1, "rouge2": r1 / 2, "rougeL": r1, "answer_words": words,
                "reference_words": 10, "length_ratio": length, "hedges": hedges, "hedge_counts": counts,
                "specific_terms": 2, "unsupported_terms": round(2 * rate) if not math.isnan(rate) else 0,
                "unsupported_rate": rate, "truncated": False}

    items = [item("base", "description", 0.2, 100, 2, {"may": 2}, 0.5, 1.0),
             item("base", "description", 0.6, 300, 1, json.dumps({"likely": 1}), math.nan, 3.0),  # a stage row
             item("ours", "reasoning", 0.5, 50, 0, {}, 0.0, 0.5)]
    rows = summarize(items, hedges=["may", "likely", "perhaps"])
    assert [(r["model"], r["task"], r["n"]) for r in rows] == [
        ("base", "description", 2), ("base", "overall", 2), ("ours", "reasoning", 1), ("ours", "overall", 1)]
    base = rows[0]
    assert base["rouge1_mean"] == pytest.approx(0.4, abs=EXACT) and base["rouge1_median"] == pytest.approx(0.4)
    assert base["rouge2_mean"] == pytest.approx(0.2, abs=EXACT)
    assert base["length_ratio_mean"] == 2.0
    assert (base["hedges"], base["hedge_counts"]) == (3, {"may": 2, "likely": 1, "perhaps": 0})
    assert base["hedges_per_1000_words"] == 7.5  # 3 hedges in 400 words, pooled
    assert base["unsupported_rate_mean"] == 0.5  # the NaN rate is skipped
    assert (base["specific_terms"], base["unsupported_terms"], base["n_reference"]) == (4, 1, 2)
    ours = rows[2]
    assert (ours["rougeL_median"], ours["hedges"], ours["hedges_per_1000_words"]) == (0.5, 0, 0.0)
    assert summarize(items, overall=False)[0]["hedge_counts"] == {"may": 2, "likely": 1}  # non-zero, most first
    assert len(summarize(items, overall=False)) == 2
