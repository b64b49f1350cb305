"""Images for the vision model: keep small ones as they are, shrink the rest until their base64 fits Groq's limit."""

from __future__ import annotations

import base64
import io
import warnings
from dataclasses import dataclass

from PIL import Image, ImageOps, UnidentifiedImageError

from workers.errors import UserInputError

# Formats Groq's vision models take as-is; anything else (e.g. a sticker-like WebP is fine, a TIFF is not) is
# re-encoded to JPEG.
PASSTHROUGH_FORMATS = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp", "GIF": "image/gif"}
# Far above any 5 MB WhatsApp photo (a 5 MB JPEG is ~30 MP): a bigger canvas is a decompression bomb.
MAX_DECODED_PIXELS = 60_000_000
_JPEG_QUALITIES = (85, 75, 60, 45)


@dataclass(frozen=True, slots=True)
class VisionImage:
    data: bytes
    mime_type: str
    width: int
    height: int
    reencoded: bool

    def data_url(self) -> str:
        return f"data:{self.mime_type};base64,{base64.b64encode(self.data).decode('ascii')}"


def base64_size(byte_count: int) -> int:
    return 4 * ((byte_count + 2) // 3)


def _open(data: bytes) -> Image.Image:
    try:
        with warnings.catch_warnings():
            # Pillow warns (and our pytest config turns warnings into errors) above its own bomb threshold;
            # our explicit pixel cap below is the decision.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            if image.width * image.height > MAX_DECODED_PIXELS:
                raise UserInputError("image_too_large", f"{image.width}x{image.height} pixels")
            image.load()
    except Image.DecompressionBombError as exc:
        raise UserInputError("image_too_large", "decompression bomb") from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise UserInputError("image_unreadable", type(exc).__name__) from exc
    return image


def _flatten(image: Image.Image) -> Image.Image:
    """JPEG has no alpha: paint transparent pixels white (black would hide dark text on transparent PNGs)."""
    image = ImageOps.exif_transpose(image)  # phones store rotation in EXIF; the re-encode would drop it
    if image.mode in ("RGBA", "LA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return image.convert("RGB")


def _encode_jpeg(image: Image.Image, quality: int) -> bytes:
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=quality, optimize=True)
    return out.getvalue()


def prepare_for_vision(data: bytes, max_base64_bytes: int, max_side: int) -> VisionImage:
    """Return the image unchanged when Groq can take it, else a JPEG that fits `max_base64_bytes` once base64
    encoded and whose longer side is at most `max_side`. Raises UserInputError for data that is not an image."""
    image = _open(data)
    fits = base64_size(len(data)) <= max_base64_bytes and max(image.size) <= max_side
    if fits and image.format in PASSTHROUGH_FORMATS:
        return VisionImage(data, PASSTHROUGH_FORMATS[image.format], image.width, image.height, reencoded=False)
    rgb = _flatten(image)
    if max(rgb.size) > max_side:
        rgb.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    # Lower the quality first, then the resolution: detail matters more than pixels for reading text in photos.
    while True:
        for quality in _JPEG_QUALITIES:
            encoded = _encode_jpeg(rgb, quality)
            if base64_size(len(encoded)) <= max_base64_bytes:
                return VisionImage(encoded, "image/jpeg", rgb.width, rgb.height, reencoded=True)
        if max(rgb.size) <= 64:
            raise UserInputError("image_too_large", "cannot shrink below the base64 limit")
        rgb = rgb.resize((max(1, rgb.width * 3 // 4), max(1, rgb.height * 3 // 4)), Image.Resampling.LANCZOS)
