"""Bursts: people type in bursts ("hi" / "I have a question" / "about my order"); such a burst gets one answer.

Two halves:
- `hold_for_burst`, run by the job runner right after a conversation's head job is claimed: wait (a deferral, no
  worker slot held) while the burst may still grow, then merge its earlier messages into its last one
  (workers/delivery/burst.py, atomically). The earlier messages' jobs end there (outcome `merged`).
- `answer_burst`, the pipeline of the burst's last message: one model call over all the messages (a voice note by
  its transcript, a photo by its caption and a description of it), one reply quoting the last message (a voice
  note when that message is a voice note and a voice speaks its language, as for a voice note alone), and every
  message stored in the conversation's memory, in order. Every step is a stage of the last message's ledger, so a
  retried or redelivered job reuses the same transcripts, descriptions and answer.

Only messages a person waits an answer to in words join: typed text (not a command), voice notes and photos, in a
one-to-one chat. Anything else (a command, a sticker, a location, a group message...) ends the burst before it and
is handled on its own, after it.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass

import orjson
from pydantic import ValidationError

from shared.jobs import InboundJob
from shared.ledger import WITHDRAWN_FIELDS, ledger_key
from shared.logging import correlation_id, get_logger
from shared.redis_scripts import ScriptResult
from workers.clients.graph_errors import GraphError
from workers.context import WorkerContext
from workers.delivery.burst import Arrival, Closed, arrivals, burst_of
from workers.delivery.ledger_book import Claimed
from workers.delivery.memory import TurnKind, entry
from workers.errors import UserInputError
from workers.pipelines.audio import Heard, answer_aloud, listen, voice_prompt
from workers.pipelines.chat_turn import context_notes
from workers.pipelines.controls import command_of
from workers.pipelines.conversation_language import language_after
from workers.pipelines.flood import release_user_count
from workers.pipelines.payloads import media_caption, user_text
from workers.pipelines.prompting import ask_model, chat_call
from workers.pipelines.replies import acknowledge, generate_once, history_of, remember, send_text_reply
from workers.pipelines.staleness import message_age
from workers.pipelines.vision import describe_image

log = get_logger("workers.pipelines.burst")

# How soon a head job whose burst changed while it was being closed decides again (a deferral).
RECONSIDER_SECONDS = 0.05
BURST_FIELD = "burst"  # the last member's ledger: the members' refs in order (shared/scripts/burst_close.lua)
DESCRIBE_PHOTO = "Describe this photo in two or three plain sentences for someone who cannot see it."


@dataclass(frozen=True, slots=True)
class Run:
    """Run the job's own pipeline: merging is off, the message is alone, or it answers a closed burst."""


@dataclass(frozen=True, slots=True)
class Wait:
    seconds: float  # until the burst may have closed


@dataclass(frozen=True, slots=True)
class Merged:
    into: str  # the ref of the burst's last message, which answers it


@dataclass(frozen=True, slots=True)
class Lost:
    """This copy no longer holds the head job (the close script changed nothing): another copy carries on."""


Gate = Run | Wait | Merged | Lost


def _media_id(job: InboundJob) -> str:
    media = job.message.get(job.message_type)
    media_id = media.get("id") if isinstance(media, dict) else None
    return media_id if isinstance(media_id, str) else ""


def joins_burst(job: InboundJob, stale_seconds: float, now: float) -> bool:
    """Whether this message may be part of a burst: typed text that is not a command, a voice note or a photo, in a
    one-to-one chat, and not Meta's late backlog (workers/pipelines/staleness.py answers that on its own)."""
    if job.group_id is not None:
        return False
    age = message_age(job.message, now)
    if age is not None and age > stale_seconds:
        return False
    if job.message_type == "text":
        return user_text(job.message) is not None and command_of(job) is None
    return job.message_type in ("audio", "image") and bool(_media_id(job))


def hold_for_burst(ctx: WorkerContext, claim: Claimed, token: str) -> Gate:
    """For a freshly claimed head job: run it, wait for its burst to close, or merge it into its burst's last
    message. One extra round trip only when messages are queued behind it (their ledgers), one more to merge."""
    settings = ctx.settings
    ledger, job = claim.ledger, claim.job
    if job is None or settings.coalesce_window_seconds <= 0 or BURST_FIELD in ledger.fields:
        return Run()
    opted_out, paused_until = ledger.conversation_flags or (None, None)
    now = time.time()
    if opted_out is not None or int(paused_until or 0) > now * 1000:
        return Run()  # the controls handle each message on its own (workers/pipelines/controls.py)
    withdrawn = any(flag in ledger.fields for flag in WITHDRAWN_FIELDS)
    head = Arrival(claim.ref, claim.task_id, int(ledger.fields.get("received_ms") or 0), job, withdrawn)
    stale = settings.stale_message_seconds
    verdict = burst_of(
        head,
        arrivals(ctx.redis, claim.behind),
        int(settings.coalesce_window_seconds * 1000),
        int(settings.coalesce_max_wait_seconds * 1000),
        int(now * 1000),
        lambda candidate: joins_burst(candidate, stale, now),
    )
    if not isinstance(verdict, Closed):
        return Wait(verdict.wait_ms / 1000)
    if len(verdict.members) == 1:
        return Run()
    return _close(ctx, job, token, verdict.members)


