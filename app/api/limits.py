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

        async def counted() -> Message:
            # Past the limit: answer 413 here, and tell the app the client has gone, so
            # it stops reading; whatever it answers then is dropped.
            nonlocal seen, refused
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes and not refused:
                    refused = True
                    await _refuse(send, self.max_bytes)
                    return {"type": "http.disconnect"}
            return message

        async def guarded(message: Message) -> None:
            if not refused:
                await send(message)

        await self.app(scope, counted, guarded)


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
