"""End to end: signed webhook -> API -> Redis -> Celery text worker -> Groq fake -> Graph fake."""

from __future__ import annotations

import httpx
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


def test_duplicate_deliveries_give_exactly_one_reply(
    webhooks, worker_service: ServiceProcess, graph_fake: GraphFake, groq_fake: GroqFake
) -> None:
    user = "15550000003"
    body = message_body([text_message("Only once, please", sender=user)], sender=user)
    assert [webhooks.post(body).status_code for _ in range(3)] == [200, 200, 200]
    # A later message from the same user is answered after any earlier job of that conversation, so once its
    # reply is here, a duplicate reply would already have been sent too.
    webhooks.post(message_body([text_message("sentinel", sender=user)], sender=user))
    wait_for(lambda: "You said: sentinel" in graph_fake.texts_to(user), what="the sentinel reply")
    assert graph_fake.texts_to(user) == ["You said: Only once, please", "You said: sentinel"]
    assert len(groq_fake.calls_to("chat/completions")) == 2


def test_a_batched_webhook_answers_every_message(
    webhooks, worker_service: ServiceProcess, graph_fake: GraphFake
) -> None:
    users = ["15550000004", "15550000005"]
    body = message_body(
        [text_message(f"first {users[0]}", sender=users[0]), text_message(f"second {users[0]}", sender=users[0])],
        sender=users[0],
    )
    body["entry"].append(message_body([text_message(f"only {users[1]}", sender=users[1])], sender=users[1])["entry"][0])
    assert webhooks.post(body).status_code == 200
    wait_for(lambda: len(graph_fake.texts_to(users[0])) == 2 and graph_fake.texts_to(users[1]), what="3 replies")
    assert graph_fake.texts_to(users[0]) == [f"You said: first {users[0]}", f"You said: second {users[0]}"]
    assert graph_fake.texts_to(users[1]) == [f"You said: only {users[1]}"]


def test_button_and_list_replies_count_as_text(webhooks, worker_service: ServiceProcess, graph_fake: GraphFake) -> None:
    from tests.webhooks import fixture_file, fresh_ids

    user = "15550000006"
    buttons = fixture_file("callback_button")
    selections = fixture_file("callback_selection")
    for body in [*buttons.values(), *selections.values()]:
        assert webhooks.post(fresh_ids(body, sender=user)).status_code == 200
    expected = len(buttons) + len(selections)
    wait_for(lambda: len(graph_fake.texts_to(user)) == expected, what=f"{expected} replies")
    assert all(text.startswith("You said: ") and len(text) > len("You said: ") for text in graph_fake.texts_to(user))


def test_a_threads_pool_worker_answers_conversations_in_parallel(
    service_env: dict[str, str], redis_server, graph_fake: GraphFake, workdir
) -> None:
    """The pool compose runs for text and vision (WORKER_POOL_IMPL=threads), on its own Redis database."""
    from tests.processes import child_pids, start_api, start_worker
    from tests.webhooks import encode, signed_headers

    env = {**service_env, "REDIS_URL": redis_server.url.rsplit("/", 1)[0] + "/2", "WORKER_POOL_IMPL": "threads"}
    api, url = start_api(env, workdir / "threads-api.log")
    worker = start_worker(env, workdir / "threads-worker.log", "--pool", "text", "--concurrency", "4")
    try:
        users = [f"1555009000{i}" for i in range(4)]
        for user in users:
            raw = encode(message_body([text_message(f"hi from {user}", sender=user)], sender=user))
            assert httpx.post(f"{url}/webhook", content=raw, headers=signed_headers(raw), timeout=10).status_code == 200
        for user in users:
            wait_for(lambda user=user: graph_fake.texts_to(user), what=f"reply to {user}")
            assert graph_fake.texts_to(user) == [f"You said: hi from {user}"]
        # Threads, not prefork: the worker is a single process (prefork would have 4 pool children).
        assert worker.process is not None
        assert child_pids(worker.process.pid) == []
    finally:
        worker.stop()
        api.stop()
