"""Table 1 of the evaluation: judge x model x {detail, complex, overall} mean ± std of the judge score, plus what the
reference study left out: parse failures, bootstrap CIs, LLaVA's relative score, judge agreement, paired tests.

Input: one score record (a plain dict) per eval item x model x judge::

    {"sample_id": str, "paper_id": str, "task": "description" | "reasoning", "model": str, "judge": str,
     "protocol": "review" | "single", "score": float | None, "reference_score": float | None}

`score` None is a parse failure (the judge's reply held no score after retries); `reference_score` is the reference
answer's score under the review protocol. Writers: `write_csv` (long format), `to_markdown`, `to_latex`.
"""

from __future__ import annotations

import csv
import itertools
import math
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import stats
from sklearn.metrics import cohen_kappa_score

COLUMNS = ("detail", "complex", "overall")
TASK_COLUMN = {"description": "detail", "reasoning": "complex"}
"""The paper's column of each task; "overall" pools the items of both."""
CONFIDENCE = 0.95
CI_METHOD = "percentile, papers resampled"
"""Percentile bootstrap: unlike BCa it stays defined on constant or tiny samples (judge scores are coarse integers)."""
KAPPA_WEIGHTS = "quadratic"
ZERO_METHOD = "wilcox"
"""Wilcoxon zero differences: "wilcox" drops them before ranking (n_nonzero is what the test sees)."""
MIN_NONZERO_PAIRS = 6
"""Below 6 non-zero pairs the exact two-sided signed-rank p can never reach 0.05 (min 2/2^5 = 0.0625 at 5)."""
POOLED = "(pooled)"
"""The model name of the agreement row over all models."""


@dataclass(frozen=True)
class Cell:
    """One judge x model x column of the table: statistics of the parsed scores."""
    judge: str
    model: str
    column: str
    n: int
    """Parsed scores, the ones averaged."""
    parse_failures: int
    """Scores None: counted, never averaged (a failed parse says nothing about the answer, and a 0 would bias)."""
    mean: float | None
    std: float | None
    """Sample standard deviation (ddof=1); None for n < 2."""
    ci_low: float | None
    ci_high: float | None
    """95 % percentile bootstrap CI of the mean; None for n < 2."""


@dataclass(frozen=True)
class RelativeScore:
    """LLaVA's relative score (model / reference answer) of review-protocol items, in both published variants."""
    judge: str
    model: str
    column: str
    n: int
    """Review items with both the model's and the reference's score parsed."""
    ratio_of_means: float | None
    """sum(score) / sum(reference): LLaVA's summarize_gpt_review."""
    mean_of_ratios: float | None
    """mean(score / reference) per item: LLaVA-Med's summarize_gpt_review."""
    zero_references: int
    """Items with reference score 0, left out of mean_of_ratios (their ratio is undefined)."""


@dataclass(frozen=True)
class Agreement:
    """Agreement of two judges on the items both scored (matched on sample_id, model), over both tasks."""
    judge_a: str
    judge_b: str
    model: str
    """A model name, or POOLED for all models."""
    n: int
    spearman: float | None
    spearman_p: float | None
    pearson: float | None
    pearson_p: float | None
    kappa: float | None
    """Cohen's kappa with quadratic weights (KAPPA_WEIGHTS) on scores rounded half up to integers."""


@dataclass(frozen=True)
class PairedTest:
    """Wilcoxon signed-rank test (two-sided, ZERO_METHOD) of fine-tuned minus base, pairs matched on sample_id."""
    judge: str
    column: str
    base: str
    finetuned: str
    n_pairs: int
    n_nonzero: int
    median_difference: float | None
    """Median of finetuned - base over all pairs, zero differences included."""
    statistic: float | None
    p_value: float | None
    note: str
    """Why p_value is None; empty otherwise."""


@dataclass
class Table1:
    """Everything of Table 1, in display order (judges sorted, models as `table1` ordered them)."""
    judges: list[str]
    models: list[str]
    baselines: dict[str, str]
    cells: list[Cell]
    relative: list[RelativeScore]
    agreement: list[Agreement]
    paired: list[PairedTest]
    seed: int
    resamples: int

    def cell(self, judge: str, model: str, column: str) -> Cell | None:
        return next((c for c in self.cells if (c.judge, c.model, c.column) == (judge, model, column)), None)


