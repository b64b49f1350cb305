"""Encode a voice note while its chunks are still being synthesised.

ffmpeg is started before the first chunk is ready (its start-up, ~0.1 s of CPU, overlaps the TTS calls), reads a
WAV stream on stdin (a header whose data size says "unknown length", then each chunk's samples in reply order, a
short pause between chunks) and writes the OGG/Opus note on stdout. The output options are the voice-note ones of
`workers.media.transcode.opus_args` (mono, libopus, `-application voip`) at a chosen Opus complexity. Chunks arrive
already levelled (`workers.voice.loudness`), so the encoder only encodes: its cost is the Opus encode alone, which
the complexity setting trades against quality (`python -m bench.voice_transcode`). Nothing touches the disk.
"""

from __future__ import annotations

import contextlib
import struct
import subprocess
import threading
from types import TracebackType

from workers.media.transcode import TranscodeError, opus_args
from workers.media.wav import WavAudio, WavError

GAP_SECONDS = 0.12  # between chunks: sentences need a breath (as workers.media.wav.join_wavs)
_STREAMING_SIZE = 0xFFFFFFFF  # "length unknown" in a RIFF/WAVE header, which ffmpeg's wav demuxer accepts


def voice_note_args(bitrate: str, ffmpeg_binary: str, complexity: int = 10) -> list[str]:
    """ffmpeg's argv: WAV on stdin -> mono OGG/Opus on stdout. `complexity` is libopus' 0-10 speed/quality knob
    (ffmpeg's `-compression_level`, https://ffmpeg.org/ffmpeg-codecs.html#libopus-1); 10 is libopus' default."""
    args = opus_args("wav", bitrate, ffmpeg_binary)
    # Output options may stand anywhere before the output URL, which is the last argument.
    return [*args[:-1], "-compression_level", str(complexity), args[-1]]


def _streaming_header(fmt: bytes) -> bytes:
    fmt_chunk = b"fmt " + struct.pack("<I", len(fmt)) + fmt + (b"\x00" if len(fmt) & 1 else b"")
    return b"RIFF" + struct.pack("<I", _STREAMING_SIZE) + b"WAVE" + fmt_chunk + b"data" + struct.pack("<I", 0)


def _silence(audio: WavAudio, seconds: float) -> bytes:
    # Unsigned 8-bit PCM is centred on 0x80; every other format is signed or float, centred on zero.
    fill = b"\x80" if audio.format_tag == 1 and audio.bits_per_sample == 8 else b"\x00"
    return fill * (int(audio.sample_rate * seconds) * audio.block_align)


class StreamingVoiceEncoder:
    """`add()` each chunk in order, then `finish()` for the note; leaving the `with` block early kills ffmpeg.

    Raises TranscodeError (ffmpeg missing, failed or too slow) and WavError (chunks of different formats)."""

    def __init__(self, bitrate: str, ffmpeg_binary: str, timeout: float, complexity: int = 10) -> None:
        self._timeout = timeout
        self._first: WavAudio | None = None
        self._out: list[bytes] = []
        self._err: list[bytes] = []
        try:
            self._process = subprocess.Popen(
                voice_note_args(bitrate, ffmpeg_binary, complexity),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
        except OSError as exc:
            raise TranscodeError("ffmpeg_missing", str(exc)) from exc
        # Drain both pipes while we write, or a full stdout pipe (64 KB: ~20 s of speech) would deadlock ffmpeg.
        self._readers = [
            threading.Thread(target=self._drain, args=(self._process.stdout, self._out), daemon=True),
            threading.Thread(target=self._drain, args=(self._process.stderr, self._err), daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    @staticmethod
    def _drain(stream: object, into: list[bytes]) -> None:
        read = getattr(stream, "read", None)
        if read is not None:
            into.append(read())

    def __enter__(self) -> StreamingVoiceEncoder:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        if self._process.returncode is None:
            self.abort()

    def add(self, audio: WavAudio) -> None:
        if self._first is None:
            self._first = audio
            data = _streaming_header(audio.fmt) + audio.frames
        elif audio.signature() != self._first.signature():
            raise WavError("chunks differ in format, channels or sample rate")
        else:
            data = _silence(audio, GAP_SECONDS) + audio.frames
        self._write(data)

    def _write(self, data: bytes) -> None:
        assert self._process.stdin is not None
        try:
            self._process.stdin.write(data)
            self._process.stdin.flush()  # ffmpeg encodes this chunk now, while later ones are synthesised
        except (BrokenPipeError, ValueError) as exc:  # ffmpeg exited (ValueError: stdin already closed)
            self._process.wait(timeout=self._timeout)
            raise TranscodeError("ffmpeg_failed", self._stderr() or type(exc).__name__) from exc

    def finish(self) -> bytes:
        """The encoded note. Raises TranscodeError; WavError when no chunk was added."""
        if self._first is None:
            raise WavError("nothing to encode")
        assert self._process.stdin is not None
        with contextlib.suppress(BrokenPipeError):
            self._process.stdin.close()
        try:
            self._process.wait(timeout=self._timeout)
        except subprocess.TimeoutExpired as exc:
            self.abort()
            raise TranscodeError("ffmpeg_timeout", f"no result after {self._timeout:.0f}s") from exc
        self._close()
        if self._process.returncode != 0:
            raise TranscodeError("ffmpeg_failed", self._stderr())
        out = b"".join(self._out)
        if not out.startswith(b"OggS"):
            raise TranscodeError("ffmpeg_failed", "no Ogg output")
        return out

    def abort(self) -> None:
        self._process.kill()
        self._process.wait()
        self._close()

    def _close(self) -> None:
        """After ffmpeg exited: the readers reach end-of-file, then every pipe is closed (no leaked descriptors)."""
        for reader in self._readers:
            reader.join(timeout=self._timeout)
        for stream in (self._process.stdin, self._process.stdout, self._process.stderr):
            if stream is not None and not stream.closed:
                with contextlib.suppress(BrokenPipeError):
                    stream.close()

    def _stderr(self) -> str:
        return b"".join(self._err).decode(errors="replace").strip()[-300:]
