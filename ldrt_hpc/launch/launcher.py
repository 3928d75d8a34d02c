"""Submit a stage's shards as array jobs, report their status, rerun the failed ones, cancel.

State lives on disk, never in this process: the pinned plan, the shard markers and failure records (written by
the runner), and `WORK/<stage>/_jobs/submissions.jsonl` (one line per submitted shard: job id, scheduler, log
folder). `status` joins them with what the scheduler says (sacct / qstat / process table), so it works long
after the submitting process has exited.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable, Iterator, Sequence

from submitit.core.utils import JobPaths
from submitit.slurm.slurm import SlurmInfoWatcher
from tqdm import tqdm

from ..config import ClusterProfile, PipelineConfig, freeze, load_cluster
from ..plan import Plan, PlanError, check_shard_count, check_upstream, load_plan, pin_plan
from ..runner import read_failure, stage_dir
from ..shards import is_complete, read_marker
from ..stages import get_stage
from .executors import job_script, make_executor
from .pbs import PBSInfoWatcher
from .task import run_shard_task

ACTIVE = ("pending", "running", "unknown")
"""States never submitted again; 'unknown': the scheduler could not be asked (a shard may still be running)."""


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
# submission records


def jobs_dir(cfg: PipelineConfig, stage: str) -> Path:
    return stage_dir(cfg, stage) / "_jobs"


def log_folder(cfg: PipelineConfig, stage: str) -> Path:
    return jobs_dir(cfg, stage) / "logs"


def _records_path(cfg: PipelineConfig, stage: str) -> Path:
    return jobs_dir(cfg, stage) / "submissions.jsonl"


def append_records(cfg: PipelineConfig, stage: str, records: Sequence[dict]) -> None:
    path = _records_path(cfg, stage)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:  # one write per batch: lines of concurrent submitters never interleave
        handle.write("".join(json.dumps(r, separators=(",", ":")) + "\n" for r in records))


def latest_records(cfg: PipelineConfig, stage: str) -> dict[int, dict]:
    """The newest submission record of each shard."""
    path = _records_path(cfg, stage)
    latest: dict[int, dict] = {}
    if path.is_file():
        for line in path.read_text().splitlines():
            if line.strip():
                record = json.loads(line)
                latest[int(record["shard"])] = record
    return latest


# --------------------------------------------------------------------------------------------------------------
# status


@dataclass
class ShardStatus:
    shard: int
    state: str
    """done / failed / running / pending / missing, or unknown when the scheduler could not be asked."""
    job_id: str | None = None
    scheduler: str | None = None
    items: int | None = None
    log: str | None = None
    error: str | None = None


def _slurm_states(job_ids: list[str]) -> dict[str, str]:
    watcher = SlurmInfoWatcher(delay_s=600)  # a private watcher: one sacct call for every array in the list
    for job_id in job_ids:
        watcher.register_job(job_id)
    command = watcher._make_command()
    try:  # run sacct here rather than through watcher.update(), which swallows its failures
        output = subprocess.run(command, capture_output=True, timeout=120, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return {job_id: "QUERY_FAILED" for job_id in job_ids}
    watcher._info_dict.update(watcher.read_info(output))
    states = {job_id: watcher.get_state(job_id, mode="cache").split(" ")[0] for job_id in job_ids}
    # An array task cancelled while pending never gets an accounting record, and slurmctld drops it at once:
    # when sacct lists other tasks of the same array but not this one, it is gone, not "not yet listed".
    # Right after submission or cancellation sacct may list the whole array under its bare id ('68'): that
    # record then holds the state of every task.
    info = watcher._info_dict
    listed_arrays = {key.split("_")[0] for key in info if "_" in key}
    for job_id, state in states.items():
        base = job_id.split("_")[0]
        if state != "UNKNOWN" or base == job_id:
            continue
        if base in listed_arrays:
            states[job_id] = "VANISHED"
        elif base in info and info[base].get("State"):
            states[job_id] = info[base]["State"].split(" ")[0]
    return states


def _pbs_states(job_ids: list[str]) -> dict[str, str]:
    watcher = PBSInfoWatcher(delay_s=600)
    for job_id in job_ids:
        watcher.register_job(job_id)
    failed = watcher.update()
    return {job_id: "QUERY_FAILED" if watcher._array_parent_of(job_id) in failed else
            watcher.get_state(job_id, mode="cache") for job_id in job_ids}


def _local_states(job_ids: list[str]) -> dict[str, str]:
    states = {}
    for job_id in job_ids:
        try:
            os.kill(int(job_id), 0)
            # a zombie (finished, not yet reaped) is not running
            stat = Path(f"/proc/{job_id}/stat").read_text()
            states[job_id] = "COMPLETED" if stat.split(")")[-1].split()[0] == "Z" else "RUNNING"
        except (ProcessLookupError, ValueError, FileNotFoundError):
            states[job_id] = "UNKNOWN"
        except PermissionError:
            states[job_id] = "RUNNING"
    return states


_STATE_QUERIES = {"slurm": _slurm_states, "pbs": _pbs_states, "local": _local_states}
_PENDING = {"PENDING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "RESIZING", "PREEMPTED", "SUSPENDED"}
_RUNNING = {"RUNNING", "COMPLETING", "CONFIGURING", "STAGE_OUT", "SIGNALING"}


def last_error_line(log: Path) -> str | None:
    """The most telling line at the end of a job's stderr: the last exception line, else the last line."""
    try:
        with open(log, "rb") as handle:
            handle.seek(max(0, log.stat().st_size - 65536))
            lines = [line.strip() for line in handle.read().decode(errors="replace").splitlines() if line.strip()]
    except OSError:
        return None
    for line in reversed(lines):
        if re.search(r"(Error|Exception|error:|Killed|CANCELLED|TIME LIMIT|oom)", line) and not line.startswith("File "):
            return line[:300]
    return lines[-1][:300] if lines else None


