"""The only package that touches submitit, Slurm, PBS (and later MPI launchers)."""

from ..errors import CancelError, SubmissionError  # noqa: F401
from .launcher import (  # noqa: F401
    Submission,  # noqa: F401
    cancel,
    submit,
    verify_stage,
)
from .selection import format_shards, parse_shards  # noqa: F401
from .status import (  # noqa: F401
    ShardStatus,
    format_status,
    last_cluster,
    require_plan,
    stage_status,
    status_json,
    wait,
)
