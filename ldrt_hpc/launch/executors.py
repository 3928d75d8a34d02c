"""Cluster profile + resource class -> a submitit executor (local, slurm, pbs) or the text of its job script.

Nothing here knows any stage: the launcher passes a job name, a log folder and a resource class.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Any

import submitit
from submitit.slurm.slurm import _make_sbatch_string

from ..config import ClusterProfile, Resources
from .pbs import PBSExecutor, _make_pbs_string


def _setup(profile: ClusterProfile, resources: Resources) -> list[str]:
    # one BLAS/OpenMP thread per allotted core: N processes x default threads oversubscribe a node badly
    threads = [f"export OMP_NUM_THREADS={resources.cpus_per_task}"] if "OMP_NUM_THREADS" not in profile.exports else []
    # parser processes per task (ldrt_hpc.isolate): the CPUs the task was given, not every CPU of the node
    workers = [f"export LDRT_WORKERS={resources.cpus_per_task * resources.tasks_per_node}"]
    return profile.setup_lines() + threads + workers


def slurm_parameters(profile: ClusterProfile, resources: Resources, job_name: str) -> dict[str, Any]:
    """Parameters for submitit's SlurmExecutor (names as in sbatch)."""
    params: dict[str, Any] = {
        "job_name": job_name,
        "time": resources.time_min,
        "nodes": resources.nodes,
        "ntasks_per_node": resources.tasks_per_node,
        "cpus_per_task": resources.cpus_per_task,
        "array_parallelism": resources.array_parallelism,
        "setup": _setup(profile, resources),
        "signal_delay_s": 90,
    }
    if resources.gpus_per_node:
        params["gpus_per_node"] = resources.gpus_per_node
    if resources.mem_gb:
        params["mem"] = f"{int(resources.mem_gb * 1024)}M"
    for key in ("partition", "qos", "constraint"):
        if getattr(resources, key):
            params[key] = getattr(resources, key)
    if profile.account:
        params["account"] = profile.account
    if resources.extra_directives:
        params["additional_parameters"] = dict(resources.extra_directives)
    return params


def pbs_parameters(profile: ClusterProfile, resources: Resources, job_name: str) -> dict[str, Any]:
    """Parameters for PBSExecutor: one `select` chunk per node with its CPUs and GPUs."""
    params: dict[str, Any] = {
        "job_name": job_name,
        "walltime_min": resources.time_min,
        "nodes": resources.nodes,
        "ncpus": resources.cpus_per_task * resources.tasks_per_node,
        "ngpus": resources.gpus_per_node,
        "array_parallelism": resources.array_parallelism,
        "setup": _setup(profile, resources),
        "place": "scatter" if resources.nodes > 1 else None,
    }
    if resources.tasks_per_node > 1:
        params["mpiprocs"] = resources.tasks_per_node
    if resources.mem_gb:
        params["mem"] = f"{int(round(resources.mem_gb * 1024))}mb"  # mem_gb may be fractional
    if resources.partition:
        params["queue"] = resources.partition
    if profile.account:
        params["account"] = profile.account
    if profile.filesystems:
        params["filesystems"] = profile.filesystems
    if resources.extra_directives:
        params["additional_directives"] = dict(resources.extra_directives)
    return params


def python_command(profile: ClusterProfile) -> str:
    return profile.python or shlex.quote(sys.executable)


def make_executor(profile: ClusterProfile, resources: Resources, folder: Path, job_name: str):
    """A submitit executor configured from the profile (the caller submits through it)."""
    if profile.scheduler == "slurm":
        executor = submitit.SlurmExecutor(folder=folder, python=python_command(profile))
        executor.update_parameters(**slurm_parameters(profile, resources, job_name))
    elif profile.scheduler == "pbs":
        executor = PBSExecutor(folder=folder, python=python_command(profile))
        executor.update_parameters(**pbs_parameters(profile, resources, job_name))
    else:
        executor = submitit.LocalExecutor(folder=folder)
        executor.update_parameters(timeout_min=resources.time_min)
    return executor


def job_script(
    profile: ClusterProfile, resources: Resources, folder: Path, job_name: str, array_size: int, python: str | None = None
) -> str:
    """The exact job script `make_executor` would submit for an array of `array_size` tasks (for --dry-run and
    golden tests; needs no scheduler on this machine)."""
    python = python or python_command(profile)
    command = " ".join([python, "-u -m submitit.core._submit", shlex.quote(str(folder))])
    map_count = array_size if array_size > 1 else None
    if profile.scheduler == "slurm":
        return _make_sbatch_string(command=command, folder=folder, map_count=map_count,
                                   **slurm_parameters(profile, resources, job_name))
    if profile.scheduler == "pbs":
        return _make_pbs_string(command=command, folder=folder, map_count=map_count,
                                **pbs_parameters(profile, resources, job_name))
    lines = ["# local: one process per shard on this machine,"
             f" at most {resources.array_parallelism} at a time"] + _setup(profile, resources) + [command]
    return "\n".join(lines) + "\n"
