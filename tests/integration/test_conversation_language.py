"""A conversation's language is decided from the user's own words and remembered: fixed replies follow it across
short messages ("ok") and switch when the user clearly writes in another language. Real API, worker and Redis."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
import redis

from tests.fakes.graph_fake import GraphFake
from tests.fakes.server import wait_for
from tests.processes import ServiceProcess
from tests.webhooks import conversation_of, message_body, text_message, user_message
from workers.text.phrases import PHRASES

pytestmark = pytest.mark.integration


def test_fixed_replies_follow_the_remembered_language_and_its_switch(
    webhooks, worker_service: ServiceProcess, graph_fake: GraphFake, redis_client: redis.Redis
) -> None:
    user = "15550107001"
    steps: list[dict[str, Any]] = [
        text_message("Hola, ¿me puedes ayudar con una receta?", sender=user),
        text_message("ok", sender=user),  # one word: the conversation stays Spanish
        user_message(user, "video", {"id": "video-1", "mime_type": "video/mp4"}),
        text_message("Bonjour, pouvez-vous m'aider avec ma commande ?", sender=user),  # a clear switch
        user_message(user, "contacts", [{"name": {"formatted_name": "Ana"}}]),
    ]
    for count, message in enumerate(steps, start=1):
        assert webhooks.post(message_body([message], sender=user)).status_code == 200
        wait_for(lambda count=count: len(graph_fake.texts_to(user)) >= count, what=f"reply {count}")

    replies = graph_fake.texts_to(user)
    assert replies[2] == PHRASES["media_not_supported"]["es"]
    assert replies[4] == PHRASES["contacts_received"]["fr"].format(count=1, names="Ana")
    turns = [orjson.loads(item) for item in redis_client.lrange(f"lp:mem:{conversation_of(user)}", 0, -1)]
    assert [turn.get("lang") for turn in turns if turn["role"] == "user"] == ["es", "es", "es", "fr", "fr"]
