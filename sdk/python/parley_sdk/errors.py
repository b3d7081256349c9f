"""Errors the SDK raises, one tree a caller can catch at the level it cares about::

    ParleyError                 anything from this SDK; ``code`` is always set
    ├── ApiError                the server answered with an error body (REST)
    │   └── RateLimited         429: ``retry_after_ms`` says how long to wait
    ├── TransportError          no answer: the server could not be reached in time
    ├── RealtimeError           an ``error`` frame on the WebSocket, for one request
    └── SessionEnded            the connection closed for good (kicked, replaced, ...)

``code`` is the server's stable code (docs/protocol.md, "Error codes") whenever the
server gave one; the SDK's own codes are ``connection_failed``, ``timeout``,
``connection_lost`` and ``closed``.
"""

from __future__ import annotations

from typing import Any


class ParleyError(Exception):
    def __init__(self, code: str, message: str = "", data: dict[str, Any] | None = None
                 ) -> None:
        super().__init__(f"{code}: {message}" if message else code)
        self.code = code
        self.message = message
        self.data = data or {}


class ApiError(ParleyError):
    """The REST API refused the call; ``status`` is the HTTP status."""

    def __init__(self, status: int, code: str, message: str = "",
                 data: dict[str, Any] | None = None) -> None:
        super().__init__(code, message, data)
        self.status = status


class RateLimited(ApiError):
    @property
    def retry_after_ms(self) -> int | None:
        value = self.data.get("retry_after_ms")
        return int(value) if value is not None else None


class TransportError(ParleyError):
    """The request got no answer after every retry allowed."""


class RealtimeError(ParleyError):
    """The server answered a WebSocket request with an ``error`` frame."""


class SessionEnded(ParleyError):
    """The connection closed with a code after which the client does not reconnect."""

    def __init__(self, code: str, close_code: int, message: str = "") -> None:
        super().__init__(code, message)
        self.close_code = close_code
