"""What the sandbox accepts as WhatsApp media, and how the workers' Graph sends become chat bubbles."""

from __future__ import annotations

import asyncio

import pytest

from sandbox.chat import ChatMessage, ChatStore, outbound_message
from sandbox.uploads import MAX_IMAGE_BYTES, UploadError, prepare, sniff


@pytest.mark.parametrize(
    ("head", "mime"),
    [
        (b"\xff\xd8\xff\xe0", "image/jpeg"),
        (b"\x89PNG\r\n\x1a\n", "image/png"),
        (b"OggS\x00\x02", "audio/ogg"),
        (b"\x1a\x45\xdf\xa3", "audio/webm"),
        (b"ID3\x04", "audio/mpeg"),
        (b"\xff\xfb\x90", "audio/mpeg"),
        (b"\xff\xf1\x50", "audio/aac"),
        (b"#!AMR\n", "audio/amr"),
        (b"\x00\x00\x00\x20ftypM4A ", "audio/mp4"),
        (b"RIFF\x24\x00\x00\x00WAVEfmt ", "audio/wav"),
        (b"GIF89a", None),
        (b"%PDF-1.7", None),
        (b"hello", None),
    ],
)
def test_sniff_trusts_the_bytes_not_the_name(head: bytes, mime: str | None) -> None:
    assert sniff(head + b"\0" * 32) == mime


def test_prepare_refuses_what_whatsapp_would() -> None:
    with pytest.raises(UploadError) as wrong:
        asyncio.run(prepare(b"GIF89a" + b"\0" * 10, voice=False))
    assert wrong.value.status == 415
    with pytest.raises(UploadError) as large:
        asyncio.run(prepare(b"\xff\xd8\xff" + b"\0" * MAX_IMAGE_BYTES, voice=False))
    assert large.value.status == 413
    mp3 = asyncio.run(prepare(b"ID3\x04" + b"\0" * 64, voice=True))
    assert (mp3.kind, mp3.mime_type, mp3.voice) == ("audio", "audio/mpeg", False)  # only OGG/Opus is a voice note


def test_graph_sends_become_bubbles() -> None:
    text = outbound_message(
        {"to": "155", "type": "text", "text": {"body": "*hi*"}, "context": {"message_id": "wamid.in"}}, "wamid.out.1"
    )
    assert (text.user, text.direction, text.text, text.reply_to) == ("155", "out", "*hi*", "wamid.in")
    voice = outbound_message({"recipient": "US.1", "type": "audio", "audio": {"id": "media-up-3", "voice": True}}, "w2")
    assert (voice.user, voice.url, voice.voice) == ("US.1", "/media/media-up-3", True)


def test_read_receipt_turns_ticks_blue_and_shows_typing() -> None:
    store = ChatStore()

    async def run() -> list[dict]:
        queue = store.subscribe()
        store.add(outbound_message({"to": "155", "type": "text", "text": {"body": "x"}}, "wamid.out.1"))
        store.add(ChatMessage("wamid.in.1", "155", "in", "text", text="hello"))
        store.marked_read({"status": "read", "message_id": "wamid.in.1", "typing_indicator": {"type": "text"}})
        return [queue.get_nowait() for _ in range(queue.qsize())]

    events = asyncio.run(run())
    assert store.by_id["wamid.in.1"].status == "read"
    assert events[-1] == {"event": "typing", "user": "155", "on": True, "seconds": 25}


def test_a_read_receipt_marks_the_users_earlier_messages_read_too() -> None:
    """As Meta does: the answer to a burst marks its last message read, and the earlier ones turn blue with it."""
    store = ChatStore()
    for message_id in ("wamid.in.1", "wamid.in.2", "wamid.in.3", "wamid.in.4"):
        store.add(ChatMessage(message_id, "155", "in", "text", text=message_id))
    store.add(ChatMessage("wamid.other", "166", "in", "text", text="someone else"))
    store.update("wamid.in.1", status="failed")  # the API refused it: it never reached the bot
    store.marked_read({"status": "read", "message_id": "wamid.in.3"})
    statuses = {m.id: m.status for m in store.conversations["155"]}
    assert statuses == {"wamid.in.1": "failed", "wamid.in.2": "read", "wamid.in.3": "read", "wamid.in.4": "sent"}
    assert store.by_id["wamid.other"].status == "sent"


def test_the_bots_reaction_shows_on_the_message_it_reacts_to_not_as_a_bubble() -> None:
    store = ChatStore()
    store.add(ChatMessage("wamid.in.1", "155", "in", "text", text="hello"))
    eyes = {"to": "155", "type": "reaction", "reaction": {"message_id": "wamid.in.1", "emoji": "👀"}}
    assert store.reacted(eyes)
    assert store.by_id["wamid.in.1"].reaction == "👀"
    assert store.reacted({**eyes, "reaction": {"message_id": "wamid.in.1", "emoji": ""}})
    assert store.by_id["wamid.in.1"].to_json()["reaction"] == ""
    assert not store.reacted({**eyes, "reaction": {"message_id": "wamid.unknown", "emoji": "👀"}})
    assert [m.id for m in store.conversations["155"]] == ["wamid.in.1"]