def table1(records, models_order: list[str] | None = None, baselines: dict[str, str] | None = None,
           seed: int = 0, resamples: int = 2000) -> Table1:
    """Table 1 of score records; `baselines` maps a fine-tuned model to its base (row order and paired tests)."""
    records = _checked(records)
    baselines = dict(sorted((baselines or {}).items()))
    judges = sorted({r["judge"] for r in records})
    models = _model_order({r["model"] for r in records}, models_order or [], baselines)
    groups = _groups(records)
    keys = [(j, m, c) for j in judges for m in models for c in COLUMNS if (j, m, c) in groups]
    cells = [_cell(*key, groups[key], seed, resamples) for key in keys]
    relative = [r for r in (_relative(*key, groups[key]) for key in keys) if r is not None]
    agreement = _agreement(records, judges, models)
    paired = [_wilcoxon(j, c, base, tuned, groups.get((j, base, c), []), groups.get((j, tuned, c), []))
              for tuned, base in baselines.items() for j in judges for c in COLUMNS
              if (j, base, c) in groups or (j, tuned, c) in groups]
    return Table1(judges, models, baselines, cells, relative, agreement, paired, seed, resamples)


def _checked(records) -> list[dict]:
    """The records sorted by (judge, model, sample_id), so that the seeded bootstrap ignores the input order, with
    NaN scores (the judge stage's shards store a missing score as NaN) turned into None."""
    records = sorted(({**r, "score": _score(r["score"]), "reference_score": _score(r.get("reference_score"))}
                      for r in records), key=lambda r: (r["judge"], r["model"], r["sample_id"]))
    seen = set()
    for r in records:
        if r["task"] not in TASK_COLUMN:
            raise ValueError(f"unknown task {r['task']!r} of {r['sample_id']}: expected one of {sorted(TASK_COLUMN)}")
        key = (r["judge"], r["model"], r["sample_id"])
        if key in seen:
            raise ValueError(f"two scores for {key}: one record per item x model x judge "
                             "(the judge stage scores each configured protocol: pass the records of one)")
        seen.add(key)
    return records


def _score(value) -> float | None:
    return None if value is None or math.isnan(value) else float(value)


def _model_order(present: set[str], models_order: list[str], baselines: dict[str, str]) -> list[str]:
    """`models_order` (then the rest, sorted), each fine-tuned model moved right under its base."""
    ordered = [m for m in models_order if m in present] + sorted(present - set(models_order))
    rows: list[str] = []
    for model in ordered:
        if baselines.get(model) not in present:
            rows += [model] + [m for m in ordered if baselines.get(m) == model]
    return rows + [m for m in ordered if m not in rows]


def _groups(records: list[dict]) -> dict[tuple[str, str, str], list[dict]]:
    groups: dict[tuple[str, str, str], list[dict]] = {}
    for r in records:
        for column in (TASK_COLUMN[r["task"]], "overall"):
            groups.setdefault((r["judge"], r["model"], column), []).append(r)
    return groups


def _cell(judge: str, model: str, column: str, group: list[dict], seed: int, resamples: int) -> Cell:
    parsed = [r for r in group if r["score"] is not None]
    values = np.array([r["score"] for r in parsed], dtype=float)
    n = len(values)
    low, high = _bootstrap_ci(values, [r.get("paper_id", r["sample_id"]) for r in parsed], seed, resamples)
    return Cell(judge, model, column, n, len(group) - n, float(values.mean()) if n else None,
                float(values.std(ddof=1)) if n > 1 else None, low, high)


def _bootstrap_ci(values: np.ndarray, papers: list[str], seed: int, resamples: int) -> tuple[float | None, float | None]:
    """Percentile bootstrap CI of the mean, resampling whole papers (a paper's items share figures and context:
    resampling items alone would make the interval too narrow); a fresh generator per cell, so adding a model moves
    no other CI. None with fewer than 2 papers."""
    clusters = [values[[i for i, p in enumerate(papers) if p == paper]] for paper in sorted(set(papers))]
    if len(values) < 2 or len(clusters) < 2:
        return None, None
    sums = np.array([c.sum() for c in clusters])
    sizes = np.array([len(c) for c in clusters])
    picks = np.random.default_rng(seed).integers(0, len(clusters), size=(resamples, len(clusters)))
    means = sums[picks].sum(axis=1) / sizes[picks].sum(axis=1)
    low, high = np.quantile(means, [(1 - CONFIDENCE) / 2, (1 + CONFIDENCE) / 2])
    return float(low), float(high)


