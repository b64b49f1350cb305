"""Chunk levelling: BS.1770 loudness (checked against ffmpeg's own ebur128 meter), a static gain that never clips."""

from __future__ import annotations

import math
import re
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest

from workers.media.wav import WavAudio, parse_wav
from workers.voice.backends import pcm16_mono
from workers.voice.loudness import (
    MAX_GAIN_DB,
    PEAK_CEILING_DBFS,
    SILENT_LUFS,
    Loudness,
    apply_gain,
    gain_db,
    measure,
    normalise,
)

FIXTURES = Path(__file__).resolve().parents[3] / "fixtures" / "media"


def tone(seconds: float, amplitude: int, rate: int = 24000, frequency: float = 440.0) -> WavAudio:
    frames = int(seconds * rate)
    samples = (int(amplitude * math.sin(2 * math.pi * frequency * i / rate)) for i in range(frames))
    return pcm16_mono(struct.pack(f"<{frames}h", *samples), rate)


def float_tone(seconds: float, amplitude: float, rate: int = 24000) -> WavAudio:
    t = np.arange(int(seconds * rate)) / rate
    frames = (amplitude * np.sin(2 * np.pi * 440.0 * t)).astype("<f4").tobytes()
    fmt = struct.pack("<HHIIHH", 3, 1, rate, rate * 4, 4, 32)
    return WavAudio(fmt, frames)


def peak_dbfs(audio: WavAudio) -> float:
    samples = np.frombuffer(audio.frames, dtype="<i2").astype(np.float64)
    return 20 * math.log10(np.abs(samples).max() / 32768)


@pytest.mark.parametrize(
    ("loudness", "target", "expected"),
    [
        (Loudness(-26.0, -12.0), -16.0, 10.0),  # quiet voice lifted to the target
        (Loudness(-10.0, -1.0), -16.0, -6.0),  # loud voice lowered to the target
        (Loudness(-26.0, -4.0), -16.0, PEAK_CEILING_DBFS + 4.0),  # the peak ceiling caps the lift: 3 dB, not 10
        (Loudness(-60.0, -40.0), -16.0, MAX_GAIN_DB),  # near-silence is not lifted into noise
        (Loudness(SILENT_LUFS, -50.0), -16.0, 0.0),  # nothing passed the gate: left alone
        (Loudness(-20.0, float("-inf")), -16.0, 0.0),  # digital silence
    ],
)
def test_gain_reaches_the_target_without_passing_the_peak_ceiling(
    loudness: Loudness, target: float, expected: float
) -> None:
    assert gain_db(loudness, target) == pytest.approx(expected)


def test_a_sine_measures_as_bs1770_says() -> None:
    # A full-scale 1 kHz sine reads -3.01 LUFS by definition of the K-weighting's reference; at half amplitude
    # (-6.02 dB) it reads about -9.0 LUFS, its sample peak -6.02 dBFS.
    measured = measure(tone(3.0, 16384, frequency=1000.0))
    assert measured is not None
    assert measured.integrated_lufs == pytest.approx(-9.0, abs=0.3)
    assert measured.sample_peak_dbfs == pytest.approx(-6.0, abs=0.1)


def test_silence_and_unreadable_audio_are_not_levelled() -> None:
    silence = tone(2.0, 0)
    assert normalise(silence, -16.0) is silence
    assert measure(tone(0.3, 8000)) is None  # shorter than one 400 ms gating block
    stereo = WavAudio(struct.pack("<HHIIHH", 1, 2, 24000, 96000, 4, 16), tone(1.0, 8000).frames)
    assert measure(stereo) is None and normalise(stereo, -16.0) is stereo


def ffmpeg_ebur128(wav: bytes) -> float:
    err = subprocess.run(
        ["ffmpeg", "-nostats", "-hide_banner", "-i", "pipe:0", "-af", "ebur128", "-f", "null", "-"],
        input=wav,
        capture_output=True,
        check=True,
    ).stderr
    return float(re.findall(rb"^\s*I:\s*(-?[\d.]+) LUFS", err, re.MULTILINE)[-1])


def test_real_speech_measures_as_ffmpeg_ebur128_measures_it() -> None:
    speech = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(FIXTURES / "voice-en.ogg"), "-ac", "1", "-ar", "24000", "-c:a",
         "pcm_s16le", "-f", "wav", "-"],
        capture_output=True,
        check=True,
    ).stdout  # fmt: skip
    ours = measure(parse_wav(speech))
    assert ours is not None
    assert ours.integrated_lufs == pytest.approx(ffmpeg_ebur128(speech), abs=0.5)


@pytest.mark.parametrize("amplitude", [1500, 3000, 30000])
def test_quiet_and_loud_chunks_end_at_the_target_or_at_the_ceiling(amplitude: int) -> None:
    levelled = normalise(tone(3.0, amplitude), -16.0)
    after = measure(levelled)
    assert after is not None
    # A sine's peak sits 3 dB above its loudness, so -16 LUFS fits under the -1 dBFS ceiling.
    assert after.integrated_lufs == pytest.approx(-16.0, abs=0.5)
    assert peak_dbfs(levelled) <= PEAK_CEILING_DBFS + 0.05


def test_a_near_silent_chunk_is_lifted_by_at_most_the_maximum_gain() -> None:
    quiet = tone(3.0, 300)  # about -44 LUFS: reaching -16 would take +28 dB
    before, after = measure(quiet), measure(normalise(quiet, -16.0))
    assert before is not None and after is not None
    assert after.integrated_lufs - before.integrated_lufs == pytest.approx(MAX_GAIN_DB, abs=0.3)


def test_a_loud_peaky_chunk_is_held_under_the_ceiling_not_clipped() -> None:
    # A quiet bed with one loud click: reaching -16 LUFS would need +20 dB, which would clip the click.
    bed = np.frombuffer(tone(3.0, 200).frames, dtype="<i2").copy()
    bed[1000] = 16000
    audio = WavAudio(tone(0.1, 1).fmt, bed.tobytes())
    levelled = normalise(audio, -16.0)
    assert peak_dbfs(levelled) == pytest.approx(PEAK_CEILING_DBFS, abs=0.1)


def test_gain_scales_float_samples_and_leaves_other_formats_alone() -> None:
    audio = float_tone(1.0, 0.1)
    louder = apply_gain(audio, 6.0)
    ratio = np.abs(np.frombuffer(louder.frames, "<f4")).max() / np.abs(np.frombuffer(audio.frames, "<f4")).max()
    assert ratio == pytest.approx(10 ** (6 / 20), rel=1e-3)
    eight_bit = WavAudio(struct.pack("<HHIIHH", 1, 1, 8000, 8000, 1, 8), bytes(range(256)))
    assert apply_gain(eight_bit, 6.0) is eight_bit
    assert apply_gain(audio, 0.01) is audio