def stage_status(cfg: PipelineConfig, stage: str, plan: Plan | None = None) -> list[ShardStatus]:
    """One row per shard of the stage's pinned plan."""
    directory = stage_dir(cfg, stage)
    plan = plan or load_plan(directory)
    if plan is None:
        return []
    records = latest_records(cfg, stage)
    rows: list[ShardStatus] = []
    pending_query: dict[str, list[str]] = {}
    for index in range(plan.num_shards):
        record = records.get(index)
        if is_complete(directory, index):
            marker = read_marker(directory, index) or {}
            rows.append(ShardStatus(index, "done", marker.get("job_id"), record and record.get("scheduler"),
                                    marker.get("item_count")))
            continue
        row = ShardStatus(index, "missing")
        if record is not None:
            row.job_id, row.scheduler = record["job_id"], record["scheduler"]
            row.log = str(JobPaths(record["folder"], job_id=record["job_id"]).stderr)
            pending_query.setdefault(record["scheduler"], []).append(record["job_id"])
        rows.append(row)
    states: dict[tuple[str, str], str] = {}
    for scheduler, job_ids in pending_query.items():
        for job_id, state in _STATE_QUERIES[scheduler](job_ids).items():
            states[(scheduler, job_id)] = state
    now = time.time()
    for row in rows:
        if row.state == "done":
            continue
        failure = read_failure(directory, row.shard)
        if row.job_id is None:
            if failure is not None:
                row.state, row.error = "failed", failure["error"]
            continue
        native = states.get((row.scheduler, row.job_id), "UNKNOWN")
        # the scheduler's live state first: a job requeued after preemption left a failure record behind
        if native in _PENDING:
            row.state = "pending"
        elif native in _RUNNING:
            row.state = "running"
        elif native == "QUERY_FAILED":
            row.state, row.error = "unknown", f"could not ask {row.scheduler} about job {row.job_id}"
        elif failure is not None and failure.get("job_id") == row.job_id:
            row.state, row.error = "failed", failure["error"]
        elif native == "UNKNOWN" and now - records[row.shard]["submitted_at"] < 120:
            row.state = "pending"  # accounting may not list a job in its first seconds
        else:
            row.state = "failed"
            if native == "COMPLETED":
                row.error = f"job {row.job_id} finished without a completion marker"
            elif native == "VANISHED":
                row.error = f"job {row.job_id} vanished from the scheduler (cancelled while pending?)"
            elif native == "UNKNOWN":
                row.error = f"job {row.job_id} is unknown to the scheduler and left no completion marker"
            else:
                row.error = f"job {row.job_id} ended {native}"
            detail = last_error_line(Path(row.log)) if row.log else None
            if detail and native not in ("CANCELLED",):
                row.error += f": {detail}"
    return rows


