"""Submit a stage's shards as array jobs, cancel them, verify what they committed.

Every submission holds the stage's lock (ldrt_hpc/ownership.py) while it reads the state, reserves the chosen
shards for a new generation, submits and records the job ids, so two submissions never choose the same shard.
State lives on disk, never in this process; `status` (ldrt_hpc/launch/status.py) reads it back through one pure
function (state.py); each scheduler's own commands are in slurm.py, pbs.py and local.py.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import io
import os
import re
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from pydantic import ValidationError
from tqdm import tqdm

from .. import ownership
from ..config import ClusterProfile, PipelineConfig, Resources, format_errors, freeze, load_cluster
from ..errors import CancelError, ConfigError, SubmissionError
from ..plan import Plan, PlanError, check_shard_count, check_upstream, load_plan, pin_plan
from ..runner import stage_dir
from ..shards import (
    VerifyResult,
    is_complete,
    read_marker,
    set_aside_corrupt,
    verify_shard,
)
from ..stages import GRAPH, get_stage
from . import ensemble_jobs, schedulers, status
from .dependencies import After
from .dependencies import directives as dependency_directives
from .executors import job_script, make_executor
from .selection import format_shards, parse_shards
from .state import ACTIVE, RUNNING, TO_SUBMIT
from .status import (  # noqa: F401  (re-exported: the launcher's public face)
    ShardStatus,
    format_status,
    last_cluster,
    last_error_line,
    latest_records,
    log_folder,
    require_plan,
    stage_status,
    status_json,
    wait,
)
from .task import shard_task

# --------------------------------------------------------------------------------------------------------------
# submit


@dataclass
class Submission:
    stage: str
    cluster: str
    shards: list[int]
    job_ids: list[str]
    script: str
    dry_run: bool
    skipped_active: list[int]
    waiting: list[int]
    """Shards whose input shards (of the upstream stages) are not complete yet."""
    generation: str | None = None
    held_back: list[int] = field(default_factory=list)
    """Shards not submitted because the profile's max_queued_jobs leaves no room for them now."""


@contextmanager
def _exported(variables: dict[str, str]) -> Iterator[None]:
    """Profile exports for local jobs, which inherit this process's environment."""
    saved = {key: os.environ.get(key) for key in variables}
    os.environ.update(variables)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _run_local(executor, config_path: str, stage_directory: Path, stage: str, shards: list[int], parallelism: int,
               generation: str) -> list[str]:
    """A rolling pool of local processes (at most `parallelism` at once); waits for all. A shard whose
    generation was cancelled (or taken over) meanwhile is not started."""
    queue = list(shards)
    running = []
    job_ids = []
    with tqdm(total=len(shards), desc=f"{stage} (local)", unit="shard") as progress:
        while queue or running:
            while queue and len(running) < parallelism:
                index = queue.pop(0)
                if ownership.ownership_problem(stage_directory, index, generation):
                    progress.update(1)
                    continue
                job = executor.submit(shard_task, config_path, stage, index, generation)
                ownership.append_records(stage_directory, [{"shard": index, "generation": generation,
                                                            "job_id": job.job_id}])
                job_ids.append(job.job_id)
                running.append(job)
            time.sleep(0.2)
            for job in [j for j in running if j.done()]:
                running.remove(job)
                progress.update(1)
    return job_ids


def wanted_plan(cfg: PipelineConfig, stage_name: str, num_shards: int | None) -> Plan:
    return get_stage(stage_name).plan(cfg, num_shards)


def _check_space(directory: Path) -> None:
    free = status.free_mb(directory)
    if free < status.MIN_FREE_MB:
        raise SubmissionError(f"{directory}: only {free:.1f} MB free on its file system; a submission needs at "
                              f"least {status.MIN_FREE_MB} MB for job files, logs and shards. Free space or move work_dir.")


