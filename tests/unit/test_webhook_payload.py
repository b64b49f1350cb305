from __future__ import annotations

import base64
import copy
import json
from typing import Any

import pytest

from api.webhook_payload import PreparedJob, parse_webhook
from shared.jobs import InboundJob
from tests.webhooks import all_fixture_bodies, conversation_of, fixture_file, message_body, text_message

OURS = "1122334455667"


def decode_job(prepared: PreparedJob) -> dict[str, Any]:
    """The job as it goes into the message's ledger; the task's only argument is the ledger's ref."""
    message = json.loads(prepared.envelope)
    args, kwargs, _embed = json.loads(base64.b64decode(message["body"]))
    assert kwargs == {} and args == [prepared.ref]
    job: dict[str, Any] = json.loads(prepared.job)
    return job


def test_text_message_becomes_a_valid_job_on_the_text_queue() -> None:
    body = fixture_file("message")["text"]
    contents = parse_webhook(body, OURS)
    assert len(contents.jobs) == 1
    prepared = contents.jobs[0]
    assert prepared.queue == "text"
    job = InboundJob.model_validate(decode_job(prepared))
    assert job.message_id == "wamid.xyzxyz"
    assert job.conversation == conversation_of("972987654321", "US.13491208655302741918", api_key=False)
    assert job.to == "972987654321"
    assert job.contact_name == "Test Name"
    assert job.message["text"]["body"] == "Body Text"
    assert job.job_id == prepared.task_id


@pytest.mark.parametrize(
    ("scenario", "queue"),
    [
        ("voice", "audio"),
        ("audio", "audio"),
        ("image", "vision"),
        ("video", "text"),
        ("reaction", "text"),
        ("contacts", "text"),
    ],
)
def test_routing_by_type(scenario: str, queue: str) -> None:
    contents = parse_webhook(fixture_file("message")[scenario], OURS)
    assert [job.queue for job in contents.jobs] == [queue]


def test_an_edited_photo_caption_is_routed_to_the_vision_pool() -> None:
    """Meta's own example of an edit (edited_message.json) carries the photo with its new caption."""
    body = fixture_file("edited_message")["image"]
    body["entry"][0]["changes"][0]["value"]["metadata"]["phone_number_id"] = OURS
    [job] = parse_webhook(body, OURS).jobs
    assert job.queue == "vision" and job.amends


def test_every_entry_change_and_message_of_a_batch_is_walked() -> None:
    body = message_body([text_message(f"m{i}", sender="1555") for i in range(3)], sender="1555")
    body["entry"].append(message_body([text_message("other", sender="1666")], sender="1666")["entry"][0])
    body["entry"][0]["changes"].append(
        message_body([text_message("x", sender="1777")], sender="1777")["entry"][0]["changes"][0]
    )
    contents = parse_webhook(body, OURS)
    senders = ["1555", "1555", "1555", "1777", "1666"]
    assert [job.conversation for job in contents.jobs] == [conversation_of(s, api_key=False) for s in senders]
    assert len({job.task_id for job in contents.jobs}) == 5


def test_other_phone_numbers_and_other_fields_are_ignored() -> None:
    body = message_body([text_message("hi")])
    body["entry"][0]["changes"][0]["value"]["metadata"]["phone_number_id"] = "999"
    contents = parse_webhook(body, OURS)
    assert contents.jobs == [] and contents.foreign_number == 1
    contents = parse_webhook(fixture_file("account_update")[next(iter(fixture_file("account_update")))], OURS)
    assert contents.jobs == [] and contents.ignored >= 1


def test_statuses_are_counted_and_failed_codes_kept() -> None:
    statuses = fixture_file("message_status")
    contents = parse_webhook(statuses["failed"], OURS)
    assert contents.jobs == [] and contents.statuses == 1
    assert contents.failed_statuses and contents.failed_statuses[0].codes
    assert parse_webhook(statuses["delivered"], OURS).failed_statuses == []


def test_message_without_from_uses_the_business_scoped_user_id() -> None:
    message = text_message("hello")
    del message["from"]
    message["from_user_id"] = "US.13491208655302741918"
    body = message_body([message])
    body["entry"][0]["changes"][0]["value"]["contacts"] = [
        {"profile": {"name": "U"}, "user_id": "US.13491208655302741918"}
    ]
    job = InboundJob.model_validate(decode_job(parse_webhook(body, OURS).jobs[0]))
    assert job.to is None
    assert job.recipient == "US.13491208655302741918"
    assert job.conversation == conversation_of(user_id="US.13491208655302741918", api_key=False)


