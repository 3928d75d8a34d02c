"""A stage's status: one row per shard from its evidence (markers, failure and corrupt records, submission records,
the scheduler's word) through the pure `state.reconcile`; and the views of the submission records the launcher and
the CLI need. Cheap: no shard file is read, one scheduler query per kind of scheduler."""

from __future__ import annotations

import json
import re
import shutil
import socket
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Iterable

from submitit.core.utils import JobPaths

from .. import ownership
from ..config import PipelineConfig
from ..plan import Plan, PlanError, load_plan
from ..runner import read_failure, stage_dir
from ..shards import completion_problem, read_corrupt, read_marker
from . import local, pbs, schedulers, slurm
from .selection import format_shards
from .state import ACTIVE, Evidence, reconcile

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
    reason: str | None = None
    """Why a pending job waits, when the scheduler says (Slurm's Reason, PBS's comment)."""


REASON_QUERIES: dict[str, Callable[[list[str]], dict[str, str]]] = {"slurm": slurm.reasons, "pbs": pbs.reasons}
"""Per scheduler: why its pending jobs wait (asked only when some shard is pending)."""


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
        return "SUBMITTING" if local.states([pid])[pid] == "RUNNING" else "ABANDONED"
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
            state = _native_state(record, native, row.log, now)
            evidence = Evidence(completion[index], read_corrupt(directory, index), read_failure(directory, index),
                                record, state, now)
        row.state, row.error = reconcile(evidence)
        if row.state == "done":
            marker = read_marker(directory, index) or {}
            row.items, row.job_id = marker.get("item_count"), marker.get("job_id") or row.job_id
        elif row.state == "failed" and evidence.failure is None and row.log and "cancelled" not in (row.error or ""):
            row.error = _with_log_detail(row.error, Path(row.log), cfg.work_dir)
        rows.append(row)
    _add_reasons(rows)
    return rows


def _add_reasons(rows: list[ShardStatus]) -> None:
    """The scheduler's reason for each pending row: one query per scheduler, only when something is pending."""
    pending: dict[str, list[ShardStatus]] = {}
    for row in rows:
        if row.state == "pending" and row.job_id and row.scheduler in REASON_QUERIES:
            pending.setdefault(row.scheduler, []).append(row)
    for scheduler, waiting in pending.items():
        found = REASON_QUERIES[scheduler]([row.job_id for row in waiting])
        for row in waiting:
            row.reason = found.get(row.job_id)


def _native_state(record: dict | None, native: dict[tuple[str, str], str], log: str | None, now: float) -> str:
    """What the scheduler says of the record's job. An array task missing from sacct while its siblings are listed
    was cancelled while pending (it never started) -- unless it left a log: then it ran, and accounting has not
    caught up yet (seen for seconds on a loaded slurmdbd), which counts as 'not listed yet'."""
    if record is None:
        return "UNKNOWN"
    if not record.get("job_id"):
        return _reserved_state(record, now)
    state = native.get((record.get("scheduler"), record.get("job_id")), "UNKNOWN")
    if state == "VANISHED" and log and Path(log).exists():
        return "UNKNOWN"
    return state


def _with_log_detail(error: str | None, log: Path, work_dir: Path) -> str:
    """Add the job's own last error line; an empty or missing log on a nearly full file system says so (the
    scheduler could not even write the job's output there)."""
    detail = last_error_line(log)
    if detail:
        return f"{error}: {detail}"
    if free_mb(work_dir) < MIN_FREE_MB and (not log.is_file() or log.stat().st_size == 0):
        state = "empty" if log.is_file() else "missing"
        return f"{error}: its log is {state} and {work_dir} has {free_mb(work_dir):.1f} MB free (file system full?)"
    return error or ""


STATE_ORDER = ("done", "failed", "corrupt", "cancelling", "running", "pending", "missing", "unknown")
PROBLEMS = ("failed", "corrupt")
"""States that make `status` (and `run --wait`) exit 1."""
MAX_ROWS = 50
"""`status` prints one row per shard up to this many shards shown, else one line per group (`--all`: rows)."""


def display_job_id(row: ShardStatus) -> str:
    """The id the scheduler's own commands accept: PBS's '123[4].server' for a subjob, else the id as recorded."""
    if not row.job_id:
        return "-"
    return pbs.native_id(row.job_id) if row.scheduler == "pbs" else row.job_id


