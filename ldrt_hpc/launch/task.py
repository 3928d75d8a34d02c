"""The function submitit runs inside every array task: one shard of one stage.

Its arguments are four small values (config path, stage name, shard index, the submission's generation), so that
submitit's pickles never hold data or secrets.
"""

from __future__ import annotations

import logging
import os
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