def _file_system_error(exc: OSError, directory: Path) -> SubmissionError:
    where = exc.filename or directory
    if exc.errno == errno.ENOSPC:
        return SubmissionError(f"{where}: no space left on device ({status.free_mb(Path(where)):.1f} MB free): nothing "
                               "was submitted. Free space or move work_dir.")
    return SubmissionError(f"{where}: {exc.strerror or exc}: nothing was submitted.")


def _scheduler_error(exc: Exception, scheduler: str) -> SubmissionError:
    text = " ".join(str(exc).split())
    match = re.search(r"((?:sbatch|qsub): error: .*?)(?:$| [A-Za-z]+Error)", text)
    reason = match[1] if match else text[-300:] or type(exc).__name__
    return SubmissionError(f"{scheduler} refused the submission: {reason}")


def _remove_dead_attempts(directory: Path, shards: list[int]) -> None:
    """submitit's half-written result pickles of the earlier (ended) jobs of the shards about to be resubmitted:
    a task that died on a full or read-only file system leaves `<job>_<task>_result.pkl.save_tmp` behind."""
    records = ownership.owners(directory)
    for index in shards:
        record = records.get(index) or {}
        if record.get("folder") and record.get("job_id"):
            for path in Path(record["folder"]).glob(f"{record['job_id']}_*.save_tmp"):
                path.unlink(missing_ok=True)


def _remove_partial_files(folder: Path, started: float) -> None:
    """submitit's half-written pickles (`*.save_tmp`) and this submission's orphaned job pickles."""
    if not folder.is_dir():
        return
    for path in folder.glob("*"):
        try:
            if path.name.endswith(".save_tmp") or (path.suffix == ".pkl" and path.stat().st_mtime >= started
                                                   and "_submitted" in path.name and path.stat().st_size == 0):
                path.unlink()
        except OSError:
            pass


def submit(
    cfg: PipelineConfig,
    stage_name: str,
    cluster: str | None = None,
    shards: str | None = None,
    num_shards: int | None = None,
    replan: bool = False,
    dry_run: bool = False,
    python: str | None = None,
    extra_directives: dict | None = None,
    lock_wait_s: float = 60.0,
    overrides: dict[str, Any] | None = None,
    mode: str | None = None,
    afters: list[After] | None = None,
) -> Submission:
    """Submit the shards of a stage that are failed, corrupt or missing (not done, not active).

    Under the stage's submission lock: read the state, reserve the chosen shards for a new generation, submit,
    record the job ids; a shard that is pending, running or being cancelled is never submitted twice.
    `extra_directives` adds raw scheduler options for this submission only (e.g. {'hold': True}); `overrides`
    changes resources for this submission (fields of a resource class, plus 'account' and 'mail'). `mode`: 'array'
    or 'mpi' (one ensemble job; default: the profile's). `afters`: scheduler dependencies (`pipeline run`); shards
    whose upstream shards are not complete yet are then submitted too, to wait in the queue.
    """
    stage = get_stage(stage_name)
    stage.check(cfg)  # preflight: a missing backend (package, jar) is refused here, not found in every job
    cluster = cluster or cfg.cluster
    profile = load_cluster(cluster)
    mode = mode or profile.mode
    waits = dependency_directives(profile.scheduler, afters or [])
    profile, resources = placement(cfg, stage_name, cluster, {**(overrides or {}),
                                                              "extra_directives": {**(extra_directives or {}), **waits}})
    directory = stage_dir(cfg, stage_name)
    choose = functools.partial(_choose, cfg, stage_name, profile, resources, cluster, shards, num_shards, replan,
                               python=python, mode=mode, queued_upstream=afters is not None)
    if dry_run:
        return choose(True)
    _check_space(cfg.work_dir)
    started = time.time()
    folder = log_folder(cfg, stage_name)
    try:
        with ownership.submission_lock(directory, f"ldrt-hpc run {stage_name}", wait_s=lock_wait_s):
            result = choose(False)
            if mode == "mpi":
                result.shards, result.held_back = result.shards, []  # one job, whatever the shard count
            else:
                _hold_back_beyond_queue_limit(profile, result)
            if not result.shards:
                return result
            _remove_dead_attempts(directory, result.shards)
            config_path = str(freeze(cfg))
            folder.mkdir(parents=True, exist_ok=True)
            result.generation = ownership.new_generation()
            ownership.append_records(directory, [
                {"shard": i, "generation": result.generation, "scheduler": profile.scheduler, "cluster": cluster,
                 "folder": str(folder), "submitted_at": time.time(), "submitter": ownership.whoami(), "job_id": None,
                 **({"ensemble": True} if mode == "mpi" else {})}
                for i in result.shards])
            if mode == "mpi" and profile.scheduler != "local":
                ensemble_jobs.submit(profile, resources, folder, config_path, stage_name, result)
                return result
            executor = make_executor(profile, resources, folder, f"ldrt-{stage_name}")
            if profile.scheduler != "local":
                _submit_arrays(executor, profile, resources, directory, config_path, stage_name, result)
                return result
    except OSError as exc:
        _remove_partial_files(folder, started)
        raise _file_system_error(exc, directory) from None
    if mode == "mpi":  # local: mpirun on this machine, after the lock is released; waits for it
        ensemble_jobs.run_here(profile, resources, folder, config_path, stage_name, result)
        return result
    # local: the lock is released once the shards are reserved; the pool runs them and waits for them
    with _exported({"LDRT_WORKERS": str(resources.cpus_per_task), **profile.exports}):
        result.job_ids = _run_local(executor, config_path, directory, stage_name, result.shards,
                                    resources.array_parallelism, result.generation)
    return result


