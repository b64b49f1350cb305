"""Edits, deletions and reactions on real processes: the API decides an edit or revoke against the original's send
gate, the worker answers (or not) and keeps memory true; a reaction to the bot's message is feedback; a slow job
gets a 👀 that goes away with the answer. Real redis-server, uvicorn API and Celery worker; Groq and Graph are the
loopback fakes (the Groq fake's delay makes the original's answer slow enough to edit or delete it meanwhile)."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest
import redis

from shared.ledger import hashing_key, ledger_key, message_ref
from tests.fakes.graph_fake import GraphFake, graph_error
from tests.fakes.groq_fake import GroqFake, groq_error
from tests.fakes.server import free_port, wait_for
from tests.processes import REPO, RedisServer, ServiceProcess, fake_backed_env, start_worker
from tests.webhooks import (
    APP_SECRET,
    conversation_of,
    edit_message,
    encode,
    message_body,
    reaction_message,
    revoke_message,
    served_media_message,
    signed_headers,
    text_message,
    user_message,
)
from workers.text.phrases import phrase

pytestmark = pytest.mark.integration

KEY = hashing_key("", APP_SECRET)
SLOW = 2.5  # seconds the Groq fake takes per answer when a test needs time to act during one
ACK_AFTER = 1.0  # ACK_REACTION_AFTER_SECONDS of this module's worker


@pytest.fixture(scope="module")
def env(own_redis: RedisServer, graph_fake: GraphFake, groq_fake: GroqFake) -> dict[str, str]:
    return fake_backed_env(own_redis.url, graph_fake.url, graph_fake.version, groq_fake.url) | {
        "RATE_LIMITS_ENABLED": "false",
        "ACK_REACTION_AFTER_SECONDS": str(ACK_AFTER),
        "WORKER_METRICS_PORT": str(free_port()),
    }


@pytest.fixture(scope="module")
def worker(env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    log = tmp_path_factory.mktemp("amend-worker") / "worker.log"
    process = start_worker(env, log, "--pool", "all", "--concurrency", "2")
    yield process
    process.stop()


def new_user() -> str:
    return f"1555{uuid.uuid4().int % 10**8:08d}"


def post(api: str, user: str, *messages: dict[str, Any]) -> None:
    raw = encode(message_body(list(messages), sender=user), ascii_only=False)
    assert httpx.post(f"{api}/webhook", content=raw, headers=signed_headers(raw), timeout=10).status_code == 200


def memory(client: redis.Redis, user: str) -> list[tuple[str, str]]:
    turns = client.lrange(f"lp:mem:{conversation_of(user)}", 0, -1)
    return [(t["role"], t["content"]) for t in map(orjson.loads, turns)]


def idle(client: redis.Redis, user: str) -> bool:
    inbox = f"lp:inbox:{conversation_of(user)}"
    return not client.exists(inbox) and client.zscore("lp:leases", inbox) is None


def chat_requests(groq_fake: GroqFake) -> list[str]:
    return [str(call.body["messages"][-1]["content"]) for call in groq_fake.calls_to("chat/completions")]


def texts(graph_fake: GraphFake, user: str) -> list[dict[str, Any]]:
    return [m for m in graph_fake.sent_messages() if m.get("to") == user and m["type"] == "text"]


def reactions(graph_fake: GraphFake, user: str) -> list[tuple[str, str]]:
    return [
        (m["reaction"]["message_id"], m["reaction"]["emoji"])
        for m in graph_fake.sent_messages()
        if m.get("to") == user and m["type"] == "reaction"
    ]


def ledger(client: redis.Redis, message_id: str) -> dict[str, str]:
    raw = client.hgetall(ledger_key(message_ref(message_id, KEY)))
    return {k.decode(): v.decode() for k, v in raw.items()}


def wait_for_model_call(groq_fake: GroqFake, words: str) -> None:
    wait_for(lambda: any(words in request for request in chat_requests(groq_fake)), what=f"the model call for {words}")


def test_an_edit_before_the_answer_is_answered_instead_of_the_original(
    api: str, worker: ServiceProcess, rds: redis.Redis, graph_fake: GraphFake, groq_fake: GroqFake
) -> None:
    user = new_user()
    groq_fake.chat_delay = SLOW
    original = text_message("Book a table for 4", sender=user)
    post(api, user, original)
    wait_for_model_call(groq_fake, "Book a table for 4")  # the original's answer is being written now
    post(api, user, edit_message(user, original["id"], "Book a table for 6"))
    wait_for(lambda: idle(rds, user), timeout=30, what="both jobs done")

    sent = texts(graph_fake, user)
    assert [m["text"]["body"] for m in sent] == ["You said: Book a table for 6"]  # one answer, to the edited text
    assert sent[0]["context"] == {"message_id": original["id"]}  # quoting the message the user sees
    assert ledger(rds, original["id"])["send:text:0"] == "blocked"
    assert ledger(rds, original["id"])["send:text:0:gate"] == "superseded"
    assert memory(rds, user) == [("user", "Book a table for 6"), ("assistant", "You said: Book a table for 6")]


def test_an_edit_after_the_answer_gets_a_correction_and_memory_holds_the_edited_text(
    api: str, worker: ServiceProcess, rds: redis.Redis, graph_fake: GraphFake, groq_fake: GroqFake
) -> None:
    user = new_user()
    original = text_message("What is the capital of Austria?", sender=user)
    post(api, user, original)
    wait_for(lambda: texts(graph_fake, user), what="the original's answer")
    post(api, user, edit_message(user, original["id"], "What is the capital of Australia?"))
    wait_for(lambda: len(texts(graph_fake, user)) == 2, what="the correction")
    wait_for(lambda: idle(rds, user), what="the edit's job done")

    correction = texts(graph_fake, user)[1]
    assert correction["context"] == {"message_id": original["id"]}
    request = chat_requests(groq_fake)[-1]
    assert "corrected my earlier message" in request and "capital of Australia?" in request
    assert memory(rds, user) == [
        ("user", "What is the capital of Australia?"),  # the edited words replace the original's
        ("assistant", "You said: What is the capital of Austria?"),
        ("user", "(corrected an earlier message)"),
        ("assistant", correction["text"]["body"]),
    ]
    # The model saw the edited words in the history, not the original ones.
    history = groq_fake.calls_to("chat/completions")[-1].body["messages"]
    assert not any("Austria?" in str(m["content"]) for m in history if m["role"] == "user")


def photo_asked(groq_fake: GroqFake) -> list[str]:
    """The text sent with each photo to the vision model, in order."""
    return [" ".join(parts[0].texts) for _call, parts in groq_fake.image_requests()]


def test_a_photo_caption_edited_before_the_answer_is_answered_with_the_photo_and_the_new_caption(
    api: str, worker: ServiceProcess, rds: redis.Redis, graph_fake: GraphFake, groq_fake: GroqFake
) -> None:
    user = new_user()
    groq_fake.chat_delay = SLOW
    original = served_media_message(graph_fake, user, "image", "what flower is this?")
    post(api, user, original)
    wait_for(lambda: photo_asked(groq_fake), what="the photo's model call")  # its answer is being written now
    post(api, user, edit_message(user, original["id"], "what tree is this?", media=original))
    wait_for(lambda: idle(rds, user), timeout=30, what="both jobs done")

    assert photo_asked(groq_fake) == ["what flower is this?", "what tree is this?"]  # the photo, looked at again
    [answer] = texts(graph_fake, user)  # one answer: to the edited caption, about the photo
    assert answer["text"]["body"] == "You said: what tree is this?"
    assert answer["context"] == {"message_id": original["id"]}
    assert ledger(rds, original["id"])["send:text:0:gate"] == "superseded"
    assert memory(rds, user) == [("user", "what tree is this?"), ("assistant", "You said: what tree is this?")]


def test_a_video_caption_edited_before_its_answer_gets_the_answer_a_video_gets(
    api: str, worker: ServiceProcess, rds: redis.Redis, graph_fake: GraphFake, groq_fake: GroqFake
) -> None:
    """Answered as if it had been sent so: a video (which the bot cannot open) gets the fixed answer, not a model
    answer to its caption's words alone."""
    user = new_user()
    groq_fake.chat_delay = SLOW
    post(api, user, text_message("hello", sender=user))
    wait_for_model_call(groq_fake, "hello")  # the conversation is busy: the video waits in its mailbox
    video = user_message(
        user, "video", {"id": "video-1", "mime_type": "video/mp4", "sha256": "x", "caption": "what happens at 0:42?"}
    )
    post(api, user, video)
    post(api, user, edit_message(user, video["id"], "what happens at 0:43?", media=video))
    wait_for(lambda: idle(rds, user), timeout=30, what="all three done")

    [answer] = [m for m in texts(graph_fake, user) if m.get("context") == {"message_id": video["id"]}]
    assert answer["text"]["body"] == phrase("media_not_supported", "en")
    assert chat_requests(groq_fake) == ["hello"]  # no model call for the video or its edit
    assert memory(rds, user)[-2:] == [
        ("user", "(sent a video the bot cannot open) what happens at 0:43?"),
        ("assistant", phrase("media_not_supported", "en")),
    ]


