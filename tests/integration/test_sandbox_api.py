"""The sandbox's JSON API and its Meta halves, in-process in front of a recording API: every message becomes one
signed webhook; bad input gets a clear 4xx; every accepted send is reported sent/delivered/read."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from sandbox.webhooks import edit_message
from tests.dev_stack import DevStack, chatting_stack
from tests.fakes.groq_fake import API_KEY, GroqFake
from tests.fakes.server import wait_for
from tests.sandbox_harness import PHONE_NUMBER_ID, TOKEN, InProcessSandbox, RecordingApi
from tests.webhooks import MEDIA_FIXTURES

pytestmark = pytest.mark.integration
ANA = "15550001111"


@pytest.fixture(scope="module")
def recording_api() -> Iterator[RecordingApi]:
    api = RecordingApi()
    api.server.start()
    yield api
    api.server.stop()


@pytest.fixture(scope="module")
def sandbox(recording_api: RecordingApi) -> Iterator[InProcessSandbox]:
    running = InProcessSandbox(recording_api.url).start()
    yield running
    running.stop()


@pytest.fixture(autouse=True)
def _fresh(request: pytest.FixtureRequest, recording_api: RecordingApi) -> None:
    if "sandbox" in request.fixturenames:  # the previous test's sends are still reported sent/delivered/read
        running: InProcessSandbox = request.getfixturevalue("sandbox")
        wait_for(lambda: not running.sandbox.reporting, what="the previous test's status webhooks")
    with recording_api.lock:
        recording_api.requests.clear()
    recording_api.answer = (200, {})


def _ffprobe(data: bytes, tmp_path: Path) -> dict:
    path = tmp_path / "probe.bin"
    path.write_bytes(data)
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_format", "-show_streams", "-of", "json", str(path)],
        capture_output=True,
        check=True,
    )
    return json.loads(out.stdout)


def test_text_becomes_one_signed_webhook(sandbox: InProcessSandbox, recording_api: RecordingApi) -> None:
    answer = httpx.post(f"{sandbox.url}/api/messages", json={"from": ANA, "text": "hi *there*"})
    assert answer.status_code == 202
    wamid = answer.json()["message_id"]
    assert wamid.startswith("wamid.")
    (body,) = recording_api.webhooks()
    value = body["entry"][0]["changes"][0]["value"]
    assert value["metadata"]["phone_number_id"] == PHONE_NUMBER_ID
    assert value["messages"][0] == {**value["messages"][0], "from": ANA, "id": wamid, "type": "text"}
    assert value["messages"][0]["text"] == {"body": "hi *there*"}
    assert all(ok for _, _, ok, _ in recording_api.requests)
    messages = httpx.get(f"{sandbox.url}/api/conversations/{ANA}").json()["messages"]
    assert messages[-1] | {"direction": "in", "type": "text", "text": "hi *there*", "id": wamid} == messages[-1]


def test_username_user_has_a_bsuid_and_no_phone(sandbox: InProcessSandbox, recording_api: RecordingApi) -> None:
    payload = {"user_id": "US.13491208655302741918", "username": "cleo", "text": "hello"}
    assert httpx.post(f"{sandbox.url}/api/messages", json=payload).status_code == 202
    (message,) = recording_api.messages()
    assert "from" not in message and message["from_user_id"] == "US.13491208655302741918"
    contact = recording_api.webhooks()[0]["entry"][0]["changes"][0]["value"]["contacts"][0]
    assert "wa_id" not in contact and contact["profile"]["username"] == "cleo"


def test_location_and_photo_with_caption(sandbox: InProcessSandbox, recording_api: RecordingApi) -> None:
    location = {"latitude": 52.52, "longitude": 13.405, "name": "Berlin"}
    assert httpx.post(f"{sandbox.url}/api/messages", json={"from": ANA, "location": location}).status_code == 202
    photo = (MEDIA_FIXTURES / "photo.jpg").read_bytes()
    answer = httpx.post(
        f"{sandbox.url}/api/messages",
        data={"from": ANA, "caption": "what is this?"},
        files={"file": ("p.jpg", photo, "image/jpeg")},
    )
    assert answer.status_code == 202, answer.text
    first, second = recording_api.messages()
    assert first["type"] == "location" and first["location"]["name"] == "Berlin"
    assert second["type"] == "image" and second["image"]["caption"] == "what is this?"
    # The worker fetches it from the Graph half, with the token, exactly as from Meta.
    auth = {"Authorization": f"Bearer {TOKEN}"}
    info = httpx.get(f"{sandbox.url}/v25.0/{second['image']['id']}", headers=auth).json()
    assert info["mime_type"] == "image/jpeg" and info["sha256"] == second["image"]["sha256"]
    assert httpx.get(info["url"], headers=auth).content == photo
    assert httpx.get(info["url"]).status_code == 401


def test_a_recording_is_remuxed_to_ogg_opus_voice_note(
    sandbox: InProcessSandbox, recording_api: RecordingApi, tmp_path: Path
) -> None:
    # What a browser's MediaRecorder gives: WebM with Opus.
    webm = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(MEDIA_FIXTURES / "voice-en.ogg"), "-c:a", "copy", "-f", "webm", "pipe:1"],
        capture_output=True,
        check=True,
    ).stdout
    answer = httpx.post(
        f"{sandbox.url}/api/messages",
        data={"from": ANA, "voice": "true"},
        files={"file": ("voice.webm", webm, "audio/webm")},
    )
    assert answer.status_code == 202, answer.text
    (message,) = recording_api.messages()
    assert message["type"] == "audio" and message["audio"]["voice"] is True
    assert message["audio"]["mime_type"] == "audio/ogg"
    data = httpx.get(f"{sandbox.url}{answer.json()['message']['url']}").content
    probe = _ffprobe(data, tmp_path)
    assert probe["format"]["format_name"] == "ogg" and probe["streams"][0]["codec_name"] == "opus"


@pytest.mark.parametrize(
    ("request_kwargs", "status", "says"),
    [
        ({"json": {"from": ANA, "text": "   "}}, 400, "empty"),
        ({"json": {"text": "hi"}}, 400, "who sends it"),
        ({"json": {"from": "+1 555", "text": "hi"}}, 400, "digits"),
        ({"json": {"from": ANA, "text": "x" * 4097}}, 400, "4096"),
        ({"json": {"from": ANA, "location": {"latitude": "north"}}}, 400, "latitude"),
        ({"content": b"not json", "headers": {"content-type": "application/json"}}, 400, "JSON"),
        ({"data": {"from": ANA}, "files": {"file": ("a.txt", b"just some text", "text/plain")}}, 415, "unsupported"),
        ({"data": {"from": ANA}}, 400, "file"),
        ({"json": {"from": ANA, "text": 123}}, 400, "must be a string"),
        (  # two files in one form: Starlette's own refusal, in our JSON shape
            {
                "data": {"from": ANA},
                "files": [("file", ("a.jpg", b"x", "image/jpeg")), ("file", ("b.jpg", b"y", "image/jpeg"))],
            },
            400,
            "upload could not be read",
        ),
    ],
)
def test_bad_input_gets_a_clear_4xx(
    sandbox: InProcessSandbox, request_kwargs: dict, status: int, says: str, recording_api: RecordingApi
) -> None:
    answer = httpx.post(f"{sandbox.url}/api/messages", **request_kwargs)
    assert answer.status_code == status, answer.text
    assert says in answer.json()["error"]
    assert recording_api.webhooks() == []  # nothing reached the API


def test_a_50_mb_upload_is_refused_with_413(sandbox: InProcessSandbox, recording_api: RecordingApi) -> None:
    big = b"\xff\xd8\xff" + b"\0" * (50 * 1024 * 1024)
    answer = httpx.post(
        f"{sandbox.url}/api/messages", data={"from": ANA}, files={"file": ("big.jpg", big, "image/jpeg")}, timeout=60
    )
    assert answer.status_code == 413 and "MB" in answer.json()["error"]
    assert recording_api.webhooks() == []
    assert httpx.get(f"{sandbox.url}/api/health").status_code == 200


def test_every_accepted_send_is_reported_sent_delivered_read(
    sandbox: InProcessSandbox, recording_api: RecordingApi
) -> None:
    """The Graph half, called as a worker calls it: the reply shows in the conversation, and status webhooks echo
    biz_opaque_callback_data."""
    inbound = httpx.post(f"{sandbox.url}/api/messages", json={"from": ANA, "text": "ping"}).json()["message_id"]
    auth = {"Authorization": f"Bearer {TOKEN}"}
    graph = f"{sandbox.url}/v25.0/{PHONE_NUMBER_ID}/messages"
    read = {
        "messaging_product": "whatsapp",
        "status": "read",
        "message_id": inbound,
        "typing_indicator": {"type": "text"},
    }
    assert httpx.post(graph, json=read, headers=auth).json() == {"success": True}
    send = {
        "messaging_product": "whatsapp",
        "to": ANA,
        "type": "text",
        "text": {"body": "pong"},
        "context": {"message_id": inbound},
        "biz_opaque_callback_data": "part-0",
    }
    sent = httpx.post(graph, json=send, headers=auth).json()
    wamid = sent["messages"][0]["id"]
    assert httpx.post(graph, json=send, headers={"Authorization": "Bearer wrong"}).status_code == 401
    statuses = wait_for(lambda: len(recording_api.statuses()) >= 3 and recording_api.statuses(), what="3 statuses")
    assert [s["status"] for s in statuses] == ["sent", "delivered", "read"]
    assert {s["id"] for s in statuses} == {wamid}
    assert all(s["biz_opaque_callback_data"] == "part-0" and s["recipient_id"] == ANA for s in statuses)
    messages = httpx.get(f"{sandbox.url}/api/conversations/{ANA}").json()["messages"]
    mine, reply = messages[-2], messages[-1]
    assert mine["id"] == inbound and mine["status"] == "read"
    assert reply | {"direction": "out", "text": "pong", "reply_to": inbound, "status": "read"} == reply


def _bot_says(sandbox: InProcessSandbox, text: str, to: str = ANA) -> str:
    """A worker's Graph send, as in production; returns the wamid the stand-in answered with."""
    send = {"messaging_product": "whatsapp", "to": to, "type": "text", "text": {"body": text}}
    answer = httpx.post(
        f"{sandbox.url}/v25.0/{PHONE_NUMBER_ID}/messages", json=send, headers={"Authorization": f"Bearer {TOKEN}"}
    )
    return str(answer.json()["messages"][0]["id"])