def _relative(judge: str, model: str, column: str, group: list[dict]) -> RelativeScore | None:
    """Relative score of the review-protocol records of a cell; None when the cell has none."""
    review = [r for r in group if r["protocol"] == "review"]
    if not review:
        return None
    pairs = [(r["score"], r["reference_score"]) for r in review
             if r["score"] is not None and r.get("reference_score") is not None]
    scores, refs = (np.array(v, dtype=float) for v in zip(*pairs)) if pairs else (np.zeros(0), np.zeros(0))
    nonzero = refs != 0
    return RelativeScore(judge, model, column, len(pairs), float(scores.sum() / refs.sum()) if refs.sum() else None,
                         float(np.mean(scores[nonzero] / refs[nonzero])) if nonzero.any() else None,
                         int((~nonzero).sum()))


def _agreement(records: list[dict], judges: list[str], models: list[str]) -> list[Agreement]:
    """Every pair of judges, per model and pooled, on the items both judges parsed."""
    scores = {(r["judge"], r["model"], r["sample_id"]): r["score"] for r in records if r["score"] is not None}
    rows = []
    for a, b in itertools.combinations(judges, 2):
        for model in models + [POOLED]:
            keys = sorted((m, s) for j, m, s in scores if j == a and model in (m, POOLED) and (b, m, s) in scores)
            rows.append(_agree(a, b, model, [scores[a, m, s] for m, s in keys], [scores[b, m, s] for m, s in keys]))
    return rows


def _agree(a: str, b: str, model: str, x: list[float], y: list[float]) -> Agreement:
    if len(x) < 2:
        return Agreement(a, b, model, len(x), None, None, None, None, None)
    with warnings.catch_warnings():
        # constant scores (every answer a 5) leave correlations undefined: reported as None, not warned
        warnings.simplefilter("ignore", stats.ConstantInputWarning)
        rho = stats.spearmanr(x, y)
        r = stats.pearsonr(x, y)
    return Agreement(a, b, model, len(x), _finite(rho.statistic), _finite(rho.pvalue), _finite(r.statistic),
                     _finite(r.pvalue), _kappa(x, y))


def round_half_up(value: float) -> int:
    """The integer score of a (possibly averaged) score: 6.5 -> 7, unlike round()'s half to even."""
    return math.floor(value + 0.5)


def _kappa(x: list[float], y: list[float]) -> float | None:
    """Quadratic-weighted kappa on integer scores; the labels are every integer in range, because sklearn weighs
    by label index and the distance between two scores must be their difference, not their rank."""
    a, b = [round_half_up(v) for v in x], [round_half_up(v) for v in y]
    labels = list(range(min(a + b), max(a + b) + 1))
    if len(labels) < 2:  # every score the same: kappa is 0/0
        return None
    return _finite(cohen_kappa_score(a, b, labels=labels, weights=KAPPA_WEIGHTS))


def _finite(value) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


def _wilcoxon(judge: str, column: str, base: str, tuned: str, base_group: list[dict],
              tuned_group: list[dict]) -> PairedTest:
    """Signed-rank test of fine-tuned minus base on the items both models have a parsed score for."""
    before = {r["sample_id"]: r["score"] for r in base_group if r["score"] is not None}
    after = {r["sample_id"]: r["score"] for r in tuned_group if r["score"] is not None}
    diffs = np.array([after[s] - before[s] for s in sorted(before.keys() & after.keys())], dtype=float)
    nonzero = int(np.count_nonzero(diffs))
    median = float(np.median(diffs)) if len(diffs) else None
    if nonzero < MIN_NONZERO_PAIRS:
        note = f"{nonzero} non-zero pairs, fewer than {MIN_NONZERO_PAIRS}: no p-value"
        return PairedTest(judge, column, base, tuned, len(diffs), nonzero, median, None, None, note)
    result = stats.wilcoxon(diffs, zero_method=ZERO_METHOD, alternative="two-sided")
    return PairedTest(judge, column, base, tuned, len(diffs), nonzero, median, float(result.statistic),
                      float(result.pvalue), "")


