"""A size limit on REST request bodies, enforced while they arrive.

Without it a caller, before any authentication, could stream an endless body and make
the server hold it all. The limit is checked against Content-Length first and then
against what has arrived, so a chunked body is cut off as soon as it passes the limit.
Paths in ``exempt`` read and limit their bodies themselves, after authenticating (the
media upload, whose limit is its own setting).
"""

from __future__ import annotations

from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class BodyLimit:
    def __init__(self, app: ASGIApp, max_bytes: int, exempt: frozenset[str] = frozenset()
                 ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.exempt = exempt

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.exempt:
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            await _refuse(send, self.max_bytes)
            return
        seen = 0
        refused = False
        tail = b""  # the end of the last chunk, for an escape split between two

        async def counted() -> Message:
            # Past the limit: answer 413 here, and tell the app the client has gone, so
            # it stops reading; whatever it answers then is dropped. The same for a body
            # with U+0000, which PostgreSQL's text cannot hold (a JSON body can carry it
            # only as an escape; a body that shows a backslash-u-zeros text is refused too).
            nonlocal seen, refused, tail
            message = await receive()
            if message["type"] == "http.request":
                chunk = message.get("body", b"")
                seen += len(chunk)
                if refused:
                    return {"type": "http.disconnect"}
                if seen > self.max_bytes:
                    refused = True
                    await _refuse(send, self.max_bytes)
                    return {"type": "http.disconnect"}
                if NUL_ESCAPE in tail + chunk:
                    refused = True
                    await _refuse_nul(send)
                    return {"type": "http.disconnect"}
                tail = chunk[-len(NUL_ESCAPE):]
            return message

        async def guarded(message: Message) -> None:
            if not refused:
                await send(message)

        await self.app(scope, counted, guarded)


NUL_ESCAPE = b"\\u0000"


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _refuse(send: Send, limit: int) -> None:
    body = (b'{"code":"body_too_large","message":"The request body is over '
            + str(limit).encode() + b' bytes."}')
    headers: list[Any] = [(b"content-type", b"application/json"),
                          (b"content-length", str(len(body)).encode()),
                          (b"connection", b"close")]
    await send({"type": "http.response.start", "status": 413, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _refuse_nul(send: Send) -> None:
    body = (b'{"code":"invalid_field","message":"The request body may not hold the '
            b'character U+0000."}')
    headers: list[Any] = [(b"content-type", b"application/json"),
                          (b"content-length", str(len(body)).encode()),
                          (b"connection", b"close")]
    await send({"type": "http.response.start", "status": 400, "headers": headers})
    await send({"type": "http.response.body", "body": body})
