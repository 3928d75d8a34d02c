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
from ..errors import ConfigError
from .pbs import PBSExecutor, _make_pbs_string

ENV_CHECK_EXIT = 97
"""Exit code of a job whose environment is broken (module profile, conda env, Python without ldrt_hpc)."""


def _environment_check(profile: ClusterProfile, python: str) -> list[str]:
    """Lines that stop the job with one clear line (exit 97) when the set-up did not give it a working Python."""
    label = profile.environment_label().replace('"', "'")
    words = shlex.split(python)
    first = shlex.quote(words[0]) if words else "python"
    return [
        (f'command -v {first} >/dev/null 2>&1 || {{ echo "ldrt-hpc: {first} not found after module/conda setup '
         f'({label})" >&2; exit {ENV_CHECK_EXIT}; }}'),
        (f"{python} -c 'import ldrt_hpc, submitit' || {{ echo \"ldrt-hpc: {first} cannot import ldrt_hpc and submitit "
         f'({label}): install ldrt-hpc into that environment" >&2; exit {ENV_CHECK_EXIT}; }}'),
    ]


def _setup(profile: ClusterProfile, resources: Resources, python: str | None = None) -> list[str]:
    """The job's set-up: strict mode, module profile, conda env, exports, the environment check, threads."""
    python = python or python_command(profile)
    # a failing `module load`/`conda activate` stops the job here, with a line that says which step failed
    trap = (f"trap 'echo \"ldrt-hpc: job setup failed (exit $?) at: $BASH_COMMAND "
            f"({profile.environment_label().replace(chr(39), '')})\" >&2; exit {ENV_CHECK_EXIT}' ERR")
    strict = ["set -eo pipefail", trap]
    check = _environment_check(profile, python) + ["trap - ERR"]
    # parser processes per submitit process (ldrt_hpc.isolate): its CPUs (Slurm starts tasks_per_node processes of
    # cpus_per_task each; a PBS job runs one process on the whole chunk), unless the profile exports LDRT_WORKERS
    cpus = resources.cpus_per_task * (resources.tasks_per_node if profile.scheduler == "pbs" else 1)
    workers = [] if "LDRT_WORKERS" in profile.exports else [f"export LDRT_WORKERS={cpus}"]
    try:
        count = max(1, int(profile.exports.get("LDRT_WORKERS", cpus)))
    except ValueError:
        count = cpus
    # W workers x T OpenMP/BLAS threads each must fit the CPUs: T = cpus / W (1 when every CPU has a worker)
    threads = ([f"export OMP_NUM_THREADS={max(1, cpus // count)}"] if "OMP_NUM_THREADS" not in profile.exports
               else [])
    return strict + profile.setup_lines() + check + workers + threads


def _signal_delay(resources: Resources) -> int:
    """The warning before the time limit; it must leave the task some time to run."""
    if resources.signal_delay_s >= resources.time_min * 60:
        raise ConfigError(f"signal_delay_s ({resources.signal_delay_s} s) must be shorter than time_min "
                          f"({resources.time_min} min): the task would be warned before it starts")
    return resources.signal_delay_s


