"""Reading an uploaded image: its size, and the text of every QR code in it.

Pure and blocking (Pillow and zxing-cpp are C underneath); the service runs it in a
worker thread once per upload and keeps the result, so sends never decode.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import zxingcpp
from PIL import Image, UnidentifiedImageError

# A 48-megapixel phone photo is about 8000 x 6000; larger is almost certainly an image
# built to make the decoder allocate gigabytes.
MAX_PIXELS = 64_000_000
# Codes from the QR family: the square one, the small one and the rectangular one.
QR_FORMATS = zxingcpp.barcode_formats_from_str("QRCode,MicroQRCode,RMQRCode")


class NotAnImage(ValueError):
    """The bytes do not decode as an image of a supported size."""


@dataclass(frozen=True, slots=True)
class Scan:
    width: int
    height: int
    qr_texts: tuple[str, ...]  # in the order found, without repeats


def scan(data: bytes) -> Scan:
    """Decode the image and read every QR code in it."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
            if width * height > MAX_PIXELS:
                raise NotAnImage(f"The image is over {MAX_PIXELS} pixels.")
            image.load()
            pixels = image.convert("L")
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as exc:
        raise NotAnImage("The bytes are not a readable image.") from exc
    found = zxingcpp.read_barcodes(pixels, formats=QR_FORMATS)
    texts = dict.fromkeys(code.text for code in found if code.valid and code.text)
    return Scan(width, height, tuple(texts))