def test_a_photo_caption_edited_after_the_answer_gets_a_correction_that_looks_at_the_photo_again(
    api: str, worker: ServiceProcess, rds: redis.Redis, graph_fake: GraphFake, groq_fake: GroqFake
) -> None:
    user = new_user()
    original = served_media_message(graph_fake, user, "image", "is this mushroom edible?")
    post(api, user, original)
    wait_for(lambda: texts(graph_fake, user), what="the photo's answer")
    post(api, user, edit_message(user, original["id"], "is this mushroom poisonous for dogs?", media=original))
    wait_for(lambda: len(texts(graph_fake, user)) == 2, what="the correction")
    wait_for(lambda: idle(rds, user), what="the edit's job done")

    first, corrected = photo_asked(groq_fake)
    assert first == "is this mushroom edible?"
    assert "corrected the caption of this photo" in corrected and "poisonous for dogs?" in corrected
    assert texts(graph_fake, user)[1]["context"] == {"message_id": original["id"]}
    turns = memory(rds, user)
    assert turns[0] == ("user", "is this mushroom poisonous for dogs?")  # the edited caption replaces the original's
    assert turns[2] == ("user", "(corrected an earlier message)")


def test_a_revoke_before_the_answer_means_no_answer(
    api: str, worker: ServiceProcess, rds: redis.Redis, graph_fake: GraphFake, groq_fake: GroqFake
) -> None:
    user = new_user()
    groq_fake.chat_delay = SLOW
    original = text_message("Send me the secret plan", sender=user)
    post(api, user, original)
    wait_for_model_call(groq_fake, "Send me the secret plan")
    post(api, user, revoke_message(user, original["id"]))
    wait_for(lambda: idle(rds, user), timeout=30, what="both jobs done")
    groq_fake.chat_delay = 0.0
    post(api, user, text_message("ping", sender=user))  # the conversation goes on, without the deleted turn
    wait_for(lambda: texts(graph_fake, user), what="the ping's answer")

    assert [m["text"]["body"] for m in texts(graph_fake, user)] == ["You said: ping"]
    assert ledger(rds, original["id"])["send:text:0:gate"] == "cancelled"
    wait_for(lambda: idle(rds, user), what="the ping done")
    assert memory(rds, user) == [("user", "ping"), ("assistant", "You said: ping")]


