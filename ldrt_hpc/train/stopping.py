"""When a training run must stop early: the scheduler's warning signal (USR2: Slurm `--signal`, the PBS timer),
SIGTERM (preemption, scancel), or the job's deadline ($LDRT_TRAIN_DEADLINE, epoch seconds, written by the job
scripts) coming closer than `stop_before_limit_s`. The handlers only set a flag; the training loop agrees on it
across ranks at the next optimizer step (a collective), saves a checkpoint and stops.

USR2 and the deadline ask for a requeue (the job continues later); SIGTERM only stops. How a requeue happens is
the launcher's business (ldrt_hpc/launch/train.py hands the recipe a callback)."""

from __future__ import annotations

import os
import signal
import time

REQUEUE = 2
STOP = 1
DEADLINE_ENV = "LDRT_TRAIN_DEADLINE"


class StopWatch:
    """Installed once per rank; `reason()` is 0 (go on), STOP or REQUEUE."""

    def __init__(self, stop_before_limit_s: int):
        self.flag = 0
        self.signal_name = ""
        deadline = os.environ.get(DEADLINE_ENV)
        self.deadline = float(deadline) - stop_before_limit_s if deadline else None
        for number, reason in ((signal.SIGUSR2, REQUEUE), (signal.SIGTERM, STOP)):
            signal.signal(number, self._handler(reason))

    def _handler(self, reason: int):
        def handle(signum, frame) -> None:
            self.flag = max(self.flag, reason)
            self.signal_name = signal.Signals(signum).name

        return handle

    def reason(self) -> int:
        if self.deadline is not None and time.time() >= self.deadline:
            self.flag, self.signal_name = max(self.flag, REQUEUE), self.signal_name or "deadline"
        return self.flag
