from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.fakes.groq_fake import tone_wav
from tests.webhooks import MEDIA_FIXTURES
from workers.media.ogg import ogg_duration
from workers.media.transcode import audio_duration


def ffprobe_duration(path: Path) -> float:
    # From a file: ffprobe cannot tell the duration of piped input (that is why ogg.py exists).
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "json", str(path)],
        capture_output=True,
        check=True,
    ).stdout
    return float(json.loads(out)["format"]["duration"])


@pytest.mark.parametrize("name", ["voice-en.ogg", "voice-es.ogg"])
def test_duration_of_whatsapp_style_voice_notes_matches_ffprobe(name: str) -> None:
    data = (MEDIA_FIXTURES / name).read_bytes()
    seconds = ogg_duration(data)
    assert seconds is not None
    assert 3.0 < seconds < 6.0
    assert seconds == pytest.approx(ffprobe_duration(MEDIA_FIXTURES / name), abs=0.05)


def test_capture_pattern_inside_trailing_garbage_is_not_a_page() -> None:
    data = (MEDIA_FIXTURES / "voice-en.ogg").read_bytes()
    fake_page = b"OggS\x00\x00" + (10**9).to_bytes(8, "little") + b"\x00" * 40
    assert ogg_duration(data + fake_page) == pytest.approx(ogg_duration(data))


def test_not_ogg_is_unknown() -> None:
    assert ogg_duration(b"RIFF....WAVE") is None
    assert ogg_duration(b"OggS" + b"\x00" * 10) is None


def test_audio_duration_decodes_other_containers_on_a_pipe() -> None:
    assert audio_duration(tone_wav(2.0), limit_seconds=60) == pytest.approx(2.0, abs=0.01)
    mp3 = subprocess.run(
        ["ffmpeg", "-v", "error", "-f", "wav", "-i", "-", "-f", "mp3", "-"],
        input=tone_wav(3.0),
        capture_output=True,
        check=False,
    ).stdout
    if mp3:  # the Debian ffmpeg has an MP3 encoder; a minimal build may not
        assert audio_duration(mp3, limit_seconds=60) == pytest.approx(3.0, abs=0.1)
    assert audio_duration(b"definitely not audio", limit_seconds=60) is None


def test_audio_duration_stops_counting_just_past_the_limit() -> None:
    seconds = audio_duration(tone_wav(30.0), limit_seconds=5)
    assert seconds is not None
    assert 5.0 < seconds <= 6.01
