from __future__ import annotations

import json
import os
import stat
import subprocess
from pathlib import Path

import pytest

from tests.fakes.groq_fake import tone_wav
from workers.media.ogg import ogg_duration
from workers.media.transcode import (
    TranscodeError,
    VoiceSetupError,
    check_ffmpeg,
    opus_args,
    transcode_to_voice_note,
)


def probe(data: bytes) -> dict:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_streams", "-show_format", "-of", "json", "-"],
        input=data,
        capture_output=True,
        check=True,
    ).stdout
    return json.loads(out)


def test_wav_becomes_a_mono_opus_ogg_voice_note(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TMPDIR", str(tmp_path))  # ffmpeg (and anything we spawn) would put temp files here
    note = transcode_to_voice_note(tone_wav(10.0, rate=24000))
    assert note.startswith(b"OggS")
    probed = probe(note)
    assert probed["format"]["format_name"] == "ogg"
    (stream,) = probed["streams"]
    assert (stream["codec_name"], stream["channels"]) == ("opus", 1)
    assert ogg_duration(note) == pytest.approx(10.0, abs=0.05)
    assert len(note) < 512 * 1024
    assert len(note) < 10 * 32_000 / 8 * 1.2  # about the 24 kbit/s we asked for, not a default 96k
    assert list(tmp_path.iterdir()) == []


def test_stereo_and_odd_rates_are_downmixed() -> None:
    stereo = subprocess.run(
        ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "sine=f=300:d=1:r=22050", "-ac", "2", "-f", "wav", "-"],
        capture_output=True,
        check=True,
    ).stdout
    (stream,) = probe(transcode_to_voice_note(stereo))["streams"]
    assert stream["channels"] == 1


def test_argv_is_tuned_for_speech_and_uses_pipes() -> None:
    args = opus_args("wav", "24k")
    joined = " ".join(args)
    assert args[0] == "ffmpeg"
    assert "-i pipe:0" in joined and args[-1] == "pipe:1"
    for option in ("-acodec libopus", "-ac 1", "-b:a 24k", "-application voip", "-f ogg"):
        assert option in joined


def test_garbage_input_is_a_transcode_error() -> None:
    with pytest.raises(TranscodeError) as caught:
        transcode_to_voice_note(b"RIFF but not really")
    assert caught.value.reason == "ffmpeg_failed"


def test_missing_binary_is_a_transcode_error_not_a_crash() -> None:
    with pytest.raises(TranscodeError) as caught:
        transcode_to_voice_note(tone_wav(0.2), ffmpeg_binary="/nonexistent/ffmpeg")
    assert caught.value.reason == "ffmpeg_missing"


def test_check_ffmpeg_accepts_the_real_one() -> None:
    assert check_ffmpeg().startswith("ffmpeg version")


def test_check_ffmpeg_explains_a_missing_binary() -> None:
    with pytest.raises(VoiceSetupError, match=r"ffmpeg not found.*apt-get install ffmpeg"):
        check_ffmpeg("/nonexistent/ffmpeg")


def test_check_ffmpeg_refuses_a_build_without_libopus(tmp_path: Path) -> None:
    fake = tmp_path / "ffmpeg"
    fake.write_text("#!/bin/sh\necho ' A..... aac   AAC (Advanced Audio Coding)'\n")
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    with pytest.raises(VoiceSetupError, match="no libopus"):
        check_ffmpeg(str(fake))
    assert os.access(fake, os.X_OK)


def test_a_crafted_playlist_cannot_make_ffmpeg_open_local_files() -> None:
    from workers.media.transcode import audio_duration, encode_opus

    playlist = b"#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1,\nfile:///etc/passwd\n#EXT-X-ENDLIST\n"
    with pytest.raises(TranscodeError):
        encode_opus(playlist, input_format=None)
    assert audio_duration(playlist, limit_seconds=60) is None


@pytest.mark.parametrize("extension", ["mp3", "aac", "m4a", "flac", "webm", "wav"])
def test_other_audio_containers_are_recognised_on_a_pipe(extension: str, tmp_path: Path) -> None:
    from workers.media.transcode import audio_duration, encode_opus

    # Written to a file (as a phone would): an m4a then has its index at the end, the hard case for a pipe.
    target = tmp_path / f"note.{extension}"
    made = subprocess.run(
        ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "sine=f=300:d=2", str(target)], capture_output=True, check=False
    )
    if made.returncode != 0:
        pytest.skip(f"this ffmpeg cannot write .{extension}")
    source = target.read_bytes()
    seconds = audio_duration(source, limit_seconds=60)
    assert seconds == pytest.approx(2.0, abs=0.1)
    assert probe(encode_opus(source, input_format=None))["streams"][0]["codec_name"] == "opus"