def test_a_revoke_after_the_answer_removes_the_turn_from_memory(
    api: str, worker: ServiceProcess, rds: redis.Redis, graph_fake: GraphFake
) -> None:
    user = new_user()
    first = text_message("My locker code is 4711", sender=user)
    second = text_message("Thanks", sender=user)
    post(api, user, first)
    wait_for(lambda: len(texts(graph_fake, user)) == 1, what="the first answer")
    post(api, user, second)
    wait_for(lambda: len(texts(graph_fake, user)) == 2, what="the second answer")
    wait_for(lambda: len(memory(rds, user)) == 4, what="both turns in memory")
    post(api, user, revoke_message(user, first["id"]))
    wait_for(lambda: len(memory(rds, user)) == 2, what="the revoked turn forgotten")
    wait_for(lambda: idle(rds, user), what="the revoke's job done")

    assert memory(rds, user) == [("user", "Thanks"), ("assistant", "You said: Thanks")]
    assert len(texts(graph_fake, user)) == 2  # a deletion is never answered
    assert reactions(graph_fake, user) == []


def trace(env: dict[str, str], message_id: str) -> str:
    command = [sys.executable, "-m", "loopera.cli", "trace", message_id]
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=60, check=True)
    return done.stdout


def feedback_count(env: dict[str, str], reaction_label: str) -> float:
    text = httpx.get(f"http://127.0.0.1:{env['WORKER_METRICS_PORT']}/metrics", timeout=5).text
    line = f'loopera_feedback_reactions_total{{reaction="{reaction_label}"}} '
    found = [row for row in text.splitlines() if row.startswith(line)]
    return float(found[0].removeprefix(line)) if found else 0.0


