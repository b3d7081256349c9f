"""Request signing: HMAC-SHA256 over ``"{timestamp}.{raw body}"``.

A receiver recomputes the signature with its endpoint's secret, compares in constant
time, and refuses a timestamp older than a few minutes so a captured request cannot be
replayed later. docs/webhooks.md shows the check in Python and in JavaScript.
"""

from __future__ import annotations

import hashlib
import hmac
import time

TIMESTAMP_HEADER = "Parley-Timestamp"
SIGNATURE_HEADER = "Parley-Signature"
EVENT_ID_HEADER = "Parley-Event-Id"
EVENT_TYPE_HEADER = "Parley-Event-Type"
# Five minutes: room for clock skew, short enough to make a replay useless.
TOLERANCE_SECONDS = 300


def signature(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "v1=" + mac.hexdigest()


def headers(secret: str, body: bytes, event_id: str, event_type: str,
            now: float | None = None) -> dict[str, str]:
    timestamp = int(now if now is not None else time.time())
    return {
        "Content-Type": "application/json",
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: signature(secret, timestamp, body),
        EVENT_ID_HEADER: event_id,
        EVENT_TYPE_HEADER: event_type,
        "User-Agent": "Parley-Webhooks/1",
    }


def verify(secret: str, timestamp: str, body: bytes, given: str,
           now: float | None = None, tolerance: int = TOLERANCE_SECONDS) -> bool:
    """True when the signature matches and the timestamp is fresh."""
    try:
        ts = int(timestamp)
    except ValueError:
        return False
    current = now if now is not None else time.time()
    if abs(current - ts) > tolerance:
        return False
    return hmac.compare_digest(signature(secret, ts, body), given)
