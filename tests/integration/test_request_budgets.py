"""Model request budgets end to end: the real text worker trims what it sends, Groq's fake refuses like Groq.

The handed case (`cases/conversation/history-outgrows-request-limit.json`): a conversation whose history grew past
what Groq accepts in one request. Before the fix every later message got Groq's 413 and the turn was never stored.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis

from tests.fakes.graph_fake import GraphFake
from tests.fakes.groq_fake import GroqFake, content_chars
from tests.fakes.server import wait_for
from tests.processes import ServiceProcess
from tests.webhooks import CASE_FIXTURES, conversation_of, fresh_ids, message_body, text_message

pytestmark = pytest.mark.integration

CASE = json.loads((CASE_FIXTURES / "conversation" / "history-outgrows-request-limit.json").read_text())
# The free-tier chat budget with the default settings: min(131,072 context, 8,000 TPM) - 1,024 completion tokens.
CHAT_BUDGET = 6_976
LONG_TURN = (
    "I am planning a long trip and want your advice on every part of it: trains, buses, places to sleep, what to "
    "eat, what to pack, and how to keep costs down while still seeing the famous sights along the way. "
) * 8  # ~1.7k characters, like the case's earlier turns


def memory(client: redis.Redis, user: str) -> list[dict[str, Any]]:
    return [orjson.loads(item) for item in client.lrange(f"lp:mem:{conversation_of(user)}", 0, -1)]


def test_a_history_larger_than_groq_accepts_is_trimmed_and_the_conversation_goes_on(
    webhooks, worker_service: ServiceProcess, graph_fake: GraphFake, groq_fake: GroqFake, redis_client: redis.Redis
) -> None:
    limit = CASE["setup"]["CHAT_LIMIT_CHARS"]
    groq_fake.chat_limit_chars = limit
    user = CASE["webhooks"][0]["entry"][0]["changes"][0]["value"]["messages"][0]["from"]
    for i in range(3):
        webhooks.post(message_body([text_message(f"({i}) {LONG_TURN}", sender=user)], sender=user))
        wait_for(lambda i=i: len(graph_fake.texts_to(user)) == i + 1, what=f"answer to long turn {i}")
    for n, body in enumerate(CASE["webhooks"], start=4):
        assert webhooks.post(fresh_ids(body)).status_code == 200
        wait_for(lambda n=n: len(graph_fake.texts_to(user)) == n, what=f"answer {n}")

    assert graph_fake.texts_to(user)[-2:] == [
        "You said: Thanks! Quick question: what is 2+2?",
        "You said: Hello? Are you there?",
    ]
    requests = groq_fake.calls_to("chat/completions")
    answered = [c.body["messages"] for c in requests if content_chars(c.body) <= limit]
    assert len(answered) == 5  # one answered request per message
    for messages in answered:
        assert messages[0]["role"] == "system" and messages[-1]["role"] == "user"
        assert sum(len(str(m["content"]).encode()) for m in messages) <= CHAT_BUDGET
    # The last request kept the newest turns (the previous question and its answer), dropped the oldest.
    last = answered[-1]
    assert last[-1]["content"] == "Hello? Are you there?"
    assert last[-3:-1] == [
        {"role": "user", "content": "Thanks! Quick question: what is 2+2?"},
        {"role": "assistant", "content": "You said: Thanks! Quick question: what is 2+2?"},
    ]
    assert not any(m["content"].startswith("(0)") for m in last)
    # Every turn is stored: the conversation is alive, not stuck on a 413 until its memory expires.
    stored = memory(redis_client, user)
    assert [t["role"] for t in stored] == ["user", "assistant"] * 5
    assert stored[-2]["content"] == "Hello? Are you there?"
    # The bound kept every request under Groq's limit: none was refused.
    assert len(requests) == len(answered)


def test_a_4000_character_message_is_cut_with_a_note_and_stored_whole(
    webhooks, worker_service: ServiceProcess, graph_fake: GraphFake, groq_fake: GroqFake, redis_client: redis.Redis
) -> None:
    user = "15550101040"
    arabic = ("مرحبا، أريد أن أسأل عن رحلتي القادمة. " * 110)[:4000]  # 4,000 characters, ~7,300 UTF-8 bytes
    webhooks.post(message_body([text_message(arabic, sender=user)], sender=user), ascii_only=False)
    wait_for(lambda: graph_fake.texts_to(user), what="an answer to the long message")
    sent = groq_fake.calls_to("chat/completions")[-1].body["messages"]
    assert len(sent) == 2
    assert sum(len(str(m["content"]).encode()) for m in sent) <= CHAT_BUDGET
    assert sent[-1]["content"].startswith(arabic[:100])
    assert "was cut here" in sent[-1]["content"] and "of 4000 characters" in sent[-1]["content"]
    stored = memory(redis_client, user)
    assert stored[0]["content"] == arabic  # the user's words are kept whole; only the request was cut


@pytest.mark.parametrize("refusal", ["413 request too large", "400 context_length_exceeded"])
def test_a_request_groq_refuses_as_too_large_is_sent_smaller_not_retried_later(
    webhooks, worker_service: ServiceProcess, graph_fake: GraphFake, groq_fake: GroqFake, refusal: str
) -> None:
    user = "15550101041" if refusal.startswith("413") else "15550101042"
    if refusal.startswith("413"):
        groq_fake.chat_limit_chars = 3_000
    else:
        groq_fake.context_limit_chars = 3_000
    webhooks.post(message_body([text_message("x" * 4_000, sender=user)], sender=user))
    wait_for(lambda: graph_fake.texts_to(user), what="an answer")
    requests = groq_fake.calls_to("chat/completions")
    sizes = [content_chars(c.body) for c in requests]
    # Halved, then without history in a quarter: three requests in the same attempt of the job, no wait.
    assert len(sizes) == 3 and sizes[0] > sizes[1] > 3_000 >= sizes[2]
    assert "was cut here" in requests[-1].body["messages"][-1]["content"]
    assert graph_fake.texts_to(user)[0].startswith("You said: xxx")


def test_a_worker_whose_system_prompt_fills_the_request_budget_refuses_to_start(
    service_env: dict[str, str], workdir: Path
) -> None:
    env = service_env | {"SYSTEM_PROMPT": "Always answer politely. " * 300}  # 7,200 bytes > 90 % of 6,976
    worker = ServiceProcess(
        ["worker", "--pool", "text", "--concurrency", "1"], env, workdir / "long-prompt.log"
    ).start()
    try:
        assert worker.process is not None
        assert worker.process.wait(timeout=60) != 0
    finally:
        worker.stop()
    output = worker.output()
    assert "worker.system_prompt_too_long" in output
    assert "system prompt is too long for the chat model's request budget" in output
    assert "worker.ready" not in output