def placement(cfg: PipelineConfig, stage_name: str, cluster: str, flags: dict[str, Any]) -> tuple[ClusterProfile,
                                                                                            Resources]:
    """The profile and resources one submission uses: the profile's resource class for the stage, then the
    pipeline config's `resources.<stage>`, then this command's flags (later wins; extra directives merge)."""
    profile = load_cluster(cluster)
    base = profile.resources_for(GRAPH[stage_name].resource_class, cluster)
    where = f"resources of '{stage_name}' (profile {cluster}, resources.{stage_name} of the config, options)"
    return layered(profile, base, [cfg.resources.get(stage_name, {})], flags, where)


def layered(profile: ClusterProfile, base: Resources, layers: list[dict[str, Any]], flags: dict[str, Any],
            where: str) -> tuple[ClusterProfile, Resources]:
    """`base` changed by each layer, then by the command's flags (later wins; extra directives merge; None and {}
    flags change nothing); `account` goes to the profile, `mail` becomes the scheduler's mail directives."""
    flags = dict(flags)
    account, mail = flags.pop("account", None), flags.pop("mail", None)
    merged = base.model_dump()
    for layer in [*layers, {k: v for k, v in flags.items() if v not in (None, {})}]:
        merged.update({k: v for k, v in layer.items() if k != "extra_directives"})
        merged["extra_directives"] = {**merged["extra_directives"], **layer.get("extra_directives", {})}
    if mail:
        merged["extra_directives"].update(_mail_directives(profile.scheduler, mail))
    try:
        resources = Resources.model_validate(merged)
    except ValidationError as exc:
        raise ConfigError(format_errors(Path(where), exc)) from None
    if account:
        profile = profile.model_copy(update={"account": account})
    return profile, resources


def _mail_directives(scheduler: str, address: str) -> dict[str, str]:
    """Mail when a job ends or fails, in the scheduler's words."""
    if scheduler == "slurm":
        return {"mail_user": address, "mail_type": "END,FAIL"}
    if scheduler == "pbs":
        return {"M": address, "m": "ae"}
    return {}


