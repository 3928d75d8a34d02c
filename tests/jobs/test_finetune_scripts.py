"""The static training job scripts jobs/finetune.sbatch and jobs/finetune.pbs: syntax, the command lines they
build from the scheduler's environment (dry run, with fake scheduler commands on PATH), the requeue decision after
torchrun (fake torchrun/mpiexec, scontrol, qsub), and a real training job on the local Slurm cluster."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SBATCH = REPO / "jobs" / "finetune.sbatch"
PBS = REPO / "jobs" / "finetune.pbs"

FAKE_SCONTROL = """#!/bin/bash
echo "scontrol $*" >> "$FAKE_LOG"
if [[ "$1 $2" == "show hostnames" ]]; then printf 'gpu-node-07\\ngpu-node-08\\n'; fi
"""
FAKE_SQUEUE = """#!/bin/bash
echo "squeue $*" >> "$FAKE_LOG"
echo 2031-03-04T05:06:07
"""
FAKE_QSTAT = """#!/bin/bash
echo "qstat $*" >> "$FAKE_LOG"
cat <<'EOF'
Job Id: 4242.polaris-pbs-01
    Job_Name = ldrt-train
    Account_Name = MYPROJ
    resources_used.walltime = 00:00:05
    job_state = R
    queue = small
    Resource_List.place = scatter
    Resource_List.select = 2:ngpus=4:system=polaris
    Resource_List.walltime = 01:00:00
    Resource_List.filesystems = home:eagle
    stime = Tue Mar  4 05:06:07 2031
EOF
"""
FAKE_NVIDIA_SMI = """#!/bin/bash
for i in 0 1 2 3; do echo "GPU $i: NVIDIA A100-SXM4-40GB (UUID: GPU-0000$i)"; done
"""
NO_NVIDIA_SMI = """#!/bin/bash
exit 9
"""
FAKE_MPIEXEC = """#!/bin/bash
echo "mpiexec $*" >> "$FAKE_LOG"
while [[ "$1" == -* ]]; do case "$1" in -n|--ppn|--depth|--cpu-bind) shift 2 ;; *) shift ;; esac; done
exec "$@"
"""
FAKE_QSUB = """#!/bin/bash
echo "qsub $*" >> "$FAKE_LOG"
echo 4243.polaris-pbs-01
"""
FAKE_TORCHRUN = """#!/bin/bash
echo "torchrun $*" >> "$FAKE_LOG"
echo "OMP_NUM_THREADS=$OMP_NUM_THREADS TORCH_EXTENSIONS_DIR=$TORCH_EXTENSIONS_DIR" >> "$FAKE_LOG"
if [[ -n "$FAKE_REQUEUE" ]]; then echo '{"step": 3, "signal": "deadline"}' > "$LDRT_REQUEUE_FILE"; fi
exit "${FAKE_RC:-0}"
"""


def fake_bin(folder: Path, **scripts: str) -> Path:
    """Executables named after the keywords (nvidia_smi -> nvidia-smi)."""
    folder.mkdir(exist_ok=True)
    for name, text in scripts.items():
        path = folder / name.replace("_", "-")
        path.write_text(text)
        path.chmod(0o755)
    return folder


def clean_env(tmp_path: Path, bin_dir: Path, **extra: str) -> dict[str, str]:
    """This process's environment without scheduler or ldrt-hpc variables (the tests may run inside a job), the
    fakes first on PATH, then the given variables."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SLURM_", "SBATCH_", "PBS_", "LDRT_")) and k not in ("OMP_NUM_THREADS",
                                                                                   "TORCH_EXTENSIONS_DIR")}
    env["PATH"] = f"{bin_dir}:{env['PATH']}"
    env["FAKE_LOG"] = str(tmp_path / "calls.log")
    # this interpreter passes the script's `import ldrt_hpc` check; the fake torchrun is the launcher
    env.update(LDRT_PYTHON=sys.executable, LDRT_TORCHRUN="torchrun")
    env.update(extra)
    return env


def run_script(script: Path, env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(script), *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=60)


def calls(tmp_path: Path) -> list[str]:
    log = tmp_path / "calls.log"
    return log.read_text().splitlines() if log.is_file() else []


