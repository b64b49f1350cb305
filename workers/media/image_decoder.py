"""The Pillow side of `workers.media.images`, run as `python -m workers.media.image_decoder` in a child process
under a work budget (`workers.media.bounded`): the worker process never decodes a user's image itself.

Protocol: argv = max base64 bytes, max side, max pixels; stdin = the image bytes; stdout = one JSON line, then
the re-encoded image bytes when it says `"reencoded": true`. A refusal is a JSON line with `error`
(`image_too_large` or `image_unreadable`) and exit status 0; anything else (a crash, a limit) is the parent's
to classify.

The pixel cap is checked from the header, before any pixel is decoded (Pillow's own decompression-bomb check
only starts at ~89 MP: https://pillow.readthedocs.io/en/stable/reference/Image.html#PIL.Image.open). JPEGs are
decoded at a reduced scale when they are larger than needed (`Image.draft`, libjpeg's DCT scaling): a 12 MP
photo shrunk to 2048 px is decoded at half size, a quarter of the memory and time.
"""

from __future__ import annotations

import io
import json
import sys
import warnings
from dataclasses import dataclass

from PIL import Image, ImageOps, UnidentifiedImageError

# Formats Groq's vision models take as-is (https://console.groq.com/docs/vision); anything else we can read is
# re-encoded to JPEG.
PASSTHROUGH_FORMATS = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp", "GIF": "image/gif"}
# The only formats the child tries: WhatsApp sends JPEG and PNG images, and Pillow's other plugins (EPS runs
# Ghostscript, PSD, ICNS, ...) are attack surface we do not need.
READABLE_FORMATS = (*PASSTHROUGH_FORMATS, "BMP", "TIFF")
_JPEG_QUALITIES = (85, 75, 60, 45)


class Refused(Exception):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True, slots=True)
class Prepared:
    data: bytes | None  # None: send the original bytes unchanged
    mime_type: str
    width: int
    height: int


def base64_size(byte_count: int) -> int:
    return 4 * ((byte_count + 2) // 3)


def _open(data: bytes, max_pixels: int, max_side: int) -> Image.Image:
    try:
        with warnings.catch_warnings():
            # Our cap below is the decision; Pillow's warning (an error under pytest's config) would only repeat it.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=READABLE_FORMATS)
            if image.width * image.height > max_pixels:
                raise Refused("image_too_large", f"{image.width}x{image.height} pixels")
            if image.format == "JPEG" and max(image.size) > max_side:
                image.draft("RGB", (max_side, max_side))  # decode at 1/2, 1/4 or 1/8 scale, still >= max_side
            image.load()
    except Image.DecompressionBombError as exc:
        raise Refused("image_too_large", "decompression bomb") from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as exc:
        raise Refused("image_unreadable", type(exc).__name__) from exc
    return image


def _shrunk_rgb(image: Image.Image, max_side: int) -> Image.Image:
    """Upright, at most `max_side` on its longer side, and RGB; transparent pixels painted white (JPEG has no
    alpha, and black would hide dark text on a transparent PNG). Shrinks before converting, and transposes and
    thumbnails in place, so a large image is held in memory about once."""
    ImageOps.exif_transpose(image, in_place=True)  # phones store rotation in EXIF; the re-encode would drop it
    if image.mode not in ("RGB", "RGBA", "L", "LA"):  # palette and other modes resample badly: convert first
        transparent = image.mode == "P" and "transparency" in image.info
        image = image.convert("RGBA" if transparent else "RGB")
    if max(image.size) > max_side:
        image.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)  # reduce() first for large factors
    if image.mode in ("RGBA", "LA"):
        rgba = image.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return image if image.mode == "RGB" else image.convert("RGB")


def _encode_jpeg(image: Image.Image, quality: int) -> bytes:
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=quality, optimize=True)
    return out.getvalue()


def prepare(data: bytes, max_base64_bytes: int, max_side: int, max_pixels: int) -> Prepared:
    """The image unchanged when Groq can take it, else a JPEG that fits `max_base64_bytes` once base64 encoded and
    whose longer side is at most `max_side`. Raises Refused."""
    image = _open(data, max_pixels, max_side)
    fits = base64_size(len(data)) <= max_base64_bytes and max(image.size) <= max_side
    if fits and image.format in PASSTHROUGH_FORMATS:
        return Prepared(None, PASSTHROUGH_FORMATS[image.format], image.width, image.height)
    rgb = _shrunk_rgb(image, max_side)
    # Lower the quality first, then the resolution: detail matters more than pixels for reading text in photos.
    while True:
        for quality in _JPEG_QUALITIES:
            encoded = _encode_jpeg(rgb, quality)
            if base64_size(len(encoded)) <= max_base64_bytes:
                return Prepared(encoded, "image/jpeg", rgb.width, rgb.height)
        if max(rgb.size) <= 64:
            raise Refused("image_too_large", "cannot shrink below the base64 limit")
        rgb = rgb.resize((max(1, rgb.width * 3 // 4), max(1, rgb.height * 3 // 4)), Image.Resampling.LANCZOS)


def main() -> int:
    max_base64_bytes, max_side, max_pixels = (int(arg) for arg in sys.argv[1:4])
    data = sys.stdin.buffer.read()
    try:
        prepared = prepare(data, max_base64_bytes, max_side, max_pixels)
    except Refused as refused:
        sys.stdout.buffer.write(json.dumps({"error": refused.reason, "detail": refused.detail}).encode() + b"\n")
        return 0
    header = {
        "mime_type": prepared.mime_type,
        "width": prepared.width,
        "height": prepared.height,
        "reencoded": prepared.data is not None,
    }
    sys.stdout.buffer.write(json.dumps(header).encode() + b"\n" + (prepared.data or b""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
