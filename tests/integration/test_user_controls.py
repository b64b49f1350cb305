"""The user's commands on real processes: signed webhook -> API -> Redis -> Celery worker -> Graph/Groq fakes.

After `delete`, a scan of every Redis key and value (every type; JSON and base64 decoded, Celery's queues included)
finds none of the user's phone number, business-scoped user id, profile name or words, while the same scan finds
another user's (so the scan can fail).
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.commands_table import Row, what_the_user_sees
from tests.fakes.graph_fake import GraphFake
from tests.fakes.groq_fake import GroqFake, groq_error
from tests.fakes.server import wait_for
from tests.processes import ServiceProcess
from tests.redis_dump import findings
from tests.webhooks import conversation_in, conversation_of, message_body, text_message
from workers.text.commands import Command
from workers.text.phrases import phrase

pytestmark = pytest.mark.integration


def realistic_wamid(phone: str) -> str:
    """Meta's wamids are base64 of a structure that includes the sender's number: a leak detector must see that."""
    return "wamid." + base64.b64encode(f"\x15\x01{phone}\x15\x02{uuid.uuid4().hex}".encode()).decode()


def from_user(text: str, phone: str, bsuid: str) -> dict[str, Any]:
    message = text_message(text, sender=phone, message_id=realistic_wamid(phone))
    message["from_user_id"] = bsuid
    return message


def body_for(message: dict[str, Any], phone: str, bsuid: str, name: str) -> dict[str, Any]:
    body = message_body([message], sender=phone, name=name)
    body["entry"][0]["changes"][0]["value"]["contacts"][0]["user_id"] = bsuid
    return body


def say(webhooks: Any, text: str, phone: str, bsuid: str, name: str) -> None:
    response = webhooks.post(body_for(from_user(text, phone, bsuid), phone, bsuid, name))
    assert response.status_code == 200


def conversation_idle(client: redis.Redis, phone: str) -> bool:
    inbox = f"lp:inbox:{conversation_in(client, phone)}"
    return not client.exists(inbox) and not client.zscore("lp:leases", inbox)


def keep_an_answer(client: redis.Redis, phone: str) -> str:
    """An answer kept for the user's next message (the window had closed, or Meta could not deliver it)."""
    conversation = conversation_in(client, phone)
    key = f"lp:undelivered:{conversation}"
    client.rpush(key, json.dumps({"text": "An old answer.", "asked": "an old question", "at": 0, "ref": ""}))
    client.hset(f"lp:conv:{conversation}", "kept_answers", "1")
    return key


def test_delete_erases_every_trace_of_the_user_and_keeps_others(
    webhooks,
    worker_service: ServiceProcess,
    graph_fake: GraphFake,
    groq_fake: GroqFake,
    redis_client: redis.Redis,
) -> None:
    phone, bsuid, name = "15557770001", "US.7770001000000000001", "Zenobia Quillfeather"
    other_phone, other_bsuid, other_name = "15557770002", "US.7770002000000000002", "Bartholomew Inkwell"
    words = ["marzipan aquarium", "tangerine lighthouse"]
    say(webhooks, f"Tell me about the {words[0]}", phone, bsuid, name)
    wait_for(lambda: len(graph_fake.texts_to(phone)) == 1, what="first reply")
    # A failed job leaves a dead letter holding the whole message.
    groq_fake.faults.add("chat", groq_error(400, "invalid_request_error", "bad request"))
    say(webhooks, f"And the {words[1]}?", phone, bsuid, name)
    wait_for(lambda: redis_client.llen("lp:dlq") == 1, what="a dead letter")
    wait_for(lambda: conversation_idle(redis_client, phone), what="the failed job's conversation released")
    say(webhooks, "Keep my secret: periwinkle", other_phone, other_bsuid, other_name)
    wait_for(lambda: len(graph_fake.texts_to(other_phone)) == 1, what="the other user's reply")

    needles = [phone, bsuid, name, *words, "periwinkle"]
    before = {needle for _, needle in findings(redis_client, needles)}
    assert before == set(needles), "the scan must see both users' data before the delete"

    say(webhooks, "/delete", phone, bsuid, name)
    wait_for(lambda: phrase("command_delete", "en") in graph_fake.texts_to(phone), what="the delete receipt")
    wait_for(lambda: conversation_idle(redis_client, phone), what="the delete job done")
    wait_for(lambda: not findings(redis_client, [phone]), timeout=5, what="the delete message's own ledger gone")

    left = findings(redis_client, needles)
    assert {needle for _, needle in left} == {"periwinkle"}, left
    other_memory = f"lp:mem:{conversation_in(redis_client, other_phone)}"
    assert [key for key, _ in left if key.startswith("lp:mem:")] == [other_memory]
    # What remains of the deleted user: only keyed-hash dedupe markers, no other key is theirs.
    assert redis_client.llen("lp:dlq") == 0


