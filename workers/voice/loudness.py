"""Bring each synthesised chunk to one loudness, cheaply, while the other chunks are still being synthesised.

Voices from different backends (Orpheus, an OpenAI-compatible server, Piper) come out at different levels; a note
should sound alike whoever spoke it. ffmpeg's `loudnorm` filter does that in the encoder, but it resamples to
192 kHz and costs about as much CPU as the Opus encode itself, at the very end of the pipeline where nothing hides
it; measuring each chunk with a second ffmpeg (`ebur128`) costs a process start per chunk. Instead each chunk is
measured in-process with pyloudnorm (ITU-R BS.1770-4 integrated loudness: K-weighting, 400 ms blocks, absolute and
relative gates; https://github.com/csteinmetz1/pyloudnorm) in the thread that synthesised it, and scaled by one
static gain with numpy, so the encoder only encodes (`python -m bench.voice_transcode` prices all three,
docs/performance.md#voice-notes). The gain is capped so the sample peak stays under a ceiling: a gain that never
clips, rather than a compressor that changes the voice.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pyloudnorm

from workers.media.wav import WavAudio

PEAK_CEILING_DBFS = -1.0  # headroom for the Opus encoder's own overshoot
MAX_GAIN_DB = 20.0  # never lift near-silence into audible noise, never crush a shouting voice
SILENT_LUFS = -70.0  # BS.1770's absolute gate: nothing below it counts as programme
BLOCK_SECONDS = 0.4  # BS.1770's gating block; a shorter chunk has no integrated loudness
_PCM, _FLOAT = 1, 3


@dataclass(frozen=True, slots=True)
class Loudness:
    integrated_lufs: float  # SILENT_LUFS when no 400 ms block passed the absolute gate
    sample_peak_dbfs: float  # -inf for digital silence


def _decode(audio: WavAudio) -> npt.NDArray[np.float32] | None:
    """Interleaved samples in [-1, 1] of 16-bit PCM or 32-bit float, or None for a format we do not level (it is
    still encoded)."""
    if audio.format_tag == _PCM and audio.bits_per_sample == 16:
        pcm = np.frombuffer(audio.frames[: len(audio.frames) // 2 * 2], dtype="<i2")
        return pcm.astype(np.float32) / 32768.0
    if audio.format_tag == _FLOAT and audio.bits_per_sample == 32:
        return np.frombuffer(audio.frames[: len(audio.frames) // 4 * 4], dtype="<f4").astype(np.float32)
    return None


def _encode(audio: WavAudio, samples: npt.NDArray[np.float32]) -> bytes:
    """`samples` in `audio`'s own format (one `_decode` accepted), clipped to its range."""
    if audio.format_tag == _PCM:
        pcm: npt.NDArray[np.int16] = np.clip(np.rint(samples * 32768.0), -32768, 32767).astype("<i2")
        return pcm.tobytes()
    floats: npt.NDArray[np.float32] = np.clip(samples, -1.0, 1.0).astype("<f4")
    return floats.tobytes()


def measure(audio: WavAudio) -> Loudness | None:
    """Integrated loudness and sample peak of one mono chunk; None for a format we do not level or a chunk
    shorter than one gating block. Linear in the chunk's length (the chunk comes from a TTS backend, bounded by
    its request size)."""
    samples = _decode(audio) if audio.channels == 1 else None
    if samples is None or len(samples) < BLOCK_SECONDS * audio.sample_rate:
        return None
    peak = float(np.abs(samples).max()) if len(samples) else 0.0
    peak_dbfs = 20 * math.log10(peak) if peak > 0 else float("-inf")
    if peak == 0:
        return Loudness(SILENT_LUFS, peak_dbfs)
    integrated = float(pyloudnorm.Meter(audio.sample_rate).integrated_loudness(samples))
    return Loudness(max(SILENT_LUFS, integrated) if math.isfinite(integrated) else SILENT_LUFS, peak_dbfs)


def gain_db(loudness: Loudness, target_lufs: float, ceiling_dbfs: float = PEAK_CEILING_DBFS) -> float:
    """The static gain (dB) that brings the chunk to `target_lufs` without its sample peak passing the ceiling.

    0 for a chunk with nothing above the gate (silence stays silence)."""
    if loudness.integrated_lufs <= SILENT_LUFS or loudness.sample_peak_dbfs == float("-inf"):
        return 0.0
    wanted = min(target_lufs - loudness.integrated_lufs, ceiling_dbfs - loudness.sample_peak_dbfs)
    return max(-MAX_GAIN_DB, min(MAX_GAIN_DB, wanted))


def apply_gain(audio: WavAudio, gain: float) -> WavAudio:
    """`audio` scaled by `gain` dB: 16-bit PCM (what every backend here returns) and 32-bit float; any other
    sample format is returned unchanged (it is still encoded, only not levelled)."""
    if abs(gain) < 0.05:
        return audio
    samples = _decode(audio)
    if samples is None:
        return audio
    return WavAudio(audio.fmt, _encode(audio, samples * np.float32(10 ** (gain / 20))))


def normalise(audio: WavAudio, target_lufs: float) -> WavAudio:
    """One chunk at `target_lufs` (0 turns levelling off). A chunk that cannot be measured is left as it is: an
    unlevelled note beats no note."""
    if not target_lufs:
        return audio
    loudness = measure(audio)
    if loudness is None:
        return audio
    return apply_gain(audio, gain_db(loudness, target_lufs))
