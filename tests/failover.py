"""The failover scenario, shared by the integration test and `bench/failover.py`: a burst of signed webhooks from many
users while the Redis primary is SIGKILLed, redelivering every non-200 as Meta does, then what each user got back.

Each user's messages are sent in order, the next only after the previous one was acknowledged (so "acknowledged
order" is "sent order"); a non-200 or a dropped connection is redelivered with the same body and message id after a
short pause, as Meta's retries would.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx

from tests.fakes.graph_fake import GraphFake
from tests.fakes.server import wait_for
from tests.webhooks import encode, message_body, signed_headers, text_message

REDELIVERY_PAUSE = 0.2


@dataclass
class Burst:
    """What the senders saw: per user, the texts acknowledged with a 200, in order."""

    acked: dict[str, list[str]] = field(default_factory=dict)
    non_200: int = 0
    first_non_200_at: float | None = None
    last_non_200_at: float | None = None
    unacked: int = 0  # messages never acknowledged before the senders' deadline
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def refusing_seconds(self) -> float:
        """From the first non-200 to the last one: how long the service did not acknowledge."""
        if self.first_non_200_at is None or self.last_non_200_at is None:
            return 0.0
        return self.last_non_200_at - self.first_non_200_at

    def total_acked(self) -> int:
        with self.lock:
            return sum(len(texts) for texts in self.acked.values())


@dataclass
class Verdict:
    """Per user, acknowledged vs answered: messages lost (acked, never answered), answered twice, out of order."""

    lost: int
    duplicated: int
    out_of_order: int
    answered: int

    @property
    def clean(self) -> bool:
        return not (self.lost or self.duplicated or self.out_of_order)


def users(count: int) -> list[str]:
    return [f"1555020{i:04d}" for i in range(count)]


def run_burst(
    api_url: str, senders: list[str], per_user: int, kill_after: int, kill: Callable[[], object], deadline: float = 90
) -> Burst:
    """Send `per_user` messages from each sender concurrently; call `kill` once `kill_after` were acknowledged."""
    burst = Burst(acked={user: [] for user in senders})
    stop_at = time.monotonic() + deadline

    def send_all(user: str, http: httpx.Client) -> None:
        for i in range(per_user):
            text = f"{user} message {i}"
            raw = encode(message_body([text_message(text, sender=user)], sender=user))  # one wamid, redelivered
            while True:
                try:
                    status = http.post("/webhook", content=raw, headers=signed_headers(raw)).status_code
                except httpx.HTTPError:
                    status = 0
                if status == 200:
                    with burst.lock:
                        burst.acked[user].append(text)
                    break
                with burst.lock:
                    burst.non_200 += 1
                    burst.first_non_200_at = burst.first_non_200_at or time.monotonic()
                    burst.last_non_200_at = time.monotonic()
                if time.monotonic() > stop_at:
                    with burst.lock:
                        burst.unacked += per_user - i
                    return
                time.sleep(REDELIVERY_PAUSE)

    clients = [httpx.Client(base_url=api_url, timeout=10) for _ in senders]
    threads = [
        threading.Thread(target=send_all, args=(u, c), daemon=True) for u, c in zip(senders, clients, strict=True)
    ]
    try:
        for thread in threads:
            thread.start()
        wait_for(lambda: burst.total_acked() >= kill_after, timeout=deadline, what=f"{kill_after} acknowledged")
        kill()  # may block (a failover and a restart) while the senders keep redelivering
        for thread in threads:
            thread.join(timeout=deadline)
    finally:
        for client in clients:
            client.close()
    return burst


def judge(burst: Burst, graph_fake: GraphFake) -> Verdict:
    lost = duplicated = out_of_order = answered = 0
    for user, acked in burst.acked.items():
        replies = [text.removeprefix("You said: ") for text in graph_fake.texts_to(user)]
        answered += len(replies)
        lost += sum(1 for text in acked if text not in replies)
        duplicated += len(replies) - len(set(replies))
        # Order: the answers to acknowledged messages must come in the order they were acknowledged.
        firsts = [replies.index(text) for text in acked if text in replies]
        out_of_order += sum(1 for a, b in itertools.pairwise(firsts) if b < a)
    return Verdict(lost, duplicated, out_of_order, answered)


def wait_for_answers(burst: Burst, graph_fake: GraphFake, timeout: float) -> bool:
    """True once every acknowledged message has an answer; False when `timeout` ran out first."""

    def all_answered() -> bool:
        return all(
            set(acked) <= {t.removeprefix("You said: ") for t in graph_fake.texts_to(user)}
            for user, acked in burst.acked.items()
        )

    try:
        wait_for(all_answered, timeout=timeout, interval=0.2, what="an answer to every acknowledged message")
    except AssertionError:
        return False
    return True
