"""The connections this node holds, by app and user, and what happens to them over time.

The hub is the broker's subscriber on this node: a delivery is encoded once and pushed
to each matching connection. Its reaper closes connections that went quiet, never
logged in, or whose session ran out.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from starlette.websockets import WebSocket

from app.broker import Delivery
from app.config import Settings
from app.errors import CloseCode
from app.gateway.codec import JsonCodec
from app.gateway.connection import Connection
from app.storage.db import now_us

logger = logging.getLogger(__name__)


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
        self._reaper: asyncio.Task[None] | None = None

    def __len__(self) -> int:
        return len(self._connections)

    def open(self, ws: WebSocket) -> Connection:
        conn = Connection(ws, self.settings.outbound_queue_frames, self._monotonic)
        self._connections[conn.id] = conn
        return conn

    def bind(self, conn: Connection) -> None:
        """File a connection under its user once it has logged in."""
        assert conn.app_id is not None and conn.user_id is not None
        self._by_user.setdefault((conn.app_id, conn.user_id), {})[conn.id] = conn

    def remove(self, conn: Connection) -> None:
        self._connections.pop(conn.id, None)
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

    def deliver(self, delivery: Delivery) -> None:
        text = JsonCodec.encode(delivery.frame)
        for user in delivery.user_ids:
            for conn in list(self._by_user.get((delivery.app_id, user), {}).values()):
                if conn.id == delivery.exclude_connection:
                    continue
                conn.push(text)
                if delivery.close_code is not None:
                    conn.close(delivery.close_code, delivery.close_reason)

    def reap(self) -> int:
        """Close idle, never-logged-in and expired connections; return how many."""
        now, wall = self._monotonic(), self._wall_us()
        closed = 0
        for conn in list(self._connections.values()):
            order = self._overdue(conn, now, wall)
            if order is not None and not conn.closing:
                code, reason, message = order
                conn.push(JsonCodec.encode({"type": "error", "code": reason, "message": message}))
                conn.close(code, reason)
                closed += 1
        return closed

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

    async def stop(self) -> None:
        if self._reaper is not None:
            self._reaper.cancel()
        for conn in list(self._connections.values()):
            conn.close(CloseCode.GOING_AWAY, "server_shutdown")
        await asyncio.sleep(0)
