"""Scheduler dependencies between the jobs of a pipeline, in each scheduler's words.

A downstream array whose task k reads what task k of an upstream array wrote waits task by task (Slurm
`aftercorr`); a stage that needs a whole upstream stage (a fan-in: a plan made from its content, a split over all of
its shards, training) waits for every job of it (`afterok`); an ensemble job, whose ranks check each shard's inputs
themselves, waits for its upstream jobs to end whatever their outcome (`afterany`). PBS Pro has no per-subjob
dependency: `aftercorr` becomes `afterok` on the whole upstream array there.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class After:
    kind: str
    """'aftercorr' (task k after task k), 'afterok' (after every job succeeded), 'afterany' (after they ended)."""
    job_ids: tuple[str, ...]
    """The jobs waited for: array ids for aftercorr, else array or task ids (Slurm '12_3', PBS '12[].s_3')."""


def array_of(job_id: str) -> str:
    """The array an array task belongs to ('12_3' -> '12', PBS '12[].s_3' -> '12[].s'); a plain job is itself."""
    return job_id.rsplit("_", 1)[0] if "_" in job_id else job_id


def task_of(job_id: str) -> int | None:
    """The task index of an array task ('12_3' -> 3); None for a plain job."""
    tail = job_id.rsplit("_", 1)[1] if "_" in job_id else ""
    return int(tail) if tail.isdigit() else None


def directives(scheduler: str, afters: list[After]) -> dict[str, str]:
    """The job-script directives that make a job wait for `afters` (all of them): Slurm `--dependency=`, PBS
    `-W depend=`; nothing on the local executor, where the pipeline runs stage after stage itself."""
    afters = [after for after in afters if after.job_ids]
    if not afters or scheduler == "local":
        return {}
    if scheduler == "slurm":
        return {"dependency": ",".join(f"{a.kind}:{':'.join(a.job_ids)}" for a in afters)}
    # PBS Pro: no dependency on one subjob (nor a per-task one): whole arrays, and one list per kind
    pbs = [After("afterok" if a.kind == "aftercorr" else a.kind, tuple(array_of(j) for j in a.job_ids)) for a in afters]
    return {"W depend": ",".join(f"{a.kind}:{':'.join(a.job_ids)}" for a in _merge(pbs))}


def describe(afters: list[After], scheduler: str = "slurm") -> str:
    """One line for the dependency graph and the dry run, in the scheduler's words (PBS: whole arrays)."""
    if scheduler == "pbs":
        return directives("pbs", afters).get("W depend", "none")
    return ", ".join(f"{a.kind}:{':'.join(a.job_ids)}" for a in afters if a.job_ids) or "none"


def per_task(upstream_jobs: dict[str, dict[int, str]], shards: list[int]) -> list[tuple[list[int], list[After]]]:
    """Group the shards of a shard-aligned stage by the upstream jobs they wait for; each group is one array.

    `upstream_jobs`: per upstream stage, the job of each shard still pending or running there (a complete shard
    needs no wait). A group whose shards sit at the same task index in each upstream array as they will in the new
    array waits task by task (aftercorr on the arrays); any other group waits for the exact upstream tasks
    (afterok on them), which is correct, only less eager.
    """
    groups: dict[tuple, list[int]] = {}
    for index in shards:
        key = tuple((stage, array_of(jobs[index])) for stage, jobs in upstream_jobs.items() if index in jobs)
        groups.setdefault(key, []).append(index)
    result = []
    for key, members in groups.items():
        afters = []
        for stage, array in key:
            tasks = [upstream_jobs[stage][index] for index in members]
            aligned = array != tasks[0] and [task_of(task) for task in tasks] == list(range(len(members)))
            afters.append(After("aftercorr", (array,)) if aligned else After("afterok", tuple(tasks)))
        result.append((members, _merge(afters)))
    return result


def _merge(afters: list[After]) -> list[After]:
    """One After per kind, job ids in order without repeats."""
    merged: dict[str, dict[str, None]] = {}
    for after in afters:
        merged.setdefault(after.kind, {}).update(dict.fromkeys(after.job_ids))
    return [After(kind, tuple(ids)) for kind, ids in merged.items()]
