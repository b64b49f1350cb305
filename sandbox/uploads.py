"""Files a person attaches or records on the chat page, turned into what WhatsApp would deliver.

WhatsApp's media types and sizes: https://developers.facebook.com/docs/whatsapp/cloud-api/reference/media#supported-media-types
(audio: AAC, AMR, MP3, MP4 audio, OGG with Opus only, up to 16 MB; images: JPEG and PNG, up to 5 MB). A browser's
MediaRecorder gives WebM/Opus: it is remuxed (not re-encoded) into OGG/Opus, the container of WhatsApp voice notes.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

MAX_AUDIO_BYTES = 16 * 1024 * 1024
MAX_IMAGE_BYTES = 5 * 1024 * 1024
MAX_UPLOAD_BYTES = MAX_AUDIO_BYTES
FFMPEG_TIMEOUT_SECONDS = 60


class UploadError(ValueError):
    """The file cannot be sent as WhatsApp media; `status` is the HTTP answer (413 too large, 415 wrong type)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Media:
    kind: str  # "audio" or "image"
    mime_type: str
    data: bytes
    voice: bool


def sniff(data: bytes) -> str | None:
    """The file's real type from its first bytes (browsers' and clients' content types are only a hint)."""
    head = data[:16]
    signatures = (
        (b"\xff\xd8\xff", "image/jpeg"),
        (b"\x89PNG\r\n\x1a\n", "image/png"),
        (b"OggS", "audio/ogg"),
        (b"\x1a\x45\xdf\xa3", "audio/webm"),
        (b"ID3", "audio/mpeg"),
        (b"#!AMR", "audio/amr"),
    )
    for magic, mime in signatures:
        if head.startswith(magic):
            return mime
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "audio/wav"
    if head[4:8] == b"ftyp":
        return "audio/mp4"
    if len(head) >= 2 and head[0] == 0xFF and head[1] & 0xF6 == 0xF0:
        return "audio/aac"  # ADTS
    if len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0:
        return "audio/mpeg"  # an MP3 frame without an ID3 tag
    return None


async def to_ogg_opus(data: bytes, ffmpeg: str = "ffmpeg") -> bytes:
    """OGG/Opus from WebM/Opus (remux, no quality loss) or from anything else ffmpeg reads (encoded as Opus)."""
    try:
        return await _ffmpeg(ffmpeg, data, ["-map", "0:a:0", "-c:a", "copy"])
    except UploadError:
        return await _ffmpeg(ffmpeg, data, ["-map", "0:a:0", "-c:a", "libopus", "-b:a", "32k", "-ac", "1"])


async def _ffmpeg(ffmpeg: str, data: bytes, codec: list[str]) -> bytes:
    process = await asyncio.create_subprocess_exec(
        *(ffmpeg, "-hide_banner", "-loglevel", "error", "-i", "pipe:0", *codec, "-f", "ogg", "pipe:1"),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(data), FFMPEG_TIMEOUT_SECONDS)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise UploadError(415, "the audio could not be converted in time") from None
    if process.returncode != 0 or not out:
        raise UploadError(415, f"not a readable audio file ({err.decode(errors='replace').strip()[-200:]})")
    return out


async def prepare(data: bytes, voice: bool, ffmpeg: str = "ffmpeg") -> Media:
    """Check and convert one upload. Raises UploadError (413, 415)."""
    mime = sniff(data)
    if mime in ("image/jpeg", "image/png"):
        if len(data) > MAX_IMAGE_BYTES:
            raise UploadError(413, f"photos may be at most {MAX_IMAGE_BYTES // 2**20} MB on WhatsApp")
        return Media("image", mime, data, voice=False)
    if mime is None:
        raise UploadError(
            415, "unsupported file: send a JPEG or PNG photo, or audio (OGG, MP3, M4A, AAC, AMR, WebM, WAV)"
        )
    if len(data) > MAX_AUDIO_BYTES:
        raise UploadError(413, f"audio may be at most {MAX_AUDIO_BYTES // 2**20} MB on WhatsApp")
    if mime in ("audio/webm", "audio/wav"):
        # Not WhatsApp types: a recording (or a WAV) becomes an OGG/Opus voice note, as the WhatsApp app records.
        return Media("audio", "audio/ogg", await to_ogg_opus(data, ffmpeg), voice=True)
    return Media("audio", mime, data, voice=voice and mime == "audio/ogg")
