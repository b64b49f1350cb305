"""Images end to end: webhook -> API -> Redis -> real vision worker -> Graph fake (download) -> Groq fake (vision)."""

from __future__ import annotations

import base64
import io
import os
import time
import uuid
from typing import Any

import orjson
import pytest
import redis
from PIL import Image

from tests.fakes.graph_fake import GraphFake, graph_error
from tests.fakes.groq_fake import GroqFake
from tests.fakes.server import Fault, wait_for
from tests.processes import ServiceProcess
from tests.webhooks import MEDIA_FIXTURES, conversation_of, message_body, text_message
from workers.text.phrases import PHRASES

pytestmark = pytest.mark.integration

PHOTO = (MEDIA_FIXTURES / "photo.jpg").read_bytes()


def image_message(sender: str | None, media_id: str, caption: str | None = None) -> dict[str, Any]:
    image: dict[str, Any] = {"mime_type": "image/jpeg", "sha256": "x", "id": media_id}
    if caption is not None:
        image["caption"] = caption
    message: dict[str, Any] = {
        "id": f"wamid.{uuid.uuid4().hex}",
        "timestamp": str(int(time.time())),
        "type": "image",
        "image": image,
    }
    if sender:
        message["from"] = sender
    return message


def noise_png(side: int) -> bytes:
    out = io.BytesIO()
    Image.frombytes("RGB", (side, side), os.urandom(side * side * 3)).save(out, format="PNG")
    return out.getvalue()


def memory_of(client: redis.Redis, conversation: str) -> list[dict[str, Any]]:
    return [orjson.loads(item) for item in client.lrange(f"lp:mem:{conversation_of(conversation)}", 0, -1)]


def test_image_with_caption_reaches_the_vision_model_as_a_data_url(
    webhooks, worker_service: ServiceProcess, graph_fake: GraphFake, groq_fake: GroqFake, redis_client: redis.Redis
) -> None:
    user = "15550100001"
    graph_fake.add_media("media-photo-1", PHOTO, "image/jpeg")
    message = image_message(user, "media-photo-1", "What is shown in this picture?")
    assert webhooks.post(message_body([message], sender=user)).status_code == 200

    texts = wait_for(lambda: graph_fake.texts_to(user), what="the image reply")
    assert texts == ["You said: What is shown in this picture?"]
    sent = graph_fake.sent_messages()[0]
    assert sent["context"] == {"message_id": message["id"]}
    assert graph_fake.read_receipts()[0]["message_id"] == message["id"]

    [(call, [part])] = groq_fake.image_requests()
    assert call.model == "qwen/qwen3.8-27b"
    # A small JPEG goes through byte for byte, as a base64 data URL, next to the caption.
    assert part.url == "data:image/jpeg;base64," + base64.b64encode(PHOTO).decode()
    assert part.texts == ["What is shown in this picture?"]
    assert call.body["messages"][0]["role"] == "system"
    # The token went to the Graph fake for the media lookup and the download.
    media_gets = [r for r in graph_fake.requests if r.method == "GET"]
    assert len(media_gets) == 2
    assert all(r.authorization == "Bearer test-whatsapp-token" for r in media_gets)

    turns = memory_of(redis_client, user)
    assert [(t["role"], t["kind"]) for t in turns] == [("user", "image"), ("assistant", "text")]
    assert turns[0]["content"] == "What is shown in this picture?"


def test_image_over_4_mb_is_shrunk_and_still_answered(
    webhooks, worker_service: ServiceProcess, graph_fake: GraphFake, groq_fake: GroqFake
) -> None:
    user = "15550100002"
    big = noise_png(1400)
    assert len(big) > 4 * 1024 * 1024
    graph_fake.add_media("media-big-1", big, "image/png")
    webhooks.post(message_body([image_message(user, "media-big-1", "Describe it")], sender=user))

    assert wait_for(lambda: graph_fake.texts_to(user), what="the reply to a big image") == ["You said: Describe it"]
    [(_, [part])] = groq_fake.image_requests()
    assert part.mime_type == "image/jpeg"
    assert len(part.url.partition(",")[2]) <= 4_000_000
    shrunk = Image.open(io.BytesIO(part.data))
    assert shrunk.format == "JPEG"
    assert shrunk.size[0] <= 1400


def test_image_without_caption_asks_in_the_users_language_with_history(
    webhooks, worker_service: ServiceProcess, graph_fake: GraphFake, groq_fake: GroqFake
) -> None:
    user = "15550100003"
    webhooks.post(message_body([text_message("Hola, ¿me puedes ayudar con una foto?", sender=user)], sender=user))
    wait_for(lambda: len(graph_fake.texts_to(user)) == 1, what="the first reply")
    graph_fake.add_media("media-photo-3", PHOTO, "image/jpeg")
    webhooks.post(message_body([image_message(user, "media-photo-3")], sender=user))
    wait_for(lambda: len(graph_fake.texts_to(user)) == 2, what="the image reply")

    [(call, [part])] = groq_fake.image_requests()
    assert part.texts == [PHRASES["image_no_caption"]["es"]]
    roles = [m["role"] for m in call.body["messages"]]
    assert roles == ["system", "user", "assistant", "user"]
    assert call.body["messages"][1]["content"] == "Hola, ¿me puedes ayudar con una foto?"


