"""Who is talking (issue #15): one conversation per person across phone number and business-scoped user id (BSUID),
whichever shape a message arrives in and in either order; replies go to the address Meta accepts. Real API,
worker processes and Redis; the handed case is `cases/conversation/username-user-phone-hidden.json`."""

from __future__ import annotations

import copy
import json
import time
import uuid
from typing import Any

import pytest
import redis

from tests.fakes.graph_fake import PHONE_NUMBER_ID, GraphFake
from tests.fakes.groq_fake import GroqFake
from tests.fakes.server import wait_for
from tests.processes import ServiceProcess
from tests.webhooks import CASE_FIXTURES, conversation_of, message_body, text_message

pytestmark = pytest.mark.integration


def replayable(body: dict[str, Any]) -> dict[str, Any]:
    """The case body with our phone number id, a fresh message id and a current timestamp (the recorded one is a
    backlog message by now and would get the late-message policy instead of an answer)."""
    body = copy.deepcopy(body)
    value = body["entry"][0]["changes"][0]["value"]
    value["metadata"]["phone_number_id"] = PHONE_NUMBER_ID
    for message in value["messages"]:
        message["id"] = f"wamid.{uuid.uuid4().hex}"
        message["timestamp"] = str(int(time.time()))
    return body


def from_person(text: str, phone: str | None, user_id: str | None) -> dict[str, Any]:
    """A text message in the shape Meta sends for a person known by phone, by BSUID, or both."""
    message = text_message(text, sender=phone or "")
    if user_id:
        message["from_user_id"] = user_id
    body = message_body([message], sender=phone or "")
    body["entry"][0]["changes"][0]["value"]["contacts"] = [
        {"profile": {"name": "Noa"}, "wa_id": phone or "", **({"user_id": user_id} if user_id else {})}
    ]
    return body


def chat_requests(groq_fake: GroqFake, last_words: str) -> list[dict[str, Any]]:
    """The model requests whose last user message is `last_words`."""
    return [
        call.body["messages"]
        for call in groq_fake.calls_to("chat/completions")
        if call.body["messages"][-1]["content"] == last_words
    ]


def test_handed_case_one_conversation_across_the_phone_to_bsuid_switch(
    webhooks, worker_service: ServiceProcess, graph_fake: GraphFake, groq_fake: GroqFake, redis_client: redis.Redis
) -> None:
    case = json.loads((CASE_FIXTURES / "conversation" / "username-user-phone-hidden.json").read_text())
    first, second = (replayable(body) for body in case["webhooks_in_order"])
    phone, user_id = "15550101013", "US.7310000000000000013"

    assert webhooks.post(first).status_code == 200
    wait_for(lambda: graph_fake.texts_for(phone), what="the reply to the phone number")
    assert webhooks.post(second).status_code == 200
    wait_for(lambda: graph_fake.texts_for(user_id), what="the reply to the user id")

    # The second turn's model request carries the first turn: one memory.
    (request,) = chat_requests(groq_fake, "Any news about my order?")
    assert [m["content"] for m in request[1:]] == [
        "My order number is ZX-4471, it has not arrived.",
        "You said: My order number is ZX-4471, it has not arrived.",
        "Any news about my order?",
    ]
    # Replies went where Meta accepts them: `to` while the phone was known, `recipient` once it was hidden.
    sent = [
        m
        for m in graph_fake.sent_messages()
        if phone in (m.get("to"), m.get("recipient")) or m.get("recipient") == user_id
    ]
    assert [(m.get("to"), m.get("recipient")) for m in sent] == [(phone, None), (None, user_id)]
    # One conversation, keyed by the BSUID's digest; no Redis key names the phone number or the user id.
    conversation = conversation_of(phone, user_id)
    wait_for(lambda: redis_client.llen(f"lp:mem:{conversation}") == 4, what="both turns in one memory")
    assert not redis_client.keys(f"*{phone}*") and not redis_client.keys(f"*{user_id}*")


