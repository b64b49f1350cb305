"""Error vocabulary shared by every pipeline: a failure is either worth retrying or it is not.

The job runner decides on these *types* (workers/runtime/retry_policy.py); `reason` strings are for logs, metrics
and the dead-letter list only.
"""

from __future__ import annotations


class LooperaError(Exception):
    """Base class. `reason` is a short machine-readable cause for logs and the dead-letter list."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


class TransientError(LooperaError):
    """Retry later. `retry_after` (seconds) is the provider's own hint, when it gave one."""

    def __init__(self, reason: str, detail: str = "", retry_after: float | None = None) -> None:
        super().__init__(reason, detail)
        self.retry_after = retry_after


class WaitError(TransientError):
    """Come back in `retry_after` seconds: a wait, not a failure (over a shared budget, another copy's send in
    flight). The job runner defers without spending an attempt; only the job's deadline bounds the waiting."""


class PermanentError(LooperaError):
    """Never retry. `ops_alert` marks failures an operator must fix (bad token, retired model, terms)."""

    def __init__(self, reason: str, detail: str = "", ops_alert: bool = False) -> None:
        super().__init__(reason, detail)
        self.ops_alert = ops_alert


class UserInputError(LooperaError):
    """The user's message cannot be handled as sent (too large, too long, wrong format): answer politely."""


class SendingChannelError(LooperaError):
    """Mixed into errors of the channel that carries replies (the Graph API): when it fails for good, an apology
    would fail the same way, so the job runner records the job without trying one."""


class WorkerLost(TransientError):
    """A previous copy of the job died with its pool process (SIGKILL, OOM), reported by Celery's parent process.
    Spends an attempt; the job runs again at once (the redelivery was the wait)."""

    def __init__(self) -> None:
        super().__init__("worker_lost", "the pool process running this job died")


class JobTimeLimit(PermanentError):
    """The job overran a time limit (soft: raised inside it; hard: its process was killed and the parent reported
    it). Running it again would most likely overrun again, so the user gets the apology instead."""


class DeadlineExceeded(PermanentError):
    """The job reached TASK_DEADLINE_SECONDS after its message arrived: an answer now would come too late."""
