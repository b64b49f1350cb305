"""Status webhooks of our reply parts: the callback data's format, what the webhook parser tracks, what the status
section of the ingest script records (against a real redis-server), the Graph client's tagging, and a send whose
HTTP answer was lost waiting for its confirmation in the ledger."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Sequence
from typing import Any

import httpx
import orjson
import pytest
import redis
from pydantic import SecretStr

from api.ingest import DISPATCHED, _status_constants
from api.webhook import WebhookEndpoint
from api.webhook_payload import PreparedJob, TrackedStatus, parse_webhook
from shared import callback_data
from shared.config import Settings
from shared.jobs import InboundJob
from shared.ledger import DEVELOPMENT_MESSAGE_KEY, ledger_key, outgoing_key
from shared.redis_scripts import ScriptName, lua_source
from tests.queued_jobs import inbound_job
from tests.webhooks import APP_SECRET, encode, message_body, signed_headers, text_message
from workers.clients.graph import GraphClient, tagged
from workers.clients.graph_errors import GraphTransientError, classify_transport_error
from workers.delivery.ledger import MessageLedger, SendInFlightError, SendResult, SendUnconfirmedError

REF = "0123456789abcdef0123456789abcdef"
OURS = "1122334455667"


def status_body(status: dict[str, Any]) -> dict[str, Any]:
    value = {"messaging_product": "whatsapp", "metadata": {"phone_number_id": OURS}, "statuses": [status]}
    return {
        "object": "whatsapp_business_account",
        "entry": [{"id": "1", "changes": [{"field": "messages", "value": value}]}],
    }


# --- the callback data -------------------------------------------------------------------------------------------
def test_callback_data_names_a_part_and_refuses_anything_else() -> None:
    data = callback_data.encode(REF, "text:0")
    assert data == f"lp1:{REF}:text:0"
    assert callback_data.decode(data) == (REF, "text:0")
    assert callback_data.decode(f"lp1:{REF}:kept:1:2") == (REF, "kept:1:2")
    assert callback_data.encode("a-job-id-not-a-ref", "text:0") is None
    for foreign in (
        None,
        7,
        "",
        "part-0",
        f"lp1:{REF}:Text:0",
        f"lp1:{REF[:-1]}:text:0",
        f"lp1:{REF}:text:0\n",
        "x" * 600,
    ):
        assert callback_data.decode(foreign) is None


# --- the webhook parser --------------------------------------------------------------------------------------------
def test_the_parser_tracks_statuses_of_our_parts_and_only_counts_the_others() -> None:
    ours = {
        "id": "wamid.OUT1",
        "status": "failed",
        "timestamp": "1700000000",
        "recipient_id": "15550001111",
        "biz_opaque_callback_data": f"lp1:{REF}:text:1",
        "errors": [{"code": 131047, "title": "Re-engagement"}],
    }
    foreign = {
        "id": "wamid.OUT2",
        "status": "delivered",
        "timestamp": "1700000001",
        "biz_opaque_callback_data": "crm-42",
    }
    plain = {"id": "wamid.OUT3", "status": "read", "timestamp": "1700000002"}
    odd = {"id": "wamid.OUT4", "status": "deleted", "biz_opaque_callback_data": f"lp1:{REF}:text:0"}
    contents = parse_webhook(
        {
            "entry": [
                {
                    "changes": [
                        {
                            "field": "messages",
                            "value": status_body(ours)["entry"][0]["changes"][0]["value"]
                            | {"statuses": [ours, foreign, plain, odd]},
                        }
                    ]
                }
            ]
        },
        OURS,
    )
    assert contents.statuses == 4
    assert contents.status_labels == [("failed", "131047"), ("delivered", ""), ("read", ""), ("other", "")]
    outgoing = outgoing_key("wamid.OUT1", DEVELOPMENT_MESSAGE_KEY)  # a keyed hash: the wamid holds a phone number
    assert contents.tracked == [
        TrackedStatus(REF, "text:1", "failed", 1_700_000_000_000, "wamid.OUT1", "131047", outgoing)
    ]


def test_a_status_without_a_timestamp_is_recorded_at_its_receipt() -> None:
    status = {"id": "wamid.X", "status": "sent", "timestamp": "soon", "biz_opaque_callback_data": f"lp1:{REF}:voice"}
    before = int(time.time() * 1000)
    (tracked,) = parse_webhook(status_body(status), OURS).tracked
    assert tracked.part == "voice" and before <= tracked.at_ms <= int(time.time() * 1000)


class RecordingIngestor:
    def __init__(self) -> None:
        self.calls: list[tuple[int, list[TrackedStatus]]] = []

    async def record(
        self, jobs: Sequence[PreparedJob], statuses: Sequence[TrackedStatus] = ()
    ) -> tuple[list[int], list[int]]:
        self.calls.append((len(jobs), list(statuses)))
        return [DISPATCHED] * len(jobs), [1500] * len(statuses)


def post(app: WebhookEndpoint, raw: bytes) -> int:
    sent: list[dict[str, Any]] = []
    chunks = [{"type": "http.request", "body": raw, "more_body": False}]

    async def receive() -> dict[str, Any]:
        return chunks.pop(0) if chunks else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    headers = [(k.encode(), v.encode()) for k, v in signed_headers(raw).items()]
    scope = {"type": "http", "method": "POST", "path": "/webhook", "query_string": b"", "headers": headers}
    asyncio.run(app(scope, receive, send))
    return int(sent[0]["status"])


def endpoint(ingestor: RecordingIngestor) -> WebhookEndpoint:
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, app_secret=SecretStr(APP_SECRET), verify_token=SecretStr("v"), phone_number_id=OURS
    )
    return WebhookEndpoint(settings, ingestor)  # type: ignore[arg-type]


def test_statuses_of_other_messages_cost_no_redis_round_trip_and_ours_share_the_messages_one() -> None:
    ingestor = RecordingIngestor()
    app = endpoint(ingestor)
    foreign = {"id": "wamid.O", "status": "delivered", "timestamp": "1700000001"}
    assert post(app, encode(status_body(foreign))) == 200
    assert ingestor.calls == []  # counted only

    ours = {
        "id": "wamid.O",
        "status": "delivered",
        "timestamp": "1700000001",
        "biz_opaque_callback_data": f"lp1:{REF}:text:0",
    }
    body = message_body([text_message("hi")])
    body["entry"][0]["changes"][0]["value"]["metadata"]["phone_number_id"] = OURS
    body["entry"][0]["changes"][0]["value"]["statuses"] = [ours]
    assert post(app, encode(body)) == 200
    assert [(jobs, [s.status for s in statuses]) for jobs, statuses in ingestor.calls] == [(1, ["delivered"])]


# --- the status section of the ingest script -----------------------------------------------------------------------
def record(client: redis.Redis, *statuses: tuple[Any, ...], ttl: int = 600) -> list[int]:
    """Run the ingest script with only statuses: (ref, part, status, at_ms, wamid, code[, outgoing key])."""
    script = client.register_script(lua_source(ScriptName.INGEST))
    args: list[Any] = [int(time.time() * 1000), 60_000, 3600, 3600, *_status_constants(ttl), len(statuses)]
    for status in statuses:
        args += (*status, "") if len(status) == 6 else status
    reply = script(keys=["lp:leases"], args=args)
    return [int(v) for v in reply[0]]


def a_ledger(client: redis.Redis, ref: str = REF, **fields: str) -> str:
    key = ledger_key(ref)
    client.hset(key, mapping={"conv": "u:abc", "task": "t1", "received_ms": "1700000000000", "job": "{}"} | fields)
    return key


def test_statuses_keep_a_history_and_confirm_a_part_whose_answer_was_lost(client: redis.Redis) -> None:
    key = a_ledger(client, **{"send:text:0": "sending", "send:text:0:until": "9999999999999"})
    latencies = record(
        client,
        (REF, "text:0", "delivered", 1_700_000_003_000, "wamid.OUT", ""),  # out of order: delivered before sent
        (REF, "text:0", "sent", 1_700_000_002_000, "wamid.OUT", ""),
        (REF, "text:0", "delivered", 1_700_000_009_000, "wamid.OUT", ""),  # Meta's redelivery
    )
    assert latencies == [3000, -1, -1]  # the message's first delivered, once
    fields = {k.decode(): v.decode() for k, v in client.hgetall(key).items()}
    assert fields["send:text:0"] == "done" and fields["send:text:0:meta"] == "wamid.OUT"
    assert fields["send:text:0:confirmed_by"] == "delivered"
    assert fields["status:text:0:sent"] == "1700000002000" and fields["status:text:0:delivered"] == "1700000003000"


def test_a_status_for_an_expired_ledger_changes_nothing(client: redis.Redis) -> None:
    assert record(client, (REF, "text:0", "delivered", 1_700_000_003_000, "wamid.OUT", "")) == [-1]
    assert client.keys("*") == []


def test_a_failed_answer_with_a_window_code_is_kept_once_with_its_question(client: redis.Redis) -> None:
    a_ledger(
        client, **{"send:text:0": "done", "send:text:1": "done", "keep:text": "Lima.", "asked": "Capital of Peru?"}
    )
    record(
        client,
        (REF, "text:0", "failed", 1_700_000_005_000, "wamid.A", "131047"),
        (REF, "text:1", "failed", 1_700_000_005_000, "wamid.B", "131047"),  # the same answer's second part
        (REF, "text:0", "failed", 1_700_000_006_000, "wamid.A", "131047"),  # redelivered
    )
    (item,) = [orjson.loads(raw) for raw in client.lrange("lp:undelivered:u:abc", 0, -1)]
    assert item == {"text": "Lima.", "asked": "Capital of Peru?", "at": 1_700_000_005, "ref": REF}
    assert 0 < client.ttl("lp:undelivered:u:abc") <= 600
    assert client.hget("lp:conv:u:abc", "kept_answers") == b"1"
    assert client.llen("lp:dlq") == 0


def test_another_permanent_failure_is_one_dead_letter_with_its_code(client: redis.Redis) -> None:
    a_ledger(client, **{"send:voice": "done", "keep:voice": "Hello."})
    record(
        client,
        (REF, "voice", "failed", 1_700_000_005_000, "wamid.V", "131053"),
        (REF, "voice", "failed", 1_700_000_007_000, "wamid.V", "131053"),
    )
    (letter,) = [json.loads(raw) for raw in client.lrange("lp:dlq", 0, -1)]
    assert letter["task"] == "whatsapp.delivery_status" and letter["reason"] == "graph_131053"
    assert letter["payload"] == {"ref": REF, "part": "voice"}
    assert not client.exists("lp:undelivered:u:abc")


# --- the Graph client ----------------------------------------------------------------------------------------------
def test_messages_sent_inside_tagged_carry_the_callback_data_and_read_receipts_never() -> None:
    bodies: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        bodies.append(json.loads(request.content))
        return httpx.Response(200, json={"messages": [{"id": "wamid.OUT"}]})

    graph = GraphClient("https://graph.facebook.com", "v25.0", "token", OURS, transport=httpx.MockTransport(handler))
    with tagged(f"lp1:{REF}:text:0"):
        graph.send_text("15550001111", None, "hi")
        graph.mark_read_and_typing("wamid.IN")
    graph.send_text("15550001111", None, "untagged")
    assert bodies[0]["biz_opaque_callback_data"] == f"lp1:{REF}:text:0"
    assert "biz_opaque_callback_data" not in bodies[1] and "biz_opaque_callback_data" not in bodies[2]


def test_only_a_lost_answer_may_have_reached_meta() -> None:
    request = httpx.Request("POST", "https://graph.facebook.com/v25.0/1/messages")
    for lost in (httpx.ReadTimeout("t", request=request), httpx.RemoteProtocolError("reset", request=request)):
        assert classify_transport_error(lost).maybe_delivered
    for never in (httpx.ConnectError("refused", request=request), httpx.ConnectTimeout("t", request=request)):
        assert not classify_transport_error(never).maybe_delivered


# --- the ledger: waiting for the confirmation ------------------------------------------------------------------------
def a_job() -> InboundJob:
    now = str(int(time.time()))
    return inbound_job({"type": "text", "id": "wamid.IN", "text": {"body": "hi"}, "timestamp": now})


def test_a_send_whose_answer_was_lost_waits_for_a_status_then_is_resent_only_without_one(client: redis.Redis) -> None:
    a_ledger(client, claim="tok")
    sends: list[str] = []

    def lost() -> str:
        sends.append("lost")
        raise GraphTransientError("graph_transport", "ReadTimeout", maybe_delivered=True)

    ledger = MessageLedger(client, REF, a_job(), "tok", confirm_wait_seconds=0.3)
    with pytest.raises(SendUnconfirmedError):
        ledger.send_once("text:0", lost)
    assert client.hget(ledger.key, "send:text:0") == b"sending"  # not taken back: it may be at Meta

    again = MessageLedger(
        client, REF, a_job(), "tok", fields={"send:text:0:unconfirmed": "1"}, confirm_wait_seconds=0.3
    )
    with pytest.raises(SendInFlightError) as waiting:
        again.send_once("text:0", lambda: "wamid.SECOND")
    assert waiting.value.retry_after is not None and waiting.value.retry_after <= 4.0
    time.sleep(0.35)
    assert again.send_once("text:0", lambda: "wamid.SECOND") is SendResult.SENT  # no status came: sent again
    assert sends == ["lost"]


def test_a_status_arriving_during_the_wait_means_sent(client: redis.Redis) -> None:
    a_ledger(client, claim="tok")

    def lost() -> str:
        raise GraphTransientError("graph_transport", "ReadTimeout", maybe_delivered=True)

    with pytest.raises(SendUnconfirmedError):
        MessageLedger(client, REF, a_job(), "tok", confirm_wait_seconds=5).send_once("text:0", lost)
    record(client, (REF, "text:0", "sent", int(time.time() * 1000), "wamid.FIRST", "", "lp:out:abc"))
    result = MessageLedger(client, REF, a_job(), "tok", confirm_wait_seconds=5).send_once("text:0", lambda: "x")
    assert result is SendResult.ALREADY_SENT
    assert client.hget(ledger_key(REF), "send:text:0:meta") == b"wamid.FIRST"
    # Recorded by Meta's id, as a send that got its answer is: a reaction to it finds the answer.
    assert client.get("lp:out:abc") == f"{REF} text:0".encode() and 0 < client.ttl("lp:out:abc") <= 3600


def test_a_send_that_failed_before_meta_is_taken_back_at_once(client: redis.Redis) -> None:
    a_ledger(client, claim="tok")

    def refused() -> str:
        raise GraphTransientError("graph_transport", "ConnectError")

    with pytest.raises(GraphTransientError):
        MessageLedger(client, REF, a_job(), "tok").send_once("text:0", refused)
    assert client.hget(ledger_key(REF), "send:text:0") is None
