"""Checking that a webhook request came from Parley (docs/webhooks.md, "Verify the
signature"): HMAC-SHA256 with the endpoint's secret over the timestamp, a dot and the
raw body, compared in constant time, with a freshness window against replays.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping

SIGNATURE_HEADER = "Parley-Signature"
TIMESTAMP_HEADER = "Parley-Timestamp"
# Parley's own window: room for clock skew, too short for a captured request to be useful.
TOLERANCE_SECONDS = 300


class WebhookVerificationError(Exception):
    """The request is not a fresh, signed request from Parley: answer 401."""


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The ``Parley-Signature`` value Parley sends for this body at this time."""
    mac = hmac.new(secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256)
    return "v1=" + mac.hexdigest()


def verify(secret: str | list[str], headers: Mapping[str, str], body: bytes, *,
           now: float | None = None, tolerance: int = TOLERANCE_SECONDS) -> None:
    """Raise WebhookVerificationError unless ``body`` (raw bytes) is signed and fresh.

    ``secret`` may be a list while a rotated secret is replaced: either one passes.
    ``headers`` is looked up without regard to case, as HTTP header names are.
    """
    lowered = {k.lower(): v for k, v in headers.items()}
    timestamp = lowered.get(TIMESTAMP_HEADER.lower(), "")
    given = lowered.get(SIGNATURE_HEADER.lower(), "")
    try:
        ts = int(timestamp)
    except ValueError:
        raise WebhookVerificationError("missing or malformed timestamp") from None
    current = time.time() if now is None else now
    if abs(current - ts) > tolerance:
        raise WebhookVerificationError("timestamp outside the tolerance window")
    secrets = [secret] if isinstance(secret, str) else secret
    if not any(hmac.compare_digest(sign(s, ts, body), given) for s in secrets):
        raise WebhookVerificationError("signature does not match")
