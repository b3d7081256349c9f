"""What each WebSocket costs the server below the gateway, made small.

A node holds tens of thousands of mostly idle connections, so every object one keeps
alive counts. Two things here trim that, with no change to what a client sees:

- ``straight_to_gateway`` hands ``/ws`` connections to the gateway directly. Through
  FastAPI, each would keep a dozen suspended middleware and routing frames, and three
  ``AsyncExitStack``s, alive for as long as it is open (about 11 KiB).
- ``LeanWebSocketProtocol`` is uvicorn's sans-I/O WebSocket protocol with an inbox and
  a write gate that hold no deques, and without the upgrade request and response once
  the handshake is done (about 7 KiB).

``app.serving`` puts both in place; ``uvicorn app.main:app`` runs without them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

GATEWAY_PATH = "/ws"


def straight_to_gateway(app: ASGIApp, endpoint: Callable[[WebSocket], Awaitable[None]]
                        ) -> ASGIApp:
    """``app``, except that WebSocket connections to /ws go to ``endpoint`` at once.

    The app's middleware has nothing to do for them: the body limit is for HTTP, and an
    error in the endpoint reaches uvicorn either way, which closes the socket.
    """
    async def serve(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket" and scope["path"] == GATEWAY_PATH:
            scope["app"] = app  # as the app would set it: the endpoint finds its state there
            await endpoint(WebSocket(scope, receive, send))
            return
        await app(scope, receive, send)

    return serve


class Inbox:
    """The protocol's queue of events for the app, as ``asyncio.Queue`` is used there
    (``put_nowait``, ``get``, ``empty``) but for one reader, the endpoint's read loop:
    a list and one future instead of a queue, an event and three deques."""

    __slots__ = ("_events", "_waiter")

    def __init__(self) -> None:
        self._events: list[Any] = []
        self._waiter: asyncio.Future[None] | None = None

    def put_nowait(self, event: Any) -> None:
        self._events.append(event)
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def get(self) -> Any:
        while not self._events:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        # Reading pauses after each message, so this list holds one or two events.
        return self._events.pop(0)

    def empty(self) -> bool:
        return not self._events


class Gate:
    """Open while the socket takes writes, as ``asyncio.Event`` is used there; its
    waiters' list exists only while the peer is slow to read."""

    __slots__ = ("_open", "_waiters")

    def __init__(self) -> None:
        self._open = True
        self._waiters: list[asyncio.Future[None]] | None = None

    def is_set(self) -> bool:
        return self._open

    def set(self) -> None:
        self._open = True
        waiters, self._waiters = self._waiters, None
        for waiter in waiters or ():
            if not waiter.done():
                waiter.set_result(None)

    def clear(self) -> None:
        self._open = False

    async def wait(self) -> bool:
        while not self._open:
            waiter = asyncio.get_running_loop().create_future()
            if self._waiters is None:
                self._waiters = []
            self._waiters.append(waiter)
            try:
                await waiter
            finally:
                if self._waiters is not None and waiter in self._waiters:
                    self._waiters.remove(waiter)
        return True


class LeanWebSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's default WebSocket protocol, holding less for each open connection, and
    with a way to write a text frame without a coroutine (``send_text_now``)."""

    def send_text_now(self, text: str) -> bool:
        """Write a text frame at once, as ``send`` would, when nothing could make ``send``
        wait: the handshake is done, the socket takes writes and no close was sent.
        False when the frame must go the awaited way.

        A fan-out to thousands of connections pays for each one's ``send`` coroutine,
        ASGI message and, in the gateway, the writer task woken for it: most of a
        delivery's cost. Here a frame is encoded and handed to the transport directly."""
        if (not self.writable.is_set() or not self.handshake_complete or self.close_sent
                or self.disconnected or self.initial_response is not None):
            return False
        self.conn.send_text(text.encode())
        self.transport.write(b"".join(self.conn.data_to_send()))
        return True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.queue = Inbox()  # type: ignore[assignment]
        self.writable = Gate()  # type: ignore[assignment]

    async def send(self, message: Any) -> None:
        await super().send(message)
        if message["type"] == "websocket.accept" and self.handshake_complete:
            # Only the handshake reads the request and the response: a few KiB of headers
            # a connection. The request lives on in the websockets parser's frame, so its
            # headers are emptied rather than just let go of.
            self.request.headers.clear()
            del self.request, self.response


def direct_writer(ws: WebSocket) -> Callable[[str], bool] | None:
    """The lean protocol's ``send_text_now`` behind a gateway WebSocket, when it is served
    by one (``parley serve``); None otherwise."""
    protocol = getattr(getattr(ws, "_send", None), "__self__", None)
    return protocol.send_text_now if isinstance(protocol, LeanWebSocketProtocol) else None