def slurm_env(tmp_path: Path, nodes: int, **extra: str) -> dict[str, str]:
    bin_dir = fake_bin(tmp_path / "bin", scontrol=FAKE_SCONTROL, squeue=FAKE_SQUEUE, torchrun=FAKE_TORCHRUN,
                       nvidia_smi=NO_NVIDIA_SMI)
    return clean_env(tmp_path, bin_dir, SLURM_JOB_ID="5150", SLURM_JOB_NUM_NODES=str(nodes), SLURM_NNODES=str(nodes),
                     SLURM_JOB_NODELIST="gpu-node-[07-08]" if nodes == 2 else "gpu-node-07",
                     SLURM_SUBMIT_DIR=str(tmp_path), SLURM_CPUS_ON_NODE="32", SLURM_CPUS_PER_TASK="32", **extra)


def pbs_env(tmp_path: Path, nodes: int, gpus: bool = True, **extra: str) -> dict[str, str]:
    fakes = dict(qstat=FAKE_QSTAT, mpiexec=FAKE_MPIEXEC, qsub=FAKE_QSUB, torchrun=FAKE_TORCHRUN)
    fakes["nvidia_smi"] = FAKE_NVIDIA_SMI if gpus else NO_NVIDIA_SMI
    bin_dir = fake_bin(tmp_path / "bin", **fakes)
    hosts = ["x3006c0s13b0n0.hsn.cm.polaris.alcf.anl.gov", "x3006c0s19b1n0.hsn.cm.polaris.alcf.anl.gov"][:nodes]
    nodefile = tmp_path / "nodefile"
    nodefile.write_text("".join(f"{h}\n" * 2 for h in hosts))  # mpiprocs=2 style: each host twice
    return clean_env(tmp_path, bin_dir, PBS_JOBID="4242.polaris-pbs-01", PBS_JOBNAME="ldrt-train",
                     PBS_NODEFILE=str(nodefile), PBS_O_WORKDIR=str(tmp_path), PBS_O_QUEUE="debug",
                     CONFIG="configs/train/run.yaml", **extra)


# --------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("script", [SBATCH, PBS], ids=["sbatch", "pbs"])
def test_scripts_parse_and_document_themselves(script):
    subprocess.run(["bash", "-n", str(script)], check=True)
    text = script.read_text()
    header = text.split("\nset -eo pipefail", 1)[0]
    assert "Usage" in header and "Requeue" in header and "LDRT_TRAIN_DEADLINE" in header
    directives = [line for line in header.splitlines() if line.startswith(("#SBATCH", "#PBS"))]
    assert directives, "default directives"
    # directives come after the comment block only, before any command
    assert all(line.startswith("#") or not line.strip() for line in header.splitlines()[1:])


def test_sbatch_directives_requeue_and_default_resources():
    text = SBATCH.read_text()
    for directive in ("--requeue", "--nodes=1", "--gpus-per-node=4", "--time=", "--open-mode=append"):
        assert f"#SBATCH {directive}" in text
    assert "--signal" not in "\n".join(line for line in text.splitlines() if line.startswith("#SBATCH"))


def test_pbs_directives_polaris_defaults():
    text = PBS.read_text()
    for directive in ("-l select=1:ngpus=4", "-l walltime=", "-l filesystems=home:eagle", "-r y"):
        assert f"#PBS {directive}" in text
    assert "##PBS -A " in text  # a commented placeholder: qsub -A PROJECT


def test_sbatch_dry_run_two_nodes(tmp_path):
    env = slurm_env(tmp_path, nodes=2, SLURM_GPUS_ON_NODE="4", LDRT_DRY_RUN="1")
    done = run_script(SBATCH, env, tmp_path, "configs/train/run.yaml")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    command = next(line for line in lines if "--nnodes" in line)
    assert command.startswith("srun --nodes 2 --ntasks 2 --ntasks-per-node 1 ")
    assert "--cpus-per-task 32" in command
    assert ("torchrun --nnodes 2 --nproc_per_node 4 --rdzv_backend c10d --rdzv_endpoint gpu-node-07:29550 "
            "--rdzv_id 5150 -m ldrt_hpc.train --config configs/train/run.yaml") in command
    expected = int(subprocess.run(["date", "-d", "2031-03-04T05:06:07", "+%s"], capture_output=True, text=True,
                                  check=True).stdout)
    assert f"LDRT_TRAIN_DEADLINE={expected}" in lines
    assert any(c.startswith("squeue -h -j 5150") for c in calls(tmp_path))
    assert not any("torchrun" in c for c in calls(tmp_path)), "dry run: nothing started"


