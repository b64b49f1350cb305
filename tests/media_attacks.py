"""Crafted media for the work-budget tests and bench/media_budget.py: inputs built to cost a parser or decoder as
much CPU time or memory as possible for their size. Everything is generated; nothing is read from outside."""

from __future__ import annotations

import io
import struct
import zlib

from PIL import Image

from tests.webhooks import MEDIA_FIXTURES

_OGG_HEADER = struct.Struct("<4sBBqIIIB")


def first_ogg_page() -> bytes:
    """The first page (OpusHead) of a real voice note: crafted files start like one so the reader keeps going."""
    data = (MEDIA_FIXTURES / "voice-en.ogg").read_bytes()
    count = data[26]
    return data[: 27 + count + sum(data[27 : 27 + count])]


def overlapping_pages_ogg(size: int) -> bytes:
    """An OpusHead page, then a "OggS" capture every 32 bytes, each one's segment table claiming a ~55 KB page that
    overlaps the next ones. A reader that searches backwards for the last page and checks each candidate's CRC
    does a 55 KB CRC for every 32 bytes of file: quadratic in practice."""
    block = b"OggS\x00" + b"\xff" * 27
    return first_ogg_page() + block * ((size - len(first_ogg_page())) // len(block))


def empty_pages_ogg(size: int) -> bytes:
    """An OpusHead page, then as many valid empty pages (27-byte headers, no segments) as fit: the most pages a file
    of `size` bytes can hold, the worst case for a reader that walks page by page."""
    serial = _OGG_HEADER.unpack_from(first_ogg_page())[4]
    pages = [_OGG_HEADER.pack(b"OggS", 0, 0, 48000 * 2, serial, n, 0, 0) for n in range(1, 64)]
    filler = b"".join(pages)
    head = first_ogg_page()
    return head + filler * ((size - len(head)) // len(filler))


def lying_granule_ogg(seconds: float) -> bytes:
    """A real voice note whose last page claims `seconds` of audio (a header that lies about the duration)."""
    data = bytearray((MEDIA_FIXTURES / "voice-en.ogg").read_bytes())
    last = data.rfind(b"OggS")
    struct.pack_into("<q", data, last + 6, int(312 + seconds * 48000))
    return bytes(data)


def pixel_bomb_png(width: int = 7680, height: int = 7680, mode: str = "RGB") -> bytes:
    """A flat image of `width` x `height` pixels: 59 MP compress to about 200 KB of PNG."""
    out = io.BytesIO()
    Image.new(mode, (width, height), (255, 255, 255) if mode == "RGB" else 0).save(out, format="PNG")
    return out.getvalue()


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


def lying_header_png(width: int, height: int, rows: int = 4) -> bytes:
    """A PNG whose header claims `width` x `height` but whose image data holds only `rows` rows."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    raw = (b"\x00" + b"\x80" * (width * 3)) * rows
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", zlib.compress(raw))
        + _png_chunk(b"IEND", b"")
    )


def jpeg_header_claiming(width: int, height: int) -> bytes:
    """The real photo with its frame header rewritten to claim `width` x `height` (the data is still 640x480)."""
    data = bytearray((MEDIA_FIXTURES / "photo.jpg").read_bytes())
    for marker in (b"\xff\xc0", b"\xff\xc2"):
        at = data.find(marker)
        if at > 0:
            struct.pack_into(">HH", data, at + 5, height, width)
            return bytes(data)
    raise ValueError("no frame header in the photo")


def truncated(data: bytes, keep: float = 0.5) -> bytes:
    return data[: int(len(data) * keep)]