def test_a_reaction_to_the_bots_message_is_kept_counted_and_traced_never_answered(
    api: str, env: dict[str, str], worker: ServiceProcess, rds: redis.Redis, graph_fake: GraphFake
) -> None:
    user = new_user()
    question = text_message("Recommend a book", sender=user)
    post(api, user, question)
    answer = wait_for(lambda: texts(graph_fake, user), what="the answer")[0]
    answer_id = graph_fake.meta_id_of(answer)
    before = feedback_count(env, "👍")

    post(api, user, reaction_message(user, answer_id, "👍🏽"))
    wait_for(lambda: "feedback:text:0" in ledger(rds, question["id"]), what="the feedback stored")
    assert ledger(rds, question["id"])["feedback:text:0"] == "👍🏽"
    wait_for(lambda: feedback_count(env, "👍") == before + 1, what="the reaction counted")
    assert "feedback     text:0: 👍🏽" in trace(env, question["id"])

    post(api, user, reaction_message(user, answer_id, ""))  # taken back
    wait_for(lambda: "feedback:text:0" not in ledger(rds, question["id"]), what="the feedback removed")
    post(api, user, reaction_message(user, question["id"], "❤️"))  # to the user's own message: not feedback on us
    wait_for(lambda: idle(rds, user), what="the reactions handled")
    assert "feedback" not in trace(env, question["id"])
    assert len(texts(graph_fake, user)) == 1 and reactions(graph_fake, user) == []  # never answered


def loopera(env: dict[str, str], *args: str) -> str:
    command = [sys.executable, "-m", "loopera.cli", *args]
    return subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=60, check=True).stdout


def test_while_a_person_has_the_conversation_edits_deletions_and_reactions_still_change_memory_and_feedback(
    api: str, env: dict[str, str], worker: ServiceProcess, rds: redis.Redis, graph_fake: GraphFake
) -> None:
    """Not answered while paused, like every message then; but what they change is kept, not remembered as
    "(sent a revoke)": the edited words, the deleted message gone from memory, the reaction stored."""
    user = new_user()
    order = text_message("my order is 4411", sender=user)
    card = text_message("my card number is 4111 1111", sender=user)
    post(api, user, order)
    answer = wait_for(lambda: texts(graph_fake, user), what="the first answer")[0]
    post(api, user, card)
    wait_for(lambda: len(texts(graph_fake, user)) == 2 and idle(rds, user), what="the second answer")
    loopera(env, "handoff", "pause", user)

    post(api, user, edit_message(user, order["id"], "my order is 4412"))
    post(api, user, revoke_message(user, card["id"]))
    post(api, user, reaction_message(user, graph_fake.meta_id_of(answer), "👍"))
    wait_for(lambda: "feedback:text:0" in ledger(rds, order["id"]), what="the reaction stored")
    wait_for(lambda: idle(rds, user), what="all three handled")
    assert memory(rds, user) == [("user", "my order is 4412"), ("assistant", "You said: my order is 4411")]
    assert len(texts(graph_fake, user)) == 2  # nothing answered while paused


