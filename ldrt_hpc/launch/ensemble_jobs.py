"""Submit a stage's shards as one MPI ensemble job (`mode: mpi`): its ranks share the shards (ensemble.py).

The job has nodes x ranks_per_node ranks: `srun --mpi=<plugin>` starts them on Slurm, PALS `mpiexec -n --ppn
--depth --cpu-bind depth` on PBS (Polaris), `mpirun` on this machine (the local profile). Every rank is a submitit
task (task.py `ensemble_task`) that runs `ldrt-hpc worker`'s loop in-process, so the shards it runs carry the
reserving submission's generation: `status`, `rerun` and `cancel` see them as they see array tasks, and a shard
one mode left failed may be rerun in the other.
"""

from __future__ import annotations

import contextlib
import io
import os
import shlex
import subprocess
import sys
from pathlib import Path

from submitit.core.utils import JobPaths

from .. import ownership
from ..config import ClusterProfile, Resources
from ..errors import SubmissionError
from .executors import job_script, make_executor, python_command
from .selection import format_shards
from .task import ensemble_task


def ranks_per_node(resources: Resources) -> int:
    return resources.ranks_per_node or resources.tasks_per_node


def ensemble_resources(resources: Resources) -> Resources:
    """The resource class as one job of ranks: every node keeps its cores (cpus_per_task x tasks_per_node), shared
    out among ranks_per_node ranks (each pinned to its share: PBS --depth, Slurm --cpus-per-task)."""
    per_node = ranks_per_node(resources)
    cores = max(1, resources.cpus_per_task * resources.tasks_per_node // per_node)
    return resources.model_copy(update={"tasks_per_node": per_node, "cpus_per_task": cores, "array_parallelism": 1})


def gpus_per_rank(resources: Resources) -> int:
    """The GPUs each rank binds (CUDA_VISIBLE_DEVICES by local rank); 0 for CPU classes."""
    return resources.gpus_per_node // ranks_per_node(resources) if resources.gpus_per_node else 0


def _wall_s(resources: Resources) -> float:
    """The time a rank may count on from its start: the limit, less the warning before it."""
    return resources.time_min * 60.0 - resources.signal_delay_s


def script(profile: ClusterProfile, resources: Resources, folder: Path, stage: str, python: str | None = None) -> str:
    """The job script of the ensemble job (for --dry-run and golden files)."""
    if profile.scheduler == "local":
        return "\n".join([f"# local: one MPI ensemble of {_local_ranks(resources)} ranks on this machine",
                          " ".join(_mpirun(resources, python or shlex.quote(sys.executable), stage,
                                           "CONFIG", "SHARDS", "GENERATION", "JOB"))]) + "\n"
    return job_script(profile, ensemble_resources(resources), folder, f"ldrt-{stage}-mpi", 1, python=python,
                      ranks=True, mpi=True)


def submit(profile: ClusterProfile, resources: Resources, folder: Path, config_path: str, stage: str, result) -> None:
    """One job for every shard of `result` (already reserved under its generation); records its id per shard."""
    directory = folder.parent.parent
    executor = make_executor(profile, ensemble_resources(resources), folder, f"ldrt-{stage}-mpi", ranks=True, mpi=True)
    try:  # submitit prints the scheduler's raw stderr as well: the error below says it once
        with contextlib.redirect_stderr(io.StringIO()):
            job = executor.submit(ensemble_task, config_path, stage, format_shards(result.shards), result.generation,
                                  _wall_s(resources), gpus_per_rank(resources))
    except Exception as exc:  # noqa: BLE001 - sbatch/qsub refusals: one line, and the shards say why
        reason = " ".join(str(exc).split())[-300:]
        ownership.append_records(directory, [{"shard": i, "generation": result.generation, "aborted": reason}
                                             for i in result.shards])
        raise SubmissionError(f"{profile.scheduler} refused the ensemble job: {reason}") from None
    ownership.append_records(directory, [{"shard": i, "generation": result.generation, "job_id": job.job_id}
                                         for i in result.shards])
    result.job_ids = [job.job_id]


def _local_ranks(resources: Resources) -> int:
    """On this machine: ranks_per_node if set, else as many ranks as the class runs array tasks at once."""
    return resources.ranks_per_node or resources.array_parallelism


def _mpirun(resources: Resources, python: str, stage: str, config_path: str, shards: str, generation: str,
            job_id: str) -> list[str]:
    root = ["--allow-run-as-root"] if os.geteuid() == 0 else []
    return ["mpirun", *root, "--oversubscribe", "-np", str(_local_ranks(resources)), *shlex.split(python), "-m",
            "ldrt_hpc.cli", "worker", stage, "--config", config_path, "--shards", shards, "--generation", generation,
            "--job-id", job_id]


def run_here(profile: ClusterProfile, resources: Resources, folder: Path, config_path: str, stage: str, result) -> None:
    """The local profile: `mpirun` on this machine; its pid is the job id (status asks whether it lives), its
    output goes where status looks for a job's log. Waits for it."""
    if not result.shards:
        return
    directory = folder.parent.parent
    folder.mkdir(parents=True, exist_ok=True)
    job_id = f"mpirun-{os.getpid()}"
    command = _mpirun(resources, python_command(profile), stage, config_path, format_shards(result.shards),
                      result.generation, job_id)
    temporary = folder / f"{job_id}.log.tmp"
    env = {**os.environ, **profile.exports}
    with open(temporary, "w") as log:
        try:
            process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
        except OSError as exc:
            ownership.append_records(directory, [{"shard": i, "generation": result.generation,
                                                  "aborted": f"mpirun could not start: {exc}"} for i in result.shards])
            raise SubmissionError(f"mpirun could not start ({exc}): install OpenMPI (`make mpi`)") from None
        job_id = str(process.pid)
        os.replace(temporary, JobPaths(folder, job_id=job_id).stderr)
        ownership.append_records(directory, [{"shard": i, "generation": result.generation, "job_id": job_id}
                                             for i in result.shards])
        result.job_ids = [job_id]
        process.wait()
