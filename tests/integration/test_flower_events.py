"""Jobs the API enqueues (without Celery) are announced as Celery `task-sent` events, received here by Celery's
own event Receiver, the component Flower uses, so Flower lists them before a worker picks them up."""

from __future__ import annotations

import threading
from typing import Any

import httpx
import pytest
from celery import Celery

from tests.fakes.server import wait_for
from tests.processes import RedisServer
from tests.webhooks import encode, message_body, signed_headers, text_message

pytestmark = pytest.mark.integration

TEXT = "flower should not see this text"


def test_api_announces_dispatched_jobs_as_task_sent_events(redis_server: RedisServer, api_url: str) -> None:
    events: list[dict[str, Any]] = []
    app = Celery("flower-probe", broker=redis_server.url)
    connection = app.connection_for_read()
    receiver = app.events.Receiver(connection, handlers={"task-sent": events.append})
    thread = threading.Thread(target=lambda: receiver.capture(limit=None, timeout=None, wakeup=False), daemon=True)
    thread.start()
    sender = "15550004242"
    try:

        def announced() -> bool:
            # Post until the receiver (subscribing asynchronously) has seen one: no sleep-then-hope.
            if not events:
                raw = encode(message_body([text_message(TEXT, sender=sender)], sender=sender))
                assert httpx.post(f"{api_url}/webhook", content=raw, headers=signed_headers(raw)).status_code == 200
            return bool(events)

        wait_for(announced, 20, interval=0.5, what="a task-sent event")
    finally:
        receiver.should_stop = True
        thread.join(timeout=10)
        connection.release()
    event = events[0]
    assert event["name"] == "loopera.text.handle_message"
    assert event["queue"] == "text" and event["routing_key"] == "text"
    assert event["hostname"].startswith("loopera-api@")
    assert len(event["uuid"]) == 36
    assert TEXT not in str(event) and sender not in str(event)  # args is a redacted repr
