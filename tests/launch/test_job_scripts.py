"""Golden files for every generated job script (Slurm, PBS Pro, local), one per profile and resource class.

Regenerate after an intended change with: LDRT_UPDATE_GOLDEN=1 python -m pytest tests/launch/test_job_scripts.py
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ldrt_hpc.config import SHIPPED, load_cluster
from ldrt_hpc.launch.executors import job_script

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
    text = job_script(profile, resources, FOLDER, "ldrt-stage", size, python="python3")
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
                 "#PBS -l select=10:ncpus=32:ngpus=4:mpiprocs=4", "#PBS -l place=scatter"):
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


def test_pbs_memory_keeps_fractions():
    from ldrt_hpc.config import ClusterProfile
    from ldrt_hpc.launch.executors import pbs_parameters

    profile = ClusterProfile(scheduler="pbs", resources={"cpu": {"mem_gb": 1.5, "cpus_per_task": 2}})
    params = pbs_parameters(profile, profile.resources["cpu"], "x")
    assert params["mem"] == "1536mb" and "export LDRT_WORKERS=2" in params["setup"]