# ---- writers ----

CSV_FIELDS = {
    "judge": str, "model": str, "base_model": str, "column": str, "n": int, "parse_failures": int, "mean": float,
    "std": float, "ci_low": float, "ci_high": float, "ci_method": str, "confidence": float, "resamples": int,
    "seed": int, "relative_n": int, "ratio_of_means": float, "mean_of_ratios": float, "paired_base": str,
    "paired_n": int, "paired_nonzero": int, "median_difference": float, "wilcoxon_statistic": float,
    "wilcoxon_p": float, "wilcoxon_zero_method": str,
}
"""Columns of `write_csv` and their types (`read_csv` converts back); an empty field is None."""


def write_csv(table: Table1, path) -> None:
    """Long format: one row per judge x model x column, with the cell, its relative score and its paired test."""
    with open(Path(path), "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(CSV_FIELDS), lineterminator="\n")
        writer.writeheader()
        for cell in table.cells:
            writer.writerow({k: "" if v is None else v for k, v in _csv_row(table, cell).items()})


def _csv_row(table: Table1, cell: Cell) -> dict:
    rel = next((r for r in table.relative if (r.judge, r.model, r.column) == (cell.judge, cell.model, cell.column)),
               None)
    test = next((t for t in table.paired if (t.judge, t.finetuned, t.column) == (cell.judge, cell.model, cell.column)),
                None)
    return {
        "judge": cell.judge, "model": cell.model, "base_model": table.baselines.get(cell.model), "column": cell.column,
        "n": cell.n, "parse_failures": cell.parse_failures, "mean": cell.mean, "std": cell.std,
        "ci_low": cell.ci_low, "ci_high": cell.ci_high, "ci_method": CI_METHOD, "confidence": CONFIDENCE,
        "resamples": table.resamples, "seed": table.seed, "relative_n": rel and rel.n,
        "ratio_of_means": rel and rel.ratio_of_means, "mean_of_ratios": rel and rel.mean_of_ratios,
        "paired_base": test and test.base, "paired_n": test and test.n_pairs, "paired_nonzero": test and test.n_nonzero,
        "median_difference": test and test.median_difference, "wilcoxon_statistic": test and test.statistic,
        "wilcoxon_p": test and test.p_value, "wilcoxon_zero_method": test and ZERO_METHOD,
    }


def read_csv(path) -> list[dict]:
    """The rows of `write_csv`, typed back (empty fields None)."""
    with open(Path(path), newline="", encoding="utf-8") as f:
        return [{k: CSV_FIELDS[k](v) if v != "" else None for k, v in row.items()} for row in csv.DictReader(f)]


def _num(value: float | None, digits: int = 2) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _mean_std(cell: Cell | None) -> str:
    return "–" if cell is None or cell.mean is None else f"{cell.mean:.2f} ± {_num(cell.std)}"


def _counts(cell: Cell | None) -> str:
    if cell is None:
        return "–"
    return f"n={cell.n}, failed={cell.parse_failures}, CI [{_num(cell.ci_low)}, {_num(cell.ci_high)}]"


def _by_judge(table: Table1, show) -> list[list[list[str]]]:
    """Row blocks per judge of the paper's layout: judge name on the first row only, one column per COLUMNS."""
    blocks = []
    for judge in table.judges:
        models = [m for m in table.models if any(c.judge == judge and c.model == m for c in table.cells)]
        blocks.append([[judge if i == 0 else "", model] + [show(table.cell(judge, model, c)) for c in COLUMNS]
                       for i, model in enumerate(models)])
    return blocks


def _sections(table: Table1) -> list[tuple[str, list[str], list[list[list[str]]]]]:
    """(caption, header, row blocks) of every table of the report, shared by the Markdown and LaTeX writers."""
    layout = ["judge", "model", *COLUMNS]
    sections = [
        ("Table 1. Judge score, mean ± sample std (ddof = 1) over parsed items; detail = description, "
         "complex = reasoning, overall = both.", layout, _by_judge(table, _mean_std)),
        (f"Parsed items n, parse failures (not averaged) and {CONFIDENCE:.0%} {CI_METHOD} bootstrap CI of the mean "
         f"({table.resamples} resamples, seed {table.seed}).", layout, _by_judge(table, _counts)),
    ]
    if table.relative:
        sections.append(("Relative score, % of the reference answer's score (review protocol).",
                         ["judge", "model", "column", "n", "ratio of means (LLaVA)", "mean of ratios (LLaVA-Med)"],
                         [[[r.judge, r.model, r.column, str(r.n), _num(_pct(r.ratio_of_means), 1),
                            _num(_pct(r.mean_of_ratios), 1)] for r in table.relative]]))
    if table.agreement:
        sections.append((f"Judge agreement on items both judges parsed; kappa weights: {KAPPA_WEIGHTS}, on scores "
                         "rounded half up.", ["judges", "model", "n", "Spearman ρ (p)", "Pearson r (p)",
                                              f"Cohen's κ ({KAPPA_WEIGHTS})"],
                         [[[f"{a.judge_a} vs {a.judge_b}", a.model, str(a.n), _with_p(a.spearman, a.spearman_p),
                            _with_p(a.pearson, a.pearson_p), _num(a.kappa)] for a in table.agreement]]))
    if table.paired:
        sections.append((f"Paired Wilcoxon signed-rank test, fine-tuned - base, two-sided, zero_method={ZERO_METHOD} "
                         "(zero differences dropped).", ["judge", "column", "base → fine-tuned", "n pairs",
                                                         "non-zero", "median diff.", "W", "p", "note"],
                         [[[t.judge, t.column, f"{t.base} → {t.finetuned}", str(t.n_pairs), str(t.n_nonzero),
                            _num(t.median_difference), _num(t.statistic, 1), _num(t.p_value, 4), t.note]
                           for t in table.paired]]))
    return sections


def _pct(value: float | None) -> float | None:
    return None if value is None else 100 * value


def _with_p(value: float | None, p: float | None) -> str:
    return "–" if value is None else f"{value:.2f} ({_num(p, 3)})"


def to_markdown(table: Table1) -> str:
    """The report's tables in Markdown, Table 1 first in the paper's layout."""
    parts = []
    for caption, header, blocks in _sections(table):
        rows = [header, ["---"] * len(header)] + [row for block in blocks for row in block]
        parts.append(f"**{caption}**\n\n" + "\n".join("| " + " | ".join(_md(c) for c in r) + " |" for r in rows))
    return "\n\n".join(parts) + "\n"


def _md(text: str) -> str:
    return text.replace("|", "\\|")


def to_latex(table: Table1) -> str:
    """The report's tables as booktabs `tabular`s (needs \\usepackage{booktabs}), each under its caption."""
    parts = []
    for caption, header, blocks in _sections(table):
        lines = [f"\\noindent {_tex(caption)}\\par", f"\\begin{{tabular}}{{ll{'c' * (len(header) - 2)}}}", "\\toprule",
                 _tex_row(header), "\\midrule"]
        for i, block in enumerate(blocks):
            lines += (["\\midrule"] if i else []) + [_tex_row(row) for row in block]
        parts.append("\n".join(lines + ["\\bottomrule", "\\end{tabular}"]))
    return "\n\n".join(parts) + "\n"


_TEX_ESCAPES = {"\\": r"\textbackslash{}", "_": r"\_", "%": r"\%", "&": r"\&", "#": r"\#", "$": r"\$", "{": r"\{",
                "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}
_TEX_SYMBOLS = {"±": r"$\pm$", "ρ": r"$\rho$", "κ": r"$\kappa$", "→": r"$\to$", "–": "--"}


def _tex(text: str) -> str:
    """LaTeX of a cell: specials escaped first, then the Unicode symbols written as math."""
    text = re.sub(r"[\\_%&#${}~^]", lambda m: _TEX_ESCAPES[m.group()], text)
    return re.sub("|".join(_TEX_SYMBOLS), lambda m: _TEX_SYMBOLS[m.group()], text)


def _tex_row(row: list[str]) -> str:
    return " & ".join(_tex(c) for c in row) + r" \\"