def test_follow_up_question_sees_the_image_turn(
    webhooks, worker_service: ServiceProcess, graph_fake: GraphFake, groq_fake: GroqFake
) -> None:
    user = "15550100004"
    groq_fake.chat_reply = lambda body: (
        "A red bicycle leaning on a wall." if body["model"] == "qwen/qwen3.8-27b" else "It is red."
    )
    graph_fake.add_media("media-photo-4", PHOTO, "image/jpeg")
    webhooks.post(message_body([image_message(user, "media-photo-4", "What is this?")], sender=user))
    wait_for(lambda: len(graph_fake.texts_to(user)) == 1, what="the image reply")
    webhooks.post(message_body([text_message("And what colour is it?", sender=user)], sender=user))
    wait_for(lambda: len(graph_fake.texts_to(user)) == 2, what="the follow-up reply")

    follow_up = groq_fake.calls_to("chat/completions")[-1]
    assert follow_up.model == "openai/gpt-oss-120b"
    messages = follow_up.body["messages"]
    assert messages[1] == {"role": "user", "content": "(sent an image) What is this?"}
    assert messages[2] == {"role": "assistant", "content": "A red bicycle leaning on a wall."}
    assert messages[3] == {"role": "user", "content": "And what colour is it?"}


def test_expired_media_url_is_fetched_again(
    webhooks, worker_service: ServiceProcess, graph_fake: GraphFake, groq_fake: GroqFake
) -> None:
    user = "15550100005"
    graph_fake.add_media("media-photo-5", PHOTO, "image/jpeg")
    graph_fake.faults.add("download", Fault(404, {}))  # the URL expired before we used it
    webhooks.post(message_body([image_message(user, "media-photo-5", "Hi")], sender=user))
    assert wait_for(lambda: graph_fake.texts_to(user), what="the reply after a re-fetch") == ["You said: Hi"]
    info_gets = [r for r in graph_fake.requests if r.method == "GET" and r.path.endswith("/media-photo-5")]
    assert len(info_gets) == 2


@pytest.mark.parametrize(
    ("data", "phrase_key"),
    [(b"definitely not an image", "image_unreadable"), (None, "image_unreadable")],
    ids=["not-an-image", "unknown-media-id"],
)
def test_image_that_cannot_be_opened_gets_a_polite_reply_without_a_model_call(
    webhooks,
    worker_service: ServiceProcess,
    graph_fake: GraphFake,
    groq_fake: GroqFake,
    data: bytes | None,
    phrase_key: str,
) -> None:
    user = "15550100006"
    if data is not None:
        graph_fake.add_media("media-bad-6", data, "image/jpeg")
    webhooks.post(message_body([image_message(user, "media-bad-6", "What is this?")], sender=user))
    assert wait_for(lambda: graph_fake.texts_to(user), what="the polite reply") == [PHRASES[phrase_key]["en"]]
    assert groq_fake.calls_to("chat/completions") == []


def test_image_from_a_user_without_a_phone_number_is_answered_by_recipient(
    webhooks, worker_service: ServiceProcess, graph_fake: GraphFake, groq_fake: GroqFake
) -> None:
    user_id = "US.13491208655302741918"
    graph_fake.add_media("media-photo-7", PHOTO, "image/jpeg")
    message = image_message(None, "media-photo-7", "Who made this?")
    message["from_user_id"] = user_id
    body = message_body([message])
    body["entry"][0]["changes"][0]["value"]["contacts"] = [{"profile": {"name": "Ann"}, "user_id": user_id}]
    assert webhooks.post(body).status_code == 200

    assert wait_for(lambda: graph_fake.texts_for(user_id), what="a reply by recipient") == ["You said: Who made this?"]
    sent = graph_fake.sent_messages()[0]
    assert "to" not in sent
    assert sent["recipient"] == user_id


def test_token_is_never_sent_to_a_media_url_on_another_host(
    webhooks, worker_service: ServiceProcess, graph_fake: GraphFake, groq_fake: GroqFake
) -> None:
    user = "15550100008"
    graph_fake.add_media("media-photo-8", PHOTO, "image/jpeg")
    graph_fake.media_host = "localhost"  # same server, but not the Graph host the token belongs to
    webhooks.post(message_body([image_message(user, "media-photo-8", "What is this?")], sender=user))
    replies = wait_for(lambda: graph_fake.texts_to(user), what="the polite reply")
    assert replies == [PHRASES["image_unreadable"]["en"]]
    assert [r for r in graph_fake.requests if r.path.startswith("/download/")] == []
    assert groq_fake.calls_to("chat/completions") == []


def test_a_retried_job_reuses_the_vision_answer(
    webhooks, worker_service: ServiceProcess, graph_fake: GraphFake, groq_fake: GroqFake
) -> None:
    user = "15550100009"
    graph_fake.add_media("media-photo-9", PHOTO, "image/jpeg")
    # The read receipt and then the reply fail with a transient Graph error: the job is retried.
    graph_fake.faults.add("messages", graph_error(2, "Service temporarily unavailable", 503), times=2)
    webhooks.post(message_body([image_message(user, "media-photo-9", "Once only")], sender=user))

    assert wait_for(lambda: graph_fake.texts_to(user), timeout=30, what="the retried reply") == ["You said: Once only"]
    assert len(groq_fake.image_requests()) == 1  # the retry sent the stored answer, it did not ask again
    assert len([r for r in graph_fake.requests if (r.json or {}).get("failed")]) == 2
