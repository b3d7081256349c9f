"""The SDK's webhook check accepts what Parley's own signing produces, and nothing else."""

from __future__ import annotations

import pytest
from parley_sdk import WebhookVerificationError, verify

from app.webhooks import signing

SECRET = "whsec_0123456789abcdef"
BODY = b'{"event_id":"ev_1","type":"webhook.ping","data":{}}'
NOW = 1_800_000_000.0


def test_a_request_signed_by_parley_passes() -> None:
    """Headers from the server's signing module verify, header case aside."""
    headers = signing.headers(SECRET, BODY, "ev_1", "webhook.ping", now=NOW)
    verify(SECRET, {k.lower(): v for k, v in headers.items()}, BODY, now=NOW + 10)


def test_either_secret_passes_during_a_rotation() -> None:
    """A list of secrets accepts a request signed with any one of them."""
    headers = signing.headers(SECRET, BODY, "ev_1", "webhook.ping", now=NOW)
    verify(["whsec_new", SECRET], headers, BODY, now=NOW)


@pytest.mark.parametrize("change", ["body", "secret", "stale", "no_timestamp"])
def test_a_changed_or_stale_request_fails(change: str) -> None:
    """A changed body, a wrong secret, an old timestamp or a missing one all fail."""
    headers = signing.headers(SECRET, BODY, "ev_1", "webhook.ping", now=NOW)
    body, secret, now = BODY, SECRET, NOW
    if change == "body":
        body = BODY.replace(b"ping", b"pong")
    elif change == "secret":
        secret = "whsec_other"
    elif change == "stale":
        now = NOW + 301
    else:
        del headers["Parley-Timestamp"]
    with pytest.raises(WebhookVerificationError):
        verify(secret, headers, body, now=now)