def _shown(sandbox: InProcessSandbox, message_id: str, address: str = ANA) -> dict[str, Any]:
    messages = httpx.get(f"{sandbox.url}/api/conversations/{address}").json()["messages"]
    return dict(next(m for m in messages if m["id"] == message_id))


def test_edit_delete_and_react_are_signed_messages_of_their_own(
    sandbox: InProcessSandbox, recording_api: RecordingApi
) -> None:
    """Each is one webhook from the bubble's user with a new id naming the bubble (Meta's shapes); the bubble
    changes in place: edited text with its mark, deleted, the user's reaction on the bot's message."""
    typed = httpx.post(f"{sandbox.url}/api/messages", json={"from": ANA, "text": "helo"}).json()["message_id"]
    other = httpx.post(f"{sandbox.url}/api/messages", json={"from": ANA, "text": "oops"}).json()["message_id"]
    bot = _bot_says(sandbox, "hi Ana")
    base = f"{sandbox.url}/api/messages"

    edited = httpx.post(f"{base}/{typed}/edit", json={"text": "hello"})
    assert edited.status_code == 202, edited.text
    assert edited.json()["message"] | {"id": typed, "text": "hello", "edited": True} == edited.json()["message"]
    assert httpx.post(f"{base}/{other}/delete").status_code == 202
    assert httpx.post(f"{base}/{bot}/reaction", json={"emoji": "👍"}).status_code == 202
    assert _shown(sandbox, bot)["user_reaction"] == "👍"
    assert httpx.post(f"{base}/{bot}/reaction", json={"emoji": ""}).status_code == 202

    edit, revoke, react, unreact = recording_api.messages()[2:]
    assert edit["type"] == "edit" and edit["from"] == ANA and edit["id"] == edited.json()["message_id"] != typed
    assert edit["edit"] == {"original_message_id": typed, "message": {"type": "text", "text": {"body": "hello"}}}
    assert revoke["type"] == "revoke" and revoke["revoke"] == {"original_message_id": other}
    assert react["reaction"] == {"message_id": bot, "emoji": "👍"} and react["from"] == ANA
    assert unreact["reaction"] == {"message_id": bot, "emoji": ""}
    assert len({m["id"] for m in recording_api.messages()}) == 6  # every one a message id of its own
    assert all(ok for _, _, ok, _ in recording_api.requests)
    assert _shown(sandbox, typed) | {"text": "hello", "edited": True} == _shown(sandbox, typed)
    assert _shown(sandbox, other)["deleted"] is True and "text" not in _shown(sandbox, other)
    assert _shown(sandbox, bot)["user_reaction"] == ""
    conversation = httpx.get(f"{sandbox.url}/api/conversations/{ANA}").json()["messages"]
    assert [m["id"] for m in conversation][-3:] == [typed, other, bot]  # no bubble of their own


