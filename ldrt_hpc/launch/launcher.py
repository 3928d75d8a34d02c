"""Submit a stage's shards as array jobs, report their status, rerun the failed ones, cancel.

State lives on disk, never in this process: the pinned plan, the shard markers and failure records (written by
the runner), and `WORK/<stage>/_jobs/submissions.jsonl` (ldrt_hpc/ownership.py: one line per shard and event of
a submission's generation: reserved, job id, cancelled, aborted). `status` joins them with what the scheduler
says (ldrt_hpc/launch/schedulers.py) through one pure function (ldrt_hpc/launch/state.py), so it works long after
the submitting process has exited.
"""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import socket
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable, Iterator

from submitit.core.utils import JobPaths
from tqdm import tqdm

from .. import ownership
from ..config import ClusterProfile, PipelineConfig, freeze, load_cluster
from ..plan import Plan, PlanError, check_shard_count, check_upstream, load_plan, pin_plan
from ..runner import read_failure, stage_dir
from ..shards import (VerifyResult, completion_problem, is_complete, read_corrupt, read_marker, set_aside_corrupt,
                      verify_shard)
from ..stages import get_stage
from . import schedulers
from .executors import job_script, make_executor
from .schedulers import CancelError
from .state import ACTIVE, RUNNING, TO_SUBMIT, Evidence, reconcile
from .task import run_shard_task


# --------------------------------------------------------------------------------------------------------------
# shard lists: "0-9,17" <-> [0..9, 17]


def parse_shards(text: str, num_shards: int) -> list[int]:
    """Parse '0-9,17' into sorted shard indices; every index must be inside the plan."""
    result: set[int] = set()
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        match = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
        if not match:
            raise ValueError(f"--shards: '{part}' is not an index or a range like 3-7")
        low, high = int(match[1]), int(match[2] or match[1])
        if low > high:
            raise ValueError(f"--shards: range '{part}' runs backwards")
        if high >= num_shards:
            raise ValueError(f"--shards: {high} is outside the plan (shards 0-{num_shards - 1})")
        result.update(range(low, high + 1))
    return sorted(result)


def format_shards(indices: Iterable[int]) -> str:
    """[0,1,2,5] -> '0-2,5'."""
    ordered = sorted(set(indices))
    parts, start = [], None
    for position, value in enumerate(ordered):
        if start is None:
            start = value
        if position + 1 == len(ordered) or ordered[position + 1] != value + 1:
            parts.append(str(start) if start == value else f"{start}-{value}")
            start = None
    return ",".join(parts)


# --------------------------------------------------------------------------------------------------------------
# submission records (ldrt_hpc/ownership.py keeps them; these are the launcher's views)


def jobs_dir(cfg: PipelineConfig, stage: str) -> Path:
    return ownership.jobs_dir(stage_dir(cfg, stage))


def log_folder(cfg: PipelineConfig, stage: str) -> Path:
    return jobs_dir(cfg, stage) / "logs"


def latest_records(cfg: PipelineConfig, stage: str) -> dict[int, dict]:
    """The owning submission record of each shard."""
    return ownership.owners(stage_dir(cfg, stage))


# --------------------------------------------------------------------------------------------------------------
# status


@dataclass
class ShardStatus:
    shard: int
    state: str
    """done / failed / corrupt / running / pending / cancelling / missing, or unknown (the scheduler could not be
    asked)."""
    job_id: str | None = None
    scheduler: str | None = None
    items: int | None = None
    log: str | None = None
    error: str | None = None
    generation: str | None = None


_EXCEPTION_LINE = re.compile(r"^(ldrt-hpc: |[A-Za-z_][\w.]*(Error|Exception|Terminated|Interrupt|Exit)\b)")
_SCHEDULER_LINE = re.compile(r"^(srun|slurmstepd|submitit \w+ \()")


