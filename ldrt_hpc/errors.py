"""Every error a user may see, in one place. Each message names the input (file, stage, shard, job) and the
reason, and says what to do; the CLI prints it as one line (`ldrt-hpc: error: ...`) and exits 2.

Errors that are not a user's to fix (bugs) are ordinary Python exceptions and keep their traceback.
"""

from __future__ import annotations


class UserError(Exception):
    """Base of the errors the CLI reports in one line."""


class ConfigError(UserError, ValueError):
    """A config file that cannot be used; the message names the file and the key."""


class PlanError(UserError, RuntimeError):
    """A plan that cannot be used as asked; the message says what to do."""


class ShardError(UserError, RuntimeError):
    """A shard that cannot be read or does not match its marker; the message names the file."""


class LockError(UserError, RuntimeError):
    """The stage's submission lock is held by another submission; the message says by whom and what to do."""


class SubmissionError(UserError, RuntimeError):
    """The scheduler or the file system refused a submission; one line that says which and why."""


class CancelError(UserError, RuntimeError):
    """The scheduler refused to cancel some jobs; the message carries its words."""


class BackendUnavailable(UserError, RuntimeError):
    """A configured backend (converter, figure detector, LLM engine) is not installed or not usable here."""


class LostOwnership(RuntimeError):
    """The writing attempt no longer owns its shard (a newer submission, or a cancellation): output discarded.
    Raised inside jobs only; the job's log says why."""
