"""The connections this node holds, by app and user, and what happens to them over time.

The hub is the broker's subscriber on this node: a delivery is encoded once and pushed
to each matching connection, by user or by the topic they watch. Its reaper closes
connections that went quiet, never logged in, or whose session ran out. On SIGTERM it
drains: each connection is told to reconnect elsewhere once its request in hand is done.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from starlette.websockets import WebSocket

from app.broker import Delivery
from app.config import Settings
from app.errors import CloseCode
from app.gateway.codec import JsonCodec
from app.gateway.connection import NO_TOPICS, Connection
from app.observability import metrics
from app.storage.db import now_us

if TYPE_CHECKING:
    from app.gateway.presence import Tracker

logger = logging.getLogger(__name__)

# What a draining node tells each client before closing: go to another node.
DRAIN = (CloseCode.DRAINING, "server_draining",
         "This server is stopping; reconnect, and sync, to reach another one.")
# How often a drain looks again for connections whose request has finished.
DRAIN_POLL_SECONDS = 0.05


class Hub:
    def __init__(
        self,
        settings: Settings,
        monotonic: Callable[[], float] = time.monotonic,
        wall_us: Callable[[], int] = now_us,
    ) -> None:
        self.settings = settings
        self._monotonic = monotonic
        self._wall_us = wall_us
        self._connections: dict[str, Connection] = {}
        self._by_user: dict[tuple[int, str], dict[str, Connection]] = {}
        self._watchers: dict[tuple[int, str], dict[str, Connection]] = {}
        self._reaper: asyncio.Task[None] | None = None
        self.presence: Tracker | None = None

    def __len__(self) -> int:
        return len(self._connections)

    def open(self, ws: WebSocket) -> Connection:
        conn = Connection(ws, self.settings.outbound_queue_frames, self._monotonic)
        self._connections[conn.id] = conn
        metrics.CONNECTIONS.inc()
        return conn

    def bind(self, conn: Connection) -> None:
        """File a connection under its user once it has logged in."""
        assert conn.app_id is not None and conn.user_id is not None
        conn.since_us = self._wall_us()
        self._by_user.setdefault((conn.app_id, conn.user_id), {})[conn.id] = conn

    def remove(self, conn: Connection) -> None:
        if self._connections.pop(conn.id, None) is not None:
            metrics.CONNECTIONS.dec()
        self.unwatch(conn, list(conn.topics))
        if conn.app_id is None or conn.user_id is None:
            return
        key = (conn.app_id, conn.user_id)
        devices = self._by_user.get(key)
        if devices is not None:
            devices.pop(conn.id, None)
            if not devices:
                del self._by_user[key]

    def devices(self, app_id: int, user_id: str) -> list[Connection]:
        return list(self._by_user.get((app_id, user_id), {}).values())

    def logged_in(self) -> list[Connection]:
        return [c for c in self._connections.values() if c.logged_in]

    def watch(self, conn: Connection, topics: list[str]) -> None:
        assert conn.app_id is not None
        for topic in topics:
            self._watchers.setdefault((conn.app_id, topic), {})[conn.id] = conn
        conn.topics = conn.topics.union(topics)

    def unwatch(self, conn: Connection, topics: list[str]) -> None:
        conn.topics = conn.topics.difference(topics) or NO_TOPICS
        for topic in topics:
            key = (conn.app_id or 0, topic)
            watchers = self._watchers.get(key)
            if watchers is not None:
                watchers.pop(conn.id, None)
                if not watchers:
                    del self._watchers[key]

    def deliver(self, delivery: Delivery) -> None:
        text = JsonCodec.encode(delivery.frame)
        pushed = 0
        for conn in self._targets(delivery):
            conn.push(text)
            pushed += 1
            if delivery.close_code is not None:
                conn.close(delivery.close_code, delivery.close_reason)
        metrics.observe_delivery(delivery.frame, pushed)

    def _targets(self, delivery: Delivery) -> Iterator[Connection]:
        if delivery.topic is not None:
            yield from list(self._watchers.get((delivery.app_id, delivery.topic), {}).values())
            return
        for user in delivery.user_ids:
            for conn in list(self._by_user.get((delivery.app_id, user), {}).values()):
                if conn.id == delivery.exclude_connection:
                    continue
                if delivery.connections and conn.id not in delivery.connections:
                    continue
                yield conn

    def resync(self) -> None:
        """Pushes may have been lost between nodes: ask every client here to sync."""
        text = JsonCodec.encode({"type": "resync"})
        for conn in self.logged_in():
            conn.push(text)

    def reap(self) -> int:
        """Close idle, never-logged-in and expired connections; return how many."""
        now, wall = self._monotonic(), self._wall_us()
        closed = 0
        for conn in list(self._connections.values()):
            order = self._overdue(conn, now, wall)
            if order is not None and not conn.closing:
                self._close_with(conn, order)
                closed += 1
        return closed

    @staticmethod
    def _close_with(conn: Connection, order: tuple[CloseCode, str, str]) -> None:
        code, reason, message = order
        conn.push(JsonCodec.encode({"type": "error", "code": reason, "message": message}))
        conn.close(code, reason)

    def _overdue(
        self, conn: Connection, now: float, wall: int
    ) -> tuple[CloseCode, str, str] | None:
        s = self.settings
        if not conn.logged_in and now - conn.opened_at > s.login_timeout_seconds:
            return CloseCode.LOGIN_REQUIRED, "login_timeout", "No login frame arrived in time."
        if now - conn.last_seen > s.heartbeat_timeout_seconds:
            return CloseCode.HEARTBEAT_TIMEOUT, "heartbeat_timeout", "Nothing heard in time."
        if conn.logged_in and wall >= conn.expires_at_us:
            return CloseCode.TOKEN_EXPIRED, "token_expired", "The session was not refreshed."
        return None

    def start(self) -> None:
        self._reaper = asyncio.create_task(self._reap_forever(), name="hub-reaper")

    async def _reap_forever(self) -> None:
        while True:
            await asyncio.sleep(self.settings.reaper_tick_seconds)
            try:
                self.reap()
            except Exception:
                logger.exception("reaper pass failed")

    async def drain(self, seconds: float) -> int:
        """Send every client elsewhere, each once its request in hand has its reply; wait
        up to ``seconds`` for them to go. Return how many connections were left."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while self._connections and loop.time() < deadline:
            for conn in list(self._connections.values()):
                if not conn.closing and not conn.busy:
                    self._close_with(conn, DRAIN)
            await asyncio.sleep(DRAIN_POLL_SECONDS)
        return len(self._connections)

    async def stop(self) -> None:
        if self._reaper is not None:
            self._reaper.cancel()
        for conn in list(self._connections.values()):
            conn.close(CloseCode.GOING_AWAY, "server_shutdown")
        await asyncio.sleep(0)