def last_error_line(log: Path) -> str | None:
    """The most telling line at the end of a job's stderr: the last Python exception (or ldrt-hpc) line, else the
    last line naming an error that is not the scheduler's own epilogue, else the last line."""
    try:
        with open(log, "rb") as handle:
            handle.seek(max(0, log.stat().st_size - 65536))
            lines = [line.strip() for line in handle.read().decode(errors="replace").splitlines() if line.strip()]
    except OSError:
        return None
    for line in reversed(lines):
        if _EXCEPTION_LINE.match(line):
            return line[:300]
    for line in reversed(lines):
        if re.search(r"(Error|Exception|error:|Killed|CANCELLED|TIME LIMIT|oom)", line) and not line.startswith("File "):
            if not _SCHEDULER_LINE.match(line):
                return line[:300]
    return lines[-1][:300] if lines else None


def _reserved_state(record: dict, now: float) -> str:
    """A shard reserved by a submission that has not handed it to the scheduler (yet): is that submission alive?"""
    pid, _, host = str(record.get("submitter", "")).partition("@")
    if host == socket.gethostname() and pid.isdigit():
        return "SUBMITTING" if schedulers.local_states([pid])[pid] == "RUNNING" else "ABANDONED"
    return "SUBMITTING" if now - record.get("submitted_at", 0) < 3600 else "ABANDONED"


def _log_of(record: dict) -> str | None:
    if not record.get("folder") or not record.get("job_id"):
        return None
    return str(JobPaths(record["folder"], job_id=record["job_id"]).stderr)


def stage_status(cfg: PipelineConfig, stage: str, plan: Plan | None = None) -> list[ShardStatus]:
    """One row per shard of the stage's pinned plan (cheap: no shard is read, one scheduler query per kind)."""
    directory = stage_dir(cfg, stage)
    plan = plan or load_plan(directory)
    if plan is None:
        return []
    records = latest_records(cfg, stage)
    completion = {index: completion_problem(directory, index) for index in range(plan.num_shards)}
    to_ask: dict[str, list[str]] = {}
    for index, record in records.items():
        if index < plan.num_shards and completion[index] is None and record.get("job_id"):
            to_ask.setdefault(record.get("scheduler", "local"), []).append(record["job_id"])
    native: dict[tuple[str, str], str] = {}
    for scheduler, job_ids in to_ask.items():
        for job_id, value in schedulers.STATE_QUERIES[scheduler](job_ids).items():
            native[(scheduler, job_id)] = value
    now = time.time()
    rows: list[ShardStatus] = []
    for index in range(plan.num_shards):
        record = records.get(index)
        row = ShardStatus(index, "missing")
        if record is not None:
            row.job_id, row.scheduler, row.generation = record.get("job_id"), record.get("scheduler"), record.get("generation")
            row.log = _log_of(record)
        evidence = Evidence(completion=completion[index])
        if completion[index] != "":
            state = "UNKNOWN"
            if record is not None:
                state = native.get((record.get("scheduler"), record.get("job_id")), "UNKNOWN") if record.get("job_id") \
                    else _reserved_state(record, now)
            evidence = Evidence(completion[index], read_corrupt(directory, index), read_failure(directory, index),
                                record, state, now)
        row.state, row.error = reconcile(evidence)
        if row.state == "done":
            marker = read_marker(directory, index) or {}
            row.items, row.job_id = marker.get("item_count"), marker.get("job_id") or row.job_id
        elif row.state == "failed" and evidence.failure is None and row.log and "cancelled" not in (row.error or ""):
            row.error = _with_log_detail(row.error, Path(row.log), cfg.work_dir)
        rows.append(row)
    return rows


def _with_log_detail(error: str | None, log: Path, work_dir: Path) -> str:
    """Add the job's own last error line; an empty log on a nearly full file system says so."""
    detail = last_error_line(log)
    if detail:
        return f"{error}: {detail}"
    if log.is_file() and log.stat().st_size == 0 and _free_mb(work_dir) < MIN_FREE_MB:
        return f"{error}: its log is empty and {work_dir} has {_free_mb(work_dir):.1f} MB free (file system full?)"
    return error or ""


STATE_ORDER = ("done", "failed", "corrupt", "cancelling", "running", "pending", "missing", "unknown")


