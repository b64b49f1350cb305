"""Edits, deletions and reactions: the pure parts (payload reading, memory rewriting, reaction labels) and the
API's decision script against a real redis-server."""

from __future__ import annotations

import redis

from shared.amendments import amended_message_id, edited_message
from shared.jobs import queue_for_message
from shared.ledger import LEDGER_PREFIX, ledger_key
from shared.redis_scripts import ScriptName, ScriptResult, lua_source
from workers.delivery.memory import MemoryEntry, with_user_words, without_message
from workers.pipelines.feedback import reaction_label
from workers.pipelines.message_types import Reply, route_for


def turn(role: str, content: str, ref: str = "", of: str = "") -> MemoryEntry:
    entry: dict[str, object] = {"role": role, "content": content, "kind": "text", "ts": 1.0}
    if ref:
        entry["ref"] = ref
    if of:
        entry["of"] = of
    return entry  # type: ignore[return-value]


def test_the_original_of_an_edit_or_revoke_and_the_edited_message() -> None:
    new = {"type": "text", "text": {"body": "six"}}
    assert amended_message_id({"type": "edit", "edit": {"original_message_id": "wamid.A", "message": new}}) == "wamid.A"
    assert amended_message_id({"type": "revoke", "revoke": {"original_message_id": "wamid.B"}}) == "wamid.B"
    assert edited_message({"type": "edit", "edit": {"message": new}}) == new
    for odd in (
        {"type": "text"},
        {"type": "edit", "edit": "x"},
        {"type": "revoke", "revoke": {"original_message_id": 7}},
    ):
        assert amended_message_id(odd) is None
    assert edited_message({"type": "edit", "edit": {"message": "text"}}) is None


def test_an_edited_photo_caption_goes_to_the_vision_queue_and_every_other_amendment_to_text() -> None:
    photo = {"type": "image", "image": {"id": "1234567890", "mime_type": "image/jpeg", "caption": "new"}}
    assert queue_for_message({"type": "edit", "edit": {"original_message_id": "wamid.A", "message": photo}}) == "vision"
    for message in (
        {
            "type": "edit",
            "edit": {"original_message_id": "wamid.A", "message": {"type": "text", "text": {"body": "x"}}},
        },
        {"type": "edit", "edit": "not an object"},
        {"type": "edit"},
        {"type": "revoke", "revoke": {"original_message_id": "wamid.B"}},
    ):
        assert queue_for_message(message) == "text"
    assert queue_for_message(photo) == "vision" and queue_for_message({"type": "audio"}) == "audio"


def test_edits_are_answered_revokes_and_reactions_are_not() -> None:
    assert route_for({"type": "edit", "edit": {}}).reply is Reply.AI
    assert route_for({"type": "revoke", "revoke": {}}).reply is Reply.NONE
    assert route_for({"type": "reaction", "reaction": {}}).reply is Reply.NONE


def test_an_edit_replaces_the_words_of_its_message_and_of_earlier_edits_only() -> None:
    turns = [
        turn("user", "old", ref="a"),
        turn("assistant", "answer", ref="a"),
        turn("user", "other", ref="b"),
        turn("user", "legacy"),  # stored before refs existed: readable, never matched
    ]
    changed = with_user_words(turns, "a", "new")
    assert [t["content"] for t in changed] == ["new", "answer", "other", "legacy"]
    edited_once = [turn("user", "first edit", ref="e1", of="a"), turn("assistant", "x", ref="e1", of="a")]
    assert with_user_words(edited_once, "a", "second edit")[0]["content"] == "second edit"
    assert with_user_words(turns, "zzz", "new") == turns


def test_a_revoke_removes_the_whole_turn_and_its_edits() -> None:
    turns = [
        turn("user", "secret", ref="a"),
        turn("assistant", "noted", ref="a"),
        turn("user", "(corrected an earlier message)", ref="e", of="a"),
        turn("user", "keep", ref="b"),
        turn("user", "legacy"),
    ]
    assert [t["content"] for t in without_message(turns, "a")] == ["keep", "legacy"]


def test_reaction_labels_are_a_small_set() -> None:
    assert reaction_label("👍") == reaction_label("👍🏽") == "👍"
    assert reaction_label("❤️") == reaction_label("❤") == "❤"
    assert reaction_label("🦜") == "other"
    assert reaction_label("") == "removed"