def test_sbatch_dry_run_without_gpu_or_end_time(tmp_path):
    """No GPUs: LDRT_NPROC_PER_NODE ranks; a single node needs no srun; no end time: no deadline."""
    env = slurm_env(tmp_path, nodes=1, LDRT_DRY_RUN="1", LDRT_NPROC_PER_NODE="2", LDRT_RDZV_PORT="29555",
                    PATH=f"{tmp_path / 'bin'}:/usr/bin:/bin")
    (tmp_path / "bin" / "squeue").write_text("#!/bin/bash\necho N/A\n")
    done = run_script(SBATCH, env, tmp_path, "run.yaml")
    assert done.returncode == 0, done.stderr
    command = next(line for line in done.stdout.splitlines() if "--nnodes" in line)
    assert command.startswith("torchrun --nnodes 1 --nproc_per_node 2 ")
    assert "--rdzv_endpoint gpu-node-07:29555" in command
    assert "LDRT_TRAIN_DEADLINE=" in done.stdout.splitlines()
    assert "signals only" in done.stderr


def test_sbatch_uses_the_given_python_for_torchrun(tmp_path):
    env = slurm_env(tmp_path, nodes=1, LDRT_DRY_RUN="1", LDRT_PYTHON="/opt/envs/x/bin/python", LDRT_TORCHRUN="")
    done = run_script(SBATCH, env, tmp_path, "run.yaml")
    assert done.returncode == 0, done.stderr
    assert "/opt/envs/x/bin/python -m torch.distributed.run --nnodes 1 --nproc_per_node 1 " in done.stdout


def test_sbatch_without_config_is_refused(tmp_path):
    done = run_script(SBATCH, slurm_env(tmp_path, nodes=1), tmp_path)
    assert done.returncode == 2 and "usage" in done.stderr


def test_sbatch_requeues_when_the_trainer_asks(tmp_path):
    env = slurm_env(tmp_path, nodes=1, FAKE_REQUEUE="1", FAKE_RC="0", LDRT_NPROC_PER_NODE="2")
    done = run_script(SBATCH, env, tmp_path, "run.yaml")
    assert done.returncode == 0, done.stderr
    log = calls(tmp_path)
    assert any(c.startswith("torchrun --nnodes 1 --nproc_per_node 2 ") for c in log)
    assert "scontrol requeue 5150" in log
    assert "OMP_NUM_THREADS=16 TORCH_EXTENSIONS_DIR=" + str(tmp_path / ".cache" / "torch_extensions") in log
    assert not list(tmp_path.glob(".ldrt-requeue-*")), "the requeue file is removed"


def test_sbatch_propagates_the_exit_status_without_requeue(tmp_path):
    stale = tmp_path / ".ldrt-requeue-5150"
    stale.write_text("{}\n")  # left over from an earlier run: removed before torchrun starts
    env = slurm_env(tmp_path, nodes=1, FAKE_RC="5")
    done = run_script(SBATCH, env, tmp_path, "run.yaml")
    assert done.returncode == 5, done.stderr
    assert not any(c.startswith("scontrol requeue") for c in calls(tmp_path))
    assert not stale.exists()


def test_sbatch_stops_requeueing_after_the_limit(tmp_path):
    env = slurm_env(tmp_path, nodes=1, FAKE_REQUEUE="1", SLURM_RESTART_COUNT="3", LDRT_MAX_REQUEUES="3")
    done = run_script(SBATCH, env, tmp_path, "run.yaml")
    assert done.returncode == 3
    assert not any(c.startswith("scontrol requeue") for c in calls(tmp_path))
    assert "LDRT_MAX_REQUEUES" in done.stderr


def test_pbs_dry_run_two_nodes(tmp_path):
    env = pbs_env(tmp_path, nodes=2, LDRT_DRY_RUN="1")
    done = run_script(PBS, env, tmp_path)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    command = next(line for line in lines if "--nnodes" in line)
    assert command.startswith("mpiexec -n 2 --ppn 1 ")
    assert ("torchrun --nnodes 2 --nproc_per_node 4 --rdzv_backend c10d --rdzv_endpoint "
            "x3006c0s13b0n0.hsn.cm.polaris.alcf.anl.gov:29642 --rdzv_id 4242.polaris-pbs-01 -m ldrt_hpc.train "
            "--config configs/train/run.yaml") in command
    start = int(subprocess.run(["date", "-d", "Tue Mar  4 05:06:07 2031", "+%s"], capture_output=True, text=True,
                               check=True).stdout)
    assert f"LDRT_TRAIN_DEADLINE={start + 3600}" in lines
    assert "qstat -f 4242.polaris-pbs-01" in calls(tmp_path)


