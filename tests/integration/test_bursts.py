"""Burst merging on real processes: messages of one conversation within the window get one model call and one reply
quoting the last, all of them remembered in order; voice notes join by their transcript; conversations never mix;
a single message waits about one window; a SIGKILLed worker still gives exactly one reply. Real redis-server, API
and Celery worker processes (text, audio and vision pools), loopback Groq and Graph fakes."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import redis

from shared.config import Settings
from shared.ledger import ledger_key, message_ref
from tests.fakes.graph_fake import GraphFake, graph_error
from tests.fakes.groq_fake import GroqFake
from tests.fakes.server import wait_for
from tests.integration.conftest import Webhooks
from tests.processes import REPO, RedisServer, ServiceProcess, fake_backed_env, start_worker
from tests.webhooks import (
    APP_SECRET,
    conversation_of,
    edit_message,
    encode,
    message_body,
    revoke_message,
    served_media_message,
    signed_headers,
    text_message,
)
from workers.delivery.memory import MEMORY_PREFIX
from workers.pipelines.audio import VOICE_HINT

pytestmark = pytest.mark.integration

WINDOW = 1.5
MAX_WAIT = 6.0
LEASE_SECONDS = 4
GAP = 0.3  # between the messages of a burst: well inside the window, even on a loaded host
KEY = Settings(_env_file=None, app_secret=APP_SECRET).message_hashing_key()  # type: ignore[call-arg]


@pytest.fixture(scope="module")
def env(own_redis: RedisServer, graph_fake: GraphFake, groq_fake: GroqFake) -> dict[str, str]:
    return fake_backed_env(own_redis.url, graph_fake.url, graph_fake.version, groq_fake.url) | {
        "COALESCE_WINDOW_SECONDS": str(WINDOW),
        "COALESCE_MAX_WAIT_SECONDS": str(MAX_WAIT),
        "RATE_LIMITS_ENABLED": "false",
        # A SIGKILLed worker's conversation is back within ~LEASE_SECONDS.
        "CONVERSATION_LEASE_SECONDS": str(LEASE_SECONDS),
        "TASK_SOFT_TIME_LIMIT": "20",
        "TASK_TIME_LIMIT": "25",
        "CELERY_VISIBILITY_TIMEOUT": "30",
    }


WorkerFactory = Callable[[], ServiceProcess]


@pytest.fixture
def workers(env: dict[str, str], tmp_path: Path) -> Iterator[WorkerFactory]:
    started: list[ServiceProcess] = []

    def start() -> ServiceProcess:
        name = f"w{len(started)}"
        args = ("--pool", "all", "--concurrency", "2", "--name", f"{name}@%h")
        process = start_worker(env, tmp_path / f"{name}.log", *args)
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop()


def post(api: str, message: dict[str, Any], sender: str) -> None:
    raw = encode(message_body([message], sender=sender))
    assert httpx.post(f"{api}/webhook", content=raw, headers=signed_headers(raw), timeout=10).status_code == 200


def post_burst(api: str, sender: str, *messages: dict[str, Any]) -> list[dict[str, Any]]:
    """Post `messages` GAP apart, well inside the window."""
    for index, message in enumerate(messages):
        if index:
            time.sleep(GAP)
        post(api, message, sender)
    return list(messages)


def send_burst(api: str, sender: str, *texts: str) -> list[dict[str, Any]]:
    return post_burst(api, sender, *(text_message(text, sender=sender) for text in texts))


def drained(client: redis.Redis) -> bool:
    return not client.keys("lp:inbox:*") and client.zcard("lp:leases") == 0


def memory(client: redis.Redis, sender: str) -> list[dict[str, Any]]:
    return [orjson.loads(raw) for raw in client.lrange(MEMORY_PREFIX + conversation_of(sender), 0, -1)]


def user_turns(client: redis.Redis, sender: str) -> list[str]:
    return [turn["content"] for turn in memory(client, sender) if turn["role"] == "user"]


def sends_to(graph_fake: GraphFake, sender: str) -> list[dict[str, Any]]:
    return [m for m in graph_fake.sent_messages() if m.get("to") == sender]


def burst_answered(
    graph_fake: GraphFake, rds: redis.Redis, user: str, timeout: float, drain_timeout: float = 20
) -> None:
    """Wait for the burst's reply to `user`, then for the mailbox to drain (every job of the burst done)."""
    wait_for(lambda: sends_to(graph_fake, user), timeout=timeout, what="the burst's reply")
    wait_for(lambda: drained(rds), timeout=drain_timeout, what="the mailbox to drain")