def format_status(stage: str, rows: list[ShardStatus]) -> str:
    counts: dict[str, int] = {}
    for row in rows:
        counts[row.state] = counts.get(row.state, 0) + 1
    lines = [f"{'shard':>6}  {'state':8} {'job':>14}  {'items':>6}  detail"]
    for row in rows:
        detail = ""
        if row.state == "failed":
            detail = f"{row.error or ''}" + (f"  [log: {row.log}]" if row.log else "")
        lines.append(f"{row.shard:>6}  {row.state:8} {row.job_id or '-':>14}  "
                     f"{'' if row.items is None else row.items:>6}  {detail}".rstrip())
    summary = ", ".join(f"{counts[k]} {k}" for k in ("done", "failed", "running", "pending", "missing", "unknown")
                        if k in counts)
    lines.append(f"{stage}: {len(rows)} shards: {summary or 'no plan yet'}")
    return "\n".join(lines)


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


def _run_local(executor, config_path: str, stage: str, shards: list[int], parallelism: int, on_submit) -> list[str]:
    """A rolling pool of local processes (at most `parallelism` at once); waits for all."""
    queue = list(shards)
    running = []
    job_ids = []
    with tqdm(total=len(shards), desc=f"{stage} (local)", unit="shard") as progress:
        while queue or running:
            while queue and len(running) < parallelism:
                index = queue.pop(0)
                job = executor.submit(run_shard_task, config_path, stage, index)
                on_submit([index], [job.job_id])
                job_ids.append(job.job_id)
                running.append(job)
            time.sleep(0.2)
            for job in [j for j in running if j.done()]:
                running.remove(job)
                progress.update(1)
    return job_ids


def wanted_plan(cfg: PipelineConfig, stage_name: str, num_shards: int | None) -> Plan:
    return get_stage(stage_name).plan(cfg, num_shards)


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
) -> Submission:
    """Submit the shards of a stage that are failed or missing (not done, not pending, not running).

    A shard that is pending or running is never submitted twice (one writer per shard file).
    `extra_directives` adds raw scheduler options for this submission only (e.g. {'hold': True}).
    """
    stage = get_stage(stage_name)
    cluster = cluster or cfg.cluster
    profile: ClusterProfile = load_cluster(cluster)
    resources = profile.resources_for(stage.resource_class, cluster)
    if extra_directives:
        resources = resources.model_copy(update={"extra_directives": {**resources.extra_directives, **extra_directives}})
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
    todo = [r.shard for r in rows if r.shard in selected and r.state in ("failed", "missing")]
    # shard i of a downstream stage starts from shard i of its inputs: wait until those are complete
    waiting = [i for i in todo if not all(is_complete(stage_dir(cfg, up), i) for up in plan.upstream)]
    todo = [i for i in todo if i not in waiting]
    folder = log_folder(cfg, stage_name)
    job_name = f"ldrt-{stage_name}"
    chunk = profile.max_array_size if profile.scheduler != "local" else len(todo) or 1
    script = job_script(profile, resources, folder, job_name, min(len(todo), chunk), python=python)
    result = Submission(stage_name, cluster, todo, [], script, dry_run, active, waiting)
    if dry_run or not todo:
        return result
    config_path = str(freeze(cfg))
    folder.mkdir(parents=True, exist_ok=True)

    def record(indices: list[int], job_ids: list[str]) -> None:
        now = time.time()
        append_records(cfg, stage_name, [
            {"shard": i, "job_id": j, "scheduler": profile.scheduler, "cluster": cluster, "folder": str(folder),
             "submitted_at": now} for i, j in zip(indices, job_ids)])

    executor = make_executor(profile, resources, folder, job_name)
    if profile.scheduler == "local":
        with _exported({"LDRT_WORKERS": str(resources.cpus_per_task), **profile.exports}):
            result.job_ids = _run_local(executor, config_path, stage_name, todo, resources.array_parallelism, record)
        return result
    for start in range(0, len(todo), chunk):  # arrays larger than the site allows are split
        part = todo[start : start + chunk]
        jobs = executor.map_array(run_shard_task, [config_path] * len(part), [stage_name] * len(part), part)
        ids = [job.job_id for job in jobs]
        record(part, ids)
        result.job_ids += ids
    return result


