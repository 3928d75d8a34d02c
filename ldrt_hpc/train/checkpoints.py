"""Training checkpoints that can be trusted after a kill: DeepSpeed writes the ZeRO shards of every rank under
<phase>/checkpoints/step-NNNNNNN/, each rank adds its RNG state, and only when all ranks are done does rank 0
write COMPLETE. A resumed run takes the newest folder with COMPLETE; a half-written one is never chosen."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np

COMPLETE = "COMPLETE"


def tag(step: int) -> str:
    return f"step-{step:07d}"


def complete_checkpoints(folder: Path) -> list[Path]:
    """Complete checkpoints, oldest first."""
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.glob("step-*") if (p / COMPLETE).is_file())


def latest(folder: Path) -> Path | None:
    found = complete_checkpoints(folder)
    return found[-1] if found else None


def read_complete(checkpoint: Path) -> dict[str, Any]:
    return json.loads((checkpoint / COMPLETE).read_text())


def mark_complete(checkpoint: Path, state: dict[str, Any]) -> None:
    """Rank 0, after a barrier that follows every rank's save."""
    tmp = checkpoint / f".{COMPLETE}.tmp"
    tmp.write_text(json.dumps(state, indent=1) + "\n")
    tmp.rename(checkpoint / COMPLETE)


def prune(folder: Path, keep: int) -> list[Path]:
    """Delete all but the newest `keep` complete checkpoints and every incomplete one older than the newest."""
    complete = complete_checkpoints(folder)
    doomed = complete[:-keep] if len(complete) > keep else []
    if complete:
        doomed += [p for p in folder.glob("step-*") if p.name < complete[-1].name and p not in complete]
    for path in doomed:
        shutil.rmtree(path, ignore_errors=True)
    return doomed


def rng_state() -> dict[str, Any]:
    import torch

    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():  # LoRA dropout on a GPU draws from the CUDA generator
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def save_rng(checkpoint: Path, rank: int) -> None:
    import torch

    torch.save(rng_state(), checkpoint / f"rng-rank{rank:05d}.pt")


def load_rng(checkpoint: Path, rank: int) -> None:
    import torch

    state = torch.load(checkpoint / f"rng-rank{rank:05d}.pt", weights_only=False)
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"])