def format_status(stage: str, rows: list[ShardStatus]) -> str:
    counts: dict[str, int] = {}
    for row in rows:
        counts[row.state] = counts.get(row.state, 0) + 1
    lines = [f"{'shard':>6}  {'state':10} {'job':>14}  {'items':>6}  detail"]
    for row in rows:
        detail = ""
        if row.state in ("failed", "corrupt", "cancelling", "unknown"):
            detail = f"{row.error or ''}" + (f"  [log: {row.log}]" if row.log and row.state == "failed" else "")
        lines.append(f"{row.shard:>6}  {row.state:10} {row.job_id or '-':>14}  "
                     f"{'' if row.items is None else row.items:>6}  {detail}".rstrip())
    summary = ", ".join(f"{counts[k]} {k}" for k in STATE_ORDER if k in counts)
    lines.append(f"{stage}: {len(rows)} shards: {summary or 'no plan yet'}")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------------------------
# submit


class SubmissionError(RuntimeError):
    """The scheduler or the file system refused a submission; one line that says which and why."""


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
                job = executor.submit(run_shard_task, config_path, stage, index, generation)
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


MIN_FREE_MB = 64
"""A submission writes job pickles, logs and (later) shards: refuse it below this much free space."""


def _free_mb(path: Path) -> float:
    while not path.exists() and path != path.parent:
        path = path.parent
    return shutil.disk_usage(path).free / 2**20


def _check_space(directory: Path) -> None:
    free = _free_mb(directory)
    if free < MIN_FREE_MB:
        raise SubmissionError(f"{directory}: only {free:.1f} MB free on its file system; a submission needs at "
                              f"least {MIN_FREE_MB} MB for job files, logs and shards. Free space or move work_dir.")


def _file_system_error(exc: OSError, directory: Path) -> SubmissionError:
    where = exc.filename or directory
    if exc.errno == errno.ENOSPC:
        return SubmissionError(f"{where}: no space left on device ({_free_mb(Path(where)):.1f} MB free): nothing "
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
) -> Submission:
    """Submit the shards of a stage that are failed, corrupt or missing (not done, not active).

    Under the stage's submission lock: read the state, reserve the chosen shards for a new generation, submit,
    record the job ids; a shard that is pending, running or being cancelled is never submitted twice.
    `extra_directives` adds raw scheduler options for this submission only (e.g. {'hold': True}).
    """
    stage = get_stage(stage_name)
    cluster = cluster or cfg.cluster
    profile: ClusterProfile = load_cluster(cluster)
    resources = profile.resources_for(stage.resource_class, cluster)
    if extra_directives:
        resources = resources.model_copy(update={"extra_directives": {**resources.extra_directives, **extra_directives}})
    directory = stage_dir(cfg, stage_name)
    if dry_run:
        return _choose(cfg, stage_name, profile, resources, cluster, shards, num_shards, replan, True, python)
    _check_space(cfg.work_dir)
    started = time.time()
    folder = log_folder(cfg, stage_name)
    try:
        with ownership.submission_lock(directory, f"ldrt-hpc run {stage_name}", wait_s=lock_wait_s):
            result = _choose(cfg, stage_name, profile, resources, cluster, shards, num_shards, replan, False, python)
            if not result.shards:
                return result
            _remove_dead_attempts(directory, result.shards)
            config_path = str(freeze(cfg))
            folder.mkdir(parents=True, exist_ok=True)
            result.generation = ownership.new_generation()
            ownership.append_records(directory, [
                {"shard": i, "generation": result.generation, "scheduler": profile.scheduler, "cluster": cluster,
                 "folder": str(folder), "submitted_at": time.time(), "submitter": ownership.whoami(), "job_id": None}
                for i in result.shards])
            executor = make_executor(profile, resources, folder, f"ldrt-{stage_name}")
            if profile.scheduler != "local":
                _submit_arrays(executor, profile, directory, config_path, stage_name, result)
                return result
    except OSError as exc:
        _remove_partial_files(folder, started)
        raise _file_system_error(exc, directory) from None
    # local: the lock is released once the shards are reserved; the pool runs them and waits for them
    with _exported({"LDRT_WORKERS": str(resources.cpus_per_task), **profile.exports}):
        result.job_ids = _run_local(executor, config_path, directory, stage_name, result.shards,
                                    resources.array_parallelism, result.generation)
    return result