def test_pbs_dry_run_without_gpu_or_walltime(tmp_path):
    env = pbs_env(tmp_path, nodes=1, gpus=False, LDRT_DRY_RUN="1", LDRT_NPROC_PER_NODE="2",
                  PATH=f"{tmp_path / 'bin'}:/usr/bin:/bin")
    (tmp_path / "bin" / "qstat").write_text("#!/bin/bash\necho 'qstat: Unknown Job Id' >&2\nexit 153\n")
    done = run_script(PBS, env, tmp_path)
    assert done.returncode == 0, done.stderr
    command = next(line for line in done.stdout.splitlines() if "--nnodes" in line)
    assert command.startswith("mpiexec -n 1 --ppn 1 ")
    assert "--nnodes 1 --nproc_per_node 2 " in command
    assert "LDRT_TRAIN_DEADLINE=" in done.stdout.splitlines()


def test_pbs_without_config_is_refused(tmp_path):
    env = pbs_env(tmp_path, nodes=1)
    del env["CONFIG"]
    done = run_script(PBS, env, tmp_path)
    assert done.returncode == 2 and "CONFIG" in done.stderr


def test_pbs_resubmits_itself_when_the_trainer_asks(tmp_path):
    env = pbs_env(tmp_path, nodes=2, FAKE_REQUEUE="1", LDRT_CONDA_ENV="", LDRT_EXTRA="a,b")
    done = run_script(PBS, env, tmp_path)
    assert done.returncode == 0, done.stderr
    log = calls(tmp_path)
    assert any(c.startswith("mpiexec -n 2 --ppn 1 ") and "--nproc_per_node 4" in c for c in log)
    assert any(c.startswith("torchrun --nnodes 2 --nproc_per_node 4 ") for c in log)
    qsub = [c for c in log if c.startswith("qsub ")]
    assert len(qsub) == 1
    for part in ("-N ldrt-train", "-l select=2:ngpus=4:system=polaris", "-l walltime=01:00:00",
                 "-l place=scatter", "-l filesystems=home:eagle", "-A MYPROJ", "-q debug"):
        assert part in qsub[0]
    assert qsub[0].endswith(" jobs/finetune.pbs")
    variables = qsub[0].split(" -v ", 1)[1].split(" ", 1)[0]
    assert "LDRT_REQUEUE_COUNT=1" in variables and "CONFIG=configs/train/run.yaml" in variables
    assert "LDRT_EXTRA='a,b'" in variables and "LDRT_TRAIN_DEADLINE" not in variables
    assert "4243.polaris-pbs-01" in done.stderr
    assert not list(tmp_path.glob(".ldrt-requeue-*"))


def test_pbs_propagates_the_exit_status_without_requeue(tmp_path):
    env = pbs_env(tmp_path, nodes=1, FAKE_RC="7")
    done = run_script(PBS, env, tmp_path)
    assert done.returncode == 7, done.stderr
    assert not any(c.startswith("qsub") for c in calls(tmp_path))


def test_pbs_stops_resubmitting_after_the_limit(tmp_path):
    env = pbs_env(tmp_path, nodes=1, FAKE_REQUEUE="1", LDRT_REQUEUE_COUNT="2", LDRT_MAX_REQUEUES="2")
    done = run_script(PBS, env, tmp_path)
    assert done.returncode == 3
    assert not any(c.startswith("qsub") for c in calls(tmp_path))


# --------------------------------------------------------------------------------------------------------------
# the real local Slurm cluster


