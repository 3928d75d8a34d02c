"""The recipe for real: 2 ranks, DeepSpeed ZeRO-3 on CPU (gloo), the debug flavour. One uninterrupted run is the
reference; a crashed run and a signalled (requeued) run must continue to exactly its losses."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import pytest

from tests.train.conftest import losses, torchrun, write_train_config


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    folder = tmp_path_factory.mktemp("reference")
    config = write_train_config(folder)
    run = torchrun(config)
    assert run.returncode == 0, run.stderr[-3000:]
    return folder, run


def test_two_ranks_zero3_learn_with_two_lr_groups(reference):
    from ldrt_hpc.train.recipe import cosine_with_warmup

    folder, run = reference
    assert "2 per device x 2 ranks x 2 accumulation" in run.stderr and "sdpa attention" in run.stderr
    import csv

    with open(folder / "out/finetune/train_log.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [int(r["step"]) for r in rows] == [1, 2, 3, 4, 5, 6]
    assert float(rows[-1]["loss"]) < float(rows[0]["loss"]) - 0.1  # lr 1e-2 on a tiny model: it learns
    factor = cosine_with_warmup(6, 0.2)
    for step, row in enumerate(rows):  # each group keeps its own peak rate through the schedule
        assert math.isclose(float(row["lr_lora"]), 1e-2 * factor(step), rel_tol=1e-5, abs_tol=1e-12)
        assert math.isclose(float(row["lr_projector"]), 1e-3 * factor(step), rel_tol=1e-5, abs_tol=1e-12)
        assert float(row["tokens_per_s"]) > 0 and float(row["samples_per_s"]) > 0 and float(row["peak_memory_gb"]) > 0
    assert (folder / "out/finetune/loss.png").read_bytes().startswith(b"\x89PNG")
    done = json.loads((folder / "out/finetune/DONE").read_text())
    assert done["steps"] == 6 and done["adapter_tensors"] > 0


def test_exported_adapter_and_projector_are_trained_and_non_empty(reference):
    from safetensors.torch import load_file

    folder, _ = reference
    adapter = load_file(folder / "out/finetune/adapter/adapter_model.safetensors")
    assert adapter and all(t.numel() > 0 for t in adapter.values())
    assert not [k for k in adapter if "vision_tower" in k]  # the pattern leaves CLIP's q/k/v/out_proj alone
    assert {k.split(".")[-2] for k in adapter} == {"lora_A", "lora_B"}
    assert any(t.abs().sum() > 0 for k, t in adapter.items() if "lora_B" in k)  # B starts at zero: it moved
    projector = load_file(folder / "out/finetune/projector.safetensors")
    base = load_file(folder / "out/base-model/model.safetensors")
    base_projector = {k.split("multi_modal_projector.", 1)[1]: v for k, v in base.items() if "multi_modal_projector." in k}
    assert projector.keys() == base_projector.keys()
    assert any(not (projector[k].float() - base_projector[k].float()).abs().max() < 1e-6 for k in projector)
    # two complete checkpoints kept (every 2 steps, keep 2)
    kept = sorted(p.name for p in (folder / "out/finetune/checkpoints").glob("step-*"))
    assert kept == ["step-0000004", "step-0000006"]


def test_merged_model_loads_and_generates(reference):
    import numpy as np
    import torch
    from PIL import Image
    from transformers import AutoProcessor, LlavaForConditionalGeneration

    folder, _ = reference
    merged = folder / "out/finetune/merged"
    model = LlavaForConditionalGeneration.from_pretrained(merged)
    processor = AutoProcessor.from_pretrained(merged)
    assert not any("lora" in name for name, _ in model.named_parameters())
    prompt = processor.tokenizer.apply_chat_template([{"role": "user", "content": "<image>\nWhat does it show?"}],
                                                     add_generation_prompt=True, tokenize=False)
    image = Image.fromarray((np.random.default_rng(1).random((60, 60, 3)) * 255).astype("uint8"))
    inputs = processor(text=[prompt], images=[image], return_tensors="pt")
    with torch.no_grad():
        output = model.generate(**inputs, max_new_tokens=6, do_sample=False)
    assert output.shape[1] > inputs["input_ids"].shape[1]


def test_a_crash_resumes_from_the_last_complete_checkpoint_with_the_same_losses(reference, tmp_path):
    folder, _ = reference
    config = write_train_config(tmp_path)
    crashed = torchrun(config, LDRT_TRAIN_FAULT_AT_STEP=3)
    assert crashed.returncode != 0
    checkpoints = tmp_path / "out/finetune/checkpoints"
    assert sorted(p.name for p in checkpoints.glob("step-*")) == ["step-0000002"]
    # a half-written newer checkpoint (no COMPLETE marker): never chosen, removed once a newer one is complete
    (checkpoints / "step-0000003").mkdir()
    (checkpoints / "step-0000003" / "zero_pp_rank_0_mp_rank_00_model_states.pt").write_bytes(b"half")
    wrong = torchrun(config, ranks=1)  # ZeRO-3 partitions of 2 ranks: refused, with the reason, not a hang
    assert wrong.returncode != 0 and "written by 2 ranks; this job has 1" in wrong.stderr
    resumed = torchrun(config)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resuming at step 2" in resumed.stderr
    expected = losses(folder / "out/finetune/train_log.csv")
    assert losses(tmp_path / "out/finetune/train_log.csv") == expected  # steps 1-2 kept, 3-6 recomputed: equal
    assert not (checkpoints / "step-0000003").exists()


@pytest.mark.timeout(900)
def test_the_warning_signal_saves_requeues_and_continues(reference, tmp_path):
    """`ldrt-hpc train` on the local profile (2 ranks under submitit): USR2 after step 3 -> checkpoint at step 3,
    submitit requeues, the job resumes at step 3 and ends with the reference's losses. Both phases run."""
    folder, _ = reference
    config = write_train_config(tmp_path)
    environment = {**os.environ, "OMP_NUM_THREADS": "1", "LDRT_ALLOW_LOCAL": "1", "LDRT_TRAIN_SIGNAL_AT_STEP": "3"}
    run = subprocess.run([sys.executable, "-m", "ldrt_hpc.cli", "train", "--config", str(config), "--wait"],
                         cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=800)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-3000:]
    summary = json.loads(run.stdout[run.stdout.index("{"):])
    assert "stopped" not in summary and summary["phases"]["finetune"]["steps"] == 6
    logs = "".join(p.read_text() for p in (tmp_path / "out/_jobs/logs").glob("*_0_log.err"))
    assert "stopping at step 3 (SIGUSR2): checkpoint saved; requeue" in logs and "resuming at step 3" in logs
    assert losses(tmp_path / "out/finetune/train_log.csv") == losses(folder / "out/finetune/train_log.csv")
    assert not (tmp_path / "out/finetune/REQUEUE").exists()  # the resumed run cleared the request
