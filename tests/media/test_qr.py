"""Reading QR codes and sizes out of uploaded images."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from app.media import qr
from tests.media.images import photo_with_qr, plain_png, png, qr_png


def test_a_qr_code_is_read_with_the_image_size() -> None:
    """A plain QR code PNG yields its text and the image's size."""
    scan = qr.scan(qr_png("https://evil.example/login"))
    assert scan.qr_texts == ("https://evil.example/login",)
    assert scan.width == scan.height > 0


def test_a_qr_code_in_a_photo_is_found() -> None:
    """A code pasted into a noisy JPEG scene is still read."""
    assert qr.scan(photo_with_qr("www.evil.example")).qr_texts == ("www.evil.example",)


def test_an_image_without_codes_has_none() -> None:
    """A plain picture has no QR texts."""
    scan = qr.scan(plain_png())
    assert (scan.width, scan.height, scan.qr_texts) == (64, 48, ())


def test_two_codes_are_both_read_once_each() -> None:
    """Every code in an image is read, and a text found twice is kept once."""
    first = Image.open(io.BytesIO(qr_png("https://a.example/", 6)))
    second = Image.open(io.BytesIO(qr_png("https://b.example/", 6)))
    canvas = Image.new("L", (first.width * 3 + second.width, first.height * 2), 255)
    canvas.paste(first, (0, 0))
    canvas.paste(second, (first.width + 40, 0))
    canvas.paste(first, (0, first.height))
    texts = qr.scan(png(canvas)).qr_texts
    assert sorted(texts) == ["https://a.example/", "https://b.example/"]


def test_bytes_that_are_not_an_image_are_refused() -> None:
    """Garbage behind a PNG signature is not an image."""
    with pytest.raises(qr.NotAnImage):
        qr.scan(b"\x89PNG\r\n\x1a\n" + b"\x00" * 100)


def test_an_image_claiming_too_many_pixels_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """An image over the pixel limit is refused before it is decoded."""
    monkeypatch.setattr(qr, "MAX_PIXELS", 100)
    with pytest.raises(qr.NotAnImage):
        qr.scan(plain_png())