def _choose(cfg, stage_name, profile, resources, cluster, shards, num_shards, replan, dry_run, python) -> Submission:
    """Pin (or re-plan) the plan and choose the shards to submit; the job script that would run them."""
    directory = stage_dir(cfg, stage_name)
    pinned = load_plan(directory)
    if pinned is not None and not replan:
        check_shard_count(directory, pinned, num_shards)
        check_upstream(directory, pinned, [stage_dir(cfg, name) for name in pinned.upstream])
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
    waiting = [i for i in todo if not all(is_complete(stage_dir(cfg, up), i) for up in plan.upstream)]
    todo = [i for i in todo if i not in waiting]
    chunk = profile.max_array_size if profile.scheduler != "local" else len(todo) or 1
    script = job_script(profile, resources, log_folder(cfg, stage_name), f"ldrt-{stage_name}", min(len(todo), chunk),
                        python=python)
    return Submission(stage_name, cluster, todo, [], script, dry_run, active, waiting)


def _submit_arrays(executor, profile: ClusterProfile, directory: Path, config_path: str, stage_name: str,
                   result: Submission) -> None:
    """One array per `max_array_size` shards; job ids recorded as each array is accepted. A refused array
    marks its shards (and the ones not yet submitted) as aborted, so that status shows why."""
    chunk = profile.max_array_size
    todo = result.shards
    for start in range(0, len(todo), chunk):
        part = todo[start : start + chunk]
        try:
            jobs = executor.map_array(run_shard_task, [config_path] * len(part), [stage_name] * len(part), part,
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


def wait(cfg: PipelineConfig, stage: str, poll_s: float = 2.0, timeout_s: float | None = None) -> list[ShardStatus]:
    """Block until no shard of the stage is pending, running or being cancelled; returns the final status rows."""
    started = time.time()
    while True:
        rows = stage_status(cfg, stage)
        if not any(r.state in ACTIVE for r in rows):
            return rows
        if timeout_s is not None and time.time() - started > timeout_s:
            raise TimeoutError(f"{stage}: shards still active after {timeout_s:.0f} s")
        time.sleep(poll_s)


def cancel(cfg: PipelineConfig, stage: str, grace_s: float = 10.0) -> list[ShardStatus]:
    """Cancel every pending or running shard of the stage; returns the rows that were cancelled.

    1. under the submission lock, mark each active shard's generation cancelled: from now on none of its tasks
       can commit (ldrt_hpc/ownership.py), whatever the scheduler does;
    2. ask the scheduler to end the jobs (scancel / qdel / SIGTERM, which the task handles by stopping);
    3. after `grace_s`, kill what still runs (scancel --signal=KILL, qdel -W force, SIGKILL).
    `status` shows "cancelling" until the scheduler confirms the end.
    """
    directory = stage_dir(cfg, stage)
    with ownership.submission_lock(directory, f"ldrt-hpc cancel {stage}"):
        rows = [r for r in stage_status(cfg, stage) if r.state in ACTIVE]
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


def status_json(rows: list[ShardStatus]) -> str:
    return json.dumps([asdict(r) for r in rows], indent=1)


def last_cluster(cfg: PipelineConfig, stage: str) -> str | None:
    """The cluster profile of the newest submission of the stage (rerun's default)."""
    records = [r for r in latest_records(cfg, stage).values() if r.get("cluster")]
    if not records:
        return None
    return max(records, key=lambda r: r.get("submitted_at", 0)).get("cluster")


def require_plan(cfg: PipelineConfig, stage: str) -> Plan:
    plan = load_plan(stage_dir(cfg, stage))
    if plan is None:
        raise PlanError(f"stage '{stage}' has not been run yet (no plan in {stage_dir(cfg, stage)}): "
                        f"use `ldrt-hpc run {stage}`")
    return plan


__all__ = ["submit", "stage_status", "format_status", "wait", "cancel", "parse_shards", "format_shards",
           "ShardStatus", "Submission", "SubmissionError", "last_cluster", "require_plan", "status_json",
           "verify_stage"]
