"""Replies and the 24-hour customer service window (see workers/delivery/service_window.py), and answers the user
did not get.

Every free-form send checks the window first. Outside it nothing free-form is sent (Meta would refuse it with
131047, and a dead letter would only replay the refusal): the reason is logged (`reply.outside_window`), an answer
is kept for the user's next message (shared/undelivered.py), and an approved template is sent instead if
OUTSIDE_WINDOW_TEMPLATE names one. The job then ends normally: nothing is retried or dead-lettered for this.

An answer Meta accepted and then reported `failed` (131047, 131026) is kept by the API from the ledger fields
`keep:<kind>` and `asked`, which every keepable send writes with its claim (`note_keepable`: no round trip of its
own). The user's next message first gets each kept answer, introduced by what it answered.
"""

from __future__ import annotations

import orjson

from shared.jobs import InboundJob
from shared.ledger import CUSTOMER_SERVICE_WINDOW_SECONDS as WINDOW_SECONDS
from shared.logging import conversation_ref, correlation_id, get_logger
from shared.undelivered import ASKED_CHARS, KEPT_KINDS
from workers.context import WorkerContext
from workers.delivery.service_window import window_open
from workers.delivery.undelivered import KeptAnswer, UndeliveredAnswers
from workers.pipelines.conversation_language import language_for_reply
from workers.pipelines.payloads import as_dict, user_text
from workers.text.formatting import markdown_to_whatsapp, split_message
from workers.text.phrases import phrase

log = get_logger("workers.pipelines.window")

TEMPLATE_SENT_PREFIX = "lp:window-template:"
KEPT_PARTS = frozenset(KEPT_KINDS)


def held_back_outside_window(ctx: WorkerContext, job: InboundJob, text: str, part: str) -> bool:
    """True when the window is closed and the reply was dealt with here (kept, maybe a template sent)."""
    if window_open(ctx.redis, job):
        return False
    keep = keep_undelivered(ctx, job, text, part)
    template = ctx.settings.outside_window_template
    # One template per conversation per day: a backlog of old messages must not become a burst of templates. The
    # day's marker names the message that sends it, so a retry of that message (its send failed) still sends it;
    # the ledger's send gate keeps that to once.
    if template and ctx.ledgers.of(job).holds(TEMPLATE_SENT_PREFIX + job.conversation, WINDOW_SECONDS):
        language = ctx.settings.outside_window_template_language
        ctx.ledgers.of(job).send_once(
            "template", lambda: ctx.graph.send_template(job.to, job.recipient, template, language), template=True
        )
    log.info(
        "reply.outside_window",
        correlation_id=correlation_id(job.message_id),
        conversation=conversation_ref(job.conversation),
        part=part,
        kept=keep,
        template=bool(template),
    )
    return True


def keep_undelivered(ctx: WorkerContext, job: InboundJob, text: str, part: str) -> bool:
    """Keep an answer the window stopped, for the user's next message. Returns whether the part is worth keeping."""
    if part not in KEPT_PARTS:
        return False
    store = UndeliveredAnswers(ctx.redis, ctx.settings.undelivered_ttl_seconds)
    store.keep(job.conversation, text, asked_in(ctx, job), ctx.ledgers.of(job).ref)
    return True


def note_keepable(ctx: WorkerContext, job: InboundJob, text: str, kind: str) -> None:
    """Write, with the next ledger write (the send's own claim), what the API needs to keep this answer should
    Meta report it `failed` later (shared/scripts/record_status.lua)."""
    if kind not in KEPT_PARTS:
        return
    ledger = ctx.ledgers.of(job)
    ledger.note(f"keep:{kind}", text)
    ledger.note("asked", asked_in(ctx, job))


def asked_in(ctx: WorkerContext, job: InboundJob) -> str:
    """The start of the user's message (typed text, caption, or a voice note's transcript), to remind them later
    what an answer was about; "" when it has no words."""
    words = user_text(job.message) or str(as_dict(job.message.get(job.message_type)).get("caption") or "")
    if not words:
        transcript = ctx.ledgers.of(job).stored("transcript")
        if isinstance(transcript, str) and transcript.startswith("{"):
            words = str(orjson.loads(transcript).get("text") or "")
    words = " ".join(words.split())
    return words if len(words) <= ASKED_CHARS else words[: ASKED_CHARS - 1].rsplit(" ", 1)[0] + "…"


def kept_answer_text(ctx: WorkerContext, answer: KeptAnswer, language: str) -> str:
    """The kept answer as sent: introduced by the question it answers (KEPT_ANSWER_INTRO, else a built-in
    sentence in the conversation's language)."""
    if ctx.settings.kept_answer_intro:
        intro = ctx.settings.kept_answer_intro.replace("{question}", answer.asked)
    elif answer.asked:
        intro = phrase("kept_answer", language).format(question=answer.asked)
    else:
        intro = phrase("kept_answer_no_question", language)
    return f"{intro}\n\n{answer.text}"


def deliver_kept_answers(ctx: WorkerContext, job: InboundJob) -> None:
    """The user wrote again: send the answers they did not get, once each, before the new one."""
    if ctx.ledgers.of(job).kept_answers is False:
        return  # the claim read the conversation's state: nothing is kept (the common case, no round trip)
    store = UndeliveredAnswers(ctx.redis, ctx.settings.undelivered_ttl_seconds)
    kept = store.kept(job.conversation)
    if not kept or not window_open(ctx.redis, job):
        return
    group = job.group_id is not None
    language = language_for_reply(ctx, job, user_text(job.message) or "")
    for index, answer in enumerate(kept):
        for chunk, body in enumerate(split_message(markdown_to_whatsapp(kept_answer_text(ctx, answer, language)))):

            def send(body: str = body) -> str:
                return ctx.graph.send_text(job.to, job.recipient, body, None, group=group)

            ctx.ledgers.of(job).send_once(f"kept:{index}:{chunk}", send)
    store.drop(job.conversation)
    log.info("reply.kept_delivered", correlation_id=correlation_id(job.message_id), answers=len(kept))