def test_a_photo_caption_edit_sends_the_photo_again_with_the_new_caption(
    sandbox: InProcessSandbox, recording_api: RecordingApi
) -> None:
    """As Meta's own example of an edit: the photo's image object (same media id) with the new caption."""
    photo = (MEDIA_FIXTURES / "photo.jpg").read_bytes()
    sent = httpx.post(
        f"{sandbox.url}/api/messages",
        data={"from": ANA, "caption": "what flower is this?"},
        files={"file": ("p.jpg", photo, "image/jpeg")},
    ).json()["message_id"]
    edited = httpx.post(f"{sandbox.url}/api/messages/{sent}/edit", json={"text": "what tree is this?"})
    assert edited.status_code == 202, edited.text
    assert edited.json()["message"] | {"caption": "what tree is this?", "edited": True} == edited.json()["message"]
    original, edit = recording_api.messages()
    assert edit["edit"] == {
        "original_message_id": sent,
        "message": {"type": "image", "image": {**original["image"], "caption": "what tree is this?"}},
    }
    assert _shown(sandbox, sent)["caption"] == "what tree is this?"
    too_long = httpx.post(f"{sandbox.url}/api/messages/{sent}/edit", json={"text": "x" * 1025})
    assert too_long.status_code == 400 and "1024" in too_long.json()["error"]
    bare = httpx.post(f"{sandbox.url}/api/messages", data={"from": ANA}, files={"file": ("p.jpg", photo, "image/jpeg")})
    no_caption = httpx.post(f"{sandbox.url}/api/messages/{bare.json()['message_id']}/edit", json={"text": "x"})
    assert no_caption.status_code == 400 and "photo captions" in no_caption.json()["error"]
    assert len(recording_api.messages()) == 3  # the refused edits reached nothing


