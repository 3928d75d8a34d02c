"""The only package that touches submitit, Slurm, PBS (and later MPI launchers)."""

from .launcher import (  # noqa: F401
    CancelError,
    ShardStatus,
    Submission,
    SubmissionError,
    cancel,
    format_shards,
    format_status,
    last_cluster,
    parse_shards,
    require_plan,
    stage_status,
    status_json,
    submit,
    verify_stage,
    wait,
)
