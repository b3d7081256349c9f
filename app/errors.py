"""Errors that reach a caller, and the close codes of the data plane.

Every error a caller can see is a :class:`ParleyError` with a stable ``code`` string.
The REST layer turns one into ``{"code": ..., "message": ...}`` with its HTTP status;
the gateway turns one into an ``error`` frame and, when ``close_code`` is set, closes
the connection with that code. Anything else raised is an internal error: the caller
gets ``internal_error`` and no detail, and the traceback goes to the log.

    ParleyError
    ├── InvalidRequest        400  a field is missing, mistyped or out of range
    ├── Unauthorized          401  no credentials, or wrong ones
    ├── Forbidden             403
    ├── NotFound              404
    ├── Conflict              409
    ├── PayloadTooLarge       413  an upload is over its limit
    ├── UnsupportedMediaType  415  an upload is of a type not accepted
    ├── TooManyRequests       429  slow down: data.retry_after_ms says for how long
    ├── ServiceUnavailable    503  retry later
    ├── ProtocolError         —    data-plane framing is broken; closes the connection
    ├── LoginRequired         401  a data-plane request before login; closes it
    └── AuthClose             401  token or password refused; closes the connection
        └── TokenExpired      401

Close codes live in :class:`CloseCode`; ``docs/protocol.md`` has the same table.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Any


class CloseCode(IntEnum):
    """WebSocket close codes. 4xxx are Parley's own (RFC 6455 §7.4.2)."""

    NORMAL = 1000
    GOING_AWAY = 1001
    TOO_BIG = 1009
    INTERNAL = 1011
    BAD_FRAME = 4000  # not JSON, binary, empty: fix the client, then reconnect
    LOGIN_REQUIRED = 4001  # a request before login, or no login in time
    LOGIN_FAILED = 4002  # token or password refused: get new credentials first
    TOKEN_EXPIRED = 4003  # not refreshed in time: get a new token, then reconnect
    KICKED = 4004  # the App Server kicked the user: do not reconnect on your own
    HEARTBEAT_TIMEOUT = 4005  # nothing heard within the timeout: reconnect
    USER_DELETED = 4006  # the user no longer exists: do not reconnect
    SLOW_CONSUMER = 4008  # fell too far behind: reconnect and sync
    DRAINING = 4010  # this node is stopping: reconnect (to another node) and sync
    REPLACED = 4011  # a newer login on the same platform took over: do not reconnect
    TOO_MANY_FRAMES = 4012  # over PARLEY_MAX_FRAMES_PER_SECOND: reconnect more gently


class ParleyError(Exception):
    """Base of every error with a stable code."""

    code = "error"
    http_status = 400
    close_code: CloseCode | None = None

    def __init__(self, message: str, *, code: str | None = None, **data: Any) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.data = data

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.data:
            body["data"] = self.data
        return body


class InvalidRequest(ParleyError):
    code = "invalid_request"
    http_status = 400


class Unauthorized(ParleyError):
    code = "unauthorized"
    http_status = 401


class Forbidden(ParleyError):
    code = "forbidden"
    http_status = 403


class NotFound(ParleyError):
    code = "not_found"
    http_status = 404


class Conflict(ParleyError):
    code = "conflict"
    http_status = 409


class PayloadTooLarge(ParleyError):
    code = "too_large"
    http_status = 413


class UnsupportedMediaType(ParleyError):
    code = "unsupported_media_type"
    http_status = 415


class TooManyRequests(ParleyError):
    code = "rate_limited"
    http_status = 429


class ServiceUnavailable(ParleyError):
    code = "unavailable"
    http_status = 503


class ProtocolError(ParleyError):
    """The frame itself is unusable; the connection cannot go on."""

    code = "bad_frame"
    close_code = CloseCode.BAD_FRAME


class AuthClose(ParleyError):
    """A data-plane authentication failure that ends the connection."""

    code = "login_failed"
    http_status = 401
    close_code = CloseCode.LOGIN_FAILED


class LoginRequired(ParleyError):
    code = "not_logged_in"
    http_status = 401
    close_code = CloseCode.LOGIN_REQUIRED


class TokenExpired(AuthClose):
    code = "token_expired"
    close_code = CloseCode.TOKEN_EXPIRED


def user_not_found() -> NotFound:
    return NotFound("No such user in this app.", code="user_not_found")
