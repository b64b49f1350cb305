"""ffmpeg through pipes (ffmpeg-python builds the argv): WAV in, WhatsApp voice note (mono OGG/Opus) out.

No temp files: audio goes in on stdin and comes back on stdout, so nothing is left on disk when a job is killed.
Every ffmpeg runs under a work budget (`workers.media.bounded`: CPU seconds, address space, output bytes, wall
time): a crafted voice note costs at most its budget, never the worker.
"""

from __future__ import annotations

import shutil
import subprocess
from typing import Any

import ffmpeg

from workers.media.bounded import BudgetError, WorkBudget, run_bounded
from workers.media.ogg import ImplausibleOggError, ogg_duration


class VoiceSetupError(RuntimeError):
    """The host cannot encode voice notes; the message says how to fix it."""


class TranscodeError(RuntimeError):
    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


def check_ffmpeg(ffmpeg_binary: str = "ffmpeg") -> str:
    """Fail at worker start, not on the first voice note. Returns ffmpeg's version line."""
    path = shutil.which(ffmpeg_binary)
    if path is None:
        raise VoiceSetupError(
            f"ffmpeg not found ({ffmpeg_binary!r} is not on PATH). The audio pool needs it to send voice notes: "
            "install it (Debian/Ubuntu: apt-get install ffmpeg) or point FFMPEG_BINARY at it."
        )
    try:
        encoders = subprocess.run(
            [path, "-hide_banner", "-encoders"], capture_output=True, check=True, timeout=30
        ).stdout.decode(errors="replace")
        version = subprocess.run([path, "-version"], capture_output=True, check=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        raise VoiceSetupError(f"ffmpeg at {path} does not run: {exc}") from exc
    if " libopus " not in encoders:
        raise VoiceSetupError(
            f"ffmpeg at {path} has no libopus encoder, which WhatsApp voice notes need. Install a build with "
            "libopus (the Debian `ffmpeg` package has it)."
        )
    return version.decode(errors="replace").splitlines()[0] if version else path


# Demuxers a user's audio may need. Autodetection over the whole list would let a crafted "audio" file pick e.g. the
# HLS demuxer and make ffmpeg open other URLs or local files; `protocol_whitelist=pipe` forbids that in any case.
_AUDIO_DEMUXERS = "ogg,mp3,mov,wav,amr,aac,flac,matroska"


def _pipe_input(input_format: str | None) -> Any:
    options: dict[str, str] = {"protocol_whitelist": "pipe"}
    if input_format:
        options["format"] = input_format
    else:
        options["format_whitelist"] = _AUDIO_DEMUXERS
    return ffmpeg.input("pipe:0", **options)


# The default work budget of one ffmpeg run. Debian's ffmpeg maps about 270 MB of libraries before it reads a
# byte, so its address-space limit cannot be small; its resident memory while decoding a voice note is ~50 MB.
DEFAULT_CPU_SECONDS = 10
DEFAULT_MEMORY_BYTES = 512 * 1024 * 1024
DEFAULT_MAX_OUTPUT_BYTES = 64 * 1024 * 1024


def _run(
    args: list[str],
    data: bytes,
    timeout: float,
    max_output_bytes: int = DEFAULT_MAX_OUTPUT_BYTES,
    cpu_seconds: int = DEFAULT_CPU_SECONDS,
    memory_bytes: int = DEFAULT_MEMORY_BYTES,
) -> bytes:
    try:
        return run_bounded(args, data, WorkBudget(cpu_seconds, memory_bytes, max_output_bytes, timeout)).output
    except BudgetError as exc:
        if exc.reason == "missing":
            raise TranscodeError("ffmpeg_missing", exc.detail) from exc
        if exc.reason == "failed":
            raise TranscodeError("ffmpeg_failed", exc.detail) from exc
        if exc.reason == "timeout":
            raise TranscodeError("ffmpeg_timeout", f"no result after {timeout:.0f}s") from exc
        raise TranscodeError(f"ffmpeg_{exc.reason}", exc.detail) from exc


def opus_args(input_format: str | None = "wav", bitrate: str = "24k", ffmpeg_binary: str = "ffmpeg") -> list[str]:
    """The ffmpeg argv for any audio -> mono OGG/Opus tuned for speech (`-application voip`), stdin to stdout."""
    source = _pipe_input(input_format)
    stream = source.output(
        "pipe:1",
        format="ogg",
        acodec="libopus",
        ac=1,
        audio_bitrate=bitrate,
        application="voip",
        vn=None,
        map_metadata=-1,
    )
    # Global options first: ffmpeg-python's global_args() would append them after the output.
    return [ffmpeg_binary, "-hide_banner", "-loglevel", "error", *ffmpeg.get_args(stream)]


def encode_opus(
    data: bytes,
    input_format: str | None = "wav",
    bitrate: str = "24k",
    ffmpeg_binary: str = "ffmpeg",
    timeout: float = 60.0,
) -> bytes:
    out = _run(opus_args(input_format, bitrate, ffmpeg_binary), data, timeout)
    if not out.startswith(b"OggS"):
        raise TranscodeError("ffmpeg_failed", "no Ogg output")
    return out


def transcode_to_voice_note(
    wav_bytes: bytes, bitrate: str = "24k", ffmpeg_binary: str = "ffmpeg", timeout: float = 60.0
) -> bytes:
    """WAV -> mono OGG/Opus, the only format WhatsApp plays as a voice note (with `voice: true`)."""
    return encode_opus(wav_bytes, "wav", bitrate, ffmpeg_binary, timeout)


def audio_duration(
    data: bytes,
    limit_seconds: float,
    ffmpeg_binary: str = "ffmpeg",
    timeout: float = 60.0,
    cpu_seconds: int = DEFAULT_CPU_SECONDS,
    memory_bytes: int = DEFAULT_MEMORY_BYTES,
) -> float | None:
    """Seconds of audio, counted up to `limit_seconds` + 1 (enough to say "too long"); None when undecodable or
    when decoding does not finish within its budget.

    Ogg Opus/Vorbis (every WhatsApp voice note) is read from its page headers (linear time, no process); one whose
    pages lie is refused. Anything else is decoded to 8 kHz mono PCM on a pipe and the samples counted: ffprobe
    cannot tell the duration of piped input, and `-t` bounds the work and the output for a small file that decodes
    to hours.
    """
    if data.startswith(b"OggS"):
        try:
            seconds = ogg_duration(data)
        except ImplausibleOggError:
            return None
        if seconds is not None:
            return seconds
    stream = _pipe_input(None).output("pipe:1", format="s16le", acodec="pcm_s16le", ac=1, ar=8000, t=limit_seconds + 1)
    args = [ffmpeg_binary, "-hide_banner", "-loglevel", "error", "-threads", "1", *ffmpeg.get_args(stream)]
    max_output = int((limit_seconds + 2) * 16000)  # 8 kHz x 2 bytes: a little over what `-t` lets through
    try:
        pcm = _run(args, data, timeout, max_output, cpu_seconds, memory_bytes)
    except TranscodeError:
        return None
    return len(pcm) / 16000 if pcm else None