def tiny_training(folder: Path, stop_before_limit_s: int = 600) -> Path:
    """16 random 56-pixel PNGs in LLaVA JSON, the debug model, 2 ranks x 2 samples, 2 steps (~20 s)."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    (folder / "images").mkdir(parents=True)
    entries = []
    for i in range(16):
        Image.fromarray(rng.integers(0, 255, (56, 56, 3), dtype=np.uint8)).save(folder / "images" / f"{i}.png")
        entries.append({"id": str(i), "image": f"images/{i}.png", "conversations": [
            {"from": "human", "value": "<image>\nWhat does the figure show?"},
            {"from": "gpt", "value": f"A bar chart of cytokine levels after {0.1 * i:.1f} Gy."}]})
    (folder / "data.json").write_text(json.dumps(entries))
    config = folder / "train.yaml"
    config.write_text(
        "# sbatch jobs/finetune.sbatch train.yaml (test)\n"
        "output_dir: out\nmodel: {flavour: debug}\ndata: {llava_json: data.json, num_workers: 0, max_length: 256}\n"
        "phases: [finetune]\n"
        "finetune: {max_steps: 2, global_batch_size: 4, per_device_batch_size: 2, lora: {r: 4, alpha: 8}}\n"
        f"checkpoint: {{every_steps: 1, stop_before_limit_s: {stop_before_limit_s}}}\n")
    return config


def submit(folder: Path, *options: str) -> str:
    exports = ",".join(["ALL", "LDRT_NPROC_PER_NODE=2", "OMP_NUM_THREADS=1", f"LDRT_PYTHON={sys.executable}",
                        f"TORCH_EXTENSIONS_DIR={Path.home() / '.cache' / 'torch_extensions'}"])
    done = subprocess.run(["sbatch", "--parsable", f"--export={exports}", "-p", "debug", "-N1", "-n1", "-c2",
                           "--gpus-per-node=0", "--chdir", str(folder), "-o", str(folder / "job-%j.out"),
                           "--job-name", "ldrt-train-test", *options, str(SBATCH), "train.yaml"],
                          cwd=folder, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().split(";")[0]


def job_state(job_id: str) -> tuple[str, str]:
    out = subprocess.run(["sacct", "-n", "-X", "-P", "-j", job_id, "-o", "State,ExitCode"], capture_output=True,
                         text=True, timeout=30).stdout.strip().splitlines()
    return tuple(out[0].split("|")) if out else ("", "")  # type: ignore[return-value]


def wait_for(job_id: str, timeout_s: float, on_requeue=None) -> tuple[str, str]:
    ends = ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL", "PREEMPTED")
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            state = job_state(job_id)
            if state[0].split()[0:1] and state[0].split()[0] in ends:
                return state
            if on_requeue:
                on_requeue()
            time.sleep(2)
    except BaseException:
        subprocess.run(["scancel", job_id], timeout=30)
        raise
    subprocess.run(["scancel", job_id], timeout=30)
    raise AssertionError(f"job {job_id} did not end in {timeout_s} s: {job_state(job_id)}")


@pytest.mark.slurm
def test_training_job_on_local_slurm(slurm, tmp_path):
    tiny_training(tmp_path)
    job_id = submit(tmp_path)
    state, exit_code = wait_for(job_id, 150)
    log = "\n".join(p.read_text() for p in tmp_path.glob("job-*.out"))
    assert (state, exit_code) == ("COMPLETED", "0:0"), log[-3000:]
    assert (tmp_path / "out" / "finetune" / "DONE").is_file(), log[-3000:]
    assert (tmp_path / "out" / "finetune" / "adapter" / "adapter_model.safetensors").is_file()
    assert "ldrt-hpc: deadline " in log  # read from squeue; 12 h away: no early stop
    assert "1 node(s) x 2 rank(s), rendezvous " in log
    assert json.loads((tmp_path / "out" / "finetune" / "DONE").read_text())["steps"] == 2


@pytest.mark.slurm
def test_training_job_requeued_at_its_deadline_resumes_on_local_slurm(slurm, tmp_path):
    """stop_before_limit_s longer than the job's time: the trainer stops after its first step with a checkpoint,
    the script requeues the job (same id) and the restart resumes at step 1 and finishes (at the last step the
    trainer writes its outputs instead of asking for another requeue). Slurm holds a requeued job ~120 s
    (BeginTime); the test moves that to now once it sees the requeue."""
    tiny_training(tmp_path, stop_before_limit_s=86400)  # 2 steps: requeue after step 1; the last step finishes
    job_id = submit(tmp_path)

    requeued_at = []

    def release():
        text = subprocess.run(["scontrol", "show", "job", job_id], capture_output=True, text=True).stdout
        if "Restarts=0" not in text and "Reason=BeginTime" in text:
            requeued_at[:] = requeued_at or [time.time()]
            # a few seconds after the requeue, not at once: slurmd refuses to launch a job whose credential it
            # revoked for the requeue a moment ago ("Job credential revoked") and the job then ends FAILED
            if time.time() - requeued_at[0] >= 4:
                subprocess.run(["scontrol", "update", f"JobId={job_id}", "StartTime=now"], capture_output=True)

    state, exit_code = wait_for(job_id, 240, on_requeue=release)
    log = "\n".join(p.read_text() for p in tmp_path.glob("job-*.out"))
    assert (state, exit_code) == ("COMPLETED", "0:0"), log[-3000:]
    assert f"requeued job {job_id} (restart 1)" in log
    assert "resuming at step 1" in log
    assert (tmp_path / "out" / "finetune" / "DONE").is_file(), log[-3000:]
