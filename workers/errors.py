"""Error vocabulary shared by every pipeline: a failure is either worth retrying or it is not."""

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


class PermanentError(LooperaError):
    """Never retry. `ops_alert` marks failures an operator must fix (bad token, retired model, terms)."""

    def __init__(self, reason: str, detail: str = "", ops_alert: bool = False) -> None:
        super().__init__(reason, detail)
        self.ops_alert = ops_alert


class UserInputError(LooperaError):
    """The user's message cannot be handled as sent (too large, too long, wrong format): answer politely."""
