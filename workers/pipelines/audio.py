"""Audio pipeline (queue `audio`): voice note -> transcript -> chat reply -> voice note back, or text.

Download (fresh URL, size cap) -> duration cap -> Whisper (`voice.ogg`, verbose_json for the language) -> chat
model with memory -> speak if the language is in VOICE_REPLY_LANGUAGES -> upload OGG/Opus -> send `voice: true`.
Any failure to *speak* falls back to the same reply as text: the user always gets exactly one answer.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

from shared.jobs import InboundJob
from shared.logging import correlation_id, get_logger
from workers.clients.graph_errors import GraphError
from workers.clients.groq import Transcript
from workers.clients.rate_limit import RateLimited
from workers.context import WorkerContext
from workers.delivery.lease import Heartbeat
from workers.delivery.ledger import SendResult
from workers.delivery.memory import entry
from workers.errors import PermanentError, UserInputError
from workers.media.transcode import TranscodeError, audio_duration, encode_opus
from workers.pipelines.conversation_language import language_after, language_for_reply
from workers.pipelines.groups import remember_bot_message
from workers.pipelines.prompting import ask_model, chat_call
from workers.pipelines.replies import acknowledge, generate_once, history_of, remember, send_text_reply
from workers.pipelines.text import handle_text_queue
from workers.pipelines.transcript_confidence import ConfidenceRules, confident_text
from workers.pipelines.window import held_back_outside_window, note_keepable
from workers.text.languages import next_language
from workers.text.phrases import PHRASES, phrase
from workers.voice.speak import SpeechFailedError, prepare_voice_note, tts_voice_for

log = get_logger("workers.audio")

VOICE_HINT = "This reply will be read aloud as a voice note: a few short spoken sentences, no formatting, no lists."
# Extensions Whisper accepts, by MIME type; anything else (AMR, AAC) is re-encoded to OGG/Opus first.
_UPLOAD_NAMES = {
    "audio/ogg": "voice.ogg",
    "audio/opus": "voice.opus",
    "audio/mpeg": "voice.mp3",
    "audio/mp4": "voice.m4a",
    "audio/x-m4a": "voice.m4a",
    "audio/wav": "voice.wav",
    "audio/x-wav": "voice.wav",
    "audio/webm": "voice.webm",
    "audio/flac": "voice.flac",
}


@dataclass(frozen=True, slots=True)
class Heard:
    """What the voice note said, or (`notice` set) which polite reply it gets instead."""

    text: str = ""
    language: str = ""
    notice: str = ""


def _limit(seconds: int) -> str:
    return f"{seconds // 60} min" if seconds >= 120 and seconds % 60 == 0 else f"{seconds} s"


def _size_limit(size: int) -> str:
    return f"{size / (1024 * 1024):.0f} MB" if size >= 1024 * 1024 else f"{size // 1024} KB"


def upload_for_whisper(ctx: WorkerContext, data: bytes, mime_type: str) -> tuple[str, bytes]:
    """(filename, bytes) Groq accepts: it picks the decoder by extension and refuses what it does not list."""
    name = _UPLOAD_NAMES.get(mime_type.split(";", maxsplit=1)[0].strip().lower())
    if name is not None:
        return name, data
    settings = ctx.settings
    note = encode_opus(data, None, settings.voice_bitrate, settings.ffmpeg_binary, settings.ffmpeg_timeout_seconds)
    return "voice.ogg", note


def length_notice(ctx: WorkerContext, cid: str, data: bytes) -> tuple[str, float | None]:
    """The notice for audio too long to transcribe, or that does not decode within its work budget (not audio,
    or crafted: Whisper would not do better), "" when it can go to Whisper; and its duration (seconds)."""
    settings = ctx.settings
    seconds = audio_duration(
        data,
        settings.max_voice_seconds,
        settings.ffmpeg_binary,
        settings.ffmpeg_timeout_seconds,
        settings.media_cpu_seconds,
        settings.media_memory_mb * 1024 * 1024,
    )
    if seconds is None:
        log.info("voice.unreadable", correlation_id=cid, reason="undecodable")
        return "voice_not_understood", None
    if seconds > settings.max_voice_seconds:
        log.info("voice.too_long", correlation_id=cid, seconds=round(seconds, 1))
        return "voice_too_long", seconds
    return "", seconds


def understood(ctx: WorkerContext, cid: str, transcript: Transcript, seconds: float | None) -> Heard:
    """The words Whisper was confident about (transcript_confidence.py), or the "could not understand" notice."""
    settings = ctx.settings
    if not transcript.text:
        log.info("voice.empty_transcript", correlation_id=cid, language=transcript.language)
        return Heard(language=transcript.language, notice="voice_not_understood")
    rules = ConfidenceRules.from_settings(settings)
    confident = confident_text(transcript.text, transcript.segments, rules, seconds or transcript.duration)
    if confident.dropped:
        log.info(
            "voice.unsure_segments",
            correlation_id=cid,
            segments=len(transcript.segments),
            kept_chars=len(confident.text),
            **dict(confident.dropped),
        )
    if not confident.text:
        # Whisper's language guess is as unsure as its words here: the conversation's language answers instead.
        return Heard(notice="voice_not_understood")
    # Whisper normally names the language; if not, the language of the words beats "unknown".
    return Heard(confident.text, transcript.language or next_language(confident.text, ""))


def listen(ctx: WorkerContext, job: InboundJob, media_id: str) -> Heard:
    settings = ctx.settings
    cid = correlation_id(job.message_id)
    try:
        data, mime_type = ctx.graph.download_media(media_id, settings.max_voice_bytes)
    except UserInputError as exc:
        if exc.reason != "media_too_large":
            # A media URL we will not send the token to: the note cannot be fetched, however often we try.
            log.warning("voice.unreadable", correlation_id=cid, reason=exc.reason)
            return Heard(notice="voice_unreadable")
        log.info("voice.too_large", correlation_id=cid, detail=exc.detail)
        return Heard(notice="voice_too_large")
    notice, seconds = length_notice(ctx, cid, data)
    if notice:
        return Heard(notice=notice)
    try:
        filename, upload = upload_for_whisper(ctx, data, mime_type)
        transcript = ctx.groq.transcribe(settings.stt_model, upload, filename, conversation=job.conversation)
    except TranscodeError as exc:
        log.warning("voice.unreadable", correlation_id=cid, reason=exc.reason)
        return Heard(notice="voice_not_understood")
    except PermanentError as exc:
        if exc.ops_alert:
            raise  # a retired STT model or a bad key: ops must act; the job runner apologises and dead-letters
        log.warning("voice.transcription_failed", correlation_id=cid, reason=exc.reason)
        return Heard(notice="voice_not_understood")
    return understood(ctx, cid, transcript, seconds)


def listen_once(ctx: WorkerContext, job: InboundJob, media_id: str) -> Heard:
    """A retried job reuses its transcript (Whisper bills per audio second, and the words must stay the same)."""
    cached = generate_once(ctx, job, "transcript", lambda: json.dumps(asdict(listen(ctx, job, media_id))))
    if not cached.startswith("{"):
        return Heard(notice="voice_not_understood")
    return Heard(**json.loads(cached))


def decide_answer(ctx: WorkerContext, job: InboundJob, reply: str, language: str) -> str:
    """`voice:<media id>` or `text`. Decided once per message, so a retry cannot switch a sent text to voice."""
    tts = tts_voice_for(ctx.settings, language)
    cid = correlation_id(job.message_id)
    if tts is None:
        log.info("voice.reply_as_text", correlation_id=cid, language=language or "unknown")
        return "text"
    try:
        return "voice:" + prepare_voice_note(ctx, job, reply, tts)
    except SpeechFailedError as exc:
        _log_fallback(cid, exc.cause, exc.detail, exc.ops_alert)
        return "text"
    except RateLimited:
        raise  # a short per-minute TTS limit: the job is deferred, not answered as text
    except Exception as exc:  # a bug or an outage in the optional part must not cost the user the answer itself
        log.exception("voice.fallback_to_text", correlation_id=cid, cause="speech_error", detail=type(exc).__name__)
        return "text"


def _log_fallback(cid: str, cause: str, detail: str, ops_alert: bool) -> None:
    """Exactly one event per fallback; `ops.alert` when a human must act (terms, retired model)."""
    if ops_alert:
        log.error("ops.alert", correlation_id=cid, reason=cause, detail=detail, fallback="text_reply")
    else:
        log.warning("voice.fallback_to_text", correlation_id=cid, cause=cause, detail=detail)


def send_answer(ctx: WorkerContext, job: InboundJob, reply: str, mode: str) -> bool:
    """Send the reply once, as a voice note when `mode` says so. Returns True when it went out spoken."""
    if held_back_outside_window(ctx, job, reply, "text"):
        return False
    ledger = ctx.ledgers.of(job)
    if mode.startswith("voice:") and not ledger.was_sent("text:0"):
        media_id = mode.removeprefix("voice:")

        def send_voice() -> str:
            group = job.group_id is not None
            wamid = ctx.graph.send_voice(job.to, job.recipient, media_id, reply_to=job.message_id, group=group)
            remember_bot_message(ctx, job, wamid)
            return wamid

        note_keepable(ctx, job, reply, "voice")
        try:
            result = ledger.send_once("voice", send_voice)
            return result is not SendResult.BLOCKED
        except GraphError as exc:
            if exc.ops_alert:
                raise  # the token or the number is broken: a text would fail the same way
            _log_fallback(correlation_id(job.message_id), "voice_send_failed", f"{exc.reason}: {exc.detail}", False)
    send_text_reply(ctx, job, reply)
    return False


def answer_aloud(ctx: WorkerContext, job: InboundJob, reply: str, language: str) -> bool:
    """Send `reply` as a voice note in `language` when a voice speaks it there, else as text; the choice is a stage
    of the ledger (`answer_mode`), so a retry sends the same form. Returns True when it went out spoken."""
    mode = generate_once(ctx, job, "answer_mode", lambda: decide_answer(ctx, job, reply, language))
    return send_answer(ctx, job, reply, mode)


def voice_prompt(ctx: WorkerContext, language: str) -> list[str]:
    """The system prompt for an answer to a voice note heard in `language`: spoken answers are asked to be short
    and plain (no formatting to read aloud), written ones are not."""
    spoken = tts_voice_for(ctx.settings, language) is not None
    return [ctx.system_prompt, VOICE_HINT] if spoken else [ctx.system_prompt]


def send_notice(ctx: WorkerContext, job: InboundJob, heard: Heard, fallback_language: str) -> None:
    language = heard.language if heard.language in PHRASES[heard.notice] else fallback_language
    settings = ctx.settings
    text = phrase(heard.notice, language).format(
        limit=_size_limit(settings.max_voice_bytes)
        if heard.notice == "voice_too_large"
        else _limit(settings.max_voice_seconds)
    )
    send_text_reply(ctx, job, text, part="notice")


def answer_voice_note(ctx: WorkerContext, job: InboundJob, media_id: str) -> None:
    settings = ctx.settings
    history = history_of(ctx, job)
    acknowledge(ctx, job)
    # The indicator disappears after ~25 s or when we reply; keep it up while we work, stop it before we send.
    with Heartbeat(settings.typing_refresh_seconds, lambda: acknowledge(ctx, job)):
        heard = listen_once(ctx, job, media_id)
        if heard.notice:
            mode = reply = ""
        else:
            system = voice_prompt(ctx, heard.language)
            call, cid = chat_call(settings), correlation_id(job.message_id)
            reply = generate_once(
                ctx,
                job,
                "chat",
                lambda: ask_model(
                    ctx, call, system, history, f"(voice note) {heard.text}", cid=cid, conversation=job.conversation
                ),
            )
            mode = generate_once(ctx, job, "answer_mode", lambda: decide_answer(ctx, job, reply, heard.language))
    if heard.notice:
        send_notice(ctx, job, heard, language_for_reply(ctx, job, history=history))
        return
    spoken_sent = send_answer(ctx, job, reply, mode)
    remember(
        ctx,
        job,
        entry("user", heard.text, kind="voice", language=language_after(history, heard.text, heard.language)),
        entry("assistant", reply, kind="voice" if spoken_sent else "text"),
    )


def handle_audio_queue(ctx: WorkerContext, job: InboundJob) -> None:
    audio = job.message.get("audio") if job.message_type == "audio" else None
    media_id = audio.get("id") if isinstance(audio, dict) else None
    if not media_id:
        handle_text_queue(ctx, job)  # not a voice note after all (e.g. a replayed job): the text pool's rules apply
        return
    answer_voice_note(ctx, job, str(media_id))
