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


def kept_samples(work_dir) -> list[tuple[int, dict]]:
    """The kept samples of every `qa` shard, as (shard index, record): the input of the LLaVA export and of
    training. Every shard must be complete (a half-finished stage would train on a biased subset)."""
    from .. import layout
    from ..plan import require_complete
    from ..shards import ShardReader

    qa_dir = layout.stage_dir(work_dir, "qa")
    plan = require_complete(work_dir, "qa", "the train/eval split")
    samples: list[tuple[int, dict]] = []
    for index in range(plan.num_shards):
        with ShardReader(layout.shard_path(qa_dir, index)) as reader:
            samples += [(index, r) for r in reader if r["kept"]]
    return samples


def split_samples(samples: list[tuple[int, dict]], eval_share: float, seed: int):
    """(train, eval, eval papers) of `kept_samples`, split by paper with `split_papers`."""
    per_paper: dict[str, dict[str, int]] = {}
    for _, sample in samples:
        counts = per_paper.setdefault(sample["paper_id"], {})
        counts[sample["task"]] = counts.get(sample["task"], 0) + 1
    eval_papers = split_papers(per_paper, eval_share, seed)
    train = [s for s in samples if s[1]["paper_id"] not in eval_papers]
    held_out = [s for s in samples if s[1]["paper_id"] in eval_papers]
    return train, held_out, eval_papers


def eval_papers(work_dir, eval_share: float, seed: int) -> set[str]:
    """The papers of the eval set: the same for `export llava`, training and the `answer` stage."""
    return split_samples(kept_samples(work_dir), eval_share, seed)[2]
