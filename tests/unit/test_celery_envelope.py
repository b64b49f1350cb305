"""Our hand-built task envelope against what the pinned Celery's own `send_task` LPUSHes to Redis.

The API builds Celery protocol-v2 messages itself (shared/celery_protocol.py) to keep kombu off the ack path. This
test publishes a task through real Celery + kombu's Redis transport to a real redis-server, pops the raw list
entry and compares it, field by field, with ours. That the real worker consumes ours is proven end to end in
tests/integration/test_text_flow.py.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from shared.celery_protocol import build_task_message, new_task_id
from shared.config import Settings
from shared.jobs import Queue, TaskName
from tests.processes import RedisServer

JOB = {"job_id": "j1", "message_id": "wamid.1", "message": {"text": {"body": 'h\u00e9llo "quoted" \u2603'}}}


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    server = RedisServer(tmp_path_factory.mktemp("celery-envelope"))
    server.start()
    yield server.url
    server.stop()


MUST_MATCH = "lang task id shadow eta expires group group_index retries timelimit root_id parent_id kwargsrepr"
MUST_MATCH += " replaced_task_nesting stamped_headers stamps"


def _celerys_envelope(redis_url: str, task_id: str) -> dict[str, Any]:
    from celery import Celery

    from workers.runtime.celery_app import celery_config

    app = Celery("loopera")
    app.conf.update(celery_config(Settings(redis_url=redis_url)))
    client = redis.Redis.from_url(redis_url)
    client.delete(Queue.TEXT.value)
    app.send_task(TaskName.TEXT.value, args=[JOB], task_id=task_id)
    raw = client.rpop(Queue.TEXT.value)
    client.close()
    app.close()
    assert raw is not None, "Celery did not push to the queue the routes name"
    parsed: dict[str, Any] = json.loads(raw)
    return parsed


def _ours(task_id: str) -> dict[str, Any]:
    raw = build_task_message(TaskName.TEXT.value, task_id, Queue.TEXT.value, [JOB], "<text abc>")
    parsed: dict[str, Any] = json.loads(raw)
    return parsed


def test_envelope_has_exactly_celerys_fields_in_celerys_order(redis_url: str) -> None:
    task_id = new_task_id()
    theirs, ours = _celerys_envelope(redis_url, task_id), _ours(task_id)
    assert list(ours) == list(theirs)
    assert list(ours["headers"]) == list(theirs["headers"])
    assert list(ours["properties"]) == list(theirs["properties"])
    assert list(ours["properties"]["delivery_info"]) == list(theirs["properties"]["delivery_info"])


def test_envelope_values_match_where_they_must(redis_url: str) -> None:
    task_id = new_task_id()
    theirs, ours = _celerys_envelope(redis_url, task_id), _ours(task_id)
    for key in ("content-encoding", "content-type"):
        assert ours[key] == theirs[key]
    # Everything the worker routes, deduplicates and retries by; origin/argsrepr/ignore_result are ours to set.
    for key in MUST_MATCH.split():
        assert ours["headers"][key] == theirs["headers"][key], key
    for key in ("correlation_id", "delivery_mode", "delivery_info", "priority", "body_encoding"):
        assert ours["properties"][key] == theirs["properties"][key], key
    assert ours["headers"]["argsrepr"] == "<text abc>"  # never the message text


def test_body_decodes_to_the_same_args_kwargs_embed(redis_url: str) -> None:
    task_id = new_task_id()
    theirs, ours = _celerys_envelope(redis_url, task_id), _ours(task_id)
    assert json.loads(base64.b64decode(ours["body"])) == json.loads(base64.b64decode(theirs["body"]))


def test_task_id_and_delivery_tag_are_unique_per_message() -> None:
    first, second = _ours(new_task_id()), _ours(new_task_id())
    assert first["headers"]["id"] != second["headers"]["id"]
    assert first["properties"]["delivery_tag"] != second["properties"]["delivery_tag"]


def test_pinned_celery_is_the_version_this_was_checked_against() -> None:
    import celery
    import kombu

    pins = Path(__file__).resolve().parents[2].joinpath("pyproject.toml").read_text()
    assert f'"celery[redis]=={celery.__version__}"' in pins, "re-run this file's checks after bumping Celery"
    assert kombu.__version__.split(".")[0] == "5"


def test_task_ids_are_random_uuid4_strings() -> None:
    import uuid

    ids = [new_task_id() for _ in range(2000)]
    assert len(set(ids)) == len(ids)
    for task_id in ids:
        parsed = uuid.UUID(task_id)
        assert parsed.version == 4
        assert parsed.variant == uuid.RFC_4122
        assert str(parsed) == task_id
    # Every variant digit (8, 9, a, b) occurs: the two random bits under the variant are really random.
    assert {task_id[19] for task_id in ids} == set("89ab")
