"""End to end voice notes: signed webhook -> API -> Redis -> Celery audio worker (real ffmpeg) -> fakes.

The voice tests run their own API and audio worker on a separate Redis database, with a private TMPDIR (to prove
nothing is written there) and small caps, so the session's `--pool all` worker cannot take their jobs.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis

from shared.logging import correlation_id
from tests.fakes.graph_fake import GraphFake, graph_error
from tests.fakes.groq_fake import TTS_MAX_CHARS, GroqFake, Transcription, groq_error, tone_wav
from tests.fakes.server import Fault, wait_for
from tests.integration.conftest import Webhooks
from tests.processes import RedisServer, ServiceProcess, start_api, start_worker
from tests.webhooks import CASE_FIXTURES, MEDIA_FIXTURES, conversation_of, fresh_ids, message_body
from workers.text.phrases import PHRASES

pytestmark = pytest.mark.integration

VOICE_EN = (MEDIA_FIXTURES / "voice-en.ogg").read_bytes()
VOICE_ES = (MEDIA_FIXTURES / "voice-es.ogg").read_bytes()
MAX_VOICE_SECONDS = 20
MAX_VOICE_BYTES = 200_000
LONG_REPLY = (
    "Designing Data-Intensive Applications by Martin Kleppmann is the classic choice. It explains replication, "
    "partitioning, transactions and consensus with clear diagrams and real systems as examples! For something "
    "shorter, try Understanding Distributed Systems by Roberto Vitillo; it is practical and very readable. "
    "Would you like a few more ideas, maybe something on a specific topic such as consensus or stream processing?"
)


@dataclass
class VoiceStack:
    webhooks: Webhooks
    worker: ServiceProcess
    redis: redis.Redis
    tmpdir: Path


@pytest.fixture(scope="module")
def voice_stack(service_env: dict[str, str], workdir: Path, redis_server: RedisServer) -> Iterator[VoiceStack]:
    tmpdir = workdir / "voice-tmp"
    tmpdir.mkdir()
    redis_url = redis_server.url.rsplit("/", 1)[0] + "/3"
    env = {
        **service_env,
        "REDIS_URL": redis_url,
        "TMPDIR": str(tmpdir),
        "MAX_VOICE_SECONDS": str(MAX_VOICE_SECONDS),
        "MAX_VOICE_BYTES": str(MAX_VOICE_BYTES),
        "TYPING_REFRESH_SECONDS": "1",
        "TTS_MAX_WAIT_SECONDS": "2",
    }
    api, api_url = start_api(env, workdir / "voice-api.log")
    worker = start_worker(env, workdir / "voice-worker.log", "--pool", "audio", "--concurrency", "2")
    client = redis.Redis.from_url(redis_url)
    hooks = Webhooks(api_url)
    yield VoiceStack(hooks, worker, client, tmpdir)
    hooks.http.close()
    worker.stop()
    api.stop()
    client.close()


@pytest.fixture
def stack(voice_stack: VoiceStack, graph_fake: GraphFake, groq_fake: GroqFake) -> Iterator[VoiceStack]:
    voice_stack.redis.flushdb()
    before = sorted(os.listdir(voice_stack.tmpdir))  # the prefork pool's own `pymp-*` dir is made at start
    yield voice_stack
    # Nothing left in the worker's temp dir, by us or by ffmpeg, whatever the test did.
    assert sorted(os.listdir(voice_stack.tmpdir)) == before


def audio_message(media_id: str, sender: str, mime_type: str = "audio/ogg; codecs=opus") -> dict[str, Any]:
    return {
        "from": sender,
        "id": f"wamid.{uuid.uuid4().hex}",
        "timestamp": str(int(time.time())),
        "type": "audio",
        "audio": {"mime_type": mime_type, "sha256": "abc", "id": media_id, "voice": True},
    }


def send_voice_note(stack: VoiceStack, graph_fake: GraphFake, data: bytes, sender: str) -> dict[str, Any]:
    media_id = f"media-{uuid.uuid4().hex[:8]}"
    graph_fake.add_media(media_id, data, "audio/ogg")
    message = audio_message(media_id, sender)
    assert stack.webhooks.post(message_body([message], sender=sender)).status_code == 200
    return message


def wait_done(stack: VoiceStack, message: dict[str, Any]) -> None:
    """The job finished (so no later second answer can still arrive)."""
    cid = correlation_id(message["id"])

    def finished() -> bool:
        return any(
            f'"{cid}"' in line and ('"job.done"' in line or '"job.failed"' in line)
            for line in stack.worker.output().splitlines()
        )

    wait_for(finished, timeout=30, what="the voice job to finish")


def log_events(stack: VoiceStack, message: dict[str, Any], event: str) -> list[dict[str, Any]]:
    cid = correlation_id(message["id"])
    events = []
    for line in stack.worker.output().splitlines():
        if "{" in line and f'"{cid}"' in line:  # Celery prefixes each line with its own "[time: LEVEL/proc]"
            record = json.loads(line[line.index("{") :])
            if record.get("event") == event:
                events.append(record)
    return events


def audio_sends(graph_fake: GraphFake, to: str) -> list[dict[str, Any]]:
    return [m for m in graph_fake.sent_messages() if m.get("to") == to and m["type"] == "audio"]


def ffprobe(data: bytes) -> dict[str, Any]:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_streams", "-show_format", "-of", "json", "-i", "pipe:0"],
        input=data,
        capture_output=True,
        check=True,
    ).stdout
    probed: dict[str, Any] = json.loads(out)
    return probed


# --- the happy path ---------------------------------------------------------------------------------------------


def test_english_voice_note_gets_a_real_voice_note_back(stack: VoiceStack, graph_fake, groq_fake) -> None:
    user = "15550100001"
    groq_fake.chat_reply = lambda request: LONG_REPLY
    message = send_voice_note(stack, graph_fake, VOICE_EN, user)

    sends = wait_for(lambda: audio_sends(graph_fake, user), what="a voice note at the Graph fake")
    wait_done(stack, message)
    assert len(sends) == 1
    assert sends[0]["audio"]["voice"] is True
    assert sends[0]["context"] == {"message_id": message["id"]}
    assert graph_fake.texts_to(user) == []

    # Whisper got the note as-is, with a filename Groq accepts, asking for the detected language.
    (stt,) = groq_fake.calls_to("audio/transcriptions")
    assert stt.file_name == "voice.ogg"
    assert stt.extra == {"size": len(VOICE_EN), "response_format": "verbose_json"}
    assert stt.model == "whisper-large-v3-turbo"

    # Every TTS request fits Orpheus' cap, and together, in reply order, they are the whole reply (they are sent
    # concurrently, so they may reach Groq in any order).
    tts = groq_fake.calls_to("audio/speech")
    inputs = [call.body["input"] for call in tts]
    assert len(inputs) > 1
    assert all(len(text) <= TTS_MAX_CHARS for text in inputs)
    assert " ".join(sorted(inputs, key=LONG_REPLY.index)) == " ".join(LONG_REPLY.split())
    assert {call.model for call in tts} == {"canopylabs/orpheus-v1-english"}
    assert {call.body["voice"] for call in tts} == {"autumn"}

    # What was uploaded is a WhatsApp voice note: mono Opus in OGG, small enough for the inline play button.
    (upload,) = graph_fake.uploads()
    assert upload.form["type"] == "audio/ogg"
    assert upload.file_type == "audio/ogg"
    assert upload.file is not None
    assert len(upload.file) <= 512 * 1024
    probed = ffprobe(upload.file)
    assert probed["format"]["format_name"] == "ogg"
    (audio_stream,) = probed["streams"]
    assert audio_stream["codec_name"] == "opus"
    assert audio_stream["channels"] == 1
    assert (sends[0]["audio"]["id"] == json.loads(json.dumps(upload.path)) and False) or sends[0]["audio"]["id"]

    # The turn is remembered as a voice turn, with its transcript.
    memory = [json.loads(item) for item in stack.redis.lrange(f"lp:mem:{conversation_of(user)}", 0, -1)]
    assert [(m["role"], m["kind"]) for m in memory] == [("user", "voice"), ("assistant", "voice")]
    assert memory[0]["content"] == groq_fake.transcription.text
    assert memory[1]["content"] == LONG_REPLY


def test_typing_indicator_is_resent_while_the_reply_is_slow(stack: VoiceStack, graph_fake, groq_fake) -> None:
    user = "15550100002"
    groq_fake.hold_chat.set()
    message = send_voice_note(stack, graph_fake, VOICE_EN, user)
    try:
        # TYPING_REFRESH_SECONDS=1 here: the first receipt plus refreshes while the chat model "thinks".
        wait_for(
            lambda: len([r for r in graph_fake.read_receipts() if r["message_id"] == message["id"]]) >= 3,
            what="repeated typing indicators",
        )
    finally:
        groq_fake.release_chat.set()
    wait_for(lambda: audio_sends(graph_fake, user), what="the voice reply")
    wait_done(stack, message)
    receipts = [r for r in graph_fake.read_receipts() if r["message_id"] == message["id"]]
    assert all(r["typing_indicator"] == {"type": "text"} for r in receipts)
    # No indicator after the answer: it would show "typing..." under a finished reply.
    bodies = [r.json or {} for r in graph_fake.requests if r.path.endswith("/messages")]
    last_typing = max(i for i, body in enumerate(bodies) if body.get("message_id") == message["id"])
    voice_send = next(i for i, body in enumerate(bodies) if body.get("type") == "audio")
    assert last_typing < voice_send


# --- language ---------------------------------------------------------------------------------------------------


def test_spanish_voice_note_gets_a_text_reply(stack: VoiceStack, graph_fake, groq_fake) -> None:
    user = "15550100003"
    groq_fake.transcription = Transcription(
        "Hola, ¿me puedes recomendar un buen libro sobre sistemas distribuidos?", language="Spanish"
    )
    message = send_voice_note(stack, graph_fake, VOICE_ES, user)

    texts = wait_for(lambda: graph_fake.texts_to(user), what="a text reply")
    wait_done(stack, message)
    assert texts == ["You said: (voice note) Hola, ¿me puedes recomendar un buen libro sobre sistemas distribuidos?"]
    assert audio_sends(graph_fake, user) == []
    assert groq_fake.calls_to("audio/speech") == []
    assert graph_fake.uploads() == []
    memory = [json.loads(item) for item in stack.redis.lrange(f"lp:mem:{conversation_of(user)}", 0, -1)]
    assert [(m["role"], m["kind"]) for m in memory] == [("user", "voice"), ("assistant", "text")]


# --- every way speaking can fail: exactly one text answer -----------------------------------------------------


def _bad_codec_wav(text: str) -> bytes:
    """A well-formed RIFF file whose codec tag ffmpeg does not know: the join works, ffmpeg fails."""
    wav = bytearray(tone_wav(0.5))
    wav[20:22] = (0x7A7A).to_bytes(2, "little")
    return bytes(wav)


FALLBACKS = {
    "terms": ("speech", groq_error(400, "model_terms_required", "accept the terms"), "groq_model_terms_required"),
    "daily_limit": (
        "speech",
        groq_error(429, "rate_limit_exceeded", "requests per day", "requests", **{"retry-after": "21600"}),
        "groq_rate_limited",
    ),
    "decommissioned": ("speech", groq_error(400, "model_decommissioned", "retired"), "groq_model_decommissioned"),
    "upload": ("media", graph_error(100, "Invalid parameter"), "upload_failed"),
    "ffmpeg": ("", None, "ffmpeg_failed"),
    "voice_send": ("messages:audio", graph_error(131053, "Media upload error"), "voice_send_failed"),
    "long_reply": ("", None, "reply_too_long_for_voice"),
}


@pytest.mark.parametrize("case", list(FALLBACKS))
def test_every_speech_failure_falls_back_to_exactly_one_text_answer(
    case: str, stack: VoiceStack, graph_fake, groq_fake
) -> None:
    user = f"1555020{list(FALLBACKS).index(case):04d}"
    route, fault, cause = FALLBACKS[case]
    expected = f"You said: (voice note) {groq_fake.transcription.text}"
    if fault is not None:
        (groq_fake if route == "speech" else graph_fake).faults.add(
            route, fault, times=1 if case == "voice_send" else 5
        )
    elif case == "ffmpeg":
        groq_fake.speech_audio = _bad_codec_wav
    else:  # over VOICE_REPLY_MAX_CHARS (600): too many TTS requests for one answer
        expected = LONG_REPLY + " " + LONG_REPLY
        groq_fake.chat_reply = lambda request: expected
    message = send_voice_note(stack, graph_fake, VOICE_EN, user)

    wait_for(lambda: graph_fake.texts_to(user), what="the fallback text reply")
    wait_done(stack, message)
    assert graph_fake.texts_to(user) == [expected]
    assert audio_sends(graph_fake, user) == []
    # One clear event naming the cause; ops alerts for what a human must fix.
    alerts = log_events(stack, message, "ops.alert")
    fallbacks = log_events(stack, message, "voice.fallback_to_text")
    assert len(alerts) + len(fallbacks) == 1
    event = (alerts or fallbacks)[0]
    if case == "long_reply":
        assert groq_fake.calls_to("audio/speech") == []
    assert event.get("reason", event.get("cause")) == cause
    if case in ("terms", "decommissioned"):
        assert alerts
    if case == "terms":
        assert "https://console.groq.com/playground?model=canopylabs%2Forpheus-v1-english" in event["detail"]


def test_a_short_tts_rate_limit_is_waited_out_and_the_reply_is_spoken(stack: VoiceStack, graph_fake, groq_fake) -> None:
    user = "15550100004"
    groq_fake.faults.add(
        "speech", groq_error(429, "rate_limit_exceeded", "per minute", "requests", **{"retry-after": "1"})
    )
    message = send_voice_note(stack, graph_fake, VOICE_EN, user)
    wait_for(lambda: audio_sends(graph_fake, user), what="the voice reply")
    wait_done(stack, message)
    assert graph_fake.texts_to(user) == []
    assert len(audio_sends(graph_fake, user)) == 1


def test_a_retried_job_resends_the_same_note_without_synthesising_again(
    stack: VoiceStack, graph_fake, groq_fake
) -> None:
    user = "15550100010"
    groq_fake.chat_reply = lambda request: LONG_REPLY
    # Graph fails the voice send once (131000: transient): the whole job is retried by the job runner.
    graph_fake.faults.add("messages:audio", graph_error(131000, "Something went wrong", status=500))
    message = send_voice_note(stack, graph_fake, VOICE_EN, user)

    wait_for(lambda: audio_sends(graph_fake, user), timeout=30, what="the voice reply after a retry")
    wait_done(stack, message)
    assert len(log_events(stack, message, "job.retrying")) == 1
    assert len(audio_sends(graph_fake, user)) == 1
    assert graph_fake.texts_to(user) == []
    # Transcript, reply, audio and upload were all reused by the retry.
    assert len(groq_fake.calls_to("audio/transcriptions")) == 1
    assert len(groq_fake.calls_to("chat/completions")) == 1
    inputs = [call.body["input"] for call in groq_fake.calls_to("audio/speech")]
    assert " ".join(sorted(inputs, key=LONG_REPLY.index)) == " ".join(LONG_REPLY.split())
    assert len(graph_fake.uploads()) == 1


# --- bad input: polite replies ---------------------------------------------------------------------------------


def test_empty_transcript_gets_i_could_not_understand_in_the_users_language(
    stack: VoiceStack, graph_fake, groq_fake
) -> None:
    user = "15550100005"
    groq_fake.transcription = Transcription("", language="Spanish")
    message = send_voice_note(stack, graph_fake, VOICE_ES, user)
    texts = wait_for(lambda: graph_fake.texts_to(user), what="a polite reply")
    wait_done(stack, message)
    assert texts == ["Lo siento, no pude entender ese mensaje de voz. ¿Puedes repetirlo o escribirlo?"]
    assert groq_fake.calls_to("chat/completions") == []


def test_failed_transcription_gets_i_could_not_understand(stack: VoiceStack, graph_fake, groq_fake) -> None:
    user = "15550100006"
    groq_fake.faults.add("transcriptions", groq_error(400, "invalid_request", "audio could not be decoded"))
    message = send_voice_note(stack, graph_fake, VOICE_EN, user)
    texts = wait_for(lambda: graph_fake.texts_to(user), what="a polite reply")
    wait_done(stack, message)
    assert texts == ["Sorry, I couldn't understand that voice message. Could you say it again or type it?"]


def test_too_long_voice_note_gets_a_polite_reply_without_transcription(
    stack: VoiceStack, graph_fake, groq_fake
) -> None:
    user = "15550100007"
    from workers.media.transcode import transcode_to_voice_note

    long_note = transcode_to_voice_note(tone_wav(MAX_VOICE_SECONDS + 5, rate=16000), bitrate="8k")
    assert len(long_note) < MAX_VOICE_BYTES  # too long, not too big
    message = send_voice_note(stack, graph_fake, long_note, user)
    texts = wait_for(lambda: graph_fake.texts_to(user), what="a polite reply")
    wait_done(stack, message)
    assert texts == [
        f"Sorry, that voice message is too long for me. Please keep it under {MAX_VOICE_SECONDS} s, "
        "or type your question."
    ]
    assert groq_fake.calls_to("audio/transcriptions") == []


def test_too_large_voice_note_is_refused_before_download(stack: VoiceStack, graph_fake, groq_fake) -> None:
    user = "15550100008"
    message = send_voice_note(stack, graph_fake, VOICE_EN + os.urandom(MAX_VOICE_BYTES), user)
    texts = wait_for(lambda: graph_fake.texts_to(user), what="a polite reply")
    wait_done(stack, message)
    assert texts == ["Sorry, that voice message is too large for me. Please send a shorter one (up to 195 KB)."]
    assert [r for r in graph_fake.requests if r.path.startswith("/download/")] == []
    assert groq_fake.calls_to("audio/transcriptions") == []


@pytest.mark.parametrize(
    "origin",
    [
        "https://127.0.0.1:{port}",  # the Graph host, but another scheme than the configured Graph URL's
        "http://127.0.0.1:1",  # the Graph host and scheme, another port
        "ftp://127.0.0.1:{port}",
    ],
)
def test_a_media_url_off_the_graph_origin_gets_a_polite_reply_once_and_never_the_token(
    stack: VoiceStack, graph_fake, groq_fake, origin: str
) -> None:
    user = "15550100031"
    graph_fake.media_origin = origin.format(port=graph_fake.server.url.rsplit(":", 1)[1])
    message = send_voice_note(stack, graph_fake, VOICE_EN, user)
    texts = wait_for(lambda: graph_fake.texts_to(user), what="a polite reply")
    wait_done(stack, message)
    assert texts == [PHRASES["voice_unreadable"]["en"]]  # one answer: refused for good, not retried into silence
    assert [r for r in graph_fake.requests if r.path.startswith("/download/")] == []
    assert groq_fake.calls_to("audio/transcriptions") == []


def test_expired_media_url_is_fetched_again_once(stack: VoiceStack, graph_fake, groq_fake) -> None:
    user = "15550100009"
    graph_fake.faults.add("download", Fault(404, {}))
    message = send_voice_note(stack, graph_fake, VOICE_EN, user)
    wait_for(lambda: audio_sends(graph_fake, user), what="the voice reply")
    wait_done(stack, message)
    media_id = message["audio"]["id"]
    lookups = [r for r in graph_fake.requests if r.method == "GET" and r.path.endswith(f"/{media_id}")]
    downloads = [r for r in graph_fake.requests if r.path.startswith("/download/")]
    assert len(lookups) == 2  # a fresh URL after the 404
    assert len(downloads) == 2
    assert downloads[0].path != downloads[1].path
    assert all(r.authorization == "Bearer test-whatsapp-token" for r in downloads)
    (stt,) = groq_fake.calls_to("audio/transcriptions")
    assert stt.extra["size"] == len(VOICE_EN)


# --- Whisper's confidence (issue 17, kind 2) --------------------------------------------------------------------

SILENT_CASE = json.loads((CASE_FIXTURES / "conversation" / "silent-voice-note.json").read_text())
SILENT_NOTE = (CASE_FIXTURES / "conversation" / "silent-voice-note.ogg").read_bytes()
# Real generated speech (espeak-ng -> ffmpeg, tests/fixtures/media/README.md), what Whisper says for it, and the
# confidence a clear recording gets. The short English "Thank you." is a phrase Whisper also invents on silence.
SPOKEN = [
    ("voice-en.ogg", "Hello! Can you recommend a good book about distributed systems?", "English"),
    ("voice-es.ogg", "Hola, ¿me puedes recomendar un buen libro sobre sistemas distribuidos?", "Spanish"),
    ("voice-pt.ogg", "Olá, pode me recomendar um bom livro sobre sistemas distribuídos?", "Portuguese"),
    ("voice-fr.ogg", "Bonjour, pouvez-vous me recommander un bon livre sur les systèmes distribués ?", "French"),
    ("voice-de.ogg", "Hallo, kannst du mir ein gutes Buch über verteilte Systeme empfehlen?", "German"),
    ("voice-it.ogg", "Ciao, puoi consigliarmi un buon libro sui sistemi distribuiti?", "Italian"),
    ("voice-ar.ogg", "مرحبا، هل يمكنك أن تنصحني بكتاب جيد عن الأنظمة الموزعة؟", "Arabic"),
    ("voice-thanks-en.ogg", "Thank you.", "English"),
]


def send_silent_case(stack: VoiceStack, graph_fake: GraphFake, sender: str) -> dict[str, Any]:
    body = fresh_ids(SILENT_CASE["webhook"], sender=sender)
    message = body["entry"][0]["changes"][0]["value"]["messages"][0]
    graph_fake.add_media(message["audio"]["id"], SILENT_NOTE, message["audio"]["mime_type"])
    assert stack.webhooks.post(body).status_code == 200
    return message


def test_a_silent_note_whisper_calls_thank_you_gets_could_not_understand_and_is_not_remembered(
    stack: VoiceStack, graph_fake, groq_fake
) -> None:
    groq_fake.transcription = Transcription(
        "", verbose_json=SILENT_CASE["setup"]["groq_fake_transcription_verbose_json"]
    )
    user = SILENT_CASE["webhook"]["entry"][0]["changes"][0]["value"]["messages"][0]["from"]
    message = send_silent_case(stack, graph_fake, user)
    texts = wait_for(lambda: graph_fake.texts_to(user), what="a polite reply")
    wait_done(stack, message)
    assert texts == ["Sorry, I couldn't understand that voice message. Could you say it again or type it?"]
    assert len(groq_fake.calls_to("audio/transcriptions")) == 1
    assert groq_fake.calls_to("chat/completions") == []
    assert audio_sends(graph_fake, user) == []
    assert (
        stack.redis.lrange(f"lp:mem:{conversation_of(user)}", 0, -1) == []
    )  # " Thank you." is not remembered as their words
    (event,) = log_events(stack, message, "voice.unsure_segments")
    assert event["known_hallucination"] == 1 and event["kept_chars"] == 0


def test_a_silent_note_is_answered_in_the_conversations_language_not_whispers_guess(
    stack: VoiceStack, graph_fake, groq_fake
) -> None:
    groq_fake.transcription = Transcription(
        "", verbose_json=SILENT_CASE["setup"]["groq_fake_transcription_verbose_json"]
    )
    user = "15550100021"
    earlier = {"role": "user", "content": "Olá, tudo bem?", "kind": "text", "ts": time.time(), "lang": "pt"}
    stack.redis.rpush(f"lp:mem:{conversation_of(user)}", json.dumps(earlier))
    message = send_silent_case(stack, graph_fake, user)
    texts = wait_for(lambda: graph_fake.texts_to(user), what="a polite reply")
    wait_done(stack, message)
    assert texts == ["Desculpe, não consegui entender essa mensagem de voz. Pode repetir ou digitar?"]
    assert stack.redis.llen(f"lp:mem:{conversation_of(user)}") == 1


def test_real_speech_in_every_language_still_passes_the_confidence_rules(
    stack: VoiceStack, graph_fake, groq_fake
) -> None:
    for n, (name, words, language) in enumerate(SPOKEN):
        user = f"155501001{n:02d}"
        groq_fake.transcription = Transcription(words, language=language, no_speech_prob=0.03, avg_logprob=-0.32)
        message = send_voice_note(stack, graph_fake, (MEDIA_FIXTURES / name).read_bytes(), user)
        wait_for(lambda user=user: graph_fake.texts_to(user) or audio_sends(graph_fake, user), what=f"{name} answer")
        wait_done(stack, message)
        assert log_events(stack, message, "voice.unsure_segments") == [], name
        memory = [json.loads(item) for item in stack.redis.lrange(f"lp:mem:{conversation_of(user)}", 0, -1)]
        assert memory[0]["content"] == words, name
    chats = [call.body["messages"][-1]["content"] for call in groq_fake.calls_to("chat/completions")]
    assert chats == [f"(voice note) {words}" for _, words, _ in SPOKEN]
