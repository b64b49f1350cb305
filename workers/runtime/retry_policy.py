"""The one retry decision: what happens to a job after a run (or before one), as a pure function of its inputs.

`decide(error, attempt, deadline, now, retry_after, budget)` returns one of

- `Done`          the pipeline finished: complete the job, hand the conversation its next message;
- `Defer`         a wait, not a failure (shared budget, another copy's send in flight): come back later, no
                  attempt spent, bounded by the deadline only;
- `RetryLater`    a transient failure: come back after a full-jitter backoff, bounded by TASK_MAX_RETRIES
                  attempts *and* the deadline;
- `GiveUp`        permanent, or a bound is reached: the user gets the apology, the job a dead letter;
- `LeaveToLease`  our own Redis is unreachable: nothing can be recorded, so nothing is done; the conversation's
                  lease (or Celery's visibility timeout) brings the job back once Redis answers.

The retry budget is the project's own (TASK_MAX_RETRIES, TASK_DEADLINE_SECONDS), never Celery's `max_retries`
default of 3 (https://docs.celeryq.dev/en/stable/userguide/tasks.html#Task.max_retries): the tasks set it to
None, which Celery documents as "retry forever", and this function is the only bound.

No I/O, no clock, no randomness: `now` and `jitter` come from the caller, so the table test in
tests/unit/test_retry_policy.py covers every branch.
"""

from __future__ import annotations

from dataclasses import dataclass

from celery.exceptions import SoftTimeLimitExceeded
from redis.exceptions import RedisError

from workers.errors import (
    DeadlineExceeded,
    JobTimeLimit,
    LooperaError,
    PermanentError,
    TransientError,
    UserInputError,
    WaitError,
    WorkerLost,
)

# Full-jitter exponential backoff (https://aws.amazon.com/blogs/architecture/exponential-backoff-and-jitter/):
# between 1 s and min(60 s, 2 s * 2**(attempt-1)).
BACKOFF_FLOOR_SECONDS = 1.0
BACKOFF_CAP_SECONDS = 60.0
# A deferral comes back when the budget has room, plus up to this much jitter to spread jobs told the same instant.
DEFER_JITTER_SECONDS = 0.3
DEFER_FLOOR_SECONDS = 0.05


@dataclass(frozen=True, slots=True)
class RetryBudget:
    """`max_retries`: transient failures retried (TASK_MAX_RETRIES); the attempt after the last one gives up.
    `max_countdown` (seconds): no wait is longer, because a retry waits unacknowledged in a worker's memory and
    one held past Celery's visibility timeout would be handed out twice (so: half the visibility timeout)."""

    max_retries: int
    max_countdown: float


@dataclass(frozen=True, slots=True)
class Done:
    pass


@dataclass(frozen=True, slots=True)
class Defer:
    countdown: float  # seconds
    reason: str


@dataclass(frozen=True, slots=True)
class RetryLater:
    countdown: float  # seconds; 0 means "run now" (a copy lost with its process was already redelivered)
    reason: str


@dataclass(frozen=True, slots=True)
class GiveUp:
    error: LooperaError

    @property
    def reason(self) -> str:
        return self.error.reason


@dataclass(frozen=True, slots=True)
class LeaveToLease:
    error: BaseException  # re-raised as it came, so Celery and the logs see the real cause


Decision = Done | Defer | RetryLater | GiveUp | LeaveToLease


def spends_attempt(error: BaseException | None) -> bool:
    """Whether this outcome counts against TASK_MAX_RETRIES (the caller increments the job's one counter first)."""
    return isinstance(error, TransientError) and not isinstance(error, WaitError)


def backoff_seconds(attempt: int, retry_after: float | None, jitter: float) -> float:
    """Full-jitter backoff for the `attempt`-th failure (1-based); a provider's Retry-After is a floor, never
    shortened (plus up to 1 s of jitter). `jitter` is uniform in [0, 1)."""
    if retry_after is not None and retry_after > 0:
        return retry_after + jitter
    ceiling = min(BACKOFF_CAP_SECONDS, 2.0 * 2.0 ** max(0, attempt - 1))
    return BACKOFF_FLOOR_SECONDS + jitter * max(0.0, ceiling - BACKOFF_FLOOR_SECONDS)


def _caused_by_soft_time_limit(error: BaseException) -> bool:
    """Celery raises SoftTimeLimitExceeded wherever the job is; an SDK that wraps every exception (the groq SDK
    turns it into APIConnectionError, which we classify as transient) must not turn the limit into a retry."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        if isinstance(current, SoftTimeLimitExceeded):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


def decide(  # noqa: PLR0911 - one exit per row of the decision table
    error: BaseException | None,
    attempt: int,
    deadline: float,
    now: float,
    retry_after: float | None,
    budget: RetryBudget,
    jitter: float = 0.5,
) -> Decision:
    """What to do with a job whose run ended with `error` (None: success).

    `attempt`: the job's failed attempts so far, this one included (see `spends_attempt`); `deadline` and `now`:
    epoch seconds; `retry_after`: the provider's hint in seconds, if any; `jitter`: uniform in [0, 1).
    """
    if error is None:
        return Done()
    if isinstance(error, RedisError):
        return LeaveToLease(error)
    if _caused_by_soft_time_limit(error):
        return GiveUp(JobTimeLimit("soft_time_limit", "the job overran TASK_SOFT_TIME_LIMIT"))
    if isinstance(error, WaitError):
        wait = max(DEFER_FLOOR_SECONDS, retry_after or 0.0) + jitter * DEFER_JITTER_SECONDS
        if now + wait < deadline:
            return Defer(min(wait, budget.max_countdown), error.reason)
        return GiveUp(error)
    if isinstance(error, WorkerLost):
        if attempt <= budget.max_retries and now < deadline:
            return RetryLater(0.0, error.reason)
        return GiveUp(error)
    if isinstance(error, TransientError):
        countdown = backoff_seconds(attempt, retry_after, jitter)
        if attempt <= budget.max_retries and now + countdown < deadline:
            return RetryLater(min(countdown, budget.max_countdown), error.reason)
        return GiveUp(error)
    if isinstance(error, PermanentError | UserInputError):
        return GiveUp(error)
    # A bug: still answer, still record, never wedge the conversation.
    return GiveUp(PermanentError("unexpected_error", type(error).__name__))


def before_run(
    lost: LooperaError | None, attempt: int, deadline: float, now: float, budget: RetryBudget
) -> GiveUp | None:
    """For a freshly claimed job: None to run it, or `GiveUp` at once because it is past its deadline (it was
    redelivered late, e.g. it kept killing its worker) or a previous copy was lost (`lost`, reported by Celery's
    parent process) in a way that ends it: a hard time limit, or a lost worker with no attempts left."""
    if now > deadline:
        return GiveUp(DeadlineExceeded("deadline_exceeded", "claimed after the deadline"))
    if lost is None:
        return None
    decision = decide(lost, attempt, deadline, now, None, budget)
    return decision if isinstance(decision, GiveUp) else None
