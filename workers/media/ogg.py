"""Read the duration of an Ogg/Opus (or Ogg/Vorbis) file from its own pages, without decoding anything.

The last page's granule position counts samples (48 kHz for Opus, minus the encoder's pre-skip). ffprobe cannot
give this for piped input (it cannot seek to the end), and a voice note is already fully in memory.
"""

from __future__ import annotations

import struct

_CAPTURE = b"OggS"
_HEADER = struct.Struct("<4sBBqIIIB")  # capture, version, flags, granule, serial, sequence, crc, segment count
_OPUS_RATE = 48000


def _crc_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte << 24
        for _ in range(8):
            crc = ((crc << 1) ^ 0x04C11DB7) if crc & 0x80000000 else crc << 1
        table.append(crc & 0xFFFFFFFF)
    return table


_TABLE = _crc_table()


def _crc(data: bytes) -> int:
    crc = 0
    for byte in data:
        crc = ((crc << 8) & 0xFFFFFFFF) ^ _TABLE[((crc >> 24) ^ byte) & 0xFF]
    return crc


def _page_at(data: bytes, pos: int) -> tuple[int, int, bytes] | None:
    """(granule, serial, payload) of a valid page at `pos`, or None: "OggS" can occur by chance inside audio."""
    if pos + _HEADER.size > len(data):
        return None
    capture, version, _, granule, serial, _, crc, count = _HEADER.unpack_from(data, pos)
    if capture != _CAPTURE or version != 0:
        return None
    table_end = pos + _HEADER.size + count
    if table_end > len(data):
        return None
    end = table_end + sum(data[pos + _HEADER.size : table_end])
    if end > len(data):
        return None
    page = bytearray(data[pos:end])
    page[22:26] = b"\x00\x00\x00\x00"
    if _crc(bytes(page)) != crc:
        return None
    return granule, serial, data[table_end:end]


def _stream_rate(payload: bytes) -> tuple[int, int] | None:
    """(sample rate of the granule clock, pre-skip) from the first page's codec header."""
    if payload.startswith(b"OpusHead") and len(payload) >= 12:
        return _OPUS_RATE, int(struct.unpack_from("<H", payload, 10)[0])
    if payload.startswith(b"\x01vorbis") and len(payload) >= 16:
        return int(struct.unpack_from("<I", payload, 12)[0]), 0
    return None


def ogg_duration(data: bytes) -> float | None:
    """Seconds of audio in an Ogg Opus/Vorbis file; None when it is not one we can read."""
    first = _page_at(data, 0)
    if first is None:
        return None
    _, serial, payload = first
    clock = _stream_rate(payload)
    if clock is None:
        return None
    rate, pre_skip = clock
    pos = data.rfind(_CAPTURE)
    while pos > 0:
        page = _page_at(data, pos)
        if page is not None and page[1] == serial and page[0] >= 0:
            return max(0.0, (page[0] - pre_skip) / rate)
        pos = data.rfind(_CAPTURE, 0, pos)
    return 0.0