def test_a_username_user_edits_as_from_user_id(sandbox: InProcessSandbox, recording_api: RecordingApi) -> None:
    cleo = {"user_id": "US.13491208655302741918", "username": "cleo"}
    typed = httpx.post(f"{sandbox.url}/api/messages", json={**cleo, "text": "hi"}).json()["message_id"]
    assert httpx.post(f"{sandbox.url}/api/messages/{typed}/edit", json={"text": "hey"}).status_code == 202
    edit = recording_api.messages()[-1]
    assert edit["from_user_id"] == cleo["user_id"] and "from" not in edit


def test_bad_actions_get_a_clear_4xx_and_reach_nothing(sandbox: InProcessSandbox, recording_api: RecordingApi) -> None:
    typed = httpx.post(f"{sandbox.url}/api/messages", json={"from": ANA, "text": "hi"}).json()["message_id"]
    location = {"from": ANA, "location": {"latitude": 1, "longitude": 2}}
    place = httpx.post(f"{sandbox.url}/api/messages", json=location).json()["message_id"]
    bot = _bot_says(sandbox, "hello")
    base = f"{sandbox.url}/api/messages"
    cases = [
        (f"{base}/wamid.nope/edit", {"text": "x"}, 404, "no such message"),
        (f"{base}/{bot}/edit", {"text": "x"}, 400, "own messages"),
        (f"{base}/{bot}/delete", {}, 400, "own messages"),
        (f"{base}/{place}/edit", {"text": "x"}, 400, "only text"),
        (f"{base}/{typed}/edit", {"text": "  "}, 400, "empty"),
        (f"{base}/{typed}/edit", {"text": "x" * 4097}, 400, "4096"),
        (f"{base}/{typed}/reaction", {"emoji": "👍"}, 400, "bot's messages"),
        (f"{base}/{bot}/reaction", {"emoji": "yes"}, 400, "one emoji"),
        (f"{base}/{bot}/reaction", {}, 400, "one emoji"),
        (f"{base}/{bot}/reaction", {"emoji": "👍😂"}, 400, "one emoji"),
        (f"{base}/{bot}/reaction", {"emoji": "👍👍"}, 400, "one emoji"),
        (f"{base}/{bot}/reaction", {"emoji": "a👍"}, 400, "one emoji"),
        (f"{base}/{typed}/edit", {"text": 123}, 400, "must be a string"),
    ]
    with recording_api.lock:
        recording_api.requests.clear()
    for url, payload, status, says in cases:
        answer = httpx.post(url, json=payload)
        assert (answer.status_code, says in answer.json()["error"]) == (status, True), (url, answer.text)
    assert (
        httpx.post(f"{base}/{typed}/edit", content=b"{", headers={"content-type": "application/json"}).status_code
        == 400
    )
    assert recording_api.messages() == []  # (the bot's message's own status webhooks go on)
    assert httpx.post(f"{base}/{typed}/delete").status_code == 202
    deleted_again = httpx.post(f"{base}/{typed}/edit", json={"text": "x"})
    assert deleted_again.status_code == 400 and "deleted" in deleted_again.json()["error"]


