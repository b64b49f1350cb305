"""Benchmark: WAV -> OGG/Opus voice note through `transcode_to_voice_note` (ffmpeg-python, pipes) versus the plain
`ffmpeg` CLI doing the same conversion file-to-file, in the same run, on the same audio.

Speech comes from espeak-ng when installed (else a synthetic voiced signal), resampled once to 24 kHz mono 16-bit,
which is what Orpheus returns. Both sides pay for spawning ffmpeg; goal: ours <= 1.2x the CLI.

A second table prices the end of the voice pipeline, the audio in 10 s chunks as a TTS backend answers them:
the earlier design (ffmpeg's `loudnorm` at -16 LUFS inside the encoder, libopus complexity 10) against what the
pipeline does now (each chunk levelled by `workers.voice.loudness` in its own thread, concurrently, then the
encoder at complexity 10 and at 5, the default), and the bare encode as the floor; wall time and CPU seconds
(ffmpeg children, from getrusage) in the same run.

    uv run python -m bench.voice_transcode [--runs 7]
"""

from __future__ import annotations

import argparse
import math
import resource
import shutil
import statistics
import struct
import subprocess
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from workers.media.transcode import check_ffmpeg, transcode_to_voice_note
from workers.media.wav import WavAudio, parse_wav, write_wav
from workers.voice.encoder import StreamingVoiceEncoder, voice_note_args
from workers.voice.loudness import normalise

RATE = 24000
TEXT = (
    "Distributed systems are collections of independent computers that appear to their users as a single "
    "coherent system. They fail in partial and surprising ways, so good designs expect failure, retry with care, "
    "and make every operation safe to repeat. "
)


