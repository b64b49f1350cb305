"""End to end: signed webhook -> API -> Redis -> Celery text worker -> Groq fake -> Graph fake."""

from __future__ import annotations

import pytest

from tests.fakes.graph_fake import GraphFake
from tests.fakes.groq_fake import GroqFake
from tests.fakes.server import wait_for
from tests.processes import ServiceProcess
from tests.webhooks import message_body, text_message

pytestmark = pytest.mark.integration


def test_text_message_gets_one_quoted_reply_from_the_chat_model(
    webhooks, worker_service: ServiceProcess, graph_fake: GraphFake, groq_fake: GroqFake
) -> None:
    message = text_message("What is the capital of France?", sender="15550000001")
    response = webhooks.post(message_body([message], sender="15550000001"))
    assert response.status_code == 200

    texts = wait_for(lambda: graph_fake.texts_to("15550000001"), what="a reply at the Graph fake")
    assert texts == ["You said: What is the capital of France?"]
    sent = graph_fake.sent_messages()[0]
    assert sent["context"] == {"message_id": message["id"]}
    assert sent["messaging_product"] == "whatsapp"
    # Read receipt + typing indicator came first, for the same message.
    receipts = graph_fake.read_receipts()
    assert receipts and receipts[0]["message_id"] == message["id"]
    assert receipts[0]["typing_indicator"] == {"type": "text"}
    chat = groq_fake.calls_to("chat/completions")
    assert len(chat) == 1
    assert chat[0].model == "openai/gpt-oss-120b"
    assert chat[0].body["messages"][0]["role"] == "system"


def test_second_turn_carries_the_first_in_its_llm_request(
    webhooks, worker_service: ServiceProcess, graph_fake: GraphFake, groq_fake: GroqFake
) -> None:
    user = "15550000002"
    webhooks.post(message_body([text_message("My name is Ada.", sender=user)], sender=user))
    wait_for(lambda: len(graph_fake.texts_to(user)) == 1, what="first reply")
    webhooks.post(message_body([text_message("What is my name?", sender=user)], sender=user))
    wait_for(lambda: len(graph_fake.texts_to(user)) == 2, what="second reply")

    second = groq_fake.calls_to("chat/completions")[1].body["messages"]
    assert [m["role"] for m in second] == ["system", "user", "assistant", "user"]
    assert second[1]["content"] == "My name is Ada."
    assert second[2]["content"] == "You said: My name is Ada."
    assert second[3]["content"] == "What is my name?"
