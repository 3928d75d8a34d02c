"""Table 1 statistics on a small fixture whose numbers are worked out by hand here."""

from __future__ import annotations

import math
import random

import pytest
from scipy import stats
from sklearn.metrics import cohen_kappa_score

from ldrt_hpc.analysis.table1 import (
    COLUMNS, POOLED, read_csv, round_half_up, table1, to_latex, to_markdown, write_csv,
)

BASE, TUNED = "llava-v1.5", "ours-v1.5"
BASELINES = {TUNED: BASE}
ITEMS = {"d1": "description", "d2": "description", "d3": "description",
         "r1": "reasoning", "r2": "reasoning", "r3": "reasoning"}
SCORES = {  # judge -> model -> scores of d1 d2 d3 r1 r2 r3; None = a reply the judge's parser could not read
    "judge-a": {BASE: [2, 3, None, 5, 6, 7], TUNED: [4, 6, 5, 7, 8, 9]},
    "judge-b": {BASE: [3, 2, 4, 6, None, 8], TUNED: [5, 6.5, 4, 8, 8, 10]},
}


def rec(judge, model, sample_id, score, task=None, protocol="single", reference=None):
    return {"sample_id": sample_id, "paper_id": f"p-{sample_id}", "task": task or ITEMS[sample_id], "model": model,
            "judge": judge, "protocol": protocol, "score": score, "reference_score": reference}


def fixture_records():
    return [rec(judge, model, sid, score) for judge, by_model in SCORES.items() for model, scores in by_model.items()
            for sid, score in zip(ITEMS, scores)]


@pytest.fixture(scope="module")
def table():
    return table1(fixture_records(), baselines=BASELINES, resamples=99)


def test_means_stds_counts_by_hand(table):
    detail, complex_, overall = (table.cell("judge-a", BASE, c) for c in COLUMNS)
    assert (detail.n, detail.parse_failures) == (2, 1)
    assert detail.mean == pytest.approx(2.5) and detail.std == pytest.approx(math.sqrt(0.5))
    assert (complex_.n, complex_.parse_failures, complex_.mean, complex_.std) == (3, 0, pytest.approx(6), pytest.approx(1))
    # overall pools the parsed items of both tasks: 2, 3, 5, 6, 7
    assert (overall.n, overall.parse_failures) == (5, 1)
    assert overall.mean == pytest.approx(4.6) and overall.std == pytest.approx(math.sqrt(17.2 / 4))
    tuned = table.cell("judge-b", TUNED, "detail")
    assert (tuned.n, tuned.parse_failures, tuned.mean) == (3, 0, pytest.approx(15.5 / 3))
    assert len(table.cells) == 2 * 2 * 3


def test_bootstrap_ci_contains_mean_and_is_none_below_two():
    # NaN is how the judge stage's shards store a missing score: a parse failure like None
    records = fixture_records() + [rec("judge-c", BASE, "d1", 4), rec("judge-c", BASE, "d2", math.nan)]
    result = table1(records, resamples=99)
    for cell in result.cells:
        if cell.n >= 2:
            assert cell.ci_low <= cell.mean <= cell.ci_high
    lone = result.cell("judge-c", BASE, "detail")
    assert (lone.n, lone.parse_failures, lone.mean, lone.std, lone.ci_low, lone.ci_high) == (1, 1, 4, None, None, None)
    assert result.cell("judge-c", BASE, "complex") is None


def test_order_of_input_does_not_change_output(table):
    records = fixture_records()
    random.Random(3).shuffle(records)
    assert to_markdown(table1(records, baselines=BASELINES, resamples=99)) == to_markdown(table)


def test_relative_score_both_variants():
    # ratio of means (LLaVA) = (2 + 6 + 1) / (4 + 6 + 0); mean of ratios (LLaVA-Med) = (2/4 + 6/6) / 2, the zero
    # reference left out; the parse failure counts in neither
    pairs = [("d1", 2, 4), ("d2", 6, 6), ("d3", 1, 0), ("r1", None, 5)]
    records = [rec("j", BASE, sid, s, protocol="review", reference=ref) for sid, s, ref in pairs]
    records += [rec("j", TUNED, "d1", 5)]  # single protocol: no relative score
    result = table1(records, resamples=99)
    detail = next(r for r in result.relative if (r.model, r.column) == (BASE, "detail"))
    assert detail.n == 3 and detail.zero_references == 1
    assert detail.ratio_of_means == pytest.approx(0.9)
    assert detail.mean_of_ratios == pytest.approx(0.75)
    assert detail.ratio_of_means != pytest.approx(detail.mean_of_ratios)
    assert not [r for r in result.relative if r.model == TUNED]


def test_agreement_matches_scipy_and_sklearn(table):
    # items both judges parsed, matched on (sample_id, model): llava d1 d2 r1 r3; ours all six
    a_base, b_base = [2, 3, 5, 7], [3, 2, 6, 8]
    a_tuned, b_tuned = [4, 6, 5, 7, 8, 9], [5, 6.5, 4, 8, 8, 10]
    rows = {row.model: row for row in table.agreement}
    assert set(rows) == {BASE, TUNED, POOLED}
    for model, x, y in [(BASE, a_base, b_base), (TUNED, a_tuned, b_tuned), (POOLED, a_base + a_tuned, b_base + b_tuned)]:
        row = rows[model]
        assert (row.judge_a, row.judge_b, row.n) == ("judge-a", "judge-b", len(x))
        assert row.spearman == pytest.approx(stats.spearmanr(x, y).statistic)
        assert row.spearman_p == pytest.approx(stats.spearmanr(x, y).pvalue)
        assert row.pearson == pytest.approx(stats.pearsonr(x, y).statistic)
        assert row.pearson_p == pytest.approx(stats.pearsonr(x, y).pvalue)
        rx, ry = [round_half_up(v) for v in x], [round_half_up(v) for v in y]
        labels = list(range(min(rx + ry), max(rx + ry) + 1))
        assert row.kappa == pytest.approx(cohen_kappa_score(rx, ry, labels=labels, weights="quadratic"))
    assert [round_half_up(v) for v in (6.5, 2.5, 2.4)] == [7, 3, 2]


