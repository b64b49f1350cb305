"""WhatsApp groups (issue #15): a group is its own conversation (memory, mailbox, order), answered in the group by
the GROUP_REPLIES policy (default `mention`), never privately and never mixed into the member's 1:1 memory. Real
API, worker processes and Redis; the handed case is `cases/conversation/group-message.json`."""

from __future__ import annotations

import copy
import json
import time
import uuid
from typing import Any

import orjson
import pytest
import redis

from tests.fakes.graph_fake import PHONE_NUMBER_ID, GraphFake
from tests.fakes.groq_fake import GroqFake
from tests.fakes.server import wait_for
from tests.processes import ServiceProcess
from tests.webhooks import CASE_FIXTURES, conversation_of, message_body, text_message

pytestmark = pytest.mark.integration

CASE = json.loads((CASE_FIXTURES / "conversation" / "group-message.json").read_text())["webhook"]
MEMBER, GROUP = "15550101006", "Y2FwaV9ncm91cDoxNTU1MDEwMTAwNjpGQUtFR1JPVVAx"


def in_group(text: str, member: str = MEMBER, group: str = GROUP, replying_to: str | None = None) -> dict[str, Any]:
    """The handed case's shape with fresh ids, a current timestamp, our number, and the given words."""
    body = copy.deepcopy(CASE)
    value = body["entry"][0]["changes"][0]["value"]
    value["metadata"]["phone_number_id"] = PHONE_NUMBER_ID
    value["contacts"][0]["wa_id"] = member
    message = value["messages"][0]
    message.update(id=f"wamid.{uuid.uuid4().hex}", timestamp=str(int(time.time())), text={"body": text})
    message["from"], message["group_id"] = member, group
    if replying_to:
        message["context"] = {"from": "15550783881", "id": replying_to}
    return body


def memory(client: redis.Redis, conversation: str) -> list[str]:
    return [orjson.loads(item)["content"] for item in client.lrange(f"lp:mem:{conversation}", 0, -1)]


def test_handed_case_an_unaddressed_group_message_is_kept_in_the_group_and_not_answered(
    webhooks, worker_service: ServiceProcess, graph_fake: GraphFake, groq_fake: GroqFake, redis_client: redis.Redis
) -> None:
    body = copy.deepcopy(CASE)
    value = body["entry"][0]["changes"][0]["value"]
    value["metadata"]["phone_number_id"] = PHONE_NUMBER_ID
    value["messages"][0].update(id=f"wamid.{uuid.uuid4().hex}", timestamp=str(int(time.time())))
    words = value["messages"][0]["text"]["body"]
    assert webhooks.post(body).status_code == 200

    group = conversation_of(group_id=GROUP)
    wait_for(lambda: memory(redis_client, group), what="the message in the group's memory")
    assert memory(redis_client, group) == [f"(Tomas) {words}"]
    # Then the member writes to the bot privately: answered, and the 1:1 model request never sees group text.
    assert webhooks.post(message_body([text_message("Hello there", sender=MEMBER)], sender=MEMBER)).status_code == 200
    wait_for(lambda: graph_fake.texts_to(MEMBER), what="the private reply")
    assert graph_fake.texts_to(MEMBER) == ["You said: Hello there"]
    (private,) = groq_fake.calls_to("chat/completions")
    assert words not in json.dumps(private.body)
    # Nothing was sent to the group or quoting the group message; no read receipt for it either.
    assert [m.get("to") for m in graph_fake.sent_messages()] == [MEMBER]
    assert [r["message_id"] for r in graph_fake.read_receipts()] != [value["messages"][0]["id"]]
    assert len(graph_fake.read_receipts()) == 1


def test_an_addressed_group_message_is_answered_in_the_group_with_the_groups_memory(
    webhooks, worker_service: ServiceProcess, graph_fake: GraphFake, groq_fake: GroqFake, redis_client: redis.Redis
) -> None:
    group_id, member = f"GROUP{uuid.uuid4().hex}", f"1555{uuid.uuid4().int % 10**7:07d}"
    group = conversation_of(group_id=group_id)
    assert webhooks.post(in_group("Lunch at noon?", member, group_id)).status_code == 200
    wait_for(lambda: memory(redis_client, group), what="the first message in the group's memory")
    assert webhooks.post(in_group("loopera desk, when do you open?", member, group_id)).status_code == 200
    wait_for(lambda: graph_fake.texts_to(group_id), what="the answer in the group")

    (sent,) = [m for m in graph_fake.sent_messages() if m.get("to") == group_id]
    assert sent["recipient_type"] == "group"
    assert sent["text"]["body"] == "You said: (Tomas) loopera desk, when do you open?"
    assert sent["context"]["message_id"].startswith("wamid.")  # quoting the member's message, in the group
    (request,) = groq_fake.calls_to("chat/completions")
    assert "(Tomas) Lunch at noon?" in [m["content"] for m in request.body["messages"]]
    assert graph_fake.read_receipts() == []  # neither read receipts nor typing indicators in groups
    assert graph_fake.texts_to(member) == []  # never privately to the member

    # A reply to the bot's own message addresses it too, without naming it.
    bot_message = wait_for(lambda: redis_client.lindex(f"lp:group-bot:{group}", 0), what="the bot's message id")
    assert webhooks.post(in_group("and on Sundays?", member, group_id, bot_message.decode())).status_code == 200
    wait_for(lambda: len(graph_fake.texts_to(group_id)) == 2, what="the second answer in the group")
    # The member's own 1:1 conversation holds nothing of the group.
    assert memory(redis_client, conversation_of(member)) == []