def slurm_parameters(profile: ClusterProfile, resources: Resources, job_name: str, mpi: bool = False) -> dict[str, Any]:
    """Parameters for submitit's SlurmExecutor (names as in sbatch); `mpi`: srun starts the tasks as the ranks of
    one MPI job (an ensemble job: the profile's PMI plugin)."""
    params: dict[str, Any] = {
        "job_name": job_name,
        "time": resources.time_min,
        "nodes": resources.nodes,
        "ntasks_per_node": resources.tasks_per_node,
        "cpus_per_task": resources.cpus_per_task,
        "array_parallelism": resources.array_parallelism,
        "setup": _setup(profile, resources),
        "signal_delay_s": _signal_delay(resources),
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
    # the task is checkpointable (ldrt_hpc/launch/task.py): on USR2 it requeues itself, which sites with
    # JobRequeue=0 refuse unless the job asked for it
    params["additional_parameters"] = {"requeue": True, **resources.extra_directives}
    if mpi:  # an ensemble job does not checkpoint: a requeued one would redo shards its ranks marked failed
        del params["additional_parameters"]["requeue"]
        params["additional_parameters"]["no_requeue"] = True
        params["srun_args"] = [f"--mpi={profile.srun_mpi}"]
    return params


def pbs_parameters(profile: ClusterProfile, resources: Resources, job_name: str, ranks: bool = False) -> dict[str, Any]:
    """Parameters for PBSExecutor: one `select` chunk per node with its CPUs and GPUs; `ranks`: one process per
    task started by mpiexec (a distributed training job) instead of one process per job (an array task)."""
    params: dict[str, Any] = {
        "job_name": job_name,
        "walltime_min": resources.time_min,
        "nodes": resources.nodes,
        "ncpus": resources.cpus_per_task * resources.tasks_per_node,
        "ngpus": resources.gpus_per_node,
        "array_parallelism": resources.array_parallelism,
        "setup": _setup(profile, resources),
        "place": "scatter" if resources.nodes > 1 else None,
        "signal_delay_s": _signal_delay(resources),  # PBS has no --signal: the task's own timer (pbs.py)
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
    if profile.pbs_select:
        params["select_extra"] = profile.pbs_select
    if resources.extra_directives:
        params["additional_directives"] = dict(resources.extra_directives)
    if ranks:
        params["mpiexec_depth"] = resources.cpus_per_task
    return params


def python_command(profile: ClusterProfile) -> str:
    """The Python a job runs: the profile's `python`; a plain `python` from the activated conda env; else (no env
    set up) the interpreter that submits, by absolute path (shared file system, e.g. the local cluster)."""
    if profile.python:
        return profile.python
    if profile.conda_env:
        return "python"
    return shlex.quote(sys.executable)


def make_executor(profile: ClusterProfile, resources: Resources, folder: Path, job_name: str, ranks: bool = False,
                  mpi: bool = False):
    """A submitit executor configured from the profile (the caller submits through it). `ranks`: a job of
    nodes x tasks_per_node processes that work together (training), not one process per array task; `mpi`: those
    processes are the ranks of one MPI job (an ensemble job)."""
    # a multi-day training run is stopped at every time limit and requeued: submitit's default of 3 would end it
    timeouts = 1000 if ranks else 3
    if profile.scheduler == "slurm":
        executor = submitit.SlurmExecutor(folder=folder, python=python_command(profile), max_num_timeout=timeouts)
        executor.update_parameters(**slurm_parameters(profile, resources, job_name, mpi))
    elif profile.scheduler == "pbs":
        executor = PBSExecutor(folder=folder, python=python_command(profile), max_num_timeout=timeouts)
        executor.update_parameters(**pbs_parameters(profile, resources, job_name, ranks))
    else:
        executor = submitit.LocalExecutor(folder=folder, max_num_timeout=timeouts)
        executor.update_parameters(timeout_min=resources.time_min)
        if ranks:
            executor.update_parameters(tasks_per_node=resources.tasks_per_node, nodes=1)
    return executor


def job_script(
    profile: ClusterProfile, resources: Resources, folder: Path, job_name: str, array_size: int,
    python: str | None = None, ranks: bool = False, mpi: bool = False,
) -> str:
    """The exact job script `make_executor` would submit for an array of `array_size` tasks (for --dry-run and
    golden tests; needs no scheduler on this machine)."""
    python = python or python_command(profile)
    command = " ".join([python, "-u -m submitit.core._submit", shlex.quote(str(folder))])
    map_count = array_size if array_size > 1 else None
    setup = _setup(profile, resources, python)  # the environment check runs the same Python as the command
    if profile.scheduler == "slurm":
        return _make_sbatch_string(command=command, folder=folder, map_count=map_count,
                                   **{**slurm_parameters(profile, resources, job_name, mpi), "setup": setup})
    if profile.scheduler == "pbs":
        return _make_pbs_string(command=command, folder=folder, map_count=map_count,
                                **{**pbs_parameters(profile, resources, job_name, ranks), "setup": setup})
    what = (f"{resources.tasks_per_node} ranks on this machine" if ranks else
            f"one process per shard on this machine, at most {resources.array_parallelism} at a time")
    lines = [f"# local: {what}",
             *setup, command]
    return "\n".join(lines) + "\n"
