"""Every message in Meta's sample payloads gets exactly the reply the message-types table in docs/ promises.

Each case posts one fixture message (fresh ids, a sender of its own) through the real API and workers, then a
plain text "ping" from the same user. Conversations are served in order, so once the ping is answered the
fixture message has been handled too: silence can be asserted without sleeping.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from shared.config import Settings
from tests.fakes.graph_fake import PHONE_NUMBER_ID, GraphFake
from tests.fakes.groq_fake import GroqFake
from tests.fakes.server import wait_for
from tests.processes import REPO, ServiceProcess
from tests.webhooks import MEDIA_FIXTURES, all_fixture_bodies, fresh_ids, message_body, text_message
from workers.text.phrases import PHRASES

pytestmark = pytest.mark.integration

TABLE_DOC = REPO / "docs" / "message-types.md"
PHOTO = (MEDIA_FIXTURES / "photo.jpg").read_bytes()
REPLY_WORDS = {
    "AI answer": "ai",
    "Fixed reply": "fixed",
    "Welcome message": "welcome",
    "No reply": "none",
    "Voice pipeline": "voice",
}


def readme_table(path: Path = TABLE_DOC) -> dict[str, str]:
    """Row key (first column without backticks) -> promised reply, from the first table of the message-types page."""
    rows: dict[str, str] = {}
    section = path.read_text().split("\n## ", 1)[0]
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 2 and "`" in cells[0] and cells[1] in REPLY_WORDS:
            rows[cells[0].replace("`", "")] = REPLY_WORDS[cells[1]]
    return rows


def row_key(message: dict[str, Any]) -> str:
    """Which table row a message belongs to (the test's own reading of the payload, not the bot's code)."""
    kind = str(message["type"])
    if kind == "interactive":
        interactive = message.get("interactive")
        return f"interactive.{interactive['type']}" if interactive else "interactive (no body)"
    return kind


def fixture_messages() -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    found = []
    for name, body in all_fixture_bodies():
        for entry in body["entry"]:
            for change in entry["changes"]:
                for message in change["value"].get("messages") or ():
                    found.append((name, body, message))
    return found


PROMISES = readme_table()
CASES = [
    pytest.param(name, body, PROMISES.get(row_key(message), "undocumented"), id=name)
    for name, body, message in fixture_messages()
    # Audio belongs to the voice pipeline; its own tests cover it.
    if PROMISES.get(row_key(message)) != "voice"
]

# What else the reply or the model request must contain, beyond the kind of reply.
IN_REQUEST = {
    "message/chosen_location": ["Facebook HQ", "1 Hacker Way, Menlo Park", "37.4611978, -122.2164385"],
    "message/current_location": ["(forwarded) (shared a location) coordinates 12.25089, 43.90539"],
    "message/forwarded": ["(forwarded) forwarded text"],
    "message/forwarded_many_times": ["(forwarded many times) text forwarded many times"],
    "message/reply": ["(replying to an earlier message) replied text"],
    "message/referral": ["(came from an ad: AD_TITLE - AD_DESCRIPTION) BODY"],
    "callback_selection/description": ["title (description)"],
}
IN_REPLY = {
    "message/contacts": ["3 contact(s): Chandler Bing, Monica, Rachel Green"],
    "message/order": ["3x HAMBURGER, 2x FRENCH_FRIES, 2x SODA"],
    "message/video": [PHRASES["media_not_supported"]["en"]],
    "message/document": [PHRASES["media_not_supported"]["en"]],
    "message/unsupported": [PHRASES["message_not_supported"]["en"]],
    "flow_completion/completion": [PHRASES["form_received"]["en"]],
}
NOT_IN_REPLY = {"message/contacts": ["555", "+1"]}
# What the next turn (the ping) sees of the message in memory.
REMEMBERED = {
    "message/chosen_location": "(forwarded) (shared a location) Facebook HQ; 1 Hacker Way, Menlo Park, CA 94025; "
    "coordinates 37.4611978, -122.2164385; https://maps.google.com/?cid=2000000000000000000",
    "message/contacts": "(shared contacts: Chandler Bing, Monica, Rachel Green)",
    "message/image": "(sent an image) ",
    "message/forwarded": "(forwarded) forwarded text",
    "message/video": "(forwarded) (sent a video the bot cannot open) caption",
}


def test_readme_table_covers_every_fixture_message_type() -> None:
    undocumented = {row_key(m) for _, _, m in fixture_messages()} - set(PROMISES)
    assert not undocumented
    assert len(CASES) >= 30


def prepare(body: dict[str, Any], sender: str, graph_fake: GraphFake) -> tuple[dict[str, Any], dict[str, Any]]:
    body = fresh_ids(body, sender)
    value = body["entry"][0]["changes"][0]["value"]
    # Two samples carry another business's phone number id; the API rightly ignores those, so use ours.
    value["metadata"]["phone_number_id"] = PHONE_NUMBER_ID
    message = value["messages"][0]
    if message["type"] == "image":
        graph_fake.add_media(message["image"]["id"], PHOTO, "image/jpeg")
    if (photo := edited_photo(message)) is not None:  # Meta's edit of a caption carries the photo again
        graph_fake.add_media(photo["id"], PHOTO, "image/jpeg")
    return body, message


def edited_photo(message: dict[str, Any]) -> dict[str, Any] | None:
    edited = message.get("edit", {}).get("message", {}) if message["type"] == "edit" else {}
    return edited.get("image") if edited.get("type") == "image" else None


def replies_quoting(graph_fake: GraphFake, message_id: str) -> list[dict[str, Any]]:
    return [m for m in graph_fake.sent_messages() if (m.get("context") or {}).get("message_id") == message_id]


def send_then_ping(webhooks, graph_fake: GraphFake, body: dict[str, Any], sender: str) -> dict[str, Any]:
    assert webhooks.post(body).status_code == 200
    ping = text_message("ping", sender=sender)
    assert webhooks.post(message_body([ping], sender=sender)).status_code == 200
    wait_for(lambda: replies_quoting(graph_fake, ping["id"]), timeout=30, what="the reply to the ping")
    return ping


def request_text(call: Any) -> str:
    content = call.body["messages"][-1]["content"]
    if isinstance(content, list):
        return " ".join(part.get("text", "") for part in content if part.get("type") == "text")
    return str(content)


@pytest.mark.parametrize(("name", "body", "promised"), CASES)
def test_fixture_message_gets_the_promised_reply(
    webhooks,
    worker_service: ServiceProcess,
    graph_fake: GraphFake,
    groq_fake: GroqFake,
    name: str,
    body: dict[str, Any],
    promised: str,
) -> None:
    sender = f"1555{uuid.uuid4().int % 10**8:08d}"
    body, message = prepare(body, sender, graph_fake)
    ping = send_then_ping(webhooks, graph_fake, body, sender)

    # An edit's answer quotes the message the user sees: the original, now with the new words.
    quoted = message["edit"]["original_message_id"] if message["type"] == "edit" else message["id"]
    replies = replies_quoting(graph_fake, quoted)
    calls = groq_fake.calls_to("chat/completions")
    model_calls = [c for c in calls if request_text(c) != "ping"]
    receipts = [r for r in graph_fake.read_receipts() if r["message_id"] == quoted]
    assert replies_quoting(graph_fake, ping["id"])[0]["text"]["body"] == "You said: ping"
    ping_call = next(c for c in calls if request_text(c) == "ping")
    remembered = [m["content"] for m in ping_call.body["messages"] if m["role"] == "user"]
    if name in REMEMBERED:
        assert remembered[:-1] == [REMEMBERED[name]]
    if promised == "none":
        assert remembered == ["ping"]  # a silent message leaves no trace in the conversation

    if promised == "ai":
        assert len(replies) == 1
        assert len(model_calls) == 1
        # A photo, or an edit of its caption (answered with the photo), goes to the vision model.
        photo = message["type"] == "image" or edited_photo(message) is not None
        expected_model = "qwen/qwen3.8-27b" if photo else "openai/gpt-oss-120b"
        assert model_calls[0].model == expected_model
        assert replies[0]["text"]["body"].startswith("You said:")
        for needle in IN_REQUEST.get(name, []):
            assert needle in request_text(model_calls[0])
    elif promised == "welcome":
        (welcome,) = [m for m in graph_fake.sent_messages() if m.get("to") == sender and "context" not in m]
        assert welcome["text"]["body"] == Settings.model_fields["welcome_message"].default
        assert replies == [] and model_calls == [] and receipts == []  # the event is neither quoted nor read
        return
    elif promised == "fixed":
        assert len(replies) == 1
        assert model_calls == []
        assert not replies[0]["text"]["body"].startswith("You said:")
        for needle in IN_REPLY.get(name, []):
            assert needle in replies[0]["text"]["body"]
        for needle in NOT_IN_REPLY.get(name, []):
            assert needle not in replies[0]["text"]["body"]
    else:
        assert promised == "none", f"{name}: not documented in {TABLE_DOC.name}"
        assert replies == []
        assert model_calls == []
        assert receipts == []  # no typing indicator for a message we will not answer
        return
    assert receipts and receipts[0]["typing_indicator"] == {"type": "text"}


def without_from(body: dict[str, Any], user_id: str) -> dict[str, Any]:
    """The shape Meta sends for a user with a username and no phone number: no `from`, no `wa_id`."""
    value = body["entry"][0]["changes"][0]["value"]
    for message in value["messages"]:
        message.pop("from", None)
        message["from_user_id"] = user_id
    value["contacts"] = [{"profile": {"name": "Ann"}, "user_id": user_id}]
    return body


@pytest.mark.parametrize(
    ("scenario", "promised"),
    [("message/text", "ai"), ("message/contacts", "fixed"), ("message/reaction", "none"), ("message/image", "ai")],
)
def test_users_without_a_phone_number_are_answered_by_recipient(
    webhooks, worker_service: ServiceProcess, graph_fake: GraphFake, groq_fake: GroqFake, scenario: str, promised: str
) -> None:
    user_id = f"US.{uuid.uuid4().int % 10**20}"
    body = dict(all_fixture_bodies())[scenario]
    body, message = prepare(body, "unused", graph_fake)
    body = without_from(body, user_id)
    assert webhooks.post(body).status_code == 200
    ping = text_message("ping")
    assert webhooks.post(without_from(message_body([ping]), user_id)).status_code == 200
    wait_for(lambda: replies_quoting(graph_fake, ping["id"]), timeout=30, what="the reply to the ping")

    sent = graph_fake.sent_messages()
    assert sent and all(m.get("recipient") == user_id and "to" not in m for m in sent)
    assert len(replies_quoting(graph_fake, message["id"])) == (0 if promised == "none" else 1)


@pytest.mark.parametrize(
    ("message", "promised"),
    [
        ({"type": "hologram", "hologram": {"id": "1"}}, "none"),  # a type Meta may add one day
        ({"type": "location", "location": "not an object"}, "ai"),
        ({"type": "contacts", "contacts": "not a list"}, "fixed"),
        ({"type": "order", "order": ["x"]}, "fixed"),
        ({"type": "interactive", "interactive": {"type": "button_reply", "button_reply": 7}}, "none"),
        ({"type": "text", "text": "not an object"}, "none"),
        ({"type": "image", "image": None}, "fixed"),
    ],
    ids=["unknown-type", "location", "contacts", "order", "interactive", "text", "image"],
)
def test_odd_payloads_never_crash_a_job(
    webhooks,
    worker_service: ServiceProcess,
    graph_fake: GraphFake,
    groq_fake: GroqFake,
    redis_client,
    message: dict[str, Any],
    promised: str,
) -> None:
    sender = f"1555{uuid.uuid4().int % 10**8:08d}"
    envelope = {k: v for k, v in text_message("x", sender=sender).items() if k in ("from", "id", "timestamp")}
    odd = {**envelope, **message}
    send_then_ping(webhooks, graph_fake, message_body([odd], sender=sender), sender)

    assert redis_client.llen("lp:dlq") == 0  # no job gave up
    replies = replies_quoting(graph_fake, odd["id"])
    assert len(replies) == (0 if promised == "none" else 1)
    if replies:
        apology = PHRASES["apology"]["en"]
        assert replies[0]["text"]["body"] != apology
