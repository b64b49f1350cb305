from __future__ import annotations

import subprocess
from types import SimpleNamespace
from typing import Any

import pytest

from shared.config import Settings
from tests.webhooks import MEDIA_FIXTURES
from workers.media.transcode import TranscodeError
from workers.pipelines.audio import _limit, _size_limit, upload_for_whisper


def ctx() -> Any:
    return SimpleNamespace(settings=Settings(_env_file=None))  # type: ignore[call-arg]


@pytest.mark.parametrize(
    ("mime", "name"),
    [("audio/ogg; codecs=opus", "voice.ogg"), ("audio/mpeg", "voice.mp3"), ("AUDIO/MP4", "voice.m4a")],
)
def test_formats_whisper_accepts_are_sent_as_is_with_a_matching_extension(mime: str, name: str) -> None:
    data = (MEDIA_FIXTURES / "voice-en.ogg").read_bytes()
    assert upload_for_whisper(ctx(), data, mime) == (name, data)


def test_other_formats_are_re_encoded_to_ogg_opus() -> None:
    aac = subprocess.run(
        ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "sine=d=1", "-f", "adts", "-"], capture_output=True, check=True
    ).stdout
    name, data = upload_for_whisper(ctx(), aac, "audio/aac")
    assert name == "voice.ogg"
    assert data.startswith(b"OggS")
    with pytest.raises(TranscodeError):
        upload_for_whisper(ctx(), b"not audio at all", "audio/amr")


def test_limits_read_naturally() -> None:
    assert _limit(300) == "5 min"
    assert _limit(90) == "90 s"
    assert _size_limit(16 * 1024 * 1024) == "16 MB"
    assert _size_limit(200_000) == "195 KB"
