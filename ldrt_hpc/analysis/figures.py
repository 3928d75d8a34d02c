"""The report's plots (matplotlib, Agg backend: no display needed on a compute node). Each function writes one PNG
at the path it is given, closes its figure and returns the path; NaN values are left out of every plot."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

DPI = 100


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _finite(values) -> list[float]:
    return [float(v) for v in values if v is not None and math.isfinite(float(v))]


def _save(plt, figure, path: Path) -> Path:
    figure.tight_layout()
    figure.savefig(path, dpi=DPI)
    plt.close(figure)
    return path


def funnel_chart(labels: Sequence[str], counts: Sequence[int], path: Path, partial: Sequence[bool] = ()) -> Path:
    """Horizontal bars, first step on top; a log scale when the counts span more than two orders of magnitude;
    hatched bars for steps summed over part of their shards."""
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(8, 0.45 * len(labels) + 1.2))
    positions = list(range(len(labels)))[::-1]
    bars = axis.barh(positions, [max(c, 0) for c in counts], color="#4c72b0")
    for bar, is_partial in zip(bars, partial):
        if is_partial:
            bar.set_hatch("//")
            bar.set_alpha(0.6)
    axis.set_yticks(positions, list(labels))
    positive = [c for c in counts if c > 0]
    if positive and max(positive) / min(positive) > 100:
        axis.set_xscale("log")
    for position, count in zip(positions, counts):
        axis.text(max(count, 1), position, f" {count:,}", va="center", fontsize=8)
    axis.set_xlabel("count")
    axis.set_title("pipeline funnel")
    axis.margins(x=0.15)
    return _save(plt, figure, path)


def boxplot_panels(panels: dict[str, dict[str, Sequence[float]]], path: Path, ylabel: str | dict[str, str] = "",
                   title: str = "", ylim: tuple[float, float] | None = None) -> Path:
    """One subplot per panel (in the order given), one box per group (label -> values) with its n under it."""
    plt = _pyplot()
    names = list(panels)
    widest = max((len(groups) for groups in panels.values()), default=1)
    columns = min(len(names), 2 if widest > 3 else 4) or 1
    rows = math.ceil(len(names) / columns) or 1
    figure, axes = plt.subplots(rows, columns, figsize=(max(4.0, 0.9 * widest + 1.5) * columns, 3.8 * rows),
                                squeeze=False)
    for axis, name in zip(axes.flat, names):
        groups = {label: _finite(values) for label, values in panels[name].items()}
        shown = {label: values for label, values in groups.items() if values}
        if shown:
            axis.boxplot(list(shown.values()), showmeans=True)
            axis.set_xticks(range(1, len(shown) + 1),
                            [f"{label}\nn={len(values)}" for label, values in shown.items()], fontsize=7)
        else:
            axis.text(0.5, 0.5, "no values", ha="center", va="center", transform=axis.transAxes)
        axis.set_title(name, fontsize=9)
        axis.set_ylabel(ylabel.get(name, "") if isinstance(ylabel, dict) else ylabel)
        if ylim:
            axis.set_ylim(*ylim)
        axis.grid(axis="y", alpha=0.3)
    for axis in list(axes.flat)[len(names):]:
        axis.set_visible(False)
    if title:
        figure.suptitle(title)
    return _save(plt, figure, path)


def loss_curves(curves: dict[str, tuple[Sequence[int], Sequence[float]]], path: Path) -> Path:
    """Training loss per optimizer step, one subplot per phase (the step count restarts at each phase)."""
    plt = _pyplot()
    figure, axes = plt.subplots(1, len(curves), figsize=(5.5 * len(curves), 3.5), squeeze=False)
    for axis, (phase, (steps, losses)) in zip(axes.flat, curves.items()):
        axis.plot(list(steps), list(losses), marker=".")
        axis.set_xlabel("optimizer step")
        axis.set_ylabel("training loss")
        axis.set_title(phase)
        axis.grid(alpha=0.3)
    return _save(plt, figure, path)