def test_export_sends_everything_stored_as_one_document(
    webhooks,
    worker_service: ServiceProcess,
    graph_fake: GraphFake,
    groq_fake: GroqFake,
    redis_client: redis.Redis,
) -> None:
    phone, bsuid, name = "15557770003", "US.7770003000000000003", "Ottoline Brackenridge"
    say(webhooks, "What about the saffron windmill?", phone, bsuid, name)
    wait_for(lambda: len(graph_fake.texts_to(phone)) == 1, what="first reply")
    say(webhooks, "Exportar", phone, bsuid, name)

    def document() -> dict[str, Any] | None:
        sent = [m for m in graph_fake.sent_messages() if m.get("type") == "document" and m.get("to") == phone]
        return sent[0] if sent else None

    sent = wait_for(document, what="the export document")
    assert sent["document"]["filename"] == "loopera-export.txt"
    assert sent["document"]["caption"] == phrase("command_export", "es")
    upload = graph_fake.uploads()[-1]
    assert upload.file_type == "text/plain"
    assert sent["document"]["id"]
    exported = json.loads(upload.file or b"{}")
    assert exported["conversation"] == conversation_in(redis_client, phone) == conversation_of(phone, bsuid)
    assert [turn["content"] for turn in exported["memory"]] == [
        "What about the saffron windmill?",
        "You said: What about the saffron windmill?",
    ]
    texts = [m["job"]["message"]["text"]["body"] for m in exported["messages"]]
    assert sorted(texts) == ["Exportar", "What about the saffron windmill?"]
    answered = next(m for m in exported["messages"] if "stage:chat" in m)
    assert answered["stage:chat"]["v"] == "You said: What about the saffron windmill?"
    assert exported["dead_letters"] == []
    wait_for(lambda: conversation_idle(redis_client, phone), what="the export job done")
    assert len([m for m in graph_fake.sent_messages() if m.get("type") == "document"]) == 1
    assert len(graph_fake.uploads()) == 1


def test_stop_silences_everything_until_start(
    webhooks,
    worker_service: ServiceProcess,
    graph_fake: GraphFake,
    groq_fake: GroqFake,
    redis_client: redis.Redis,
) -> None:
    phone, bsuid, name = "15557770004", "US.7770004000000000004", "Test User"
    say(webhooks, "hi", phone, bsuid, name)
    wait_for(lambda: len(graph_fake.texts_to(phone)) == 1, what="first reply")
    wait_for(lambda: conversation_idle(redis_client, phone), what="the first job done")
    kept = keep_an_answer(redis_client, phone)
    receipts = len(graph_fake.read_receipts())
    say(webhooks, "STOP", phone, bsuid, name)
    wait_for(lambda: graph_fake.texts_to(phone)[1:] == [phrase("command_stop", "en")], what="the stop confirmation")
    wait_for(lambda: conversation_idle(redis_client, phone), what="the stop job done")
    assert not redis_client.exists(kept)  # a user who said stop never gets an old answer later
    say(webhooks, "Are you there?", phone, bsuid, name)
    say(webhooks, "Hello??", phone, bsuid, name)
    wait_for(lambda: conversation_idle(redis_client, phone), what="both messages handled")
    assert graph_fake.texts_to(phone) == ["You said: hi", phrase("command_stop", "en")]
    assert len(groq_fake.calls_to("chat/completions")) == 1  # only the first message reached the model
    assert redis_client.llen(f"lp:mem:{conversation_in(redis_client, phone)}") == 2  # only the first turn
    assert len(graph_fake.read_receipts()) == receipts

    say(webhooks, "/start", phone, bsuid, name)
    wait_for(lambda: len(graph_fake.texts_to(phone)) == 3, what="the start confirmation")
    say(webhooks, "Now?", phone, bsuid, name)
    wait_for(lambda: len(graph_fake.texts_to(phone)) == 4, what="an answer again")
    assert graph_fake.texts_to(phone)[2:] == [phrase("command_start", "en"), "You said: Now?"]


