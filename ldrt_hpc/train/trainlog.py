"""The training log: one CSV row per logged optimizer step (loss, lr of each group, tokens/s, samples/s, peak
memory), written by rank 0, and a loss plot. A resumed run keeps the rows up to its checkpoint and appends."""

from __future__ import annotations

import csv
import resource
import time
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Meter:
    """Sums over the micro-batches since the last logged step (this rank)."""

    losses: list[float] = field(default_factory=list)
    tokens: int = 0
    samples: int = 0
    started: float = field(default_factory=time.perf_counter)

    def add(self, loss: float, tokens: int, samples: int) -> None:
        self.losses.append(loss)
        self.tokens += tokens
        self.samples += samples

    def reset(self) -> None:
        self.losses, self.tokens, self.samples, self.started = [], 0, 0, time.perf_counter()


def peak_memory_gb() -> float:
    import torch

    if torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 2**30
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # kB -> GB: this process's peak RSS


class TrainLog:
    def __init__(self, path: Path, groups: list[str], enabled: bool, resume_at: int = 0):
        self.path = path
        self.columns = ["step", "loss", *[f"lr_{g}" for g in groups], "tokens_per_s", "samples_per_s",
                        "peak_memory_gb", "seconds"]
        self.enabled = enabled
        self.current = Meter()
        if enabled:
            path.parent.mkdir(parents=True, exist_ok=True)
            kept = [r for r in self.rows() if int(r["step"]) <= resume_at] if path.is_file() else []
            with open(path, "w", newline="") as handle:
                writer = csv.DictWriter(handle, self.columns)
                writer.writeheader()
                writer.writerows(kept)

    def meter(self) -> Meter:
        return self.current

    def rows(self) -> list[dict[str, str]]:
        with open(self.path, newline="") as handle:
            return list(csv.DictReader(handle))

    def record(self, step: int, meter: Meter, lrs: list[float], ranks) -> None:
        """Mean loss over ranks and micro-batches, totals over ranks (a collective: every rank calls it)."""
        import torch
        import torch.distributed as dist

        device = "cuda" if torch.cuda.is_available() else "cpu"  # NCCL reduces only GPU tensors
        totals = torch.tensor([sum(meter.losses), len(meter.losses), meter.tokens, meter.samples], dtype=torch.float64,
                              device=device)
        dist.all_reduce(totals)
        seconds = time.perf_counter() - meter.started
        if self.enabled:
            row = {"step": step, "loss": f"{totals[0].item() / totals[1].item():.6f}",
                   "tokens_per_s": f"{totals[2].item() / seconds:.1f}", "samples_per_s": f"{totals[3].item() / seconds:.3f}",
                   "peak_memory_gb": f"{peak_memory_gb():.3f}", "seconds": f"{seconds:.3f}"}
            for name, lr in zip([c for c in self.columns if c.startswith("lr_")], lrs):
                row[name] = f"{lr:.8g}"
            with open(self.path, "a", newline="") as handle:
                csv.DictWriter(handle, self.columns).writerow(row)
        meter.reset()

    def plot(self, target: Path) -> None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        rows = self.rows()
        figure, axis = plt.subplots(figsize=(6, 3.5))
        axis.plot([int(r["step"]) for r in rows], [float(r["loss"]) for r in rows], marker=".")
        axis.set_xlabel("optimizer step")
        axis.set_ylabel("training loss")
        axis.set_title(target.parent.name)
        figure.tight_layout()
        figure.savefig(target, dpi=100)
        plt.close(figure)
