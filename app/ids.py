"""Identifiers: users' MD5 IDs, server message IDs, app keys.

Parley never keeps an app's raw user ID. A user is named everywhere by the lowercase
hex MD5 of the UTF-8 bytes of that ID exactly as the app gave it. MD5 here is a
naming scheme shared with the App Server, not a security boundary.
"""

from __future__ import annotations

import hashlib
import os
import re
import time

from app.errors import InvalidRequest

_MD5_RE = re.compile(r"[0-9a-fA-F]{32}")
MAX_RAW_USER_ID_CHARS = 256


def md5_of_user_id(raw: str) -> str:
    """Hash a raw user ID, refusing the forms the API documents as invalid."""
    if not isinstance(raw, str) or raw == "":
        raise InvalidRequest("user_id must be a non-empty string.", code="invalid_user_id")
    if raw != raw.strip():
        raise InvalidRequest(
            "user_id has leading or trailing white space; it is not trimmed.",
            code="invalid_user_id",
        )
    if len(raw) > MAX_RAW_USER_ID_CHARS:
        raise InvalidRequest("user_id is longer than 256 characters.", code="invalid_user_id")
    try:
        encoded = raw.encode("utf-8")
    except UnicodeEncodeError as exc:  # a lone surrogate: not text at all
        raise InvalidRequest("user_id is not valid Unicode text.", code="invalid_user_id") from exc
    return hashlib.md5(encoded, usedforsecurity=False).hexdigest()


def normalise_md5(value: str) -> str:
    """Accept 32 hex digits in any case; return them lowercase."""
    if not isinstance(value, str) or not _MD5_RE.fullmatch(value):
        raise InvalidRequest("A user_id_md5 is 32 hexadecimal digits.", code="invalid_user_id")
    return value.lower()


def is_md5(value: str) -> bool:
    return bool(_MD5_RE.fullmatch(value)) and value == value.lower()


def new_message_id() -> str:
    """A 26-character ID that sorts by creation time (48-bit ms + 80 random bits)."""
    ms = time.time_ns() // 1_000_000
    raw = ms.to_bytes(6, "big") + os.urandom(10)
    return _crockford32(int.from_bytes(raw, "big"), 26)


_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"


def _crockford32(n: int, width: int) -> str:
    out = []
    for _ in range(width):
        n, r = divmod(n, 32)
        out.append(_ALPHABET[r])
    return "".join(reversed(out))


def p2p_conversation_id(a: str, b: str) -> str:
    """The one conversation two users share, the same whichever of them asks."""
    lo, hi = sorted((a, b))
    return f"p2p:{lo}:{hi}"


def system_conversation_id(user: str) -> str:
    """Where a user's system notices from the App Server live."""
    return f"sys:{user}"