def wait(cfg: PipelineConfig, stage: str, poll_s: float = 2.0, timeout_s: float | None = None) -> list[ShardStatus]:
    """Block until no shard of the stage is pending or running; returns the final status rows."""
    started = time.time()
    while True:
        rows = stage_status(cfg, stage)
        if not any(r.state in ACTIVE for r in rows):
            return rows
        if timeout_s is not None and time.time() - started > timeout_s:
            raise TimeoutError(f"{stage}: shards still active after {timeout_s:.0f} s")
        time.sleep(poll_s)


def _whole_arrays(job_ids: list[str], records: dict[int, dict]) -> list[str]:
    """Replace the tasks of an array by the array id when every task of it is being cancelled: Slurm then
    records the array as CANCELLED, whereas a pending task cancelled alone leaves no accounting record."""
    tasks_of: dict[str, set[str]] = {}
    for record in records.values():
        tasks_of.setdefault(record["job_id"].split("_")[0], set()).add(record["job_id"])
    chosen = set(job_ids)
    result = []
    for base, tasks in tasks_of.items():
        if tasks and tasks <= chosen:
            result.append(base)
            chosen -= tasks
    return result + sorted(chosen)


def cancel(cfg: PipelineConfig, stage: str) -> list[ShardStatus]:
    """Cancel every pending or running shard of the stage; returns the rows that were cancelled."""
    rows = [r for r in stage_status(cfg, stage) if r.state in ACTIVE]
    by_scheduler: dict[str, list[str]] = {}
    for row in rows:
        by_scheduler.setdefault(row.scheduler or "local", []).append(row.job_id)
    for scheduler, job_ids in by_scheduler.items():
        if scheduler == "slurm":
            subprocess.run(["scancel", *_whole_arrays(job_ids, latest_records(cfg, stage))], check=False)
        elif scheduler == "pbs":
            from .pbs import native_id

            for job_id in job_ids:
                subprocess.run(["qdel", native_id(job_id)], check=False)
        else:
            for job_id in job_ids:
                try:
                    os.kill(int(job_id), signal.SIGTERM)
                except (ProcessLookupError, ValueError):
                    pass
    return rows


def status_json(rows: list[ShardStatus]) -> str:
    return json.dumps([asdict(r) for r in rows], indent=1)


def last_cluster(cfg: PipelineConfig, stage: str) -> str | None:
    """The cluster profile of the newest submission of the stage (rerun's default)."""
    records = latest_records(cfg, stage)
    if not records:
        return None
    return max(records.values(), key=lambda r: r["submitted_at"]).get("cluster")


def require_plan(cfg: PipelineConfig, stage: str) -> Plan:
    plan = load_plan(stage_dir(cfg, stage))
    if plan is None:
        raise PlanError(f"stage '{stage}' has not been run yet (no plan in {stage_dir(cfg, stage)}): "
                        f"use `ldrt-hpc run {stage}`")
    return plan


__all__ = ["submit", "stage_status", "format_status", "wait", "cancel", "parse_shards", "format_shards",
           "ShardStatus", "Submission", "last_cluster", "require_plan", "status_json"]