def amend(client: redis.Redis, *items: tuple[str, str, str]) -> list[ScriptResult]:
    script = client.register_script(lua_source(ScriptName.LEDGER_AMEND))
    keys: list[str] = []
    args: list[str | int] = [LEDGER_PREFIX, 3600]
    for kind, ref, original in items:
        keys += (ledger_key(original), ledger_key(ref))
        args += (kind, ref, original)
    return [ScriptResult(int(code)) for code in script(keys=keys, args=args)]


def fields(client: redis.Redis, ref: str) -> dict[str, str]:
    return {k.decode(): v.decode() for k, v in client.hgetall(ledger_key(ref)).items()}


def test_an_edit_before_any_answer_supersedes_the_original_and_a_second_edit_the_first(client: redis.Redis) -> None:
    client.hset(ledger_key("orig"), mapping={"conv": "c", "send:ack:eyes": "done"})  # 👀 is not an answer
    assert amend(client, ("edit", "e1", "orig")) == [ScriptResult.AMEND_INSTEAD]
    assert fields(client, "orig")["flag:superseded"] == "e1"
    assert fields(client, "e1")["amend"] == "instead" and fields(client, "e1")["amend_of"] == "orig"
    assert 0 < client.ttl(ledger_key("e1")) <= 3600
    client.hset(ledger_key("e1"), "conv", "c")  # INGEST wrote the edit's ledger
    assert amend(client, ("edit", "e2", "orig")) == [ScriptResult.AMEND_INSTEAD]
    assert fields(client, "e1")["flag:superseded"] == "e2"
    assert fields(client, "orig")["superseded_by"] == "e2"
    # A redelivered edit keeps the decision it got first.
    assert amend(client, ("edit", "e1", "orig")) == [ScriptResult.AMEND_INSTEAD]


def test_a_part_sent_or_being_sent_makes_the_amendment_come_after(client: redis.Redis) -> None:
    client.hset(ledger_key("sending"), mapping={"conv": "c", "send:text:0": "sending", "send:text:0:until": "9"})
    client.hset(ledger_key("sent"), mapping={"conv": "c", "send:voice": "done"})
    results = amend(client, ("edit", "e", "sending"), ("revoke", "r", "sent"), ("revoke", "r2", "never-received"))
    assert results == [ScriptResult.AMEND_AFTER] * 3
    assert "flag:superseded" not in fields(client, "sending") and "flag:cancelled" not in fields(client, "sent")
    assert not client.exists(ledger_key("never-received"))


def test_a_message_answered_with_its_burst_is_amended_after_the_burst_answer(client: redis.Redis) -> None:
    """The burst's answer answers other messages too: an edit or revoke of one member never stops it."""
    client.hset(ledger_key("member"), mapping={"conv": "c", "flag:merged": "last"})
    client.hset(ledger_key("last"), mapping={"conv": "c", "burst": '["member", "last"]'})
    results = amend(client, ("edit", "e", "member"), ("revoke", "r", "last"))
    assert results == [ScriptResult.AMEND_AFTER, ScriptResult.AMEND_AFTER]
    assert "flag:superseded" not in fields(client, "member")
    assert "flag:cancelled" not in fields(client, "last") and "flag:superseded" not in fields(client, "last")


def test_a_revoke_before_the_answer_cancels_it_even_when_an_edit_holds_it(client: redis.Redis) -> None:
    client.hset(ledger_key("orig"), "conv", "c")
    amend(client, ("edit", "e1", "orig"))
    client.hset(ledger_key("e1"), "conv", "c")
    assert amend(client, ("revoke", "r", "orig")) == [ScriptResult.AMEND_CANCELLED]
    assert fields(client, "e1")["flag:cancelled"] == "r"


def test_trace_shows_feedback_and_what_an_amendment_decided() -> None:
    from loopera.trace import render

    base = {"received_ms": "1000", "queued": "2", "runs": "1"}
    answered = render("a" * 32, base | {"feedback:text:0": "👍", "feedback:text:0:at": "3000"}, b"k")
    assert any(line.startswith("  feedback     text:0: 👍") for line in answered)
    edited = render("b" * 32, base | {"superseded_by": "c" * 32, "flag:superseded": "c" * 32}, b"k")
    assert "  edited       answered as edit cccccccccccc" in edited
    edit = render("c" * 32, base | {"amend": "instead", "amend_of": "b" * 32}, b"k")
    assert any(line.startswith("  amends       message bbbbbbbbbbbb: edited before") for line in edit)
