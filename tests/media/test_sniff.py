"""Telling an upload's type from its bytes."""

from __future__ import annotations

import pytest

from app.media.sniff import kind_of, sniff
from tests.media.images import plain_png


@pytest.mark.parametrize("head,expected", [
    (b"\xff\xd8\xff\xe0\x00\x10JFIF", "image/jpeg"),
    (b"GIF89a\x01\x00", "image/gif"),
    (b"RIFF\x24\x00\x00\x00WEBPVP8 ", "image/webp"),
    (b"%PDF-1.7\n", "application/pdf"),
    (b"PK\x03\x04\x14\x00", "application/zip"),
    (b"ID3\x04\x00", "audio/mpeg"),
    (b"\x00\x00\x00\x18ftypmp42", "video/mp4"),
])
def test_known_signatures_name_their_type(head: bytes, expected: str) -> None:
    """Each supported format is recognised by its leading bytes."""
    assert sniff(head + b"\x00" * 32) == expected


def test_a_real_png_is_an_image() -> None:
    """A PNG made by Pillow is sniffed as image/png, of the image kind."""
    content_type = sniff(plain_png())
    assert content_type == "image/png"
    assert kind_of(content_type) == "image"


@pytest.mark.parametrize("data", [b"", b"<html><script>alert(1)</script>", b"MZ\x90\x00",
                                  b"hello, world"])
def test_unknown_bytes_have_no_type(data: bytes) -> None:
    """HTML, executables, plain text and empty bodies are not recognised, whatever a
    client says they are."""
    assert sniff(data) is None


def test_files_are_not_images() -> None:
    """A PDF is of the file kind."""
    assert kind_of("application/pdf") == "file"
