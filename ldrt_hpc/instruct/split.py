"""The train/eval split by paper (no paper in both sets), stratified by task type."""

from __future__ import annotations

import hashlib


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