def chat_contents(groq_fake: GroqFake) -> list[str]:
    return [str(call.body["messages"][-1]["content"]) for call in groq_fake.calls_to("chat/completions")]


def ref(message: dict[str, Any]) -> str:
    return message_ref(message["id"], KEY)


def trace(env: dict[str, str], message: dict[str, Any]) -> str:
    command = [sys.executable, "-m", "loopera.cli", "trace", message["id"]]
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_a_burst_of_three_texts_gets_one_model_call_and_one_reply_quoting_the_last(
    api: str, env: dict[str, str], rds: redis.Redis, workers: WorkerFactory, graph_fake: GraphFake, groq_fake: GroqFake
) -> None:
    workers()
    user = "15550200001"
    words = ("hi", "I have a question", "about my order")
    messages = send_burst(api, user, *words)
    burst_answered(graph_fake, rds, user, 30)

    [reply] = sends_to(graph_fake, user)
    assert reply["context"]["message_id"] == messages[-1]["id"]  # it quotes the last message
    assert chat_contents(groq_fake) == ["\n".join(words)]  # one model call, over all three, in order
    assert user_turns(rds, user) == list(words)
    assert [turn["role"] for turn in memory(rds, user)] == ["user", "user", "user", "assistant"]

    last = ref(messages[-1])
    for earlier in messages[:2]:
        assert rds.hget(ledger_key(ref(earlier)), "flag:merged") == last.encode()
    assert rds.hget(ledger_key(ref(messages[0])), "outcome") == b"merged"  # its job ended there
    assert not rds.hexists(ledger_key(ref(messages[1])), "runs")  # the middle one never ran a job of its own
    assert orjson.loads(rds.hget(ledger_key(last), "burst") or b"") == [ref(m) for m in messages]
    assert f"merged       into {last[:12]}" in trace(env, messages[0])
    story = trace(env, messages[-1])
    assert "burst        answers 3 messages" in story and "send         text:0: sent" in story


def test_a_voice_note_inside_a_burst_joins_it_by_its_transcript(
    api: str, rds: redis.Redis, workers: WorkerFactory, graph_fake: GraphFake, groq_fake: GroqFake
) -> None:
    workers()
    user = "15550200002"
    first = text_message("listen to this", sender=user)
    voice = served_media_message(graph_fake, user, "audio")
    last = text_message("what do you think?", sender=user)
    post_burst(api, user, first, voice, last)
    burst_answered(graph_fake, rds, user, 40, drain_timeout=30)

    heard = groq_fake.transcription.text
    assert len(groq_fake.calls_to("audio/transcriptions")) == 1
    assert chat_contents(groq_fake) == [f"listen to this\n(voice note) {heard}\nwhat do you think?"]
    [reply] = sends_to(graph_fake, user)
    assert reply["type"] == "text" and reply["context"]["message_id"] == last["id"]
    turns = [turn for turn in memory(rds, user) if turn["role"] == "user"]
    assert [(turn["content"], turn["kind"]) for turn in turns] == [
        ("listen to this", "text"),
        (heard, "voice"),
        ("what do you think?", "text"),
    ]


def test_a_burst_ending_with_a_voice_note_is_answered_with_a_voice_note(
    api: str, rds: redis.Redis, workers: WorkerFactory, graph_fake: GraphFake, groq_fake: GroqFake
) -> None:
    """As a voice note alone would be: the burst's last message decides the form of its one reply."""
    workers()
    user = "15550200012"
    first = text_message("one more thing", sender=user)
    voice = served_media_message(graph_fake, user, "audio")
    post_burst(api, user, first, voice)
    burst_answered(graph_fake, rds, user, 40, drain_timeout=30)

    [reply] = sends_to(graph_fake, user)
    assert reply["type"] == "audio" and reply["audio"]["voice"] is True
    assert reply["context"]["message_id"] == voice["id"]
    [chat] = groq_fake.calls_to("chat/completions")
    assert chat.body["messages"][-1]["content"] == f"one more thing\n(voice note) {groq_fake.transcription.text}"
    system = " ".join(str(m["content"]) for m in chat.body["messages"] if m["role"] == "system")
    assert VOICE_HINT in system  # asked for an answer fit to be read aloud
    assert groq_fake.calls_to("audio/speech")
    assert [turn["kind"] for turn in memory(rds, user)] == ["text", "voice", "voice"]


