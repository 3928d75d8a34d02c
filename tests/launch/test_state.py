"""The status reconciliation as a table: every combination of marker, corrupt record, failure record, submission
record and scheduler state that matters, with the state and (part of) the message it must give."""

from __future__ import annotations

import pytest

from ldrt_hpc.launch.state import ACTIVE, TO_SUBMIT, Evidence, reconcile

NOW = 10_000.0
GEN = "g2"


def rec(scheduler="slurm", job_id="7_1", submitted_at=NOW - 600, **extra):
    return {"shard": 1, "generation": GEN, "scheduler": scheduler, "job_id": job_id, "submitted_at": submitted_at,
            "submitter": "99@elsewhere", **extra}


FAIL = {"error": "ValueError: bad pdf", "generation": GEN, "job_id": "7_1"}
OLD_FAIL = {"error": "ValueError: older attempt", "generation": "g1", "job_id": "5_1"}
CORRUPT = {"problems": ["sha256 differs from the marker"], "detected_at": NOW - 60}

TABLE = [
    # (completion, corrupt, failure, record, native) -> (state, message fragment)
    ("", None, None, rec(), "COMPLETED", "done", None),
    ("", CORRUPT, FAIL, rec(), "RUNNING", "done", None),  # a marker that matches wins over everything
    ("shard-00001.h5 has 10 bytes but its marker records 20 (truncated or replaced)", None, None, rec(), "COMPLETED",
     "corrupt", "has 10 bytes but its marker records 20"),
    (None, None, None, None, "UNKNOWN", "missing", None),
    (None, None, FAIL, None, "UNKNOWN", "failed", "ValueError: bad pdf"),
    (None, CORRUPT, None, None, "UNKNOWN", "corrupt", "set aside by verify: sha256 differs"),
    (None, CORRUPT, None, rec(submitted_at=NOW - 600), "COMPLETED", "corrupt", "set aside by verify"),
    (None, CORRUPT, None, rec(submitted_at=NOW - 10), "PENDING", "pending", None),  # rerun after verify
    (None, None, None, rec(aborted="slurm refused the submission: sbatch: error: invalid partition"), "UNKNOWN",
     "failed", "the submission failed: slurm refused"),
    (None, None, None, rec(cancelled_at=NOW - 5), "RUNNING", "cancelling", "is still running"),
    (None, None, None, rec(cancelled_at=NOW - 5), "PENDING", "cancelling", "is still pending"),
    (None, None, None, rec(cancelled_at=NOW - 5), "CANCELLED", "failed", "cancelled at"),
    (None, None, FAIL, rec(cancelled_at=NOW - 5), "FAILED", "failed", "cancelled at"),
    (None, None, None, rec(), "PENDING", "pending", None),
    (None, None, None, rec(), "RUNNING", "running", None),
    (None, None, FAIL, rec(), "PENDING", "pending", None),  # requeued after preemption: live state first
    (None, None, FAIL, rec(), "RUNNING", "running", None),
    (None, None, None, rec(), "QUERY_FAILED", "unknown", "could not ask slurm about job 7_1"),
    (None, None, FAIL, rec(), "FAILED", "failed", "ValueError: bad pdf"),
    (None, None, OLD_FAIL, rec(), "FAILED", "failed", "job 7_1 ended FAILED"),  # an older attempt's record
    (None, None, None, rec(submitted_at=NOW - 30), "UNKNOWN", "pending", None),  # accounting delay
    (None, None, None, rec(), "UNKNOWN", "failed", "unknown to the scheduler"),
    (None, None, None, rec(), "COMPLETED", "failed", "ended without committing its shard"),
    (None, None, None, rec(), "VANISHED", "failed", "vanished from the scheduler"),
    (None, None, None, rec(), "TIMEOUT", "failed", "job 7_1 ended TIMEOUT"),
    (None, None, None, rec(job_id=None), "SUBMITTING", "pending", None),
    (None, None, None, rec(job_id=None), "ABANDONED", "failed", "ended before starting it"),
    # local executor and direct runs: no requeue, so the failure record of the attempt wins over a live pid
    (None, None, FAIL, rec(scheduler="direct", job_id="4@vm"), "RUNNING", "failed", "ValueError: bad pdf"),
    (None, None, None, rec(scheduler="direct", job_id="4@vm"), "RUNNING", "running", None),
    (None, None, None, rec(scheduler="local", job_id="4", submitted_at=NOW - 30), "UNKNOWN", "failed",
     "unknown to the scheduler"),  # a killed local task is not 'pending' for two minutes
    (None, None, FAIL, rec(scheduler="local", job_id="4"), "COMPLETED", "failed", "ValueError: bad pdf"),
    # an MPI ensemble job goes on after one of its shards failed: that failure is final while the job runs
    (None, None, FAIL, rec(job_id="8", ensemble=True), "RUNNING", "failed", "ValueError: bad pdf"),
    (None, None, None, rec(job_id="8", ensemble=True), "RUNNING", "running", None),
    (None, None, None, rec(job_id="8", ensemble=True, submitted_at=NOW - 30), "UNKNOWN", "pending", None),
    (None, None, None, rec(job_id="8", ensemble=True, aborted="not started by ensemble job 8: 40 s of wall time left"),
     "COMPLETED", "failed", "not started by ensemble job 8"),
]


@pytest.mark.parametrize("completion, corrupt, failure, record, native, state, fragment", TABLE)
def test_reconcile(completion, corrupt, failure, record, native, state, fragment):
    got, error = reconcile(Evidence(completion, corrupt, failure, record, native, NOW))
    assert got == state
    if fragment is None:
        assert error is None
    else:
        assert fragment in error


def test_every_state_is_either_active_submittable_or_done():
    states = {row[5] for row in TABLE}
    assert states <= set(ACTIVE) | set(TO_SUBMIT) | {"done"}
    assert set(ACTIVE).isdisjoint(TO_SUBMIT)