def _detail(row: ShardStatus, with_log: bool = True) -> str:
    if row.state in ("failed", "corrupt", "cancelling", "unknown"):
        return f"{row.error or ''}" + (f"  [log: {row.log}]" if with_log and row.log and row.state == "failed" else "")
    if row.state == "pending" and row.reason:
        return f"waiting: {row.reason}"
    return ""


def count_summary(rows: Iterable[ShardStatus]) -> str:
    """'3 done, 1 failed, 2 pending' in STATE_ORDER."""
    counts: dict[str, int] = {}
    for row in rows:
        counts[row.state] = counts.get(row.state, 0) + 1
    return ", ".join(f"{counts[k]} {k}" for k in STATE_ORDER if k in counts)


def group_rows(rows: list[ShardStatus]) -> list[tuple[str, str, list[ShardStatus]]]:
    """(state, detail, rows) per state and identical detail (the row's own job id and log left out, so that 1000
    identical failures are one group), in STATE_ORDER, then by first shard."""
    groups: dict[tuple[str, str], list[ShardStatus]] = {}
    for row in rows:
        detail = _detail(row, with_log=False)
        if row.job_id:
            detail = detail.replace(display_job_id(row), "<job>").replace(row.job_id, "<job>")
        groups.setdefault((row.state, detail), []).append(row)
    order = {state: i for i, state in enumerate(STATE_ORDER)}
    ranked = sorted(groups.items(), key=lambda item: (order.get(item[0][0], len(order)), item[1][0].shard))
    return [(state, detail, members) for (state, detail), members in ranked]


def format_status(stage: str, rows: list[ShardStatus], states: Iterable[str] | None = None,
                  every_row: bool | None = None) -> str:
    """The status table: one row per shard (when at most MAX_ROWS are shown, or `every_row`), else one line per
    group of shards with the same state and detail; `states` shows only those states. The last line counts every
    shard."""
    wanted = set(states) if states else None
    shown = [row for row in rows if wanted is None or row.state in wanted]
    if every_row is None:
        every_row = len(shown) <= MAX_ROWS
    lines = []
    if every_row:
        width = max([14] + [len(display_job_id(row)) for row in shown])
        lines.append(f"{'shard':>6}  {'state':10} {'job':>{width}}  {'items':>6}  detail")
        for row in shown:
            lines.append(f"{row.shard:>6}  {row.state:10} {display_job_id(row):>{width}}  "
                         f"{'' if row.items is None else row.items:>6}  {_detail(row)}".rstrip())
    else:
        for state, detail, members in group_rows(shown):
            logs = [row.log for row in members if row.log and state == "failed"]
            example = f"  [log of shard {members[0].shard}: {logs[0]}]" if logs else ""
            lines.append(f"{state} \u00d7{len(members)} shards {format_shards(row.shard for row in members)}"
                         + (f": {detail}" if detail else "") + example)
        lines.append(f"({len(shown)} shards in {len(lines)} group{'s' if len(lines) != 1 else ''}; "
                     "--all prints one row per shard)")
    only = f" (shown: {', '.join(sorted(wanted))})" if wanted else ""
    lines.append(f"{stage}: {len(rows)} shards: {count_summary(rows) or 'no plan yet'}{only}")
    return "\n".join(lines)




def wait(cfg: PipelineConfig, stage: str, poll_s: float = 2.0, timeout_s: float | None = None,
         progress: Callable[[list[ShardStatus]], None] | None = None) -> list[ShardStatus]:
    """Block until no shard of the stage is pending, running or being cancelled; returns the final status rows.
    `progress` is called with the rows whenever the count of shards per state changes (first poll included)."""
    started = time.time()
    last = None
    while True:
        rows = stage_status(cfg, stage)
        if progress is not None and count_summary(rows) != last:
            last = count_summary(rows)
            progress(rows)
        if not any(r.state in ACTIVE for r in rows):
            return rows
        if timeout_s is not None and time.time() - started > timeout_s:
            raise TimeoutError(f"{stage}: shards still active after {timeout_s:.0f} s")
        time.sleep(poll_s)


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


MIN_FREE_MB = 64
"""A submission writes job pickles, logs and (later) shards: refuse it below this much free space."""


def free_mb(path: Path) -> float:
    while not path.exists() and path != path.parent:
        path = path.parent
    return shutil.disk_usage(path).free / 2**20