def test_a_photo_inside_a_burst_joins_it_by_its_caption_and_a_description(
    api: str, rds: redis.Redis, workers: WorkerFactory, graph_fake: GraphFake, groq_fake: GroqFake
) -> None:
    workers()
    user = "15550200009"
    first = text_message("look at this", sender=user)
    photo = served_media_message(graph_fake, user, "image", caption="my bike")
    last = text_message("is it broken?", sender=user)
    post_burst(api, user, first, photo, last)
    burst_answered(graph_fake, rds, user, 40, drain_timeout=30)

    [(described, _parts)] = groq_fake.image_requests()  # the photo, described once by the vision model
    description = groq_fake.chat_reply(described.body)
    calls = chat_contents(groq_fake)
    assert len(calls) == 2 and calls[-1] == (
        f"look at this\n(photo) my bike (what the photo shows: {description})\nis it broken?"
    )
    [reply] = sends_to(graph_fake, user)
    assert reply["context"]["message_id"] == last["id"]
    turns = [turn for turn in memory(rds, user) if turn["role"] == "user"]
    assert [turn["kind"] for turn in turns] == ["text", "image", "text"]
    assert "my bike" in turns[1]["content"] and description in turns[1]["content"]


def test_two_conversations_bursting_at_once_never_mix(
    api: str, rds: redis.Redis, workers: WorkerFactory, graph_fake: GraphFake, groq_fake: GroqFake
) -> None:
    workers()
    alice, bob = "15550200003", "15550200004"
    sent: dict[str, list[dict[str, Any]]] = {alice: [], bob: []}
    for index in range(3):
        for user in (alice, bob):
            sent[user].append(text_message(f"{user[-1]} says {index}", sender=user))
            post(api, sent[user][-1], user)
        time.sleep(GAP)
    wait_for(lambda: sends_to(graph_fake, alice) and sends_to(graph_fake, bob), timeout=30, what="both replies")
    wait_for(lambda: drained(rds), what="the mailbox to drain")

    assert sorted(chat_contents(groq_fake)) == ["3 says 0\n3 says 1\n3 says 2", "4 says 0\n4 says 1\n4 says 2"]
    for user in (alice, bob):
        [reply] = sends_to(graph_fake, user)
        assert reply["context"]["message_id"] == sent[user][-1]["id"]
        assert user_turns(rds, user) == [f"{user[-1]} says {index}" for index in range(3)]


def test_a_single_message_is_answered_after_about_one_window(
    api: str, rds: redis.Redis, workers: WorkerFactory, graph_fake: GraphFake, groq_fake: GroqFake
) -> None:
    workers()
    user = "15550200005"
    started = time.time()
    post(api, text_message("just one", sender=user), user)
    wait_for(lambda: sends_to(graph_fake, user), timeout=30, what="the reply")
    answered = groq_fake.calls_to("chat/completions")[0].at - started
    # The model is asked once the window is over, and not much later (the deferral's own latency: a few 100 ms).
    assert WINDOW <= answered < WINDOW + 3.0
    assert graph_fake.texts_to(user) == ["You said: just one"]


def test_with_the_window_at_zero_every_message_is_answered_on_its_own(
    webhooks: Webhooks, worker_service: ServiceProcess, graph_fake: GraphFake, groq_fake: GroqFake
) -> None:
    """The session's services run with COALESCE_WINDOW_SECONDS=0 (tests/processes.py): the behaviour before
    bursts, one answer per message, in order."""
    user = "15550200006"
    for text in ("one", "two", "three"):
        assert webhooks.post(message_body([text_message(text, sender=user)], sender=user)).status_code == 200
    wait_for(lambda: len(graph_fake.texts_to(user)) == 3, timeout=30, what="three replies")
    assert graph_fake.texts_to(user) == ["You said: one", "You said: two", "You said: three"]
    assert len(groq_fake.calls_to("chat/completions")) == 3


def test_a_burst_whose_reply_fails_once_is_retried_with_the_same_answer_and_sent_once(
    api: str, rds: redis.Redis, workers: WorkerFactory, graph_fake: GraphFake, groq_fake: GroqFake
) -> None:
    workers()
    graph_fake.faults.add("send", graph_error(131000, "Something went wrong", status=500))
    user = "15550200010"
    words = ("hello", "can I change my address")
    messages = send_burst(api, user, *words)
    wait_for(lambda: sends_to(graph_fake, user), timeout=30, what="the reply after the 500")
    wait_for(lambda: drained(rds), what="the mailbox to drain")
    assert len(graph_fake.failed_sends()) == 1
    [reply] = sends_to(graph_fake, user)
    assert reply["context"]["message_id"] == messages[-1]["id"]
    assert chat_contents(groq_fake) == ["\n".join(words)]  # the retry reused the answer kept in the ledger
    assert user_turns(rds, user) == list(words)


