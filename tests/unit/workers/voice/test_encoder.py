"""The streaming voice-note encoder, with real ffmpeg: a WhatsApp voice note out, chunks joined in order with a
pause, formats checked, and loud and quiet voices (levelled chunk by chunk, as the pipeline does) equally loud."""

from __future__ import annotations

import json
import math
import re
import struct
import subprocess
from typing import Any

import pytest

from workers.media.transcode import TranscodeError
from workers.media.wav import WavAudio, WavError, parse_wav
from workers.voice.backends import pcm16_mono
from workers.voice.encoder import GAP_SECONDS, StreamingVoiceEncoder, voice_note_args
from workers.voice.loudness import normalise


def tone(seconds: float, amplitude: int, rate: int = 24000, frequency: float = 220.0) -> WavAudio:
    frames = int(seconds * rate)
    samples = (int(amplitude * math.sin(2 * math.pi * frequency * i / rate)) for i in range(frames))
    return pcm16_mono(struct.pack(f"<{frames}h", *samples), rate)


def probe(note: bytes) -> dict[str, Any]:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_streams", "-show_format", "-of", "json", "-i", "pipe:0"],
        input=note,
        capture_output=True,
        check=True,
    ).stdout
    probed: dict[str, Any] = json.loads(out)
    return probed


def decoded_seconds(note: bytes) -> float:
    pcm = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", "pipe:0", "-f", "s16le", "-ac", "1", "-ar", "8000", "pipe:1"],
        input=note,
        capture_output=True,
        check=True,
    ).stdout
    return len(pcm) / 16000


def mean_volume_db(note: bytes) -> float:
    err = subprocess.run(
        ["ffmpeg", "-hide_banner", "-i", "pipe:0", "-af", "volumedetect", "-f", "null", "-"],
        input=note,
        capture_output=True,
        check=True,
    ).stderr.decode()
    match = re.search(r"mean_volume: (-?[\d.]+) dB", err)
    assert match is not None, err
    return float(match.group(1))


def encode(*chunks: WavAudio, lufs: float = -16.0) -> bytes:
    with StreamingVoiceEncoder("24k", "ffmpeg", 60) as encoder:
        for chunk in chunks:
            encoder.add(normalise(chunk, lufs))
        return encoder.finish()


def test_chunks_become_one_mono_opus_voice_note_with_pauses() -> None:
    note = encode(tone(1.0, 8000), tone(1.5, 8000), tone(0.5, 8000))
    probed = probe(note)
    assert probed["format"]["format_name"] == "ogg"
    (stream,) = probed["streams"]
    assert stream["codec_name"] == "opus" and stream["channels"] == 1
    assert decoded_seconds(note) == pytest.approx(3.0 + 2 * GAP_SECONDS, abs=0.1)


def test_loud_and_quiet_voices_come_out_equally_loud() -> None:
    quiet, loud = tone(4.0, 1000), tone(4.0, 20000)
    raw_difference = abs(mean_volume_db(encode(quiet, lufs=0)) - mean_volume_db(encode(loud, lufs=0)))
    assert raw_difference > 25  # 20 * log10(20000 / 1000) = 26 dB: the check below is meaningful
    assert mean_volume_db(encode(quiet)) == pytest.approx(mean_volume_db(encode(loud)), abs=2.0)


def test_the_encoder_only_encodes_at_the_chosen_opus_complexity() -> None:
    args = voice_note_args("24k", "ffmpeg", 5)
    assert "-af" not in args  # levelling happened per chunk, before the encoder
    assert args[args.index("-compression_level") + 1] == "5" and args[-1] == "pipe:1"
    assert args[args.index("-acodec") + 1] == "libopus"


def test_chunks_of_different_formats_are_refused() -> None:
    with StreamingVoiceEncoder("24k", "ffmpeg", 60) as encoder:
        encoder.add(tone(0.5, 8000, rate=24000))
        with pytest.raises(WavError, match="differ"):
            encoder.add(tone(0.5, 8000, rate=22050))


def test_nothing_added_is_an_error_and_ffmpeg_is_stopped() -> None:
    with StreamingVoiceEncoder("24k", "ffmpeg", 60) as encoder, pytest.raises(WavError):
        encoder.finish()
    assert encoder._process.returncode is not None


def test_audio_ffmpeg_cannot_read_is_a_transcode_error() -> None:
    odd = parse_wav(b"RIFF\x00\x00\x00\x00WAVEfmt \x10\x00\x00\x00" + struct.pack("<HHIIHH", 0x7A7A, 1, 8000,
                    16000, 2, 16) + b"data\x10\x00\x00\x00" + bytes(16))  # fmt: skip
    with StreamingVoiceEncoder("24k", "ffmpeg", 60) as encoder, pytest.raises(TranscodeError):
        encoder.add(odd)
        encoder.finish()


def test_a_missing_ffmpeg_is_a_transcode_error() -> None:
    with pytest.raises(TranscodeError) as failed:
        StreamingVoiceEncoder("24k", "/nonexistent/ffmpeg", 60)
    assert failed.value.reason == "ffmpeg_missing"
