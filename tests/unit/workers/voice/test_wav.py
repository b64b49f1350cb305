from __future__ import annotations

import io
import struct
import wave

import pytest

from tests.fakes.groq_fake import tone_wav
from workers.media.wav import WavError, join_wavs, parse_wav, write_wav


def chunk(chunk_id: bytes, body: bytes) -> bytes:
    return chunk_id + struct.pack("<I", len(body)) + body + (b"\x00" if len(body) & 1 else b"")


def riff(*chunks: bytes) -> bytes:
    body = b"WAVE" + b"".join(chunks)
    return b"RIFF" + struct.pack("<I", len(body)) + body


PCM16_MONO_24K = struct.pack("<HHIIHH", 1, 1, 24000, 48000, 2, 16)


def test_parses_a_plain_44_byte_header_wav() -> None:
    audio = parse_wav(tone_wav(0.5))
    assert (audio.format_tag, audio.channels, audio.sample_rate, audio.bits_per_sample) == (1, 1, 24000, 16)
    assert audio.duration == pytest.approx(0.5)


def test_header_is_not_assumed_to_be_44_bytes() -> None:
    frames = b"\x01\x00" * 100
    data = riff(
        chunk(b"LIST", b"INFOISFT\x05\x00\x00\x00Lavf\x00"), chunk(b"fmt ", PCM16_MONO_24K), chunk(b"data", frames)
    )
    audio = parse_wav(data)
    assert audio.frames == frames
    assert data.index(b"data") + 8 != 44


def test_odd_sized_chunks_are_padded_and_fmt_may_be_extensible() -> None:
    extensible = (
        PCM16_MONO_24K
        + struct.pack("<HHHI", 22, 16, 4, 1)
        + b"\x00\x00\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71"
    )
    frames = b"\x02\x00" * 10
    data = riff(chunk(b"junk", b"abc"), chunk(b"fmt ", extensible), chunk(b"data", frames))
    audio = parse_wav(data)
    assert audio.fmt == extensible
    assert audio.frames == frames


def test_streaming_placeholder_size_reads_to_the_end_and_drops_a_partial_frame() -> None:
    frames = b"\x03\x00" * 50 + b"\x04"  # a stream cut mid-sample
    data = riff(chunk(b"fmt ", PCM16_MONO_24K)) + b"data" + struct.pack("<I", 0xFFFFFFFF) + frames
    assert parse_wav(data).frames == frames[:-1]


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"ID3\x03junk",
        b"RIFF\x00\x00\x00\x00AVI ",
        riff(chunk(b"data", b"\x00\x00")),
        riff(chunk(b"fmt ", PCM16_MONO_24K)),
    ],
)
def test_rejects_what_is_not_wav(data: bytes) -> None:
    with pytest.raises(WavError):
        parse_wav(data)


def test_join_concatenates_in_order_with_short_pauses_and_stdlib_wave_reads_it() -> None:
    parts = [tone_wav(0.5), tone_wav(0.25, frequency=440), tone_wav(0.25)]
    joined = join_wavs(parts, gap_seconds=0.1)
    with wave.open(io.BytesIO(joined)) as reader:
        assert (reader.getnchannels(), reader.getframerate(), reader.getsampwidth()) == (1, 24000, 2)
        assert reader.getnframes() == int(24000 * (0.5 + 0.25 + 0.25 + 2 * 0.1))
    frames = parse_wav(joined).frames
    first = parse_wav(parts[0]).frames
    assert frames.startswith(first)
    assert frames[len(first) : len(first) + 4800] == b"\x00" * 4800
    assert frames.endswith(parse_wav(parts[2]).frames)


def test_join_refuses_mixed_formats() -> None:
    with pytest.raises(WavError, match="differ"):
        join_wavs([tone_wav(0.1), tone_wav(0.1, rate=16000)])
    with pytest.raises(WavError):
        join_wavs([])


def test_eight_bit_silence_is_centred() -> None:
    fmt = struct.pack("<HHIIHH", 1, 1, 8000, 8000, 1, 8)
    one = write_wav(fmt, b"\x90" * 8)
    joined = parse_wav(join_wavs([one, one], gap_seconds=0.001)).frames
    assert joined == b"\x90" * 8 + b"\x80" * 8 + b"\x90" * 8
