"""What an upload is, told from its first bytes; the type a client declares is not
trusted, since a browser would believe the server's answer when it serves the file."""

from __future__ import annotations

from typing import Literal

Kind = Literal["image", "file"]

IMAGE_TYPES = frozenset(("image/png", "image/jpeg", "image/gif", "image/webp"))


def sniff(data: bytes) -> str | None:
    """The content type the bytes begin like, or None for none Parley knows."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data.startswith(b"%PDF-"):
        return "application/pdf"
    if data.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return "application/zip"
    if data.startswith(b"ID3") or data[:2] in (b"\xff\xfb", b"\xff\xf3", b"\xff\xf2"):
        return "audio/mpeg"
    if data[4:8] == b"ftyp":
        return "video/mp4"
    return None


def kind_of(content_type: str) -> Kind:
    return "image" if content_type in IMAGE_TYPES else "file"
