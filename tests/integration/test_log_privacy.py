"""The privacy rule, checked on the real processes' log files: during a real message flow no token, secret, phone
number, profile name or message text appears in any non-DEBUG line of the API or the worker, and every line of the
message's journey carries its correlation id."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from shared.logging import correlation_id
from tests.fakes.graph_fake import TOKEN, GraphFake
from tests.fakes.groq_fake import API_KEY
from tests.fakes.server import wait_for
from tests.integration.conftest import Webhooks
from tests.processes import ServiceProcess
from tests.webhooks import APP_SECRET, MEDIA_FIXTURES, VERIFY_TOKEN, message_body, text_message

pytestmark = pytest.mark.integration

SENDER = "15557654321"
NAME = "Zebulon Quartermaine"
TEXT = "my secret plan is pineapple-42"
CELERY_PREFIX = re.compile(r"^\[[^\]]*: (?P<level>[A-Z]+)/(?P<process>[^\]]+)\] ?(?P<rest>.*)$")


def parse(output: str) -> list[tuple[str, str, dict[str, Any] | None, str]]:
    """(level, process, json event or None, raw line) for every line; Celery wraps our JSON in its own prefix."""
    lines = []
    for raw in output.splitlines():
        level, process, rest = "", "main", raw
        if match := CELERY_PREFIX.match(raw):
            level, process, rest = match["level"], match["process"], match["rest"]
        event = None
        if rest.startswith("{"):
            try:
                event = json.loads(rest)
            except ValueError:
                event = None
        if event is not None:
            level = str(event.get("level", level)).upper()
            process = str(event.get("process", process))
        lines.append((level, process, event, raw))
    return lines


def image_message(caption: str, sender: str, media_id: str) -> dict[str, Any]:
    message = text_message("", sender=sender)
    message.pop("text")
    message.update({"type": "image", "image": {"id": media_id, "mime_type": "image/jpeg", "caption": caption}})
    return message


@pytest.mark.parametrize("kind", ["text", "image"])
def test_no_pii_or_secrets_at_info_and_one_correlation_id_per_journey(
    kind: str,
    api_service: tuple[ServiceProcess, str],
    worker_service: ServiceProcess,
    webhooks: Webhooks,
    graph_fake: GraphFake,
) -> None:
    api, _ = api_service
    if kind == "image":
        graph_fake.add_media("media-pii-1", (MEDIA_FIXTURES / "photo.jpg").read_bytes(), "image/jpeg")
        message = image_message(TEXT, SENDER, "media-pii-1")
    else:
        message = text_message(TEXT, sender=SENDER)
    assert webhooks.post(message_body([message], sender=SENDER, name=NAME)).status_code == 200
    wait_for(lambda: graph_fake.texts_to(SENDER), 30, what="the reply")
    cid = correlation_id(message["id"])

    def done() -> bool:
        return any(
            e and e.get("event") == "job.done" and e.get("correlation_id") == cid
            for _, _, e, _ in parse(worker_service.output())
        )

    wait_for(done, 20, what="job.done of this message")

    forbidden = [SENDER, NAME, TEXT, "pineapple", TOKEN, API_KEY, APP_SECRET, VERIFY_TOKEN, message["id"]]
    logs = {"api": parse(api.output()), "worker": parse(worker_service.output())}
    checked = 0
    for source, lines in logs.items():
        for level, _process, _event, raw in lines:
            if level == "DEBUG":
                continue
            checked += 1
            for secret in forbidden:
                assert secret not in raw, f"{source} log leaks {secret!r}: {raw}"
    assert checked > 5  # the check read real lines

    # The journey: queued in the API, then started, replied and done in one worker process, all with this id.
    api_events = [e for _, _, e, _ in logs["api"] if e and e.get("correlation_id") == cid]
    assert [e["event"] for e in api_events] == ["message.queued"]
    worker_lines = [(p, e) for level, p, e, _ in logs["worker"] if e and level != "DEBUG"]
    start = next(
        i for i, (_, e) in enumerate(worker_lines) if e["event"] == "job.started" and e["correlation_id"] == cid
    )
    process = worker_lines[start][0]
    journey = [e for p, e in worker_lines[start:] if p == process]
    end = next(i for i, e in enumerate(journey) if e["event"] == "job.done")
    journey = journey[: end + 1]
    assert {"job.started", "reply.sent", "job.done"} <= {e["event"] for e in journey}
    assert all(e.get("correlation_id") == cid for e in journey), journey


def test_user_ids_and_group_ids_stay_out_of_the_logs(
    api_service: tuple[ServiceProcess, str], worker_service: ServiceProcess, webhooks: Webhooks, graph_fake: GraphFake
) -> None:
    """Issue #15's identities: a business-scoped user id (username user, no phone) and a group id with its member."""
    user_id, group_id, member = "US.7319999000000000001", "GROUPPRIVACY0001", "15557650001"
    lone = text_message("hello from a username user", sender="")
    lone.pop("from")
    lone["from_user_id"] = user_id
    body = message_body([lone], sender="", name=NAME)
    body["entry"][0]["changes"][0]["value"]["contacts"] = [{"profile": {"name": NAME}, "user_id": user_id}]
    assert webhooks.post(body).status_code == 200
    in_group = text_message("Loopera Desk, a question for the group", sender=member)
    in_group["group_id"] = group_id
    assert webhooks.post(message_body([in_group], sender=member, name=NAME)).status_code == 200
    wait_for(lambda: graph_fake.texts_for(user_id) and graph_fake.texts_to(group_id), 30, what="both replies")
    cids = {correlation_id(lone["id"]), correlation_id(in_group["id"])}
    wait_for(
        lambda: (
            len(
                {
                    e.get("correlation_id")
                    for _, _, e, _ in parse(worker_service.output())
                    if e and e.get("event") == "job.done"
                }
                & cids
            )
            == 2
        ),
        20,
        what="job.done of both messages",
    )
    api, _ = api_service
    for source, output in (("api", api.output()), ("worker", worker_service.output())):
        for level, _process, _event, raw in parse(output):
            if level != "DEBUG":
                for secret in (user_id, group_id, member, NAME):
                    assert secret not in raw, f"{source} log leaks {secret!r}: {raw}"
