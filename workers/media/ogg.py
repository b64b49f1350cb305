"""Read the duration of an Ogg/Opus (or Ogg/Vorbis) file from its page headers, without decoding anything.

The last page's granule position counts samples (48 kHz for Opus, minus the encoder's pre-skip; RFC 7845 section
4; page layout: RFC 3533 section 6). The reader walks the chain of pages from the first one, jumping from each
header over the page's declared length, so it touches every page header once and never reads a payload: linear in
the number of pages, whatever the bytes. (The obvious alternative, searching backwards for the last "OggS" and
CRC-checking each candidate, is quadratic on crafted files with an overlapping candidate every 32 bytes: about 30
CPU-seconds for 128 KB; bench/media_budget.py keeps it as a baseline.)

Verdict against ffprobe (`python -m bench.media_budget`, figures in docs/performance.md#media-parsers): ffprobe
cannot tell the duration of piped input (it must seek to the last page), so it needs the bytes in a seekable
memory file, and every call is a process: 120 to 140 ms of CPU and ~50 MB for any voice note, where this reader
takes 0.01 ms for a 4 s note, 0.4 ms for a 5-minute one and 0.5 s for the worst 16 MB file (every page empty).
On crafted files ffprobe's own demuxer spent 2.3 CPU-seconds per MB. We keep this reader.
Pages that claim fewer seconds than the file's size can hold at any Opus bitrate are a lie (crafted, or not a voice
note): `ImplausibleOggError`. ffmpeg would not do better on those: its own Ogg demuxer spent 8 CPU-seconds on a
crafted 1 MB file of overlapping pages, so such a file is refused rather than decoded.
"""

from __future__ import annotations

import struct

_CAPTURE = b"OggS"
_HEADER = struct.Struct("<4sBBqIIIB")  # capture, version, flags, granule, serial, sequence, crc, segment count
_OPUS_RATE = 48000
# Opus tops out at 510 kbit/s (RFC 6716 section 2.1.1) and Vorbis is used far below that: a file whose pages claim
# fewer seconds than its size can hold at this rate (plus Ogg framing) is lying about its length.
_MAX_BITS_PER_SECOND = 600_000


class ImplausibleOggError(ValueError):
    """An Ogg file whose pages claim far less audio than its size: crafted, or not a voice note."""


def _stream_clock(payload: bytes) -> tuple[int, int] | None:
    """(sample rate of the granule clock, pre-skip) from the first page's codec header."""
    if payload.startswith(b"OpusHead") and len(payload) >= 12:
        return _OPUS_RATE, int(struct.unpack_from("<H", payload, 10)[0])
    if payload.startswith(b"\x01vorbis") and len(payload) >= 16:
        rate = int(struct.unpack_from("<I", payload, 12)[0])
        return (rate, 0) if rate > 0 else None
    return None


def _page(data: bytes, pos: int) -> tuple[int, int, int] | None:
    """(granule, serial, end offset) of the page at `pos` if its header and declared length fit, else None."""
    if pos + _HEADER.size > len(data):
        return None
    capture, version, _, granule, serial, _, _, count = _HEADER.unpack_from(data, pos)
    table_end = pos + _HEADER.size + count
    if capture != _CAPTURE or version != 0 or table_end > len(data):
        return None
    end = table_end + sum(data[pos + _HEADER.size : table_end])
    return (granule, serial, end) if end <= len(data) else None


def ogg_duration(data: bytes) -> float | None:
    """Seconds of audio in an Ogg Opus/Vorbis file; None when it is not one (not Ogg, another codec).

    Pages of other logical streams are skipped; the walk stops at the first byte that is not a page (trailing
    garbage, a truncated last page) and reports the audio up to there. Raises ImplausibleOggError."""
    first = _page(data, 0)
    if first is None:
        return None
    _, serial, end = first
    clock = _stream_clock(data[_HEADER.size + data[26] : end])
    if clock is None:
        return None
    rate, pre_skip = clock
    last_granule = 0
    pos = end
    while (page := _page(data, pos)) is not None:
        granule, page_serial, pos = page
        if page_serial == serial and granule >= 0:  # -1: no packet ends on this page
            last_granule = granule
    seconds = max(0.0, (last_granule - pre_skip) / rate)
    if len(data) * 8 > (seconds + 1) * _MAX_BITS_PER_SECOND:
        raise ImplausibleOggError(f"{len(data)} bytes for {seconds:.1f} s")
    return seconds