def espeak_speech(seconds: float) -> bytes | None:
    if shutil.which("espeak-ng") is None:
        return None
    raw = subprocess.run(["espeak-ng", "--stdout", TEXT * 8], capture_output=True, check=True).stdout
    # To Orpheus' format (24 kHz mono s16), once, outside the timed part.
    wav = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", "pipe:0", "-ac", "1", "-ar", str(RATE), "-c:a", "pcm_s16le", "-f", "wav", "-"],
        input=raw,
        capture_output=True,
        check=True,
    ).stdout
    audio = parse_wav(wav)
    needed = int(seconds * RATE) * audio.block_align
    frames = (audio.frames * (needed // len(audio.frames) + 1))[:needed]
    return write_wav(audio.fmt, frames)


def synthetic_speech(seconds: float) -> bytes:
    """A voiced buzz with a wobbling pitch and syllable-like envelope: closer to speech than a pure tone."""
    frames = int(seconds * RATE)
    samples = []
    for i in range(frames):
        t = i / RATE
        pitch = 140 + 30 * math.sin(2 * math.pi * 0.7 * t)
        envelope = max(0.0, math.sin(2 * math.pi * 3.0 * t)) ** 0.5
        value = sum(math.sin(2 * math.pi * pitch * k * t) / k for k in range(1, 6))
        samples.append(int(6000 * envelope * value))
    fmt = struct.pack("<HHIIHH", 1, 1, RATE, RATE * 2, 2, 16)
    return write_wav(fmt, struct.pack(f"<{frames}h", *samples))


def time_ours(wav: bytes) -> tuple[float, int]:
    start = time.perf_counter()
    out = transcode_to_voice_note(wav, bitrate="24k")
    return time.perf_counter() - start, len(out)


def time_cli(source: Path, target: Path) -> tuple[float, int]:
    """The CLI as a person would run it: WAV file in, OGG file out (the WAV is written once, outside the timing)."""
    args = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-i", str(source), "-ac", "1", "-c:a", "libopus",
            "-b:a", "24k", "-application", "voip", "-f", "ogg", str(target)]  # fmt: skip
    start = time.perf_counter()
    subprocess.run(args, check=True)
    return time.perf_counter() - start, target.stat().st_size


def _chunks(wav: bytes) -> list[WavAudio]:
    audio = parse_wav(wav)
    step = 10 * audio.sample_rate * audio.block_align
    return [WavAudio(audio.fmt, audio.frames[i : i + step]) for i in range(0, len(audio.frames), step)]


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def time_loudnorm_encoder(wav: bytes) -> tuple[float, float]:
    """The earlier design: one ffmpeg that levels with `loudnorm` (which works at 192 kHz) and encodes."""
    args = voice_note_args("24k", "ffmpeg", 10)
    args = [*args[:-1], "-af", "loudnorm=I=-16:TP=-1.5:LRA=11", "-ar", "48000", args[-1]]
    cpu, start = _children_cpu(), time.perf_counter()
    subprocess.run(args, input=wav, capture_output=True, check=True)
    return time.perf_counter() - start, _children_cpu() - cpu


def time_levelled_encoder(wav: bytes, lufs: float, complexity: int) -> tuple[float, float]:
    """The pipeline now: chunks levelled concurrently (as the TTS threads do), then the streaming encoder."""
    chunks = _chunks(wav)
    cpu, start = _children_cpu(), time.perf_counter()
    with ThreadPoolExecutor(max_workers=len(chunks)) as pool:
        levelled = list(pool.map(lambda chunk: normalise(chunk, lufs), chunks))
    with StreamingVoiceEncoder("24k", "ffmpeg", 120, complexity) as encoder:
        for chunk in levelled:
            encoder.add(chunk)
        encoder.finish()
    return time.perf_counter() - start, _children_cpu() - cpu


LEVELLING_MODES: dict[str, Callable[[bytes], tuple[float, float]]] = {
    "loudnorm in the encoder, complexity 10 (before)": time_loudnorm_encoder,
    "levelled per chunk, complexity 10": lambda wav: time_levelled_encoder(wav, -16.0, 10),
    "levelled per chunk, complexity 5 (default)": lambda wav: time_levelled_encoder(wav, -16.0, 5),
    "no levelling, complexity 10 (floor)": lambda wav: time_levelled_encoder(wav, 0.0, 10),
}


def loudness_rows(runs: int) -> list[tuple[int, str, float, float]]:
    rows = []
    for seconds in (10, 60):
        wav = espeak_speech(seconds) or synthetic_speech(seconds)
        samples: dict[str, list[tuple[float, float]]] = {mode: [] for mode in LEVELLING_MODES}
        for warm in LEVELLING_MODES.values():
            warm(wav)
        for _ in range(runs):  # interleaved, so background load hits every mode alike
            for mode, run in LEVELLING_MODES.items():
                samples[mode].append(run(wav))
        for mode, measured in samples.items():
            wall = statistics.median(m[0] for m in measured)
            cpu = statistics.median(m[1] for m in measured)
            rows.append((seconds, mode, wall, cpu))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=7, help="timed runs per case (median reported)")
    args = parser.parse_args()
    print(check_ffmpeg())
    speech = "espeak-ng" if shutil.which("espeak-ng") else "synthetic"
    rows = []
    with tempfile.TemporaryDirectory(prefix="loopera-bench-") as tmp:
        for seconds in (10, 60):
            wav = espeak_speech(seconds) or synthetic_speech(seconds)
            transcode_to_voice_note(wav)  # warm the page cache and the binary once, for both sides
            # Interleave the two sides so background load hits both alike.
            ours_times, cli_times, ours_size, cli_size = [], [], 0, 0
            source, target = Path(tmp) / f"in-{seconds}.wav", Path(tmp) / f"out-{seconds}.ogg"
            source.write_bytes(wav)
            for _ in range(args.runs):
                t, ours_size = time_ours(wav)
                ours_times.append(t)
                t, cli_size = time_cli(source, target)
                cli_times.append(t)
            ours, cli = statistics.median(ours_times), statistics.median(cli_times)
            rows.append((seconds, len(wav), ours, cli, ours / cli, ours_size, cli_size))
    print(f"\nspeech source: {speech}; 24 kHz mono s16 WAV -> mono OGG/Opus 24 kbit/s voip; median of {args.runs}\n")
    print("| audio | WAV in | ours (ffmpeg-python, pipes) | ffmpeg CLI (files) | ratio | OGG out (ours / CLI) |")
    print("|---|---|---|---|---|---|")
    for seconds, wav_size, ours, cli, ratio, ours_size, cli_size in rows:
        print(
            f"| {seconds} s | {wav_size / 1024:.0f} KB | {ours * 1000:.0f} ms | {cli * 1000:.0f} ms | {ratio:.2f}x "
            f"| {ours_size / 1024:.0f} KB / {cli_size / 1024:.0f} KB |"
        )
    verdict = all(row[4] <= 1.2 for row in rows)
    print(f"\ngoal <= 1.2x the CLI: {'met' if verdict else 'NOT met'}")
    print("\nlevelling and encoding a voice note (10 s chunks; median of the same runs)\n")
    print("| audio | mode | wall | CPU (ffmpeg) | vs before |")
    print("|---|---|---|---|---|")
    rows_by_length: dict[int, float] = {}
    for seconds, mode, wall, cpu in loudness_rows(args.runs):
        before = rows_by_length.setdefault(seconds, wall)
        print(f"| {seconds} s | {mode} | {wall * 1000:.0f} ms | {cpu * 1000:.0f} ms | {wall / before:.2f}x |")


if __name__ == "__main__":
    main()
