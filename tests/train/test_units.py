"""The recipe's pieces without a run: batch arithmetic, the DeepSpeed config, the LoRA target pattern, the lr
schedule, checkpoint choice, the stop watch, config errors."""

from __future__ import annotations

import os
import re
import signal

import pytest

from ldrt_hpc.errors import ConfigError
from ldrt_hpc.train import checkpoints
from ldrt_hpc.train.config import LoraSettings, PhaseConfig, load_train
from ldrt_hpc.train.recipe import accumulation_steps, cosine_with_warmup, deepspeed_config, lora_pattern
from tests.train.conftest import write_train_config


def test_global_batch_is_per_device_times_ranks_times_accumulation(tmp_path):
    assert accumulation_steps(PhaseConfig(global_batch_size=16, per_device_batch_size=4), 4) == 1
    assert accumulation_steps(PhaseConfig(global_batch_size=16, per_device_batch_size=2), 2) == 4
    with pytest.raises(ValueError, match="global_batch_size 16 is not a multiple of per_device_batch_size 4 x 40 ranks"):
        accumulation_steps(PhaseConfig(global_batch_size=16, per_device_batch_size=4), 40)


def test_deepspeed_config_is_zero3_without_an_optimizer_section(tmp_path):
    cfg = load_train(write_train_config(tmp_path))
    config = deepspeed_config(cfg, cfg.phase("finetune"), 2)
    assert "optimizer" not in config and "scheduler" not in config  # the recipe's AdamW keeps its two lr groups
    assert config["zero_optimization"]["stage"] == 3 and config["bf16"] == {"enabled": True}
    assert config["zero_optimization"]["stage3_gather_16bit_weights_on_model_save"] is True
    assert config["zero_optimization"]["overlap_comm"] and config["zero_optimization"]["contiguous_gradients"]
    assert config["train_batch_size"] == 8 and config["gradient_accumulation_steps"] == 2


def test_lora_targets_the_language_model_and_the_vision_tower_only_when_asked():
    from ldrt_hpc.train.models import build_debug

    names = [name for name, _ in build_debug("llava").model.named_modules()]
    plain = [n for n in names if re.fullmatch(lora_pattern(LoraSettings()), n)]
    assert plain and all(".language_model." in n for n in plain)
    assert any(n.endswith("mlp.down_proj") for n in plain) and any(n.endswith("self_attn.q_proj") for n in plain)
    assert [n for n in names if n.endswith("q_proj") and "vision_tower" in n]  # CLIP has q_proj too: not caught
    both = [n for n in names if re.fullmatch(lora_pattern(LoraSettings(vision_tower=True)), n)]
    assert any("vision_tower" in n and n.endswith("fc1") for n in both) and set(plain) < set(both)


def test_cosine_schedule_with_warmup():
    factor = cosine_with_warmup(100, 0.03)
    assert [round(factor(s), 3) for s in range(4)] == [0.25, 0.5, 0.75, 1.0]
    assert factor(3) == 1.0 and 0.49 < factor(51) < 0.51 and factor(99) < 0.001


def test_only_complete_checkpoints_are_chosen_and_pruned(tmp_path):
    for step in (2, 4, 6, 8):
        (tmp_path / checkpoints.tag(step)).mkdir()
    for step in (2, 4, 6):
        checkpoints.mark_complete(tmp_path / checkpoints.tag(step), {"step": step})
    assert checkpoints.latest(tmp_path).name == "step-0000006"  # step 8 has no COMPLETE: half written
    checkpoints.prune(tmp_path, keep=2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["step-0000004", "step-0000006", "step-0000008"]
    assert checkpoints.latest(tmp_path / "absent") is None


def test_stop_watch_deadline_and_signals(monkeypatch):
    from ldrt_hpc.train.stopping import REQUEUE, STOP, StopWatch

    previous = {s: signal.getsignal(s) for s in (signal.SIGUSR2, signal.SIGTERM)}
    try:
        monkeypatch.setenv("LDRT_TRAIN_DEADLINE", "1000")
        assert StopWatch(600).reason() == REQUEUE  # long past: stop for a requeue
        monkeypatch.delenv("LDRT_TRAIN_DEADLINE")
        watch = StopWatch(600)
        assert watch.reason() == 0
        os.kill(os.getpid(), signal.SIGTERM)
        assert watch.reason() == STOP and watch.signal_name == "SIGTERM"
        os.kill(os.getpid(), signal.SIGUSR2)
        assert watch.reason() == REQUEUE
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def test_config_errors_name_the_file_and_key(tmp_path):
    path = write_train_config(tmp_path)
    path.write_text(path.read_text() + "learning_rate: 1\n")
    with pytest.raises(ConfigError, match=r"train.yaml: learning_rate: unknown key"):
        load_train(path)
    path = write_train_config(tmp_path, model={"flavour": "debug", "path": "/x"})
    with pytest.raises(ConfigError, match="train.yaml: model: .*set exactly one of model.path"):
        load_train(path)
    path = write_train_config(tmp_path, phases=["finetune", "align"])
    with pytest.raises(ConfigError, match="phases: each phase once, align before finetune"):
        load_train(path)


def test_an_output_folder_belongs_to_one_run(tmp_path, monkeypatch):
    import torch.distributed as dist

    from ldrt_hpc.train.recipe import Ranks, check_same_run

    monkeypatch.setattr(dist, "barrier", lambda: None)
    ranks = Ranks(0, 1, 0)
    cfg = load_train(write_train_config(tmp_path))
    check_same_run(cfg, ranks)
    check_same_run(cfg.model_copy(update={"resources": {"nodes": 2}, "log_every": 5}), ranks)  # not shaping: fine
    changed = load_train(write_train_config(tmp_path, finetune={"lr": 1.0e-3}))
    with pytest.raises(ValueError, match=r"holds a training run with other settings \(finetune differ\)"):
        check_same_run(changed, ranks)


def test_a_batch_that_cannot_be_built_stops_every_rank_with_the_reason(tmp_path):
    import torch.distributed as dist

    from ldrt_hpc.train.recipe import Ranks, checked

    def batches():
        yield {"x": 1}
        raise ValueError("sample s7: its prompt is 3000 tokens")

    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    try:
        iterator = checked(batches(), Ranks(0, 1, 0), "cpu")
        assert next(iterator) == {"x": 1}
        with pytest.raises(RuntimeError, match="could not be built on rank 0: ValueError: sample s7: its prompt"):
            next(iterator)
    finally:
        dist.destroy_process_group()