def _close(ctx: WorkerContext, job: InboundJob, token: str, members: tuple[Arrival, ...]) -> Gate:
    """Merge a closed burst (its first member is `job`, claimed with `token`) into its last message."""
    last = members[-1]
    result = ctx.bursts.close(job.conversation, token, members)
    if result is ScriptResult.BURST_CHANGED:
        return Wait(RECONSIDER_SECONDS)  # an edit or a delete came in between: decide with it
    if result is not ScriptResult.MERGED:
        log.info("burst.close_refused", correlation_id=correlation_id(job.message_id), result=result.name)
        return Lost()
    # The head's claim counted it in the user's message window; the burst's one answer is counted by its last.
    release_user_count(ctx, job)
    log.info("burst.merged", correlation_id=correlation_id(job.message_id), into=last.ref[:12], members=len(members))
    return Merged(last.ref)


def is_burst_answer(ctx: WorkerContext, job: InboundJob) -> bool:
    """Whether this job answers a closed burst (its ledger names the burst's members)."""
    return BURST_FIELD in ctx.ledgers.of(job).fields


@dataclass(frozen=True, slots=True)
class Said:
    """One member of a burst as the model reads it (`prompt`) and as memory keeps it (`memory`, `kind`); `words`
    and `spoken` (Whisper's language) decide the conversation's language stored with it."""

    prompt: str
    memory: str
    kind: TurnKind
    words: str = ""
    spoken: str = ""


def members_of(ctx: WorkerContext, job: InboundJob) -> list[tuple[str, InboundJob]]:
    """The burst's messages (ref, job) in arrival order that the answer is for, this job's (the last) included: the
    earlier ones from their ledgers (one round trip). A message edited or deleted before the burst closed is left
    out (its edit is answered on its own); a ledger gone meanwhile (its TTL is days) drops only that message."""
    refs: list[str] = orjson.loads(ctx.ledgers.of(job).fields[BURST_FIELD])
    pipe = ctx.redis.pipeline(transaction=False)
    for ref in refs[:-1]:
        pipe.hmget(ledger_key(ref), "job", *WITHDRAWN_FIELDS)
    members: list[tuple[str, InboundJob]] = []
    for ref, (raw, *flags) in zip(refs[:-1], pipe.execute() if refs[:-1] else [], strict=True):
        if any(flag is not None for flag in flags):
            continue
        try:
            members.append((ref, InboundJob.model_validate_json(raw or b"")))
        except ValidationError:
            log.warning("burst.member_unreadable", correlation_id=correlation_id(job.message_id))
    return [*members, (ctx.ledgers.of(job).ref, job)]


def _heard(ctx: WorkerContext, job: InboundJob, member: InboundJob, index: int) -> Said:
    stored = generate_once(
        ctx, job, f"burst:transcript:{index}", lambda: json.dumps(asdict(listen(ctx, member, _media_id(member))))
    )
    heard = Heard(**json.loads(stored))
    if heard.notice or not heard.text:
        said = "(a voice note that could not be understood)"
        return Said(said, said, "voice")
    return Said(f"(voice note) {heard.text}", heard.text, "voice", heard.text, heard.language)


def _seen(ctx: WorkerContext, job: InboundJob, member: InboundJob, index: int) -> Said:
    caption, notes = media_caption(member.message), context_notes(member.message)
    ask = DESCRIBE_PHOTO + (f" Its caption: {caption}" if caption else "")

    def describe() -> str:
        try:
            # A description for the chat model, which has the conversation: no history needed here.
            return describe_image(ctx, member, _media_id(member), ask, [])
        except UserInputError as exc:
            log.info("burst.photo_unreadable", correlation_id=correlation_id(member.message_id), reason=exc.reason)
        except GraphError as exc:
            if exc.ops_alert:
                raise
            log.info("burst.photo_unreadable", correlation_id=correlation_id(member.message_id), reason=exc.reason)
        return ""

    description = generate_once(ctx, job, f"burst:photo:{index}", describe)
    shown = f"(what the photo shows: {description})" if description else "(a photo that could not be opened)"
    said = f"{notes}(photo) {caption} {shown}".replace("  ", " ")
    return Said(said, said, "image", caption)


def said_by(ctx: WorkerContext, job: InboundJob, member: InboundJob, index: int) -> Said:
    if member.message_type == "audio":
        return _heard(ctx, job, member, index)
    if member.message_type == "image":
        return _seen(ctx, job, member, index)
    words = user_text(member.message) or ""
    said = context_notes(member.message) + words
    return Said(said, said, "text", words)


def answer_burst(ctx: WorkerContext, job: InboundJob) -> None:
    """One answer to the whole burst, quoting its last message (this job's); every message remembered in order."""
    acknowledge(ctx, job)  # the read receipt of the last message marks the earlier ones read too
    history = history_of(ctx, job)
    members = members_of(ctx, job)
    said = [said_by(ctx, job, member, index) for index, (_ref, member) in enumerate(members)]
    cid = correlation_id(job.message_id)
    call = chat_call(ctx.settings)
    content = "\n".join(item.prompt for item in said)
    # A burst that ends with a voice note (one that was understood) is answered as one would be: aloud when a voice
    # speaks its language, written otherwise. One that ends with typed words or a photo is answered in writing.
    last = said[-1]
    aloud = last.kind == "voice" and bool(last.words)
    system = voice_prompt(ctx, last.spoken) if aloud else [ctx.system_prompt]
    reply = generate_once(
        ctx,
        job,
        "chat",
        lambda: ask_model(ctx, call, system, history, content, cid=cid, conversation=job.conversation),
    )
    if aloud:
        spoken_sent = answer_aloud(ctx, job, reply, last.spoken)
    else:
        send_text_reply(ctx, job, reply)
        spoken_sent = False
    turns = [entry("user", item.memory, item.kind, language_after(history, item.words, item.spoken)) for item in said]
    for turn, (ref, _member) in zip(turns, members, strict=True):
        turn["ref"] = ref  # each message's own turn, so a later edit or delete of it finds it
    remember(ctx, job, *turns, entry("assistant", reply, kind="voice" if spoken_sent else "text"))
