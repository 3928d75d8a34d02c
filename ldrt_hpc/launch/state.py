"""A shard's state from its evidence: a pure function, tested from a table (tests/launch/test_state.py).

Evidence: the completion marker (and whether the file beside it still has its size), a `corrupt` record left by
`verify`, the failure record the runner wrote, the owning submission record (ldrt_hpc/ownership.py) and what the
scheduler says of that record's job. Nothing here reads a file or asks a scheduler.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

PENDING = {"PENDING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "RESIZING", "PREEMPTED", "SUSPENDED", "SUBMITTING"}
"""Scheduler states of a job that has not started (SUBMITTING: reserved by a submission that is still running)."""
RUNNING = {"RUNNING", "COMPLETING", "CONFIGURING", "STAGE_OUT", "SIGNALING"}
LIVE_FIRST = {"slurm", "pbs"}
"""Schedulers that requeue: their live state wins over an older failure record of the same job."""
ACCOUNTING_DELAY_S = 120.0
"""sacct / qstat may not list a job in its first seconds: an unknown job that young counts as pending."""

ACTIVE = ("pending", "running", "unknown", "cancelling")
"""States never submitted again ('unknown': the scheduler could not be asked; the shard may still be running)."""
TO_SUBMIT = ("failed", "missing", "corrupt")
"""States that `run` and `rerun` submit."""


@dataclass(frozen=True)
class Evidence:
    completion: str | None = None
    """None: no marker; "": marker present and the file has its size; else what is wrong with the pair."""
    corrupt: dict | None = None
    """The record `verify` left when it set the shard aside."""
    failure: dict | None = None
    """The runner's failure record."""
    record: dict | None = None
    """The owning submission record (merged lines of the owning generation)."""
    native: str = "UNKNOWN"
    """The scheduler's state of the record's job (Slurm vocabulary; VANISHED, QUERY_FAILED, ABANDONED extra)."""
    now: float = field(default_factory=time.time)


def _clock(seconds: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(seconds))


def _failure_is_current(evidence: Evidence) -> bool:
    failure, record = evidence.failure, evidence.record
    if failure is None or record is None:
        return False
    if failure.get("generation"):
        return failure["generation"] == record.get("generation")
    return failure.get("job_id") is not None and failure.get("job_id") == record.get("job_id")


def _ended(evidence: Evidence) -> str:
    job, native = evidence.record.get("job_id"), evidence.native
    if native == "COMPLETED":
        return f"job {job} ended without committing its shard (no completion marker)"
    if native == "VANISHED":
        return f"job {job} vanished from the scheduler (cancelled while pending?)"
    if native == "ABANDONED":
        return f"the submission that queued this shard ({evidence.record.get('submitter')}) ended before starting it"
    if native == "UNKNOWN":
        return f"job {job} is unknown to the scheduler and left no completion marker"
    return f"job {job} ended {native}"


def reconcile(evidence: Evidence) -> tuple[str, str | None]:
    """(state, error) of one shard: done / corrupt / failed / cancelling / pending / running / unknown / missing."""
    if evidence.completion == "":
        return "done", None
    if evidence.completion:
        return "corrupt", evidence.completion
    record, native, corrupt = evidence.record, evidence.native, evidence.corrupt
    corrupt_error = corrupt and f"set aside by verify: {'; '.join(corrupt.get('problems', []))}"
    if record is None:
        if corrupt:
            return "corrupt", corrupt_error
        if evidence.failure is not None:
            return "failed", evidence.failure.get("error")
        return "missing", None
    if corrupt and corrupt.get("detected_at", 0) >= record.get("submitted_at", 0):
        return "corrupt", corrupt_error
    if record.get("aborted"):
        return "failed", f"the submission failed: {record['aborted']}"
    if record.get("cancelled_at"):
        if native in PENDING or native in RUNNING:
            return "cancelling", f"cancel requested at {_clock(record['cancelled_at'])}; job {record.get('job_id')} " \
                                 f"is still {native.lower()}"
        return "failed", f"cancelled at {_clock(record['cancelled_at'])} (`ldrt-hpc cancel`)"
    # an ensemble job goes on after one of its shards failed: that failure is final while the job still runs
    live_first = record.get("scheduler") in LIVE_FIRST and not record.get("ensemble")
    if live_first or not _failure_is_current(evidence):
        if native in PENDING:
            return "pending", None
        if native in RUNNING:
            return "running", None
        if native == "QUERY_FAILED":
            return "unknown", f"could not ask {record.get('scheduler')} about job {record.get('job_id')}"
    if _failure_is_current(evidence):
        return "failed", evidence.failure.get("error")
    if not_listed_yet(native, record.get("scheduler"), record.get("submitted_at", 0), evidence.now):
        return "pending", None
    return "failed", _ended(evidence)


def not_listed_yet(native: str, scheduler: str | None, submitted_at: float, now: float) -> bool:
    """sacct / qstat may not list a job in its first seconds: an unknown job that young is pending, not gone."""
    return native == "UNKNOWN" and scheduler in LIVE_FIRST and now - submitted_at < ACCOUNTING_DELAY_S
