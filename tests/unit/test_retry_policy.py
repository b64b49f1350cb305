"""The one retry decision, as a table: (error, attempt, time left, retry-after) -> done / defer / retry / give up."""

from __future__ import annotations

import pytest
from celery.exceptions import SoftTimeLimitExceeded
from redis.exceptions import ConnectionError as RedisConnectionError

from workers.clients.graph_errors import GraphError, GraphTransientError
from workers.clients.rate_limit import RateLimited
from workers.delivery.lease import LossKind
from workers.delivery.ledger import SendInFlightError
from workers.errors import PermanentError, TransientError, UserInputError, WorkerLost
from workers.runtime.retry_policy import (
    Decision,
    Defer,
    Done,
    GiveUp,
    LeaveToLease,
    RetryBudget,
    RetryLater,
    backoff_seconds,
    before_run,
    decide,
    spends_attempt,
)

BUDGET = RetryBudget(max_retries=3, max_countdown=15.0)
NOW = 1_000_000.0
FAR = NOW + 600  # a deadline ten minutes away
NEAR = NOW + 2  # two seconds left


def kind(decision: Decision) -> str:
    return type(decision).__name__


def _wrapped_soft_limit() -> TransientError:
    """As the groq SDK delivers it: SoftTimeLimitExceeded -> APIConnectionError -> our TransientError."""
    try:
        try:
            raise SoftTimeLimitExceeded()
        except SoftTimeLimitExceeded as limit:
            raise ConnectionError("connection error") from limit
    except ConnectionError as sdk_error:
        error = TransientError("groq_transport", "APIConnectionError")
        error.__cause__ = sdk_error
        return error


# error, attempt, deadline, retry_after, jitter -> expected kind, expected countdown (None: not checked) / reason
TABLE: list[tuple[str, BaseException | None, int, float, float | None, float, str, float | str | None]] = [
    ("success", None, 0, FAR, None, 0.5, "Done", None),
    ("success after the deadline is still done", None, 0, NOW - 1, None, 0.5, "Done", None),
    ("transient, first attempt", TransientError("groq_http_503"), 1, FAR, None, 0.0, "RetryLater", 1.0),
    ("transient, backoff grows", TransientError("groq_http_503"), 3, FAR, None, 1.0, "RetryLater", 8.0),
    ("transient, last allowed attempt", TransientError("groq_http_503"), 3, FAR, None, 0.0, "RetryLater", 1.0),
    ("transient, attempts spent", TransientError("groq_http_503"), 4, FAR, None, 0.0, "GiveUp", "groq_http_503"),
    ("transient, deadline before the retry", TransientError("groq_http_503"), 1, NEAR, 5.0, 0.0, "GiveUp", None),
    ("transient, retry-after is a floor", TransientError("x", retry_after=7.0), 1, FAR, 7.0, 0.25, "RetryLater", 7.25),
    ("transient, countdown capped", TransientError("x", retry_after=40.0), 1, FAR, 40.0, 0.0, "RetryLater", 15.0),
    ("graph transient spent", GraphTransientError("graph_131000"), 9, FAR, None, 0.0, "GiveUp", "graph_131000"),
    ("rate limited defers", RateLimited("m", "requests", 0.5), 0, FAR, 0.5, 0.0, "Defer", 0.5),
    ("rate limited defers past max_retries", RateLimited("m", "requests", 0.5), 99, FAR, 0.5, 0.0, "Defer", 0.5),
    ("rate limited, long wait capped", RateLimited("m", "429", 40.0), 0, FAR, 40.0, 0.0, "Defer", 15.0),
    ("rate limited past the deadline", RateLimited("m", "tokens", 5.0), 0, NEAR, 5.0, 0.0, "GiveUp", None),
    ("send in flight defers", SendInFlightError(20.0), 0, FAR, 20.0, 0.0, "Defer", 15.0),
    ("permanent", PermanentError("groq_http_400"), 0, FAR, None, 0.0, "GiveUp", "groq_http_400"),
    ("user input", UserInputError("audio_too_long"), 0, FAR, None, 0.0, "GiveUp", "audio_too_long"),
    ("graph permanent", GraphError("graph_190", code=190), 0, FAR, None, 0.0, "GiveUp", "graph_190"),
    ("soft time limit", SoftTimeLimitExceeded(), 0, FAR, None, 0.0, "GiveUp", "soft_time_limit"),
    ("soft time limit wrapped by an SDK", _wrapped_soft_limit(), 1, FAR, None, 0.0, "GiveUp", "soft_time_limit"),
    ("a bug", KeyError("oops"), 0, FAR, None, 0.0, "GiveUp", "unexpected_error"),
    ("redis down", RedisConnectionError("gone"), 0, FAR, None, 0.0, "LeaveToLease", None),
    ("worker lost, attempts left", WorkerLost(), 2, FAR, None, 0.9, "RetryLater", 0.0),
    ("worker lost, attempts spent", WorkerLost(), 4, FAR, None, 0.0, "GiveUp", "worker_lost"),
    ("worker lost after the deadline", WorkerLost(), 1, NOW - 1, None, 0.0, "GiveUp", "worker_lost"),
]


@pytest.mark.parametrize(
    ("error", "attempt", "deadline", "retry_after", "jitter", "expected", "detail"),
    [row[1:] for row in TABLE],
    ids=[row[0] for row in TABLE],
)
def test_decision_table(
    error: BaseException | None,
    attempt: int,
    deadline: float,
    retry_after: float | None,
    jitter: float,
    expected: str,
    detail: float | str | None,
) -> None:
    decision = decide(error, attempt, deadline, NOW, retry_after, BUDGET, jitter)
    assert kind(decision) == expected
    if isinstance(detail, float):
        assert isinstance(decision, Defer | RetryLater)
        assert decision.countdown == pytest.approx(detail)
    elif isinstance(detail, str):
        assert isinstance(decision, GiveUp)
        assert decision.reason == detail
    if isinstance(decision, LeaveToLease):
        assert decision.error is error  # re-raised as it came


def test_only_real_failures_spend_attempts() -> None:
    assert spends_attempt(TransientError("x")) and spends_attempt(WorkerLost())
    assert not spends_attempt(RateLimited("m", "requests", 1.0)) and not spends_attempt(SendInFlightError())
    assert not spends_attempt(PermanentError("x")) and not spends_attempt(None)
    assert not spends_attempt(RedisConnectionError())


def test_backoff_is_full_jitter_between_one_second_and_the_capped_exponential() -> None:
    assert [backoff_seconds(n, None, 1.0) for n in (1, 2, 3, 4, 5, 6, 7, 20)] == [2, 4, 8, 16, 32, 60, 60, 60]
    assert all(backoff_seconds(n, None, 0.0) == 1.0 for n in range(1, 10))


@pytest.mark.parametrize(
    ("lost", "attempt", "deadline", "expected"),
    [
        (None, 0, FAR, None),
        (None, 0, NOW - 1, "deadline_exceeded"),
        (LossKind.WORKER_LOST, 1, FAR, None),
        (LossKind.WORKER_LOST, 4, FAR, "worker_lost"),
        (LossKind.TIME_LIMIT, 1, FAR, "time_limit"),
    ],
)
def test_before_run(lost: LossKind | None, attempt: int, deadline: float, expected: str | None) -> None:
    decision = before_run(lost.as_error() if lost else None, attempt, deadline, NOW, BUDGET)
    assert (decision.reason if decision else None) == expected


def test_done_is_a_value() -> None:
    assert decide(None, 0, FAR, NOW, None, BUDGET) == Done()