def test_wilcoxon_matches_scipy():
    diffs = [1, 2, 3, -1, 4, 0, 5, 2]  # 7 non-zero: enough for a p-value
    records = [rec("j", BASE, f"s{i}", 3, task="description") for i in range(len(diffs))]
    records += [rec("j", TUNED, f"s{i}", 3 + d, task="description") for i, d in enumerate(diffs)]
    records += [rec("j", TUNED, "extra", 9, task="description")]  # no base score: not a pair
    result = table1(records, baselines=BASELINES, resamples=99)
    test = next(t for t in result.paired if t.column == "detail")
    expected = stats.wilcoxon(diffs, zero_method="wilcox", alternative="two-sided")
    assert (test.base, test.finetuned, test.n_pairs, test.n_nonzero) == (BASE, TUNED, 8, 7)
    assert test.median_difference == pytest.approx(2.0)
    assert test.statistic == pytest.approx(expected.statistic) and test.p_value == pytest.approx(expected.pvalue)
    assert test.note == ""


def test_too_few_pairs_gives_no_p(table):
    test = next(t for t in table.paired if (t.judge, t.column) == ("judge-a", "detail"))
    assert (test.n_pairs, test.n_nonzero, test.median_difference) == (2, 2, pytest.approx(2.5))
    assert test.p_value is None and test.statistic is None and "fewer than 6" in test.note
    assert len(table.paired) == 2 * 3


def test_fine_tuned_row_under_its_base():
    result = table1(fixture_records(), models_order=[TUNED, BASE], baselines=BASELINES, resamples=99)
    assert result.models == [BASE, TUNED]


def test_markdown_layout(table):
    main = to_markdown(table).split("\n\n")[1].splitlines()
    assert main[0] == "| judge | model | detail | complex | overall |"
    assert main[2] == "| judge-a | llava-v1.5 | 2.50 ± 0.71 | 6.00 ± 1.00 | 4.60 ± 2.07 |"
    assert main[3].startswith("|  | ours-v1.5 | ")
    assert sum(line.startswith("| judge-a |") for line in main) == 1
    assert sum(line.startswith("| judge-b |") for line in main) == 1
    text = to_markdown(table)
    assert "n=2, failed=1" in text and "quadratic" in text and "zero_method=wilcox" in text


def test_latex_escapes_and_booktabs():
    names = {"judge-a": "qwen2_72b", "judge-b": "llama#3 & 100%"}
    records = [{**r, "judge": names[r["judge"]]} for r in fixture_records()]
    tex = to_latex(table1(records, baselines=BASELINES, resamples=99))
    assert r"qwen2\_72b" in tex and r"llama\#3 \& 100\%" in tex
    assert "qwen2_72b" not in tex and "llama#3" not in tex
    assert r"\begin{tabular}{llccc}" in tex and r"\toprule" in tex and r"\midrule" in tex and r"\bottomrule" in tex
    main = tex.split("\n\n")[0]
    assert r"2.50 $\pm$ 0.71" in main
    assert sum(line.startswith(r"qwen2\_72b & ") for line in main.splitlines()) == 1


def test_csv_long_format_round_trips(table, tmp_path):
    path = tmp_path / "table1.csv"
    write_csv(table, path)
    rows = read_csv(path)
    assert len(rows) == 2 * 2 * 3
    for row, cell in zip(rows, table.cells):
        assert (row["judge"], row["model"], row["column"], row["n"], row["parse_failures"]) == \
            (cell.judge, cell.model, cell.column, cell.n, cell.parse_failures)
        assert (row["mean"], row["std"], row["ci_low"], row["ci_high"]) == (cell.mean, cell.std, cell.ci_low, cell.ci_high)
    tuned = next(r for r in rows if (r["judge"], r["model"], r["column"]) == ("judge-a", TUNED, "detail"))
    assert (tuned["base_model"], tuned["paired_base"], tuned["paired_n"]) == (BASE, BASE, 2)
    assert tuned["wilcoxon_p"] is None and tuned["ratio_of_means"] is None


def test_bad_records_are_refused():
    with pytest.raises(ValueError, match="two scores"):
        table1([rec("j", BASE, "d1", 3), rec("j", BASE, "d1", 4, protocol="review", reference=5)])
    with pytest.raises(ValueError, match="unknown task"):
        table1([rec("j", BASE, "x", 3, task="conversation")])


def test_the_interval_resamples_papers_not_items():
    """Eight items from two papers (four each, all 1 or all 9): resampling items would give a narrow interval
    around 5; resampling papers gives every mean from 1 to 9, so the 95 % interval spans [1, 9]."""
    from ldrt_hpc.analysis.table1 import table1

    records = [{**rec("judge-a", BASE, f"s{i}", 1 if i < 4 else 9, task="description"),
                "paper_id": "paper-1" if i < 4 else "paper-2"} for i in range(8)]
    cell = table1(records, resamples=400).cell("judge-a", BASE, "detail")
    assert cell.mean == 5 and (cell.ci_low, cell.ci_high) == (1.0, 9.0)
    one_paper = [{**r, "paper_id": "paper-1"} for r in records]
    assert table1(one_paper, resamples=50).cell("judge-a", BASE, "detail").ci_low is None
