"""The message-type table and the pure helpers around it, over Meta's sample payloads."""

from __future__ import annotations

from typing import Any

import pytest

from tests.webhooks import all_fixture_bodies, fixture_file
from workers.errors import PermanentError
from workers.pipelines.chat_turn import context_notes
from workers.pipelines.message_types import Reply, expects_reply, route_for
from workers.pipelines.payloads import (
    contact_names,
    describe_location,
    error_codes,
    media_caption,
    order_summary,
    user_text,
)
from workers.pipelines.staleness import message_age
from workers.pipelines.vision import image_prompt, vision_request, without_reasoning
from workers.text.phrases import PHRASES


def fixture_message(file: str, scenario: str) -> dict[str, Any]:
    message: dict[str, Any] = fixture_file(file)[scenario]["entry"][0]["changes"][0]["value"]["messages"][0]
    return message


def all_fixture_messages() -> list[tuple[str, dict[str, Any]]]:
    return [
        (name, message)
        for name, body in all_fixture_bodies()
        for entry in body["entry"]
        for change in entry["changes"]
        for message in change["value"].get("messages") or ()
    ]


@pytest.mark.parametrize(("name", "message"), all_fixture_messages(), ids=lambda v: v if isinstance(v, str) else "")
def test_every_fixture_message_has_a_route(name: str, message: dict[str, Any]) -> None:
    route = route_for(message)
    assert route.reply in Reply
    assert expects_reply(message) == (route.reply in (Reply.AI, Reply.FIXED))


@pytest.mark.parametrize(
    ("file", "scenario", "reply"),
    [
        ("message", "text", Reply.AI),
        ("message", "image", Reply.AI),
        ("message", "current_location", Reply.AI),
        ("message", "contacts", Reply.FIXED),
        ("message", "order", Reply.FIXED),
        ("message", "video", Reply.FIXED),
        ("message", "document", Reply.FIXED),
        ("message", "unsupported_with_type", Reply.FIXED),
        ("message", "static_sticker", Reply.NONE),
        ("message", "unreaction_no_emoji", Reply.NONE),
        ("message", "interactive_message_with_err", Reply.NONE),
        ("callback_button", "quick_reply", Reply.AI),
        ("callback_selection", "description", Reply.AI),
        ("flow_completion", "completion", Reply.FIXED),
        ("call_permission_update", "reject", Reply.NONE),
        ("system", "phone_number_change", Reply.NONE),
        ("edited_message", "image", Reply.AI),
        ("deleted_message", "revoke", Reply.NONE),
        ("more_message_types", "first_open", Reply.WELCOME),
        ("more_message_types", "unknown_type", Reply.FIXED),
    ],
)
def test_routes_of_representative_messages(file: str, scenario: str, reply: Reply) -> None:
    assert route_for(fixture_message(file, scenario)).reply is reply


def test_unknown_and_empty_messages_are_silent() -> None:
    assert route_for({"type": "hologram"}).reply is Reply.NONE
    assert route_for({}).reply is Reply.NONE
    assert route_for({"type": "text", "text": {"body": "   "}}).reply is Reply.NONE
    assert route_for({"type": "interactive", "interactive": "garbage"}).reply is Reply.NONE


def test_user_text_of_buttons_and_lists() -> None:
    assert user_text(fixture_message("callback_button", "quick_reply")) == "title"
    assert user_text(fixture_message("callback_selection", "description")) == "title (description)"
    assert user_text(fixture_message("message", "text")) == "Body Text"
    assert user_text(fixture_message("message", "image")) is None


@pytest.mark.parametrize(
    ("scenario", "note"),
    [
        ("forwarded", "(forwarded) "),
        ("forwarded_many_times", "(forwarded many times) "),
        ("reply", "(replying to an earlier message) "),
        ("referral", "(came from an ad: AD_TITLE - AD_DESCRIPTION) "),
        ("text", ""),
    ],
)
def test_context_notes(scenario: str, note: str) -> None:
    assert context_notes(fixture_message("message", scenario)) == note


def test_location_description_has_name_address_and_coordinates() -> None:
    described = describe_location(fixture_message("message", "chosen_location"))
    assert "Facebook HQ" in described
    assert "1 Hacker Way" in described
    assert "37.4611978, -122.2164385" in described
    assert describe_location({"location": {"latitude": 1.5, "longitude": 2.5}}) == "coordinates 1.5, 2.5"
    assert describe_location({}) == "no details"


def test_contact_names_and_order_summary() -> None:
    assert contact_names(fixture_message("message", "contacts")) == ["Chandler Bing", "Monica", "Rachel Green"]
    assert contact_names({"contacts": [{"name": {"first_name": "Ada", "last_name": "Lovelace"}}]}) == ["Ada Lovelace"]
    assert order_summary(fixture_message("message", "order")) == ("3x HAMBURGER, 2x FRENCH_FRIES, 2x SODA", "")
    assert media_caption(fixture_message("message", "video")) == "caption"
    assert error_codes(fixture_message("message", "unsupported")) == [131051]


# Forged or future payloads: every field in the wrong shape. Reading them must not raise.
GARBAGE = [None, "text", 42, [1, "x"], {"unexpected": True}]


@pytest.mark.parametrize("junk", GARBAGE)
@pytest.mark.parametrize(
    "kind", ["text", "interactive", "button", "location", "contacts", "order", "video", "unsupported", "system"]
)
def test_payload_readers_survive_wrong_shapes(kind: str, junk: Any) -> None:
    message = {"type": kind, kind: junk, "errors": junk, "context": junk, "referral": junk}
    route_for(message)
    user_text(message)
    context_notes(message)
    assert isinstance(describe_location(message), str)
    assert isinstance(contact_names(message), list)
    assert isinstance(order_summary(message), tuple)
    assert isinstance(media_caption(message), str)
    assert isinstance(error_codes(message), list)


def test_reasoning_is_never_sent_to_the_user() -> None:
    assert without_reasoning("<think>the user wants...</think>\nA cat on a sofa.") == "A cat on a sofa."
    with pytest.raises(PermanentError):
        without_reasoning("<think>cut off mid-thought")
    assert without_reasoning("Plain answer") == "Plain answer"


def test_message_age() -> None:
    assert message_age({"timestamp": "1000"}, 1600.0) == 600.0
    assert message_age({}, 1600.0) is None
    assert message_age({"timestamp": "soon"}, 1600.0) is None


def test_image_prompt_uses_the_caption_or_asks_in_the_users_language() -> None:
    assert image_prompt("What is this?", "", "en") == "What is this?"
    assert image_prompt("", "(forwarded) ", "es") == "(forwarded) " + PHRASES["image_no_caption"]["es"]


def test_vision_request_puts_text_and_image_in_the_last_user_message() -> None:
    history = [{"role": "user", "content": "hi", "kind": "text", "ts": 0.0}]
    messages = vision_request("system", history, "caption", "data:image/png;base64,AAAA")  # type: ignore[list-item]
    assert [m["role"] for m in messages] == ["system", "user", "user"]
    assert messages[-1]["content"] == [
        {"type": "text", "text": "caption"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
    ]


@pytest.mark.parametrize("key", ["contacts_received", "order_received"])
def test_phrase_templates_have_their_placeholders_in_every_language(key: str) -> None:
    for language, text in PHRASES[key].items():
        filled = text.format(count=2, names="A, B", items="1x X")
        assert "{" not in filled, language