def test_one_emoji_of_any_shape_is_a_reaction(sandbox: InProcessSandbox, recording_api: RecordingApi) -> None:
    """A skin tone, a variation selector, a joined family, a flag and a keycap are each one emoji."""
    bot = _bot_says(sandbox, "hello")
    for shape in ("👍🏽", "❤️", "👨\u200d👩\u200d👧", "🇩🇪", "1️⃣"):
        answer = httpx.post(f"{sandbox.url}/api/messages/{bot}/reaction", json={"emoji": shape})
        assert answer.status_code == 202, (shape, answer.text)
        assert _shown(sandbox, bot)["user_reaction"] == shape
    assert [m["reaction"]["emoji"] for m in recording_api.messages()] == ["👍🏽", "❤️", "👨\u200d👩\u200d👧", "🇩🇪", "1️⃣"]


def test_a_refused_action_changes_no_bubble(sandbox: InProcessSandbox, recording_api: RecordingApi) -> None:
    typed = httpx.post(f"{sandbox.url}/api/messages", json={"from": ANA, "text": "hi"}).json()["message_id"]
    recording_api.answer = (400, {"error": "no"})
    answer = httpx.post(f"{sandbox.url}/api/messages/{typed}/edit", json={"text": "changed"})
    assert answer.status_code == 502 and "400" in answer.json()["error"]
    assert _shown(sandbox, typed)["text"] == "hi" and not _shown(sandbox, typed)["edited"]


