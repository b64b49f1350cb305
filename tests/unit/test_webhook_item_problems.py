"""Odd shapes in a signed body: each malformed item is skipped by position, its valid neighbours become jobs, and
every job that leaves the parser is one the worker's schema (`InboundJob`) accepts."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from api.webhook_payload import MAX_MESSAGE_DEPTH, ItemProblem, depth_exceeds, parse_webhook
from shared.jobs import MAX_ID_CHARS, InboundJob
from tests.unit.test_webhook_payload import decode_job
from tests.webhooks import CASE_FIXTURES, conversation_of, message_body, text_message

OURS = "1122334455667"
CASES = CASE_FIXTURES / "hardening"


def case(name: str) -> dict[str, Any]:
    body: dict[str, Any] = json.loads((CASES / name).read_text())
    return body


def nested(depth: int) -> Any:
    value: Any = "deep"
    for _ in range(depth):
        value = {"x": value}
    return value


def batch(*messages: Any) -> dict[str, Any]:
    return message_body(list(messages), sender="15550001111")


def valid_jobs(body: Any, ours: str = OURS) -> list[InboundJob]:
    contents = parse_webhook(body, ours)
    return [InboundJob.model_validate(decode_job(job)) for job in contents.jobs]


def test_a_change_that_is_not_an_object_is_skipped_by_position() -> None:
    contents = parse_webhook(case("ack-shapes/change_not_dict.json"), "")
    assert contents.jobs == []
    assert contents.skipped == [ItemProblem(0, 0, "change", None, "not_an_object")]


def test_a_from_that_is_a_list_is_skipped() -> None:
    contents = parse_webhook(case("ack-shapes/from_is_list.json"), "")
    assert contents.jobs == []
    assert contents.skipped == [ItemProblem(0, 0, "messages", 0, "from_not_a_string")]


def test_the_innocent_message_of_a_poisoned_batch_is_kept() -> None:
    contents = parse_webhook(case("ack-shapes/poison_batch_innocent_plus_bad.json"), "")
    assert [job.message_id for job in contents.jobs] == ["wamid.c01.innocent"]
    assert contents.skipped == [ItemProblem(0, 0, "messages", 1, "from_not_a_string")]
    assert contents.failures == []


def test_a_contact_name_the_worker_would_refuse_is_dropped_and_the_user_still_answered() -> None:
    (job,) = valid_jobs(case("worker-rejects-payload.json"), "106540352242922")
    assert job.message_id == "wamid.c02.first"
    assert job.contact_name is None
    assert job.conversation == conversation_of("15551230000", api_key=False)
    assert job.to == "15551230000"


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda m: m.update(id=None), "no_id"),
        (lambda m: m.update(id=""), "no_id"),
        (lambda m: m.update(id=["wamid"]), "no_id"),
        (lambda m: m.update(type=7), "no_type"),
        (lambda m: m.update(type=None), "no_type"),
        (lambda m: m.update({"from": {"a": 1}}), "from_not_a_string"),
        (lambda m: m.update({"from": 15550001111}), "from_not_a_string"),
        (lambda m: m.update(text=nested(MAX_MESSAGE_DEPTH)), "too_deep"),
        (lambda m: m.update(text=nested(250)), "too_deep"),
        (lambda m: m.update(id="w" * (MAX_ID_CHARS + 1)), "schema"),
        (lambda m: m.update(type="t" * 65), "schema"),
        (lambda m: m.update({"from": "1" * (MAX_ID_CHARS + 1)}), "schema"),
    ],
    ids=[
        "id-null",
        "id-empty",
        "id-list",
        "type-number",
        "type-null",
        "from-object",
        "from-number",
        "nested-33",
        "nested-250",
        "id-huge",
        "type-huge",
        "from-huge",
    ],
)
def test_a_malformed_message_is_skipped_and_its_neighbours_queued(mutate: Any, reason: str) -> None:
    bad = text_message("bad", sender="15550001111")
    mutate(bad)
    body = batch(text_message("first"), bad, text_message("last"))
    contents = parse_webhook(body, OURS)
    assert [problem.reason for problem in contents.skipped] == [reason]
    assert contents.skipped[0].index == 1 and contents.skipped[0].item == "messages"
    assert len(valid_jobs(body)) == 2
    assert contents.failures == []


def test_a_message_just_within_the_depth_bound_is_queued() -> None:
    message = text_message("ok")
    message["text"] = nested(MAX_MESSAGE_DEPTH - 2)  # message (1) > text > ... > "deep"
    assert not depth_exceeds(message, MAX_MESSAGE_DEPTH)
    assert len(valid_jobs(batch(message))) == 1


def test_schema_problems_name_the_fields_not_the_values() -> None:
    bad = text_message("secret text", sender="15550001111")
    bad["id"] = "w" * (MAX_ID_CHARS + 1)
    contents = parse_webhook(batch(bad), OURS)
    assert contents.skipped == [ItemProblem(0, 0, "messages", 0, "schema", ("message_id",))]


@pytest.mark.parametrize(
    ("value_patch", "problem"),
    [
        ({"statuses": 5}, ItemProblem(0, 0, "statuses", None, "not_a_list")),
        ({"messages": 5}, ItemProblem(0, 0, "messages", None, "not_a_list")),
        ({"statuses": [None]}, ItemProblem(0, 0, "statuses", 0, "not_an_object")),
        ({"metadata": None}, ItemProblem(0, 0, "change", None, "no_phone_number_id")),
        ({"metadata": {"phone_number_id": ["x"]}}, ItemProblem(0, 0, "change", None, "no_phone_number_id")),
    ],
)
def test_odd_lists_and_metadata_are_skipped_by_position(value_patch: dict[str, Any], problem: ItemProblem) -> None:
    body = batch(text_message("hi"))
    value = body["entry"][0]["changes"][0]["value"]
    value.update(value_patch)
    contents = parse_webhook(body, "")
    assert problem in contents.skipped
    assert contents.failures == []


def test_a_failed_status_whose_errors_is_a_number_is_still_counted() -> None:
    body = batch()
    body["entry"][0]["changes"][0]["value"]["statuses"] = [{"id": "wamid.s", "status": "failed", "errors": 131000}]
    contents = parse_webhook(body, OURS)
    assert contents.statuses == 1 and contents.failed_statuses[0].codes == []
    assert contents.skipped == [] and contents.failures == []


def test_positions_count_across_entries_and_changes() -> None:
    body = batch(text_message("a"))
    second = copy.deepcopy(body["entry"][0])
    second["changes"].append("not a change")
    body["entry"] += [second, None]
    contents = parse_webhook(body, OURS)
    assert len(contents.jobs) == 2
    assert contents.skipped == [
        ItemProblem(1, 1, "change", None, "not_an_object"),
        ItemProblem(2, None, "entry", None, "no_changes_list"),
    ]


def test_an_unforeseen_error_is_a_failure_of_that_item_only(monkeypatch: pytest.MonkeyPatch) -> None:
    import api.webhook_payload as module

    real = module.correlation_id

    def explode_on_b(message_id: str) -> str:
        if message_id.endswith(".b"):
            raise KeyError("a bug we did not foresee")
        return real(message_id)

    monkeypatch.setattr(module, "correlation_id", explode_on_b)
    body = batch(text_message("a", message_id="wamid.a"), text_message("b", message_id="wamid.b"))
    contents = parse_webhook(body, OURS)
    assert [job.message_id for job in contents.jobs] == ["wamid.a"]
    assert contents.failures == [ItemProblem(0, 0, "messages", 1, "KeyError")]
