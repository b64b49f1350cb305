"""The user's controls, before any model call: exact commands (reset, stop, start, export, delete, asking for a
person), the opt-out and a person's pause (docs/handoff.md).

Every pipeline runs behind `with_user_controls`: a typed command is handled here (workers/text/commands.py decides,
never a model), and a message from a conversation that sent `stop` is dropped: acknowledged to Meta by the API,
stored as nothing, answered with nothing. The send gate (`opted_out` in the conversation's state, checked in
`shared/scripts/ledger_send.lua`) also stops a reply computed before the `stop` arrived. What the user sees for each
command: docs/commands.md (a test checks that table against this module).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from shared.handoff import ECHO_MESSAGE_TYPE, PAUSED_FIELD, now_ms, pause
from shared.jobs import InboundJob
from shared.ledger import as_text, conversation_state_key
from shared.logging import conversation_ref, correlation_id, get_logger
from shared.undelivered import KEPT_FIELD, undelivered_key
from workers.clients.handoff_webhook import deliver_in_background
from workers.context import WorkerContext
from workers.delivery.ledger import SendResult
from workers.delivery.memory import MemoryEntry, entry
from workers.delivery.service_window import STATE_TTL_SECONDS
from workers.delivery.undelivered import UndeliveredAnswers
from workers.pipelines.amendments import keep_unanswered
from workers.pipelines.flood import release_user_count
from workers.pipelines.payloads import user_text
from workers.pipelines.replies import generate_once, send_text_reply
from workers.pipelines.user_data import collect, erase
from workers.text.commands import Command, CommandRequest, parse_command
from workers.text.phrases import phrase

log = get_logger("workers.controls")

Pipeline = Callable[[WorkerContext, InboundJob], None]

OPTED_OUT_FIELD = "opted_out"
EXPORT_FILENAME = "loopera-export.txt"
HANDOFF_TURNS = 10  # the last turns sent to HANDOFF_WEBHOOK_URL
# Meta's document types include text/plain, not application/json
# (https://developers.facebook.com/docs/whatsapp/cloud-api/reference/media#supported-media-types).
EXPORT_MIME_TYPE = "text/plain"


def command_of(job: InboundJob) -> CommandRequest | None:
    """The command a typed text message is, or None (only `text` messages: a button's title is not typed)."""
    if job.message_type != "text":
        return None
    return parse_command(user_text(job.message))


def with_user_controls(pipeline: Pipeline) -> Pipeline:
    """Commands first (even from an opted-out conversation: `start` must work), then the opt-out, then a person's
    pause (the message is remembered, not answered), then `pipeline`. One Redis round trip for both flags."""

    def run(ctx: WorkerContext, job: InboundJob) -> None:
        if not handled_here(ctx, job):
            pipeline(ctx, job)
            return
        # None of these calls a model: the message keeps no place in the user's window (counted at the claim).
        release_user_count(ctx, job)

    run.__name__ = getattr(pipeline, "__name__", "pipeline")
    return run


def handled_here(ctx: WorkerContext, job: InboundJob) -> bool:
    """Handle a person's echo, a command, or a message of an opted-out or paused conversation; False for anything
    else (the pipeline's)."""
    if job.message_type == ECHO_MESSAGE_TYPE:
        remember_human_reply(ctx, job)
        return True
    request = command_of(job)
    if request is not None:
        run_command(ctx, job, request)
        return True
    opted_out, paused = _conversation_flags(ctx, job)
    if opted_out:
        log.info("message.opted_out", correlation_id=correlation_id(job.message_id), type=job.message_type)
        return True
    if paused > now_ms():
        remember_while_paused(ctx, job)
        return True
    return False


def _conversation_flags(ctx: WorkerContext, job: InboundJob) -> tuple[bool, int]:
    """(opted out, paused until epoch ms or 0) of the conversation: as the job's claim read them (no round trip of
    its own), else read now (a ledger opened without the claim script)."""
    flags = ctx.ledgers.of(job).conversation_flags
    if flags is None:
        raw = ctx.redis.hmget(conversation_state_key(job.conversation), OPTED_OUT_FIELD, PAUSED_FIELD)
        flags = (as_text(raw[0]) if raw[0] is not None else None, as_text(raw[1]) if raw[1] is not None else None)
    opted_out, paused = flags
    return opted_out is not None, int(paused or 0)


def remember_human_reply(ctx: WorkerContext, job: InboundJob) -> None:
    """A person wrote to the user from the WhatsApp Business app (Meta's echo; the API paused the conversation at
    once): renew the pause from this message and store the words as the business's turn, in order."""
    echo = job.message
    body = echo.get("text", {}).get("body") if isinstance(echo.get("text"), dict) else None
    typed = isinstance(body, str) and bool(body.strip())
    words = str(body) if typed else f"(a person from the business sent a {echo.get('type')})"
    pause(ctx.redis, job.conversation, ctx.settings.handoff_pause_minutes)
    ctx.ledgers.of(job).remember(ctx.memory, entry("assistant", words, "text" if typed else "other"))
    log.info("handoff.human_message", correlation_id=correlation_id(job.message_id), type=echo.get("type"))


def remember_while_paused(ctx: WorkerContext, job: InboundJob) -> None:
    """A person has the conversation: keep the user's words (so the bot knows them when it resumes), answer
    nothing. The send gate would block a reply anyway; this spares the model call."""
    if not keep_unanswered(ctx, job):  # an edit, deletion or reaction changes memory or feedback instead
        text = user_text(job.message) or f"(sent a {job.message_type})"
        ctx.ledgers.of(job).remember(ctx.memory, entry("user", text, "text" if user_text(job.message) else "other"))
    log.info("message.paused", correlation_id=correlation_id(job.message_id), type=job.message_type)


def run_command(ctx: WorkerContext, job: InboundJob, request: CommandRequest) -> None:
    log.info(
        "command.received",
        correlation_id=correlation_id(job.message_id),
        command=request.command.value,
        conversation=conversation_ref(job.conversation),
    )
    COMMANDS[request.command](ctx, job, request.language)


def _reply(ctx: WorkerContext, job: InboundJob, key: str, language: str) -> None:
    send_text_reply(ctx, job, phrase(key, language), part="command")


def reset(ctx: WorkerContext, job: InboundJob, language: str) -> None:
    """Forget the conversation's memory and the answers kept for it; this message is not remembered either."""
    ctx.memory.clear(job.conversation)
    UndeliveredAnswers(ctx.redis, ctx.settings.undelivered_ttl_seconds).drop(job.conversation)
    _reply(ctx, job, "command_reset", language)


def stop(ctx: WorkerContext, job: InboundJob, language: str) -> None:
    """Confirm, then close the gate (in this order: once `opted_out` is set, the gate blocks the confirmation too).
    A retry after the flag was set finds the confirmation sent (ledger) or blocked: never a second one."""
    _reply(ctx, job, "command_stop", language)
    key = conversation_state_key(job.conversation)
    pipe = ctx.redis.pipeline(transaction=True)
    pipe.hset(key, OPTED_OUT_FIELD, str(int(job.received_at)))
    pipe.persist(key)  # the state may carry the window's lifetime: an opt-out lasts until the user says start
    # Answers kept for a user who asked us to stop must not reach them when they write `start` again.
    pipe.delete(undelivered_key(job.conversation))
    pipe.hdel(key, KEPT_FIELD)
    pipe.execute()


def start(ctx: WorkerContext, job: InboundJob, language: str) -> None:
    key = conversation_state_key(job.conversation)
    pipe = ctx.redis.pipeline(transaction=True)
    pipe.hdel(key, OPTED_OUT_FIELD)
    pipe.expire(key, STATE_TTL_SECONDS)  # back to the lifetime of an ordinary conversation's state
    pipe.execute()
    _reply(ctx, job, "command_start", language)


def export(ctx: WorkerContext, job: InboundJob, language: str) -> None:
    """Upload everything stored about the user as a document and send it. The upload's media id is a stage of
    the message's ledger, so a retry sends the same upload once instead of uploading again."""

    def upload() -> str:
        document = orjson.dumps(collect(ctx.redis, job.conversation), option=orjson.OPT_INDENT_2)
        return ctx.graph.upload_media(document, EXPORT_MIME_TYPE, EXPORT_FILENAME)

    media_id = generate_once(ctx, job, "export_upload", upload)
    caption = phrase("command_export", language)
    result = ctx.ledgers.of(job).send_once(
        "document:0",
        lambda: ctx.graph.send_document(job.to, job.recipient, media_id, EXPORT_FILENAME, caption),
    )
    log.info("command.exported", correlation_id=correlation_id(job.message_id), sent=result is SendResult.SENT)


def delete(ctx: WorkerContext, job: InboundJob, language: str) -> None:
    """Erase everything stored about the user (messages received after this one stay: they are still queued), send
    the receipt, and have the job runner remove this message's own ledger once the job is done."""
    ledger = ctx.ledgers.of(job)
    received_ms = int(ledger.fields.get("received_ms") or job.received_at * 1000)
    erased = erase(
        ctx.redis,
        job.conversation,
        ctx.settings.whatsapp_token.get_secret_value(),
        keep_ref=ledger.ref,
        received_up_to_ms=received_ms,
    )
    log.info("command.deleted", correlation_id=correlation_id(job.message_id), **erased.summary())
    _reply(ctx, job, "command_delete", language)
    ledger.discard_when_done = True


def hand_off(ctx: WorkerContext, job: InboundJob, language: str) -> None:
    """The user asked for a person: one reply, then the pause, an `ops.handoff` event and the optional webhook
    (on a thread: the job does not wait for it). The turn is remembered, so the person and, later, the bot see it.
    A retried job re-pauses (harmless) but does not notify twice (the ledger's `handoff` stage)."""
    reply = phrase("command_handoff", language)
    _reply(ctx, job, "command_handoff", language)
    settings = ctx.settings
    until = pause(ctx.redis, job.conversation, settings.handoff_pause_minutes)
    history = ctx.ledgers.of(job).history or []
    ctx.ledgers.of(job).remember(ctx.memory, entry("user", user_text(job.message) or ""), entry("assistant", reply))

    def notify() -> str:
        log.warning(
            "ops.handoff",
            correlation_id=correlation_id(job.message_id),
            conversation=conversation_ref(job.conversation),
            paused_until_ms=until,
            webhook=bool(settings.handoff_webhook_url),
        )
        if settings.handoff_webhook_url:
            payload = handoff_payload(job, until, [*history, entry("user", user_text(job.message) or "")])
            deliver_in_background(
                settings.handoff_webhook_url, settings.handoff_webhook_secret.get_secret_value(), payload
            )
        return "notified"

    generate_once(ctx, job, "handoff", notify)


def handoff_payload(job: InboundJob, until_ms: int, turns: list[MemoryEntry]) -> dict[str, Any]:
    return {
        "event": "handoff",
        "conversation": job.conversation,  # what `loopera handoff resume` and the admin endpoint take
        "conversation_ref": conversation_ref(job.conversation),
        # Where a person reaches the user: the phone number (wa_id) when Meta sent one, else the BSUID.
        "wa_id": job.to if job.recipient is None and job.group_id is None else None,
        "user_id": job.recipient,
        "requested_at": int(job.received_at),
        "paused_until": until_ms,
        "last_turns": [{"role": t["role"], "content": t["content"], "ts": t["ts"]} for t in turns[-HANDOFF_TURNS:]],
    }


Handler = Callable[[WorkerContext, InboundJob, str], None]

COMMANDS: dict[Command, Handler] = {
    Command.RESET: reset,
    Command.STOP: stop,
    Command.START: start,
    Command.EXPORT: export,
    Command.DELETE: delete,
    Command.HANDOFF: hand_off,
}
