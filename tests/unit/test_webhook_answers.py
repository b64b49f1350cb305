"""What the webhook endpoint answers when something it did not foresee goes wrong: 503 (Meta redelivers), counted,
never a 500 and never a blanket 200. In-process ASGI calls with a stub ingestor; the real-process view of the same
answers is tests/integration/test_ack_path_shapes.py."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import pytest
from prometheus_client import REGISTRY
from pydantic import SecretStr

from api.ingest import DISPATCHED
from api.webhook import WebhookEndpoint
from api.webhook_payload import PreparedJob
from shared.config import Settings
from tests.webhooks import APP_SECRET, encode, message_body, sign, text_message

OURS = "1122334455667"


class StubIngestor:
    def __init__(self, error: Exception | None = None) -> None:
        self.error = error
        self.batches: list[list[str]] = []

    async def record(self, jobs: Sequence[PreparedJob], statuses: Sequence[object] = ()) -> tuple[list[int], list[int]]:
        if self.error is not None:
            raise self.error
        self.batches.append([job.message_id for job in jobs])
        return [DISPATCHED] * len(jobs), [-1] * len(statuses)


def endpoint(ingestor: StubIngestor) -> WebhookEndpoint:
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, app_secret=SecretStr(APP_SECRET), verify_token=SecretStr("v"), phone_number_id=OURS
    )
    return WebhookEndpoint(settings, ingestor)  # type: ignore[arg-type]


def post(app: WebhookEndpoint, raw: bytes) -> tuple[int, dict[bytes, bytes]]:
    sent: list[dict[str, Any]] = []
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/webhook",
        "headers": [(b"content-length", str(len(raw)).encode()), (b"x-hub-signature-256", sign(raw).encode())],
    }

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": raw, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"]
    return sent[0]["status"], dict(sent[0]["headers"])


def failures(stage: str) -> float:
    return REGISTRY.get_sample_value("loopera_webhook_failures_total", {"stage": stage}) or 0.0


def test_an_unforeseen_ingest_error_is_a_counted_503() -> None:
    before = failures("request")
    status, _ = post(endpoint(StubIngestor(ValueError("not a redis error"))), encode(message_body([text_message("x")])))
    assert status == 503
    assert failures("request") == before + 1


def test_an_unforeseen_item_error_queues_the_others_and_answers_503(monkeypatch: pytest.MonkeyPatch) -> None:
    import api.webhook_payload as module

    real = module.correlation_id

    def explode_on_b(message_id: str) -> str:
        if message_id == "wamid.b":
            raise RuntimeError("a bug")
        return real(message_id)

    monkeypatch.setattr(module, "correlation_id", explode_on_b)
    ingestor = StubIngestor()
    before = failures("item")
    raw = encode(message_body([text_message("a", message_id="wamid.a"), text_message("b", message_id="wamid.b")]))
    status, _ = post(endpoint(ingestor), raw)
    assert status == 503  # Meta redelivers: wamid.a is then a duplicate, wamid.b gets another chance
    assert ingestor.batches == [["wamid.a"]]
    assert failures("item") == before + 1


def test_a_malformed_item_alone_is_200_and_the_rest_queued() -> None:
    ingestor = StubIngestor()
    bad = text_message("b", message_id="wamid.b")
    bad["from"] = [1]
    status, _ = post(endpoint(ingestor), encode(message_body([text_message("a", message_id="wamid.a"), bad])))
    assert status == 200
    assert ingestor.batches == [["wamid.a"]]