def test_a_worker_sigkilled_during_the_bursts_model_call_still_gives_exactly_one_reply(
    api: str, rds: redis.Redis, workers: WorkerFactory, graph_fake: GraphFake, groq_fake: GroqFake
) -> None:
    first = workers()
    groq_fake.hold_chat.set()
    user = "15550200007"
    words = ("are you there", "I need help", "with a refund")
    messages = send_burst(api, user, *words)
    wait_for(lambda: groq_fake.calls_to("chat/completions"), timeout=30, what="the burst's model call")

    first.signal_group(signal.SIGKILL)  # the whole worker: main process and pool children
    assert first.process is not None
    first.process.wait(timeout=10)
    groq_fake.hold_chat.clear()
    groq_fake.release_chat.set()
    workers()

    wait_for(lambda: sends_to(graph_fake, user), timeout=40, what="the reply after the crash")
    wait_for(lambda: drained(rds), timeout=30, what="the mailbox to drain")
    [reply] = sends_to(graph_fake, user)
    assert reply["context"]["message_id"] == messages[-1]["id"]
    # The killed call and the one that answered: both over the same burst.
    assert chat_contents(groq_fake) == ["\n".join(words)] * 2
    assert user_turns(rds, user) == list(words)


def test_a_worker_sigkilled_while_the_burst_is_open_still_gives_exactly_one_reply(
    api: str, rds: redis.Redis, workers: WorkerFactory, graph_fake: GraphFake, groq_fake: GroqFake
) -> None:
    """Killed while the first message waits for the window (its deferred retry held by the dead worker): the
    conversation's lease brings it back to the next worker, which closes the same burst."""
    first = workers()
    user = "15550200008"
    words = ("good morning", "is the shop open today")
    messages = send_burst(api, user, *words)
    wait_for(
        lambda: rds.hget(ledger_key(ref(messages[0])), "outcome") == b"deferred", timeout=20, what="the window wait"
    )
    first.signal_group(signal.SIGKILL)
    assert first.process is not None
    first.process.wait(timeout=10)
    workers()

    wait_for(lambda: sends_to(graph_fake, user), timeout=40, what="the reply after the crash")
    wait_for(lambda: drained(rds), timeout=30, what="the mailbox to drain")
    [reply] = sends_to(graph_fake, user)
    assert reply["context"]["message_id"] == messages[-1]["id"]
    assert chat_contents(groq_fake) == ["\n".join(words)]
    assert user_turns(rds, user) == list(words)


def test_a_message_edited_inside_a_burst_is_answered_once_in_its_edited_words(
    api: str, rds: redis.Redis, workers: WorkerFactory, graph_fake: GraphFake, groq_fake: GroqFake
) -> None:
    workers()
    user = "15550200011"
    messages = send_burst(api, user, "hi", "I have a questoin", "about my order")
    post(api, edit_message(user, messages[1]["id"], "I have a question"), user)  # within the window
    wait_for(lambda: len(sends_to(graph_fake, user)) == 2, timeout=30, what="the burst's reply and the edit's")
    wait_for(lambda: drained(rds), what="the mailbox to drain")
    time.sleep(0.5)
    assert len(sends_to(graph_fake, user)) == 2  # the burst (without the typo) and the edited message
    asked = chat_contents(groq_fake)
    assert asked[0] == "hi\nabout my order" and "I have a question" in asked[1]
    assert not any("questoin" in text for text in asked)
    assert "questoin" not in " ".join(user_turns(rds, user))
    assert sorted(user_turns(rds, user)) == sorted(["hi", "about my order", "I have a question"])


def test_a_message_deleted_inside_a_burst_is_left_out_of_its_answer(
    api: str, rds: redis.Redis, workers: WorkerFactory, graph_fake: GraphFake, groq_fake: GroqFake
) -> None:
    workers()
    user = "15550200012"
    messages = send_burst(api, user, "hi", "my card number is 4111 1111", "what are your hours?")
    post(api, revoke_message(user, messages[1]["id"]), user)
    burst_answered(graph_fake, rds, user, 30)
    time.sleep(0.5)
    [reply] = sends_to(graph_fake, user)  # the revoke itself is never answered
    assert reply["context"]["message_id"] == messages[2]["id"]
    assert chat_contents(groq_fake) == ["hi\nwhat are your hours?"]
    assert user_turns(rds, user) == ["hi", "what are your hours?"]
