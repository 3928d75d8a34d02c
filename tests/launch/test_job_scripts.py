"""Golden files for every generated job script (Slurm, PBS Pro, local), one per profile and resource class.

Regenerate after an intended change with: LDRT_UPDATE_GOLDEN=1 python -m pytest tests/launch/test_job_scripts.py
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from ldrt_hpc.config import CLUSTERS_DIR, SHIPPED, ClusterProfile, ConfigError, load_cluster
from ldrt_hpc.launch.executors import _setup, job_script, pbs_parameters

GOLDEN = Path(__file__).resolve().parent.parent / "golden"
FOLDER = Path("/WORK/ingest/_jobs/logs")
CASES = [
    ("local", "cpu", 4),
    ("localslurm", "cpu", 4),
    ("localslurm", "gpu", 1),
    ("localpbs", "cpu", 4),
    ("generic-slurm", "cpu", 2500),
    ("generic-slurm", "gpu", 8),
    ("generic-slurm", "multinode_gpu", 1),
    ("polaris", "cpu", 100),
    ("polaris", "gpu", 8),
    ("polaris", "multinode_gpu", 1),
]


def render(profile_name: str, resource_class: str, array_size: int) -> str:
    profile = load_cluster(profile_name)
    resources = profile.resources_for(resource_class, profile_name)
    size = min(array_size, profile.max_array_size)
    # profiles with a conda env (or a python) run that; the others the submitting Python, here called python3
    python = None if profile.conda_env or profile.python else "python3"
    text = job_script(profile, resources, FOLDER, "ldrt-stage", size, python=python)
    return text.replace(str(SHIPPED), "$SHIPPED")


@pytest.mark.parametrize("profile_name, resource_class, array_size", CASES)
def test_job_script_matches_golden(profile_name, resource_class, array_size):
    text = render(profile_name, resource_class, array_size)
    golden = GOLDEN / f"{profile_name}.{resource_class}.sh"
    if os.environ.get("LDRT_UPDATE_GOLDEN"):
        golden.write_text(text)
    assert golden.is_file(), f"missing golden file {golden}; run with LDRT_UPDATE_GOLDEN=1"
    assert text == golden.read_text()


def test_polaris_script_has_the_mandatory_pbs_options():
    text = render("polaris", "multinode_gpu", 1)
    for line in ("#PBS -A MYPROJECT", "#PBS -l walltime=12:00:00", "#PBS -l filesystems=home:eagle", "#PBS -q prod",
                 "#PBS -l select=10:ncpus=32:ngpus=4:mpiprocs=4:system=polaris", "#PBS -l place=scatter"):
        assert line in text.splitlines()
    assert "#PBS -J" not in text  # a single task is a plain job: PBS rejects -J 0-0
    array = render("polaris", "gpu", 8)
    assert "#PBS -J 0-7%8" in array and 'LDRT_JOB_ID="${PBS_ARRAY_ID}_${PBS_ARRAY_INDEX}"' in array
    assert "source $SHIPPED/modules/polaris.sh" in array and "conda activate ldrt-hpc" in array


def test_slurm_script_resources():
    text = render("generic-slurm", "multinode_gpu", 1).splitlines()
    for line in ("#SBATCH --nodes=4", "#SBATCH --ntasks-per-node=4", "#SBATCH --gpus-per-node=4",
                 "#SBATCH --account=myproject", "#SBATCH --constraint=a100", "#SBATCH --signal=USR2@90"):
        assert line in text
    assert "#SBATCH --array=0-999%200" in render("generic-slurm", "cpu", 2500)  # capped at max_array_size


def test_scripts_warn_before_the_time_limit_and_allow_the_requeue():
    """The task checkpoints on USR2 and requeues itself (ldrt_hpc/launch/task.py): Slurm scripts ask for the
    signal and for --requeue (refused on JobRequeue=0 sites otherwise); PBS scripts arm the task's own timer
    (PBS has no --signal), walltime minus signal_delay_s (docs/pbs.md)."""
    for name in ("localslurm", "generic-slurm"):
        lines = render(name, "cpu", 4).splitlines()
        assert "#SBATCH --requeue" in lines and "#SBATCH --signal=USR2@90" in lines
    polaris = render("polaris", "gpu", 8)
    hours, minutes = re.search(r"#PBS -l walltime=(\d+):(\d+):00", polaris).groups()
    expected = (int(hours) * 60 + int(minutes)) * 60 - 90
    assert f"export LDRT_SIGNAL_AT=$(( $(date +%s) + {expected} ))" in polaris.splitlines()
    local = render("localpbs", "cpu", 4)
    assert local.index("LDRT_SIGNAL_AT") < local.index("# setup")  # counted from the script's start


def test_pbs_memory_keeps_fractions():
    from ldrt_hpc.config import ClusterProfile
    from ldrt_hpc.launch.executors import pbs_parameters

    profile = ClusterProfile(scheduler="pbs", resources={"cpu": {"mem_gb": 1.5, "cpus_per_task": 2}})
    params = pbs_parameters(profile, profile.resources["cpu"], "x")
    assert params["mem"] == "1536mb" and "export LDRT_WORKERS=2" in params["setup"]


# --------------------------------------------------------------------------------------------------------------
# the environment inside the job (issue 10, item 2)

SHIPPED_PROFILES = sorted(path.stem for path in CLUSTERS_DIR.glob("*.yaml"))
ENV_CHECK = "-c 'import ldrt_hpc, submitit' || {"


@pytest.fixture
def demo_config(tmp_path):
    """configs/demo.yaml with its work dir and its input folder (two PDFs) under tmp_path."""
    from tests.conftest import REPO

    pdfs = tmp_path / "pdfs"
    pdfs.mkdir()
    for name in ("a.pdf", "b.pdf"):
        (pdfs / name).write_bytes(b"%PDF-1.4\n%%EOF\n")
    text = (REPO / "configs" / "demo.yaml").read_text()
    text = re.sub(r"(?m)^work_dir: .*$", f"work_dir: {tmp_path / 'work'}", text)
    text = re.sub(r"(?m)^(\s+input_dir:) .*$", rf"\1 {pdfs}", text)
    path = tmp_path / "demo.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("profile_name", SHIPPED_PROFILES)
def test_dry_run_script_of_every_shipped_profile_is_valid_and_checks_its_environment(
        profile_name, demo_config, tmp_path, capsys):
    """`ldrt-hpc run ingest --config configs/demo.yaml --cluster P --dry-run`: bash -n passes, the script starts
    (after the scheduler's own lines) with `set -eo pipefail`, sets up modules/conda and checks the environment
    before it runs Python; with a conda env it runs that env's `python`, not the submitter's absolute path."""
    from ldrt_hpc.cli import main

    assert main(["run", "ingest", "--config", str(demo_config), "--cluster", profile_name, "--dry-run"]) == 0
    out = capsys.readouterr().out
    script = out.split("\n", 1)[1].split("\ningest: would submit", 1)[0]
    path = tmp_path / "job.sh"
    path.write_text(script)
    checked = subprocess.run(["bash", "-n", str(path)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr
    code = [line for line in script.splitlines() if line.strip() and not line.startswith("#")]
    lines = script.splitlines()
    if profile_name != "local":  # a scheduler script: its own lines (ids, log files), then the set-up
        assert lines[lines.index("# setup") + 1] == "set -eo pipefail"
    else:
        assert code[0] == "set -eo pipefail"
    check = next(i for i, line in enumerate(code) if ENV_CHECK in line)
    command = next(i for i, line in enumerate(code) if "submitit.core._submit" in line)
    profile = load_cluster(profile_name)
    setup = profile.setup_lines()
    strict = code.index("set -eo pipefail")
    assert all(strict < code.index(line) < check for line in setup)  # the check runs after every set-up line ...
    assert check < command and "exit 97" in code[check]  # ... and before the command
    if profile.conda_env:
        assert sys.executable not in script
        assert code[command].split(" -u -m ")[0].endswith("python")
        hook = code.index('eval "$(conda shell.bash hook)"')
        assert hook < code.index(f"conda activate {profile.conda_env}") < check


def _run_setup(profile: ClusterProfile, python: str, cwd: Path, env: dict | None = None):
    profile = profile.model_copy(update={"python": python})
    script = cwd / "setup.sh"
    script.write_text("\n".join(["#!/bin/bash", *_setup(profile, profile.resources["cpu"]),
                                 "echo SETUP-OK"]) + "\n")
    return subprocess.run(["bash", str(script)], capture_output=True, text=True, cwd=cwd,
                          env={**os.environ, **(env or {})})


def test_environment_check_stops_a_broken_job_with_one_clear_line(tmp_path):
    cpu = {"cpu": {"cpus_per_task": 1}}
    good = _run_setup(ClusterProfile(scheduler="slurm", resources=cpu), sys.executable, tmp_path)
    assert good.returncode == 0 and "SETUP-OK" in good.stdout, good.stderr

    broken_modules = tmp_path / "broken.sh"
    broken_modules.write_text("echo loading\nfalse\necho not reached\n")
    result = _run_setup(ClusterProfile(scheduler="slurm", modules_profile=str(broken_modules), resources=cpu),
                        sys.executable, tmp_path)
    assert result.returncode == 97 and "SETUP-OK" not in result.stdout and "not reached" not in result.stdout
    assert "ldrt-hpc: job setup failed" in result.stderr and str(broken_modules) in result.stderr

    no_conda = _run_setup(ClusterProfile(scheduler="pbs", conda_env="ldrt-hpc", resources=cpu), "python", tmp_path,
                          env={"PATH": "/usr/bin:/bin"})
    assert no_conda.returncode == 97 and "conda not found" in no_conda.stderr and "ldrt-hpc" in no_conda.stderr

    missing = _run_setup(ClusterProfile(scheduler="slurm", resources=cpu), str(tmp_path / "no-such-python"), tmp_path)
    assert missing.returncode == 97 and "not found after module/conda setup" in missing.stderr

    fake = tmp_path / "python"
    fake.write_text("#!/bin/sh\nexit 1\n")
    fake.chmod(0o755)
    cannot_import = _run_setup(ClusterProfile(scheduler="slurm", resources=cpu), str(fake), tmp_path)
    assert cannot_import.returncode == 97 and "cannot import ldrt_hpc" in cannot_import.stderr


def test_a_conda_profile_runs_the_python_of_its_environment():
    from ldrt_hpc.launch.executors import python_command

    for name in ("polaris", "generic-slurm"):
        profile = load_cluster(name)
        assert python_command(profile) == "python"
        text = job_script(profile, profile.resources["cpu"], FOLDER, "x", 4)
        assert sys.executable not in text and "python -u -m submitit.core._submit" in text
    assert python_command(load_cluster("localslurm")).endswith(Path(sys.executable).name)  # no env: submitter's
    assert python_command(ClusterProfile(scheduler="pbs", conda_env="e", python="/opt/py/bin/python3",
                                         resources={"cpu": {}})) == "/opt/py/bin/python3"


@pytest.mark.parametrize("name", ["stage_array.pbs", "stage_array.sbatch"])
def test_static_scripts_activate_conda_and_check_the_environment(name):
    from tests.conftest import REPO

    path = REPO / "jobs" / name
    assert subprocess.run(["bash", "-n", str(path)]).returncode == 0
    lines = path.read_text().splitlines()
    code = [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
    assert code[0] == "set -eo pipefail"
    hook = next(i for i, line in enumerate(code) if 'eval "$(conda shell.bash hook)"' in line)
    activate = next(i for i, line in enumerate(code) if "conda activate" in line)
    check = next(i for i, line in enumerate(code) if "import ldrt_hpc" in line and "exit 97" in line)
    run = next(i for i, line in enumerate(code) if "jobs/run_shard.py" in line)
    assert hook < activate < check < run


# --------------------------------------------------------------------------------------------------------------
# PBS directives and threads (issue 10, item 3)


def test_polaris_select_chunk_names_the_system():
    for resource_class in ("cpu", "gpu", "multinode_gpu"):
        select = next(line for line in render("polaris", resource_class, 1).splitlines()
                      if line.startswith("#PBS -l select="))
        assert select.endswith(":system=polaris")
    assert "system=" not in render("localpbs", "cpu", 4)


def test_pbs_extra_directives_key_syntax():
    profile = ClusterProfile(scheduler="pbs", resources={"cpu": {"nodes": 2, "partition": "prod", "extra_directives": {
        "l place": "scatter:excl", "q": "debug", "V": True, "m": False, "W depend": "afterok:123", "k": "doe"}}})
    text = job_script(profile, profile.resources["cpu"], FOLDER, "x", 4, python="python3").splitlines()
    pbs = [line for line in text if line.startswith("#PBS ")]
    for line in ("#PBS -l place=scatter:excl", "#PBS -q debug", "#PBS -V", "#PBS -W depend=afterok:123",
                 "#PBS -k doe"):
        assert line in pbs
    assert not any(line.startswith("#PBS -m") for line in pbs)
    assert [line for line in pbs if line.startswith("#PBS -l place")] == ["#PBS -l place=scatter:excl"]  # replaced
    assert [line for line in pbs if line.startswith("#PBS -q")] == ["#PBS -q debug"]


def test_bad_pbs_directive_key_is_refused():
    with pytest.raises(ValueError, match="bad PBS key"):
        ClusterProfile(scheduler="pbs", resources={"cpu": {"extra_directives": {"-l place": "scatter"}}})
    with pytest.raises(ValueError, match="bad PBS directive key"):  # per-stage overrides reach the script directly
        from ldrt_hpc.launch.pbs import _make_pbs_string

        _make_pbs_string("true", FOLDER, additional_directives={"l place scatter": True})


@pytest.mark.parametrize("missing", ["account", "filesystems"])
def test_polaris_profile_without_account_or_filesystems_is_refused(missing, tmp_path, demo_config, capsys):
    from ldrt_hpc.cli import main

    text = (CLUSTERS_DIR / "polaris.yaml").read_text()
    site = tmp_path / "mysite.yaml"
    site.write_text(re.sub(rf"(?m)^{missing}: .*\n", "", text))
    with pytest.raises(ConfigError, match=f"requires {missing}"):
        load_cluster(str(site))
    assert main(["run", "ingest", "--config", str(demo_config), "--cluster", str(site), "--dry-run"]) != 0
    captured = capsys.readouterr()
    assert "#PBS" not in captured.out and missing in captured.err


def test_each_parser_worker_gets_one_thread_never_cpus_times_cpus():
    from ldrt_hpc.launch.executors import slurm_parameters

    polaris = load_cluster("polaris")
    setup = pbs_parameters(polaris, polaris.resources["cpu"], "x")["setup"]
    assert "export LDRT_WORKERS=64" in setup and "export OMP_NUM_THREADS=1" in setup
    generic = load_cluster("generic-slurm")
    setup = slurm_parameters(generic, generic.resources["multinode_gpu"], "x")["setup"]  # srun: 4 x 8 CPUs
    assert "export LDRT_WORKERS=8" in setup and "export OMP_NUM_THREADS=1" in setup
    fewer = ClusterProfile(scheduler="pbs", exports={"LDRT_WORKERS": "8"}, resources={"cpu": {"cpus_per_task": 64}})
    setup = pbs_parameters(fewer, fewer.resources["cpu"], "x")["setup"]
    assert "export OMP_NUM_THREADS=8" in setup and "export LDRT_WORKERS=64" not in setup  # 8 workers x 8 threads