def _meta_docs_text(message_id: str, text: str) -> dict[str, Any]:
    """A text message webhook as Meta's docs print it: their phone number id, not this run's."""
    return {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": "WHATSAPP_BUSINESS_ACCOUNT_ID",
                "changes": [
                    {
                        "field": "messages",
                        "value": {
                            "messaging_product": "whatsapp",
                            "metadata": {"display_phone_number": "15551234567", "phone_number_id": "PHONE_NUMBER_ID"},
                            "contacts": [{"profile": {"name": "Kerry Fisher"}, "wa_id": "16315551234"}],
                            "messages": [
                                {
                                    "from": "16315551234",
                                    "id": message_id,
                                    "timestamp": "1683229471",
                                    "type": "text",
                                    "text": {"body": text},
                                }
                            ],
                        },
                    }
                ],
            }
        ],
    }


def test_a_posted_webhook_body_is_pointed_at_this_run_signed_and_forwarded(
    sandbox: InProcessSandbox, recording_api: RecordingApi
) -> None:
    kerry = "16315551234"
    answer = httpx.post(f"{sandbox.url}/api/webhook", json=_meta_docs_text("wamid.docs.1", "from the docs"))
    assert answer.status_code == 200, answer.text
    (method, path, signed, body), *_ = recording_api.requests
    assert (method, path, signed) == ("POST", "/webhook", True)  # signed over the very bytes forwarded
    assert body["entry"][0]["changes"][0]["value"]["metadata"]["phone_number_id"] == PHONE_NUMBER_ID
    assert body["entry"][0]["changes"][0]["value"]["messages"][0]["text"] == {"body": "from the docs"}
    assert _shown(sandbox, "wamid.docs.1", kerry) | {"direction": "in", "text": "from the docs"} == _shown(
        sandbox, "wamid.docs.1", kerry
    )

    # An edit in a body of its own updates that bubble; a status body goes through as it is.
    edit = _meta_docs_text("wamid.docs.2", "")
    edit["entry"][0]["changes"][0]["value"]["messages"][0] |= {"type": "edit"} | edit_message("wamid.docs.1", "fixed")
    del edit["entry"][0]["changes"][0]["value"]["messages"][0]["text"]
    assert httpx.post(f"{sandbox.url}/api/webhook", json=edit).status_code == 200
    assert _shown(sandbox, "wamid.docs.1", kerry) | {"text": "fixed", "edited": True} == _shown(
        sandbox, "wamid.docs.1", kerry
    )
    status = {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": "1",
                "changes": [
                    {
                        "field": "messages",
                        "value": {
                            "messaging_product": "whatsapp",
                            "metadata": {"phone_number_id": "1"},
                            "statuses": [
                                {"id": "wamid.x", "status": "failed", "timestamp": "1", "recipient_id": kerry}
                            ],
                        },
                    }
                ],
            }
        ],
    }
    assert httpx.post(f"{sandbox.url}/api/webhook", json=status).status_code == 200
    assert recording_api.statuses()[-1]["status"] == "failed"


def test_a_posted_webhook_gets_the_apis_own_answer(sandbox: InProcessSandbox, recording_api: RecordingApi) -> None:
    recording_api.answer = (422, {"detail": "unsupported"})
    answer = httpx.post(f"{sandbox.url}/api/webhook", json={"object": "page", "entry": []})
    assert (answer.status_code, answer.json()) == (422, {"detail": "unsupported"})