@pytest.mark.parametrize(
    "payload",
    [
        None,
        [],
        "x",
        1,
        {},
        {"entry": "nope"},
        {"entry": [None, 1, {"changes": "x"}]},
        {"entry": [{"changes": [{"field": "messages", "value": {"messages": [1, {"id": 5}, {"type": "text"}]}}]}]},
    ],
)
def test_odd_shapes_never_raise(payload: Any) -> None:
    contents = parse_webhook(payload, "")
    assert contents.jobs == []


@pytest.mark.parametrize(("name", "body"), all_fixture_bodies(), ids=[n for n, _ in all_fixture_bodies()])
def test_every_fixture_parses_into_valid_jobs(name: str, body: dict[str, Any]) -> None:
    contents = parse_webhook(body, "")
    for prepared in contents.jobs:
        InboundJob.model_validate(decode_job(prepared))
    expect_jobs = any(
        (change.get("field") == "messages" and change.get("value", {}).get("messages"))
        or (change.get("field") == "smb_message_echoes" and change.get("value", {}).get("message_echoes"))
        for entry in body["entry"]
        for change in entry["changes"]
    )
    assert bool(contents.jobs) == expect_jobs, name


def test_a_business_app_echo_becomes_a_job_in_the_users_conversation_and_a_pause() -> None:
    """smb_message_echoes (a person replying from the WhatsApp Business app): the job is the user's conversation's
    (`to`), typed as an echo so no worker answers it, and the conversation is paused at once (docs/handoff.md)."""
    body = copy.deepcopy(fixture_file("outgoing_message")["text"])
    echo = body["entry"][0]["changes"][0]["value"]["message_echoes"][0]
    echo |= {"to": "15550009999", "id": "wamid.echo1"}
    contents = parse_webhook(body, "")
    user = conversation_of("15550009999", echo.get("to_user_id"), api_key=False)  # the BSUID keys it when present
    assert [echo_job.conversation for echo_job in contents.pauses] == [user]
    [job] = [InboundJob.model_validate(decode_job(prepared)) for prepared in contents.jobs]
    assert (job.conversation, job.to, job.message_type) == (user, "15550009999", "smb_echo")
    assert job.message["text"] == {"body": "Test message"}
    del echo["to"]
    echo["to_user_id"] = "US.13491208655302741918"
    [prepared] = parse_webhook(body, "").jobs
    assert (prepared.conversation, InboundJob.model_validate(decode_job(prepared)).recipient) == (
        conversation_of(user_id="US.13491208655302741918", api_key=False),
        "US.13491208655302741918",
    )


def test_marketing_preferences_are_recorded_by_person_digest_and_queue_no_job() -> None:
    body = copy.deepcopy(fixture_file("user_marketing_preferences")["resume"])
    body["entry"][0]["changes"][0]["value"]["metadata"]["phone_number_id"] = OURS
    contents = parse_webhook(body, OURS)
    assert contents.jobs == [] and contents.skipped == []
    (update,) = contents.preferences
    assert (update.category, update.value, update.timestamp) == ("marketing_messages", "resume", 1731705721)
    assert update.person == conversation_of("16505551234", api_key=False)
    assert "16505551234" not in repr(update)
    # Another business number's update is not ours; a malformed item is skipped by position.
    assert parse_webhook(body, "999").preferences == []
    body["entry"][0]["changes"][0]["value"]["user_preferences"].append({"wa_id": "1", "value": "stop"})
    assert [p.reason for p in parse_webhook(body, OURS).skipped] == ["no_preference"]


def test_a_changed_number_is_linked_to_the_old_numbers_conversation() -> None:
    body = copy.deepcopy(fixture_file("system")["phone_number_change"])
    body["entry"][0]["changes"][0]["value"]["metadata"]["phone_number_id"] = OURS
    (job,) = parse_webhook(body, OURS).jobs
    assert job.sender is not None
    old, new = conversation_of("972987654321", api_key=False), conversation_of("972912345678", api_key=False)
    assert job.conversation == job.sender.candidate == old  # the notice itself belongs to the old conversation
    assert job.sender.links == (old, new)  # read in this order: the new number never decides, it is linked