def test_a_late_unaddressed_group_message_gets_no_delay_notice(
    webhooks, worker_service: ServiceProcess, graph_fake: GraphFake, redis_client: redis.Redis
) -> None:
    """Meta's backlog after an outage: the group hears nothing about messages that were not for the bot."""
    group_id, member = f"GROUP{uuid.uuid4().hex}", f"1555{uuid.uuid4().int % 10**7:07d}"
    late = in_group("see you all tomorrow", member, group_id)
    late["entry"][0]["changes"][0]["value"]["messages"][0]["timestamp"] = str(int(time.time()) - 7200)
    assert webhooks.post(late).status_code == 200
    assert webhooks.post(in_group("Loopera Desk: are you there?", member, group_id)).status_code == 200
    wait_for(lambda: graph_fake.texts_to(group_id), what="the answer to the addressed message")
    assert graph_fake.texts_to(group_id) == ["You said: (Tomas) Loopera Desk: are you there?"]


def amending_in_group(original: dict[str, Any], new_words: str | None = None) -> dict[str, Any]:
    """The member's edit (`new_words`) or deletion (None) of their group message `original` (Meta's shapes)."""
    value = original["entry"][0]["changes"][0]["value"]
    body = in_group("", value["messages"][0]["from"], value["messages"][0]["group_id"])
    message = body["entry"][0]["changes"][0]["value"]["messages"][0]
    del message["text"]
    original_id = value["messages"][0]["id"]
    if new_words is None:
        message.update(type="revoke", revoke={"original_message_id": original_id})
    else:
        new = {"type": "text", "text": {"body": new_words}}
        message.update(type="edit", edit={"original_message_id": original_id, "message": new})
    return body


def test_a_members_edit_and_deletion_of_unaddressed_messages_change_the_groups_memory(
    webhooks, worker_service: ServiceProcess, graph_fake: GraphFake, redis_client: redis.Redis
) -> None:
    """Not for the bot, so not answered; but the group's memory must not keep the old words or a deleted message."""
    group_id, member = f"GROUP{uuid.uuid4().hex}", f"1555{uuid.uuid4().int % 10**7:07d}"
    group = conversation_of(group_id=group_id)
    meet, phone = in_group("meet at 5", member, group_id), in_group("my phone is 555 0101", member, group_id)
    assert webhooks.post(meet).status_code == 200 and webhooks.post(phone).status_code == 200
    wait_for(lambda: len(memory(redis_client, group)) == 2, what="both messages in the group's memory")
    assert webhooks.post(amending_in_group(meet, "meet at 6")).status_code == 200
    assert webhooks.post(amending_in_group(phone)).status_code == 200
    wait_for(lambda: memory(redis_client, group) == ["(Tomas) meet at 6"], what="the group's memory amended")
    assert graph_fake.texts_to(group_id) == []


def test_a_members_message_limit_is_the_members_not_the_groups(
    service_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory, graph_fake: GraphFake
) -> None:
    """Per-user settings apply to the member: one member over USER_MESSAGES_PER_WINDOW does not silence the others.
    Its own API and worker on their own Redis database (the limit is 1 here, GROUP_REPLIES=all)."""
    import httpx

    from tests.processes import start_api, start_worker
    from tests.webhooks import encode, signed_headers

    workdir = tmp_path_factory.mktemp("group-limit")
    env = service_env | {
        "REDIS_URL": service_env["REDIS_URL"].rsplit("/", 1)[0] + "/5",
        "USER_MESSAGES_PER_WINDOW": "1",
        "GROUP_REPLIES": "all",
    }
    api, url = start_api(env, workdir / "api.log")
    worker = start_worker(env, workdir / "worker.log", "--pool", "all", "--concurrency", "1")
    try:
        redis.Redis.from_url(env["REDIS_URL"]).flushdb()
        group_id = f"GROUP{uuid.uuid4().hex}"
        first, second = f"1555{uuid.uuid4().int % 10**7:07d}", f"1556{uuid.uuid4().int % 10**7:07d}"

        def post(body: dict[str, Any]) -> None:
            raw = encode(body)
            assert httpx.post(f"{url}/webhook", content=raw, headers=signed_headers(raw), timeout=10).status_code == 200

        sent = [
            in_group(words, member, group_id) for member, words in ((first, "one"), (first, "two"), (second, "three"))
        ]
        for body in sent:
            post(body)
        wait_for(lambda: len(graph_fake.texts_to(group_id)) == 3, what="three sends to the group")
        texts = graph_fake.texts_to(group_id)
        # The first member's second message gets the slow-down notice; the second member is answered.
        assert texts[0] == "You said: (Tomas) one"
        assert texts[2] == "You said: (Tomas) three"
        assert not texts[1].startswith("You said:")
        # Still over the limit, the first member edits the message that was not answered: no answer, and memory
        # holds the edited words in its place (not a turn of its own saying "(sent a edit)").
        post(amending_in_group(sent[1], "two, corrected"))
        group = conversation_of(group_id=group_id)
        client = redis.Redis.from_url(env["REDIS_URL"])
        wait_for(lambda: "(Tomas) two, corrected" in memory(client, group), what="the edited words in memory")
        assert len(memory(client, group)) == 5 and not any("(sent a" in turn for turn in memory(client, group))
        assert len(graph_fake.texts_to(group_id)) == 3
    finally:
        worker.stop()
        api.stop()
