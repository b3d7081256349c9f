"""One client connection: who it is, and a bounded queue of frames for it.

Fan-out never waits on a connection: ``push`` only appends. A writer task drains the
queue into the socket. A connection whose queue is full has fallen behind; it is
closed with SLOW_CONSUMER and heals by sync when it reconnects.
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
from app.observability import metrics

logger = logging.getLogger(__name__)


# Frames are counted, and so is their size: a client that asks for large sync pages and
# never reads must not make the server hold gigabytes for it. 8 Mi characters is about
# thirty full sync pages.
MAX_QUEUED_CHARS = 8 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class _Close:
    code: int
    reason: str


class Connection:
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
        # Presence topics this connection watches.
        self.topics: set[str] = set()
        # A request is being handled: a drain waits for its reply before closing.
        self.busy = False
        self._clock = clock
        self.opened_at = clock()
        self.last_seen = self.opened_at
        self.closing = False
        self._queue: deque[str | _Close] = deque()
        self._limit = queue_limit
        self._queued_chars = 0
        self._wakeup = asyncio.Event()
        self._writer: asyncio.Task[None] | None = None

    @property
    def logged_in(self) -> bool:
        return self.user_id is not None

    def start(self) -> None:
        self._writer = asyncio.create_task(self._write_loop(), name=f"writer-{self.id}")

    def touch(self) -> None:
        self.last_seen = self._clock()

    def push(self, text: str) -> None:
        if self.closing:
            return
        if (len(self._queue) >= self._limit
                or self._queued_chars + len(text) > MAX_QUEUED_CHARS):
            logger.info("connection fell behind", extra={"conn": self.id, "app": self.app_id})
            self.abort(CloseCode.SLOW_CONSUMER, "slow_consumer")
            return
        self._queue.append(text)
        self._queued_chars += len(text)
        self._wakeup.set()

    def close(self, code: int, reason: str) -> None:
        """Close after the frames already queued have gone out."""
        if self.closing:
            return
        self.closing = True
        self._queue.append(_Close(code, reason))
        self._wakeup.set()

    def abort(self, code: int, reason: str) -> None:
        """Close now, dropping what is queued: the writer may be stuck on a full socket."""
        self.closing = True
        self._queue.clear()
        if self._writer is not None:
            self._writer.cancel()
        asyncio.get_running_loop().create_task(self._close_socket(_Close(code, reason)))

    async def stop(self) -> None:
        self.closing = True
        if self._writer is not None:
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._writer

    async def _write_loop(self) -> None:
        while True:
            if not self._queue:
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            item = self._queue.popleft()
            if isinstance(item, str):
                self._queued_chars -= len(item)
            if isinstance(item, _Close):
                await self._close_socket(item)
                return
            try:
                await self.ws.send_text(item)
            except Exception:  # the peer went away; the reader sees it and cleans up
                return
            metrics.FRAMES_OUT.inc()

    async def _close_socket(self, order: _Close) -> None:
        with contextlib.suppress(Exception):
            await self.ws.close(order.code, order.reason)