def test_reset_forgets_the_conversation(
    webhooks,
    worker_service: ServiceProcess,
    graph_fake: GraphFake,
    groq_fake: GroqFake,
    redis_client: redis.Redis,
) -> None:
    phone, bsuid, name = "15557770005", "US.7770005000000000005", "Test User"
    say(webhooks, "My name is Ada.", phone, bsuid, name)
    wait_for(lambda: len(graph_fake.texts_to(phone)) == 1, what="first reply")
    kept = keep_an_answer(redis_client, phone)  # as if an earlier answer had not reached them
    say(webhooks, "Olvidar", phone, bsuid, name)
    wait_for(lambda: len(graph_fake.texts_to(phone)) == 2, what="the reset confirmation")
    assert graph_fake.texts_to(phone)[1] == phrase("command_reset", "es")
    assert not redis_client.exists(kept)  # forgotten too: never delivered after the reset
    say(webhooks, "What is my name?", phone, bsuid, name)
    wait_for(lambda: len(graph_fake.texts_to(phone)) == 3, what="the answer after the reset")
    last = groq_fake.calls_to("chat/completions")[-1].body["messages"]
    assert [m["role"] for m in last] == ["system", "user"]
    assert len(groq_fake.calls_to("chat/completions")) == 2  # the command itself never reached the model


@pytest.mark.parametrize("row", what_the_user_sees(), ids=lambda row: row.command)
def test_the_docs_commands_table_is_what_the_user_sees(
    row: Row,
    webhooks,
    worker_service: ServiceProcess,
    graph_fake: GraphFake,
    groq_fake: GroqFake,
    redis_client: redis.Redis,
) -> None:
    """docs/commands.md, "What the user sees": each row's first word, sent by a user, gets exactly that."""
    phone = "1555777010" + str(list(Command).index(Command(row.command)))
    say(webhooks, row.first_word, phone, f"US.{phone}", "Test User")
    wait_for(lambda: conversation_idle(redis_client, phone) and graph_fake.sent_messages(), what="the command done")
    sent = [m for m in graph_fake.sent_messages() if m.get("to") == phone]
    assert len(sent) == 1
    if sent[0]["type"] == "document":
        seen = f'A document `{sent[0]["document"]["filename"]}` with the caption "{sent[0]["document"]["caption"]}"'
        assert row.user_sees.startswith(seen)
    else:
        assert [sent[0]["text"]["body"]] == row.quoted
    assert groq_fake.calls_to("chat/completions") == []


def test_operator_cli_exports_and_deletes_a_user(
    webhooks,
    worker_service: ServiceProcess,
    graph_fake: GraphFake,
    groq_fake: GroqFake,
    redis_client: redis.Redis,
    service_env: dict[str, str],
    tmp_path: Path,
) -> None:
    phone, bsuid, name = "15557770006", "US.7770006000000000006", "Philippa Marchbanks"
    say(webhooks, "Remember the cobalt pelican", phone, bsuid, name)
    wait_for(lambda: len(graph_fake.texts_to(phone)) == 1, what="the reply")
    wait_for(lambda: conversation_idle(redis_client, phone), what="the job done")

    def loopera(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "loopera.cli", "user", *args]
        return subprocess.run(command, env=os.environ | service_env, capture_output=True, text=True, check=True)

    loopera("export", phone, "--out", str(tmp_path / "export.json"))
    exported = json.loads((tmp_path / "export.json").read_text())
    assert exported["memory"][0]["content"] == "Remember the cobalt pelican"
    assert findings(redis_client, [phone, bsuid, name, "cobalt pelican"])

    result = loopera("delete", phone, "--yes")
    assert result.stdout.startswith("erased 1 messages, 0 dead letters")
    assert findings(redis_client, [phone, bsuid, name, "cobalt pelican"]) == []
    assert graph_fake.texts_to(phone) == ["You said: Remember the cobalt pelican"]  # the CLI sends nothing
