"""Images the media tests upload, made on the spot."""

from __future__ import annotations

import io
import random

import qrcode
from PIL import Image


def png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def qr_png(text: str, box_size: int = 10) -> bytes:
    """A PNG of one QR code holding ``text``, as the qrcode package draws it."""
    image = qrcode.make(text, box_size=box_size).get_image()
    return png(image.convert("L"))


def photo_with_qr(text: str, size: tuple[int, int] = (1600, 1200)) -> bytes:
    """A JPEG of a grey noisy scene with a QR code pasted off-centre."""
    # Seeded noise, so every run scans the same picture.
    rng = random.Random(size[0] * size[1])
    grey = bytes(96 + rng.randrange(64) for _ in range(size[0] * size[1]))
    scene = Image.frombytes("L", size, grey).convert("RGB")
    code = qrcode.make(text, box_size=8).get_image().convert("RGB")
    scene.paste(code, (size[0] // 3, size[1] // 4))
    out = io.BytesIO()
    scene.save(out, "JPEG", quality=85)
    return out.getvalue()


def plain_png() -> bytes:
    return png(Image.new("RGB", (64, 48), (200, 30, 30)))
