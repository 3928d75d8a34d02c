"""`ldrt-hpc train` as a scheduler job: golden job scripts (Slurm srun tasks, PBS PALS mpiexec, local ranks), the
resources it asks for, and one short training job on the local Slurm cluster.

Regenerate the golden files after an intended change with:
LDRT_UPDATE_GOLDEN=1 python -m pytest tests/launch/test_train_launch.py"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from ldrt_hpc.config import SHIPPED
from ldrt_hpc.errors import ConfigError
from ldrt_hpc.launch.train import placement, submit_training
from ldrt_hpc.train.config import TrainConfig

GOLDEN = Path(__file__).resolve().parent.parent / "golden"
PROFILES = ["local", "localslurm", "generic-slurm", "polaris"]


def config(**changes) -> TrainConfig:
    return TrainConfig.model_validate({"output_dir": "/RUN", "model": {"flavour": "debug"},
                                       "data": {"llava_json": "/DATA/train.json"}, **changes})


@pytest.mark.parametrize("profile", PROFILES)
def test_training_job_script_matches_golden(profile):
    text = submit_training(config(), profile, dry_run=True, python="python3").script.replace(str(SHIPPED), "$SHIPPED")
    golden = GOLDEN / f"train.{profile}.sh"
    if os.environ.get("LDRT_UPDATE_GOLDEN"):
        golden.write_text(text)
    assert text == golden.read_text()


def test_one_rank_per_gpu_and_time_to_save_before_the_limit():
    profile, resources = placement(config(), "polaris", {})
    assert (resources.nodes, resources.tasks_per_node, resources.gpus_per_node) == (10, 4, 4)
    assert resources.signal_delay_s == 600  # checkpoint.stop_before_limit_s, not the 90 s of array tasks
    _, resources = placement(config(resources={"nodes": 1, "time_min": 60}), "polaris", {"time_min": 30})
    assert (resources.nodes, resources.time_min) == (1, 30)  # the command's flags win over the config
    _, resources = placement(config(), "generic-slurm", {"nodes": 2})
    assert resources.nodes == 2 and resources.tasks_per_node == resources.gpus_per_node
    with pytest.raises(ConfigError, match="runs on this machine only: nodes must be 1, not 2"):
        placement(config(), "local", {"nodes": 2})
    with pytest.raises(ConfigError, match="no resources.bigmem"):
        placement(config(resource_class="bigmem"), "local", {})


def test_dry_run_writes_nothing(tmp_path):
    cfg = config(output_dir=str(tmp_path / "run"))
    result = submit_training(cfg, "localslurm", dry_run=True)
    assert result.job_id is None and "#SBATCH --ntasks-per-node=2" in result.script
    assert not (tmp_path / "run").exists()


@pytest.mark.slurm
@pytest.mark.timeout(600)
def test_a_short_training_job_on_the_local_slurm_cluster(slurm, tmp_path, monkeypatch):
    from ldrt_hpc.train.config import load_train
    from tests.train.conftest import write_train_config

    pytest.importorskip("deepspeed")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    cfg = load_train(write_train_config(tmp_path, phases=["finetune"], finetune={"max_steps": 2}))
    result = submit_training(cfg, "localslurm")
    summary = result.job.results()[0]
    assert summary["phases"]["finetune"]["steps"] == 2 and "stopped" not in summary
    assert (tmp_path / "out/finetune/adapter/adapter_model.safetensors").is_file()
    record = json.loads((tmp_path / "out/_jobs/submissions.jsonl").read_text().splitlines()[-1])
    assert record["job_id"] == result.job_id and record["ranks"] == 2 and record["cluster"] == "localslurm"
    logs = (tmp_path / "out/_jobs/logs" / f"{result.job_id}_0_log.err").read_text()
    assert "2 per device x 2 ranks" in logs


def test_the_requeue_goes_to_submitits_handler_only():
    import signal

    from ldrt_hpc.launch.train import submitit_requeue

    previous = signal.getsignal(signal.SIGUSR2)
    try:
        signal.signal(signal.SIGUSR2, lambda *args: None)  # not submitit's: no hand-over
        assert submitit_requeue() is None
        calls = []

        class SignalHandler:  # what submitit installs (submitit.core.job_environment.SignalHandler)
            def checkpoint_and_try_requeue(self, signum, frame):
                calls.append(signum)

        SignalHandler.__module__ = "submitit.core.job_environment"
        signal.signal(signal.SIGUSR2, SignalHandler().checkpoint_and_try_requeue)
        submitit_requeue()()
        assert calls == [signal.SIGUSR2]
    finally:
        signal.signal(signal.SIGUSR2, previous)