def _choose(cfg, stage_name, profile, resources, cluster, shards, num_shards, replan, dry_run, python, mode="array",
            queued_upstream=False) -> Submission:
    """Pin (or re-plan) the plan and choose the shards to submit; the job script that would run them.
    `queued_upstream`: the submission waits for its upstream jobs in the queue (scheduler dependencies), so shards
    whose upstream shards are not complete yet are chosen too."""
    directory = stage_dir(cfg, stage_name)
    pinned = load_plan(directory)
    if pinned is not None and not replan:
        check_shard_count(directory, pinned, num_shards)
        check_upstream(directory, pinned, cfg.work_dir)
        plan = pinned  # pinned: the inputs are not listed again
        rows = stage_status(cfg, stage_name, plan)
    else:
        if pinned is not None:
            busy = [r.shard for r in stage_status(cfg, stage_name, pinned) if r.state in ACTIVE]
            if busy:
                raise PlanError(f"cannot re-plan '{stage_name}': shards {format_shards(busy)} are pending or running "
                                f"and would write into the new plan; `ldrt-hpc cancel {stage_name}` first")
        wanted = wanted_plan(cfg, stage_name, num_shards)
        plan = wanted if dry_run else pin_plan(directory, wanted, replan=replan)
        rows = [ShardStatus(index, "missing") for index in range(plan.num_shards)]
    selected = set(parse_shards(shards, plan.num_shards)) if shards else set(range(plan.num_shards))
    active = [r.shard for r in rows if r.shard in selected and r.state in ACTIVE]
    todo = [r.shard for r in rows if r.shard in selected and r.state in TO_SUBMIT]
    # shard i of a downstream stage starts from shard i of its inputs: wait until those are complete
    waiting = [] if queued_upstream else [i for i in todo if not all(is_complete(stage_dir(cfg, up), i)
                                                                     for up in plan.upstream)]
    todo = [i for i in todo if i not in waiting]
    if mode == "mpi":
        script = ensemble_jobs.script(profile, resources, log_folder(cfg, stage_name), stage_name, python=python)
        return Submission(stage_name, cluster, todo, [], script, dry_run, active, waiting)
    chunk = profile.max_array_size if profile.scheduler != "local" else len(todo) or 1
    if profile.scheduler != "local":
        resources = resources.model_copy(update={"array_parallelism": array_parallelism(resources, len(todo), chunk)})
    script = job_script(profile, resources, log_folder(cfg, stage_name), f"ldrt-{stage_name}", min(len(todo), chunk),
                        python=python)
    return Submission(stage_name, cluster, todo, [], script, dry_run, active, waiting)


def _hold_back_beyond_queue_limit(profile: ClusterProfile, result: Submission) -> None:
    """Keep only the shards that fit under the profile's max_queued_jobs, counting the jobs already queued."""
    if not profile.max_queued_jobs or not result.shards:
        return
    queued = schedulers.queued_jobs(profile.scheduler)
    if queued is None:
        raise SubmissionError(f"cannot count your queued jobs on {profile.scheduler} to respect max_queued_jobs "
                              f"{profile.max_queued_jobs}: nothing was submitted")
    room = max(0, profile.max_queued_jobs - queued)
    result.shards, result.held_back = result.shards[:room], result.shards[room:]


