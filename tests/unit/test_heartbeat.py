from __future__ import annotations

import time

from workers.delivery.lease import Heartbeat


def test_heartbeat_beats_until_the_job_ends() -> None:
    beats: list[float] = []
    with Heartbeat(0.02, lambda: beats.append(time.monotonic())):
        deadline = time.monotonic() + 5
        while len(beats) < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
    count = len(beats)
    assert count >= 3
    time.sleep(0.1)
    assert len(beats) == count  # no beat after exit


def test_heartbeat_stops_after_max_seconds_so_a_stuck_job_loses_its_lease() -> None:
    beats: list[float] = []
    with Heartbeat(0.02, lambda: beats.append(time.monotonic()), max_seconds=0.1) as heartbeat:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and heartbeat._thread.is_alive():
            time.sleep(0.01)
        assert not heartbeat._thread.is_alive()  # it gave up while the job is still "running"
    assert beats, "it beat before the limit"
    assert beats[-1] - beats[0] <= 0.2


def test_a_failing_beat_does_not_stop_the_heartbeat() -> None:
    calls: list[int] = []

    def flaky() -> None:
        calls.append(1)
        if len(calls) == 1:
            raise ConnectionError("redis blip")

    with Heartbeat(0.02, flaky):
        deadline = time.monotonic() + 5
        while len(calls) < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
    assert len(calls) >= 3