@pytest.mark.parametrize(
    ("content", "says"),
    [(b"{not json", "not JSON"), (b"", "not JSON"), (b"\xff\xfe", "not JSON"), (b"[1, 2]", "JSON object")],
)
def test_a_posted_webhook_that_is_not_a_json_object_gets_400(
    sandbox: InProcessSandbox, recording_api: RecordingApi, content: bytes, says: str
) -> None:
    answer = httpx.post(f"{sandbox.url}/api/webhook", content=content, headers={"content-type": "application/json"})
    assert answer.status_code == 400 and says in answer.json()["error"]
    assert recording_api.webhooks() == []


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, groq_fake: GroqFake) -> Iterator[DevStack]:
    """`make run`'s whole stack (Redis, API, the pools, the sandbox) with the Groq fake behind the workers."""
    with chatting_stack(tmp_path_factory.mktemp("make-run"), groq_fake.url, API_KEY) as running:
        yield running


def test_through_the_service_an_edit_before_the_answer_gets_one_answer_and_a_reaction_none(
    stack: DevStack, groq_fake: GroqFake
) -> None:
    """The real API and workers: a message edited while its answer is being written is answered once, to the edited
    words; the user's reaction to that answer is feedback, never answered."""
    groq_fake.chat_reply = lambda body: f"You asked: {body['messages'][-1]['content']}"
    groq_fake.hold_chat.set()  # the original's answer is being written when the edit arrives
    base, user = f"{stack.sandbox_url}/api/messages", "15550002222"
    typed = httpx.post(base, json={"from": user, "text": "capital of Frence?"}, timeout=30).json()["message_id"]
    wait_for(lambda: groq_fake.calls_to("chat/completions"), timeout=60, what="the original's model call")
    edited = httpx.post(f"{base}/{typed}/edit", json={"text": "capital of France?"}, timeout=30)
    assert edited.status_code == 202, edited.text
    groq_fake.release_chat.set()

    def answers() -> list[dict[str, Any]]:
        messages = httpx.get(f"{stack.sandbox_url}/api/conversations/{user}").json()["messages"]
        return [m for m in messages if m["direction"] == "out" and m["type"] == "text"]

    (answer,) = wait_for(answers, timeout=60, what="the answer to the edited message")
    assert answer["text"] == "You asked: capital of France?" and answer["reply_to"] == typed
    reacted = httpx.post(f"{base}/{answer['id']}/reaction", json={"emoji": "👍"}, timeout=30)
    assert reacted.status_code == 202 and reacted.json()["message"]["user_reaction"] == "👍"
    # The conversation's mailbox runs in order: once the next message is answered, the reaction has been handled.
    httpx.post(base, json={"from": user, "text": "thanks"}, timeout=30)
    wait_for(lambda: len(answers()) == 2, timeout=60, what="the answer to the next message")
    assert [a["text"] for a in answers()] == ["You asked: capital of France?", "You asked: thanks"]
    assert "Frence" not in json.dumps(httpx.get(f"{stack.sandbox_url}/api/conversations/{user}").json())


def test_loopera_sandbox_refuses_a_real_token(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG")}
    env |= {"WHATSAPP_TOKEN": "EAAGreal", "APP_SECRET": "s" * 32, "PHONE_NUMBER_ID": "123", "SANDBOX_PORT": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "loopera.cli", "sandbox"],
        cwd=tmp_path,  # no .env
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "refuses to start" in result.stderr and "WHATSAPP_TOKEN" in result.stderr


def test_an_api_that_is_down_is_named(recording_api: RecordingApi) -> None:
    down = InProcessSandbox("http://127.0.0.1:9").start()
    try:
        answer = httpx.post(f"{down.url}/api/messages", json={"from": ANA, "text": "hi"})
        assert answer.status_code == 502 and "is it running" in answer.json()["error"]
        forwarded = httpx.post(f"{down.url}/api/webhook", json=_meta_docs_text("wamid.docs.3", "hi"))
        assert forwarded.status_code == 502 and "is it running" in forwarded.json()["error"]
    finally:
        down.stop()
