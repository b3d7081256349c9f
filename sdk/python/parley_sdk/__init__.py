"""Parley's Python SDK: the App Server's REST client (sync and asyncio), the webhook
signature check, and a WebSocket client for bots.

The names below are the public surface; modules hold the rest.
"""

from parley_sdk.errors import (
    ApiError,
    ParleyError,
    RateLimited,
    RealtimeError,
    SessionEnded,
    TransportError,
)
from parley_sdk.realtime import Backoff, BotClient
from parley_sdk.rest import AppClient, AsyncAppClient, Retries, user_id_md5
from parley_sdk.webhooks import WebhookVerificationError, verify

__all__ = [
    "ApiError",
    "AppClient",
    "AsyncAppClient",
    "Backoff",
    "BotClient",
    "ParleyError",
    "RateLimited",
    "RealtimeError",
    "Retries",
    "SessionEnded",
    "TransportError",
    "WebhookVerificationError",
    "user_id_md5",
    "verify",
]
