"""Image preparation for the vision model: pass small images through, shrink big ones, refuse non-images."""

from __future__ import annotations

import base64
import io
import os

import pytest
from PIL import Image

from tests.webhooks import MEDIA_FIXTURES
from workers.errors import UserInputError
from workers.media.images import base64_size, prepare_for_vision

LIMIT = 4_000_000


def noise_png(side: int) -> bytes:
    """Random noise barely compresses: a PNG of it is big, like a phone's screenshot of a photo."""
    out = io.BytesIO()
    Image.frombytes("RGB", (side, side), os.urandom(side * side * 3)).save(out, format="PNG")
    return out.getvalue()


def test_small_jpeg_passes_through_unchanged() -> None:
    photo = (MEDIA_FIXTURES / "photo.jpg").read_bytes()
    image = prepare_for_vision(photo, LIMIT, 2048)
    assert image.data == photo
    assert image.mime_type == "image/jpeg"
    assert (image.width, image.height) == (640, 480)
    assert not image.reencoded
    assert image.data_url() == "data:image/jpeg;base64," + base64.b64encode(photo).decode()


def test_image_over_the_base64_limit_is_reencoded_to_fit() -> None:
    png = noise_png(1400)
    assert base64_size(len(png)) > LIMIT
    image = prepare_for_vision(png, LIMIT, 2048)
    assert image.reencoded
    assert image.mime_type == "image/jpeg"
    assert base64_size(len(image.data)) <= LIMIT
    assert Image.open(io.BytesIO(image.data)).format == "JPEG"


def test_a_tight_limit_also_lowers_the_resolution() -> None:
    png = noise_png(800)
    image = prepare_for_vision(png, 150_000, 2048)
    assert base64_size(len(image.data)) <= 150_000
    assert max(image.width, image.height) < 800


def test_long_sides_are_capped_even_when_the_bytes_fit() -> None:
    out = io.BytesIO()
    Image.new("RGB", (3000, 1000), (10, 200, 30)).save(out, format="PNG")
    image = prepare_for_vision(out.getvalue(), LIMIT, 1500)
    assert (image.width, image.height) == (1500, 500)


def test_transparent_png_is_flattened_on_white() -> None:
    out = io.BytesIO()
    Image.new("RGBA", (3000, 300), (0, 0, 0, 0)).save(out, format="PNG")
    image = prepare_for_vision(out.getvalue(), LIMIT, 100)
    pixel = Image.open(io.BytesIO(image.data)).convert("RGB").getpixel((50, 5))
    assert isinstance(pixel, tuple)
    assert min(pixel) > 240


@pytest.mark.parametrize("data", [b"", b"not an image at all", b"\x89PNG\r\n\x1a\n" + b"\x00" * 40])
def test_data_that_is_not_an_image_is_a_user_input_error(data: bytes) -> None:
    with pytest.raises(UserInputError) as caught:
        prepare_for_vision(data, LIMIT, 2048)
    assert caught.value.reason == "image_unreadable"


def test_decompression_bomb_is_refused() -> None:
    out = io.BytesIO()
    Image.new("1", (10_000, 10_000)).save(out, format="PNG")  # 100 MP, a few KB on disk
    with pytest.raises(UserInputError) as caught:
        prepare_for_vision(out.getvalue(), LIMIT, 2048)
    assert caught.value.reason == "image_too_large"