def array_parallelism(resources: Resources, shards: int, max_array_size: int) -> int:
    """Tasks each array may run at once, so that the arrays of one submission together stay within the resource
    class's array_parallelism (at least one per array)."""
    arrays = max(1, -(-shards // max_array_size))
    return max(1, resources.array_parallelism // arrays)


def _submit_arrays(executor, profile: ClusterProfile, resources: Resources, directory: Path, config_path: str,
                   stage_name: str, result: Submission) -> None:
    """One array per `max_array_size` shards; job ids recorded as each array is accepted. A refused array
    marks its shards (and the ones not yet submitted) as aborted, so that status shows why."""
    chunk = profile.max_array_size
    todo = result.shards
    executor.update_parameters(array_parallelism=array_parallelism(resources, len(todo), chunk))
    for start in range(0, len(todo), chunk):
        part = todo[start : start + chunk]
        try:  # submitit prints the scheduler's raw stderr as well: the error below says it once, in one line
            with contextlib.redirect_stderr(io.StringIO()):
                jobs = executor.map_array(shard_task, [config_path] * len(part), [stage_name] * len(part), part,
                                          [result.generation] * len(part))
        except Exception as exc:  # noqa: BLE001 - submitit raises several types; all become one clear line
            error = exc if isinstance(exc, OSError) else _scheduler_error(exc, profile.scheduler)
            ownership.append_records(directory, [{"shard": i, "generation": result.generation, "aborted": str(error)}
                                                 for i in todo[start:]])
            if isinstance(exc, OSError):
                raise
            raise error from None
        ids = [job.job_id for job in jobs]
        ownership.append_records(directory, [{"shard": i, "generation": result.generation, "job_id": j}
                                             for i, j in zip(part, ids)])
        result.job_ids += ids


def cancel(cfg: PipelineConfig, stage: str, grace_s: float = 10.0, shards: set[int] | None = None) -> list[ShardStatus]:
    """Cancel every pending or running shard of the stage (or only `shards`); returns the rows that were cancelled.

    1. under the submission lock, mark each active shard's generation cancelled: from now on none of its tasks
       can commit (ldrt_hpc/ownership.py), whatever the scheduler does;
    2. ask the scheduler to end the jobs (scancel / qdel / SIGTERM, which the task handles by stopping);
    3. after `grace_s`, kill what still runs (scancel --signal=KILL, qdel -W force, SIGKILL).
    `status` shows "cancelling" until the scheduler confirms the end.
    """
    directory = stage_dir(cfg, stage)
    with ownership.submission_lock(directory, f"ldrt-hpc cancel {stage}"):
        rows = [r for r in stage_status(cfg, stage) if r.state in ACTIVE and (shards is None or r.shard in shards)]
        now = time.time()
        ownership.append_records(directory, [{"shard": r.shard, "generation": r.generation, "cancelled_at": now}
                                             for r in rows])
    by_scheduler: dict[str, list[str]] = {}
    for row in rows:
        if row.job_id:
            by_scheduler.setdefault(row.scheduler or "local", []).append(row.job_id)
    all_ids = [r["job_id"] for r in latest_records(cfg, stage).values() if r.get("job_id")]
    complaints = [schedulers.stop_jobs(name, ids, all_ids) for name, ids in by_scheduler.items()]
    deadline = time.time() + grace_s
    still = _still_running(by_scheduler)
    while still and time.time() < deadline:
        time.sleep(min(1.0, max(0.0, deadline - time.time())))
        still = _still_running(by_scheduler)
    for name, ids in still.items():
        complaints.append(schedulers.stop_jobs(name, ids, all_ids, force=True))
    complaints = [c for c in complaints if c]
    if complaints:
        raise CancelError(f"{stage}: marked {len(rows)} shard(s) cancelled (none of their tasks can commit), but "
                          + "; ".join(complaints))
    return rows


def _still_running(by_scheduler: dict[str, list[str]]) -> dict[str, list[str]]:
    still = {}
    for name, ids in by_scheduler.items():
        states = schedulers.STATE_QUERIES[name](ids)
        running = [job_id for job_id in ids if states.get(job_id) in RUNNING]
        if running:
            still[name] = running
    return still


def verify_stage(cfg: PipelineConfig, stage: str, set_aside: bool = True) -> list[VerifyResult]:
    """Verify every shard that has a marker; a bad one is set aside (`status` then says corrupt, `rerun` redoes
    it). Shards without a marker are not verified (nothing was committed)."""
    directory = stage_dir(cfg, stage)
    plan = require_plan(cfg, stage)
    results = []
    for index in tqdm(range(plan.num_shards), desc=f"verify {stage}", unit="shard", mininterval=5, leave=False):
        if read_marker(directory, index) is None:
            continue
        result = verify_shard(directory, index)
        if not result.ok and set_aside:
            set_aside_corrupt(directory, index, result.problems)
        results.append(result)
    return results


__all__ = ["submit", "stage_status", "format_status", "wait", "cancel", "parse_shards", "format_shards",
           "ShardStatus", "Submission", "SubmissionError", "last_cluster", "require_plan", "status_json",
           "verify_stage"]