def test_a_deletion_in_metas_late_backlog_still_removes_the_message_from_memory(
    api: str, worker: ServiceProcess, rds: redis.Redis, graph_fake: GraphFake
) -> None:
    """After an outage Meta delivers days of backlog: a late question gets the delay notice, but a late deletion is
    no question, and the user still expects the deleted message forgotten."""
    user = new_user()
    secret = text_message("my passport number is X1234567", sender=user)
    post(api, user, secret)
    wait_for(lambda: texts(graph_fake, user) and idle(rds, user), what="the answer")
    revoke = revoke_message(user, secret["id"]) | {"timestamp": str(int(time.time()) - 2 * 3600)}  # 2 h late
    edit = edit_message(user, secret["id"], "(nothing)") | {"timestamp": str(int(time.time()) - 2 * 3600)}
    post(api, user, edit)
    post(api, user, revoke)
    wait_for(lambda: not memory(rds, user) and idle(rds, user), what="the message forgotten")
    # One delay notice, for the late edit (a request); none for the deletion.
    assert [m["text"]["body"] for m in texts(graph_fake, user)][1:] == [phrase("stale_notice", "en")]


def test_a_slow_job_gets_an_eyes_reaction_removed_after_the_answer_a_fast_one_none(
    api: str, worker: ServiceProcess, rds: redis.Redis, graph_fake: GraphFake, groq_fake: GroqFake
) -> None:
    user = new_user()
    groq_fake.chat_delay = ACK_AFTER + 1.5
    slow = text_message("Think hard about this", sender=user)
    post(api, user, slow)
    wait_for(lambda: reactions(graph_fake, user), what="the 👀 while the model works")
    assert reactions(graph_fake, user) == [(slow["id"], "👀")]
    assert texts(graph_fake, user) == []  # it came before the answer
    wait_for(lambda: len(reactions(graph_fake, user)) == 2, what="the 👀 taken back")
    sent = [m for m in graph_fake.sent_messages() if m.get("to") == user]
    assert [m["type"] for m in sent] == ["reaction", "text", "reaction"]  # taken back after the answer
    assert reactions(graph_fake, user)[1] == (slow["id"], "")
    assert ledger(rds, slow["id"])["send:ack:eyes_removed"] == "done"

    groq_fake.chat_delay = 0.0
    fast = text_message("Quick one", sender=user)
    post(api, user, fast)
    wait_for(lambda: len(texts(graph_fake, user)) == 2, what="the fast answer")
    wait_for(lambda: idle(rds, user), what="the fast job done")
    assert [target for target, _ in reactions(graph_fake, user)] == [slow["id"], slow["id"]]  # none for it


def test_a_failing_eyes_reaction_does_not_fail_the_job(
    api: str, worker: ServiceProcess, rds: redis.Redis, graph_fake: GraphFake, groq_fake: GroqFake
) -> None:
    user = new_user()
    groq_fake.chat_delay = ACK_AFTER + 1.0
    graph_fake.faults.add("messages:reaction", graph_error(131000, "Something went wrong", 500))
    message = text_message("Still answered?", sender=user)
    post(api, user, message)
    wait_for(lambda: texts(graph_fake, user), timeout=30, what="the answer")
    wait_for(lambda: idle(rds, user), what="the job done")
    assert [m["text"]["body"] for m in texts(graph_fake, user)] == ["You said: Still answered?"]
    assert reactions(graph_fake, user) == [] and rds.llen("lp:dlq") == 0


def test_the_eyes_reaction_is_sent_once_across_a_retry(
    api: str, worker: ServiceProcess, rds: redis.Redis, graph_fake: GraphFake, groq_fake: GroqFake
) -> None:
    """The first run reacts, then the model fails; the retry runs long again but does not react a second time."""
    user = new_user()
    groq_fake.chat_delay = ACK_AFTER + 1.0
    groq_fake.faults.add("chat", groq_error(503, "service_unavailable", "down", "internal_server_error"))
    message = text_message("Worth the wait?", sender=user)
    post(api, user, message)
    wait_for(lambda: texts(graph_fake, user), timeout=40, what="the answer after the retry")
    wait_for(lambda: idle(rds, user), what="the job done")
    assert len(groq_fake.calls_to("chat/completions")) == 2  # it did run twice
    assert int(ledger(rds, message["id"])["runs"]) == 2
    assert reactions(graph_fake, user) == [(message["id"], "👀"), (message["id"], "")]
