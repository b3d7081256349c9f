"""One client connection: who it is, and a bounded queue of frames for it.

Fan-out never waits on a connection: ``push`` only appends. A writer task drains the
queue into the socket; it exists only while there is something to write, so an idle
connection holds no task, no queue and no event (a node holds tens of thousands of
them). A connection whose queue is full has fallen behind; it is closed with
SLOW_CONSUMER and heals by sync when it reconnects.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from starlette.websockets import WebSocket

from app.errors import CloseCode
from app.gateway.transport import direct_writer
from app.observability import metrics

logger = logging.getLogger(__name__)


# Frames are counted, and so is their size: a client that asks for large sync pages and
# never reads must not make the server hold gigabytes for it. 8 Mi characters is about
# thirty full sync pages.
MAX_QUEUED_CHARS = 8 * 1024 * 1024

# The topics of a connection that watches none; shared, since each empty set costs 216 bytes.
NO_TOPICS: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class _Close:
    code: int
    reason: str


class Connection:
    # Slots, not a __dict__: a few hundred bytes less on each of many idle connections.
    __slots__ = (
        "_clock", "_direct", "_limit", "_queue", "_queued_chars", "_writer", "app_id", "app_key",
        "busy", "closing", "device_policy", "expires_at_us", "id", "last_seen", "opened_at",
        "platform", "since_us", "topics", "user_id", "ws",
    )

    def __init__(self, ws: WebSocket, queue_limit: int, clock: Callable[[], float]) -> None:
        self.id = secrets.token_hex(8)
        self.ws = ws
        self.app_id: int | None = None
        self.app_key: str | None = None
        self.user_id: str | None = None
        self.expires_at_us = 0
        # What the client said it runs on, and when it logged in: its presence entry.
        self.platform = "other"
        # The app's device policy, when it has its own (see Tracker.arrive).
        self.device_policy: str | None = None
        self.since_us = 0
        # Presence topics this connection watches; replaced, never changed in place.
        self.topics = NO_TOPICS
        # A request is being handled: a drain waits for its reply before closing.
        self.busy = False
        self._clock = clock
        self.opened_at = clock()
        self.last_seen = self.opened_at
        self.closing = False
        self._limit = queue_limit
        self._queued_chars = 0
        # Both exist only while frames wait to go out.
        self._queue: deque[str | _Close] | None = None
        self._writer: asyncio.Task[None] | None = None
        # Writes a frame at once when the socket takes it (see transport.direct_writer).
        self._direct = direct_writer(ws)

    @property
    def logged_in(self) -> bool:
        return self.user_id is not None

    def touch(self) -> None:
        self.last_seen = self._clock()

    def push(self, text: str) -> None:
        if self.closing:
            return
        if self._writer is None and self._direct is not None:
            try:
                if self._direct(text):
                    metrics.FRAMES_OUT.inc()
                    return
            except Exception:  # the peer went away; the reader sees it and cleans up
                self.closing = True
                return
        queue = self._waiting()
        if len(queue) >= self._limit or self._queued_chars + len(text) > MAX_QUEUED_CHARS:
            logger.info("connection fell behind", extra={"conn": self.id, "app": self.app_id})
            self.abort(CloseCode.SLOW_CONSUMER, "slow_consumer")
            return
        queue.append(text)
        self._queued_chars += len(text)
        self._start_writer()

    def close(self, code: int, reason: str) -> None:
        """Close after the frames already queued have gone out."""
        if self.closing:
            return
        self.closing = True
        self._waiting().append(_Close(code, reason))
        self._start_writer()

    def abort(self, code: int, reason: str) -> None:
        """Close now, dropping what is queued: the writer may be stuck on a full socket."""
        self.closing = True
        self._queue = None
        self._queued_chars = 0
        if self._writer is not None:
            self._writer.cancel()
            self._writer = None
        asyncio.get_running_loop().create_task(self._close_socket(_Close(code, reason)))

    async def stop(self) -> None:
        self.closing = True
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await writer

    def _waiting(self) -> deque[str | _Close]:
        if self._queue is None:
            self._queue = deque()
        return self._queue

    def _start_writer(self) -> None:
        if self._writer is None:
            self._writer = asyncio.get_running_loop().create_task(self._write_loop())

    async def _write_loop(self) -> None:
        """Send what is queued, in order, then end; the next push starts another."""
        queue = self._waiting()
        try:
            while queue:
                item = queue.popleft()
                if isinstance(item, _Close):
                    await self._close_socket(item)
                    return
                self._queued_chars -= len(item)
                try:
                    await self.ws.send_text(item)
                except Exception:  # the peer went away; the reader sees it and cleans up
                    self.closing = True
                    return
                metrics.FRAMES_OUT.inc()
        finally:
            # Let go of the queue and the task, unless abort() has already.
            if self._queue is queue and not queue:
                self._queue = None
            if self._writer is asyncio.current_task():
                self._writer = None

    async def _close_socket(self, order: _Close) -> None:
        with contextlib.suppress(Exception):
            await self.ws.close(order.code, order.reason)
