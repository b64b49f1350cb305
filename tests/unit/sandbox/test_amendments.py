"""A user's edits, deletions and reactions as the chat shows them, and the webhook bodies that carry them."""

from __future__ import annotations

import copy
from typing import Any

from sandbox.chat import ChatMessage, ChatStore, outbound_message
from sandbox.webhooks import (
    User,
    carried_messages,
    edit_message,
    message_webhook,
    reaction_message,
    retarget,
    revoke_message,
)

ANA, BEN = "15550001111", "447700900123"


def _store() -> ChatStore:
    store = ChatStore()
    store.add(ChatMessage("wamid.in.1", ANA, "in", "text", text="helo"))
    store.add(ChatMessage("wamid.in.2", ANA, "in", "location", location={"latitude": 1.0, "longitude": 2.0}))
    store.add(outbound_message({"to": ANA, "type": "text", "text": {"body": "hi Ana"}}, "wamid.out.1"))
    return store


def test_an_edit_replaces_the_text_and_marks_it_edited() -> None:
    store = _store()
    changed = store.amended(ANA, edit_message("wamid.in.1", "hello"))
    assert changed is store.by_id["wamid.in.1"]
    assert changed.to_json() | {"text": "hello", "edited": True, "deleted": False} == changed.to_json()
    assert [m.id for m in store.conversations[ANA]] == ["wamid.in.1", "wamid.in.2", "wamid.out.1"]  # no new bubble


def test_a_caption_edit_replaces_the_photos_caption_and_marks_it_edited() -> None:
    store = _store()
    store.add(ChatMessage("wamid.in.3", ANA, "in", "image", caption="old", url="/media/m1", mime_type="image/jpeg"))
    photo = {"id": "m1", "mime_type": "image/jpeg", "sha256": "ab"}
    changed = store.amended(ANA, edit_message("wamid.in.3", "new", photo))
    assert changed is not None and changed.caption == "new" and changed.edited and changed.url == "/media/m1"
    assert store.amended(ANA, edit_message("wamid.in.1", "a photo edit of a text", photo)) is None
    assert store.by_id["wamid.in.1"].text == "helo"


def test_a_revoke_empties_the_bubble_and_marks_it_deleted() -> None:
    store = _store()
    assert store.amended(ANA, revoke_message("wamid.in.2")) is not None
    shown = store.by_id["wamid.in.2"].to_json()
    assert shown["deleted"] is True and "location" not in shown and "text" not in shown


def test_the_users_reaction_shows_on_the_bots_bubble_and_can_be_removed() -> None:
    store = _store()
    store.amended(ANA, reaction_message("wamid.out.1", "👍"))
    assert store.by_id["wamid.out.1"].user_reaction == "👍"
    assert store.by_id["wamid.out.1"].reaction is None  # the bot's own reaction field is untouched
    store.amended(ANA, reaction_message("wamid.out.1", ""))
    assert store.by_id["wamid.out.1"].to_json()["user_reaction"] == ""


def test_amendments_that_do_not_fit_change_nothing() -> None:
    store = _store()
    before = {m.id: m.to_json() for m in store.conversations[ANA]}
    assert store.amended(BEN, edit_message("wamid.in.1", "not Ben's")) is None  # another user's message
    assert store.amended(ANA, edit_message("wamid.out.1", "the bot's")) is None  # only one's own
    assert store.amended(ANA, revoke_message("wamid.out.1")) is None
    assert store.amended(ANA, edit_message("wamid.in.2", "a location")) is None  # only text is edited
    assert store.amended(ANA, edit_message("wamid.unknown", "x")) is None
    assert store.amended(ANA, {"type": "text", "text": {"body": "plain"}}) is None
    assert store.amended(ANA, {"type": "edit", "edit": {"original_message_id": "wamid.in.1", "message": "x"}}) is None
    assert {m.id: m.to_json() for m in store.conversations[ANA]} == before


def test_the_builders_give_metas_shapes() -> None:
    assert edit_message("w1", "new") == {
        "type": "edit",
        "edit": {"original_message_id": "w1", "message": {"type": "text", "text": {"body": "new"}}},
    }
    assert edit_message("w1", "new", {"id": "m1", "mime_type": "image/jpeg", "caption": "old"}) == {
        "type": "edit",
        "edit": {
            "original_message_id": "w1",
            "message": {"type": "image", "image": {"id": "m1", "mime_type": "image/jpeg", "caption": "new"}},
        },
    }
    assert revoke_message("w1") == {"type": "revoke", "revoke": {"original_message_id": "w1"}}
    assert reaction_message("w2", "") == {"type": "reaction", "reaction": {"message_id": "w2", "emoji": ""}}


def _two_entries() -> dict[str, Any]:
    first = message_webhook("111", User(wa_id=ANA), {"type": "text", "text": {"body": "a"}}, "wamid.a")
    second = message_webhook("222", User(user_id="US.1", username="cleo"), reaction_message("wamid.x", "👍"), "w.b")
    first["entry"] += second["entry"]
    first["entry"][1]["changes"].append({"field": "messages", "value": {"metadata": {"phone_number_id": "333"}}})
    return first


def test_retarget_points_every_entry_at_the_runs_number_and_leaves_the_rest() -> None:
    body = _two_entries()
    expected = copy.deepcopy(body)
    for entry in expected["entry"]:
        for change in entry["changes"]:
            change["value"]["metadata"]["phone_number_id"] = "999"
    assert retarget(body, "999") == 3
    assert body == expected
    for odd in ({}, {"entry": "x"}, {"entry": [1, {"changes": [None, {"value": []}]}]}, [1], "text", None):
        before = copy.deepcopy(odd)
        assert retarget(odd, "999") == 0
        assert odd == before


def test_carried_messages_finds_each_message_with_its_contacts() -> None:
    found = carried_messages(_two_entries())
    assert [(m["id"], c[0].get("wa_id") or c[0]["user_id"]) for m, c in found] == [("wamid.a", ANA), ("w.b", "US.1")]
    assert carried_messages({"entry": [{"changes": [{"value": {"statuses": [{"id": "w"}]}}]}]}) == []
