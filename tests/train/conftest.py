"""Training tests: a small LLaVA-JSON dataset of random images and a helper that runs the recipe with torchrun."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

pytest.importorskip("deepspeed")
pytest.importorskip("peft")

ANSWERS = ["The figure shows a bar chart of cytokine levels after 0.5 Gy.",
           "Survival curves of mice treated with low-dose radiation therapy.",
           "Tumour volume decreases over 20 days after 1 Gy."]


def write_llava_data(folder: Path, samples: int = 32) -> Path:
    """LLaVA-format JSON + PNG images with random pixels (deterministic)."""
    from PIL import Image

    rng = np.random.default_rng(0)
    (folder / "images").mkdir(parents=True, exist_ok=True)
    entries = []
    for number in range(samples):
        pixels = (rng.random((50 + number, 70, 3)) * 255).astype("uint8")
        Image.fromarray(pixels).save(folder / "images" / f"{number}.png")
        entries.append({"id": f"s{number}", "image": f"images/{number}.png", "conversations": [
            {"from": "human", "value": "<image>\nWhat does the figure show?"},
            {"from": "gpt", "value": ANSWERS[number % 3]}]})
    path = folder / "data.json"
    path.write_text(json.dumps(entries))
    return path


def write_train_config(folder: Path, **changes) -> Path:
    """A debug-flavour config (align 2 steps, finetune 6) over the JSON dataset in `folder`."""
    if not (folder / "data.json").is_file():
        write_llava_data(folder)
    config = {
        "output_dir": "out",
        "model": {"flavour": "debug"},
        "data": {"llava_json": "data.json", "num_workers": 0, "max_length": 256},
        "phases": ["align", "finetune"],
        "align": {"max_steps": 2, "global_batch_size": 8, "per_device_batch_size": 2, "lr": 1.0e-2},
        "finetune": {"max_steps": 6, "global_batch_size": 8, "per_device_batch_size": 2, "lr": 1.0e-2,
                     "projector_lr": 1.0e-3, "warmup_ratio": 0.2, "lora": {"r": 8, "alpha": 16}},
        "checkpoint": {"every_steps": 2},
    }
    for key, value in changes.items():
        config[key] = {**config[key], **value} if isinstance(value, dict) and key in config else value
    path = folder / "train.yaml"
    path.write_text("# ldrt-hpc train --config train.yaml (a test)\n" + yaml.safe_dump(config))
    return path


def torchrun(config: Path, ranks: int = 2, timeout: int = 300, **env) -> subprocess.CompletedProcess:
    """`torchrun --nproc_per_node RANKS -m ldrt_hpc.train --config CONFIG` (gloo on CPU, one thread per rank)."""
    environment = {**os.environ, "OMP_NUM_THREADS": "1", "LDRT_LOG_LEVEL": "INFO",
                   "TORCH_EXTENSIONS_DIR": os.environ.get("TORCH_EXTENSIONS_DIR",
                                                          str(Path.home() / ".cache" / "torch_extensions")),
                   **{key: str(value) for key, value in env.items()}}
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(ranks), "--master_port",
               str(29400 + os.getpid() % 500), "-m", "ldrt_hpc.train", "--config", str(config)]
    return subprocess.run(command, cwd=config.parent, env=environment, capture_output=True, text=True, timeout=timeout)


def losses(csv_path: Path) -> dict[int, float]:
    import csv

    with open(csv_path, newline="") as handle:
        return {int(row["step"]): float(row["loss"]) for row in csv.DictReader(handle)}