@pytest.mark.parametrize(
    "shapes",
    [
        pytest.param(["user", "both", "phone"], id="bsuid-first"),
        pytest.param(["phone", "both", "user"], id="phone-first"),
    ],
)
def test_memory_continues_whichever_identity_came_first(
    shapes: list[str], webhooks, worker_service: ServiceProcess, graph_fake: GraphFake, groq_fake: GroqFake
) -> None:
    """The other direction too: a person first seen by BSUID only (a username user) later shows the phone, or a
    person known by phone before BSUIDs existed later arrives with the BSUID only."""
    tag = uuid.uuid4().int % 10**6
    phone, user_id = f"1555077{tag:06d}", f"US.7311{tag:06d}"
    identities = {"user": (None, user_id), "both": (phone, user_id), "phone": (phone, None)}
    words = [f"turn {n} of {tag}" for n in range(3)]
    for n, shape in enumerate(shapes):
        assert webhooks.post(from_person(words[n], *identities[shape])).status_code == 200
        wait_for(lambda n=n: len(chat_requests(groq_fake, words[n])) == 1, what=f"turn {n}")
    wait_for(lambda: len(graph_fake.texts_for(phone)) + len(graph_fake.texts_for(user_id)) == 3, what="3 replies")

    (last,) = chat_requests(groq_fake, words[2])
    assert [m["content"] for m in last if m["role"] == "user"] == words


def test_marketing_preferences_are_recorded_not_answered(
    webhooks, api_service, graph_fake: GraphFake, redis_client: redis.Redis
) -> None:
    """`user_preferences` (Meta's marketing opt-out and opt-in): stored per person, newest first, never answered."""
    samples = json.loads((CASE_FIXTURES.parent / "meta-webhooks" / "user_marketing_preferences.json").read_text())
    resume = copy.deepcopy(samples["resume"])
    resume["entry"][0]["changes"][0]["value"]["metadata"]["phone_number_id"] = PHONE_NUMBER_ID
    older_stop = copy.deepcopy(resume)
    update = older_stop["entry"][0]["changes"][0]["value"]["user_preferences"][0]
    update.update(value="stop", timestamp=update["timestamp"] - 60)

    assert webhooks.post(resume).status_code == 200
    assert webhooks.post(older_stop).status_code == 200  # delivered late: must not override the newer resume
    person = conversation_of("16505551234")
    assert redis_client.hgetall(f"lp:prefs:{person}") == {
        b"marketing_messages": b"resume",
        b"marketing_messages:at": b"1731705721",
    }
    assert redis_client.ttl(f"lp:prefs:{person}") > 0
    assert graph_fake.sent_messages() == [] and not redis_client.keys("lp:inbox:*")


def test_a_changed_number_continues_the_conversation(
    webhooks, worker_service: ServiceProcess, graph_fake: GraphFake, groq_fake: GroqFake
) -> None:
    """Meta's `user_changed_number` notice links the new number (and a new BSUID) to the person's conversation."""
    tag = uuid.uuid4().int % 10**6
    old, new = f"1555088{tag:06d}", f"1555099{tag:06d}"
    assert webhooks.post(from_person(f"before {tag}", old, None)).status_code == 200
    wait_for(lambda: graph_fake.texts_for(old), what="the reply to the old number")
    notice = text_message("", sender=old)
    notice.update(
        type="system",
        system={"body": "Noa changed their phone number", "wa_id": new, "type": "user_changed_number"},
    )
    del notice["text"]
    assert webhooks.post(message_body([notice], sender=old)).status_code == 200
    assert webhooks.post(from_person(f"after {tag}", new, f"US.7312{tag:06d}")).status_code == 200
    wait_for(lambda: graph_fake.texts_for(new), what="the reply to the new number")

    (request,) = chat_requests(groq_fake, f"after {tag}")
    assert [m["content"] for m in request if m["role"] == "user"] == [f"before {tag}", f"after {tag}"]
