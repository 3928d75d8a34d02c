"""What submitit runs inside every array task: one shard of one stage.

Its arguments are four small values (config path, stage name, shard index, the submission's generation), so that
submitit's pickles never hold data or secrets.

`shard_task` (a `ShardTask`) is checkpointable: when the scheduler warns the job before its time limit or a
preemption (USR2: Slurm's `--signal`, the PBS job's timer), submitit calls `checkpoint`, which hands back the same
call, and requeues the job (Slurm: `scontrol requeue`, same job id; PBS: the job resubmits itself, see
docs/pbs.md). The requeued task runs the shard again under the same generation, so it still owns the shard, and
the stage's resume state (search pages, QA progress) makes it continue where it stopped.
"""

from __future__ import annotations

import logging
import os
import signal
from typing import Any


def run_shard_task(config_path: str, stage: str, index: int, generation: str | None = None) -> dict[str, Any]:
    import submitit

    from ..runner import run_shard, stop_on_sigterm

    logging.basicConfig(level=os.environ.get("LDRT_LOG_LEVEL", "INFO"), format="%(asctime)s %(name)s %(message)s")
    stop_on_sigterm()  # after submitit's own handlers, which would ignore SIGTERM
    try:
        job_id = submitit.JobEnvironment().job_id
    except RuntimeError:  # not inside a submitit job (called directly)
        job_id = None
    return run_shard(config_path, stage, index, job_id=job_id, generation=generation)


class ShardTask:
    """`run_shard_task` as a checkpointable callable (submitit calls `checkpoint` on USR2, then requeues)."""

    def __call__(self, config_path: str, stage: str, index: int, generation: str | None = None) -> dict[str, Any]:
        return run_shard_task(config_path, stage, index, generation)

    def checkpoint(self, config_path: str, stage: str, index: int, generation: str | None = None):
        """The same call again: the shard's progress is already on disk (its state dir), nothing else to save.

        From here on the job only requeues and exits: SIGTERM (which the requeue itself sends, and which
        `stop_on_sigterm` turns into an exception) must not cut `scontrol requeue`/`qsub` short."""
        import submitit

        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        logging.getLogger(__name__).warning("%s shard %d: time limit or preemption: requeued with generation %s; "
                                            "it resumes from its saved progress", stage, index, generation)
        _remember_for_resubmission(config_path, stage, index, generation)
        return submitit.helpers.DelayedSubmission(self, config_path, stage, index, generation)


def _remember_for_resubmission(config_path: str, stage: str, index: int, generation: str | None) -> None:
    """PBS requeues by resubmitting (a new job id): the new id must be recorded for this shard and generation so
    that `status` follows the shard to it (ldrt_hpc/launch/pbs.py calls the hook after qsub accepted the job)."""
    from .pbs import PBSJobEnvironment

    def record(new_job_id: str) -> None:
        from .. import ownership
        from ..config import load_pipeline
        from ..runner import stage_dir

        directory = stage_dir(load_pipeline(config_path), stage)
        ownership.append_records(directory, [{"shard": index, "generation": generation, "job_id": new_job_id,
                                              "requeued_from": os.environ.get("PBS_JOBID")}])

    PBSJobEnvironment.after_resubmit = staticmethod(record) if generation is not None else None


shard_task = ShardTask()
"""The callable the launcher submits."""


def ensemble_task(config_path: str, stage: str, shards: str, generation: str, wall_s: float, gpus_per_rank: int) -> int:
    """One rank of an MPI ensemble job (ensemble_jobs.py): the `ldrt-hpc worker` loop in this process, over the
    shards the submission reserved. `wall_s`: the time this job may count on from now (the worker hands out no
    shard it could not finish); `gpus_per_rank`: each rank binds that many GPUs by its local rank."""
    import argparse
    import time

    import submitit

    from .ensemble import worker_main

    logging.basicConfig(level=os.environ.get("LDRT_LOG_LEVEL", "INFO"), format="%(asctime)s %(name)s %(message)s")
    # this job's own limit: a value inherited from the submitting environment (sbatch exports it) is not this job's
    os.environ["LDRT_JOB_DEADLINE"] = str(time.time() + wall_s)
    if gpus_per_rank:
        os.environ["LDRT_GPUS_PER_RANK"] = str(gpus_per_rank)
    job_id = submitit.JobEnvironment().job_id
    args = argparse.Namespace(stage=stage, config=config_path, shards=shards, generation=generation, job_id=job_id,
                              deadline=None, expected_s=None)
    code = worker_main(args)
    if code:  # the job must end FAILED: `afterok` waits behind it (training, continuation jobs) must not fire
        raise RuntimeError(f"{stage}: the ensemble ended with exit code {code}: shards failed or were not started "
                           "(its summary is in the job log and WORK/<stage>/_jobs/ensemble-<job>.json)")
    return code
