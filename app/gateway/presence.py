"""Presence on this node: files each logged-in device in the registry, tells watchers
when a user's devices change, applies the device policy, and keeps this node's entries
fresh.

Presence is best effort, like pushes: when the registry cannot be reached a login still
succeeds, this node's own devices stand in for the user's, and the next refresh puts
the entries back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable
from typing import Any

from app.broker import Broker, Delivery
from app.errors import CloseCode, ServiceUnavailable
from app.gateway.connection import Connection
from app.gateway.hub import Hub
from app.observability import metrics
from app.presence import Device, Entry, Registry, snapshot, user_view

logger = logging.getLogger(__name__)


def topic(user_id: str) -> str:
    """The topic a user's presence changes are published on."""
    return f"presence:{user_id}"


class Tracker:
    def __init__(self, hub: Hub, broker: Broker, registry: Registry, node_id: str,
                 ttl_seconds: float, one_per_platform: bool) -> None:
        self.hub = hub
        self.broker = broker
        self.registry = registry
        self.node_id = node_id
        self.one_per_platform = one_per_platform
        # Refresh three times a TTL, so one late or failed refresh does not drop anyone.
        self._tick = ttl_seconds / 3
        self._task: asyncio.Task[None] | None = None

    def _entry(self, conn: Connection) -> Entry:
        assert conn.app_id is not None and conn.user_id is not None
        return Entry(conn.app_id, conn.user_id,
                     Device(conn.id, self.node_id, conn.platform, conn.since_us))

    async def arrive(self, conn: Connection) -> None:
        """A connection logged in: file it, replace older ones if the policy says so."""
        entry = self._entry(conn)
        try:
            devices = await self.registry.arrive(entry)
        except Exception:
            self._failed("arrive")
            devices = [self._entry(c).device for c in self.hub.devices(entry.app_id,
                                                                        entry.user_id)]
        one_per_platform = (conn.device_policy == "one_per_platform"
                            if conn.device_policy else self.one_per_platform)
        if one_per_platform:
            devices = await self._replace_older(entry, devices)
        await self._announce(entry.app_id, entry.user_id, devices)

    async def depart(self, conn: Connection) -> None:
        """A logged-in connection ended."""
        entry = self._entry(conn)
        try:
            devices = await self.registry.depart(entry)
        except Exception:
            self._failed("depart")
            return
        await self._announce(entry.app_id, entry.user_id, devices)

    async def snapshot(self, app_id: int, users: Iterable[str]) -> list[dict[str, Any]]:
        try:
            return await snapshot(self.registry, app_id, users)
        except ServiceUnavailable:
            self._failed("read")
            raise

    async def _replace_older(self, entry: Entry, devices: list[Device]) -> list[Device]:
        """Close the user's other connections on this platform, on every node."""
        mine = entry.device
        older = [d for d in devices
                 if d.platform == mine.platform and d.connection != mine.connection]
        if not older:
            return devices
        await self.broker.publish(Delivery(
            entry.app_id,
            (entry.user_id,),
            {"type": "error", "code": "replaced",
             "message": "The user logged in on another device of this platform."},
            close_code=CloseCode.REPLACED,
            close_reason="replaced",
            connections=tuple(d.connection for d in older),
        ))
        return [d for d in devices if d not in older]

    async def _announce(self, app_id: int, user_id: str, devices: list[Device]) -> None:
        metrics.PRESENCE_EVENTS.inc()
        frame = {"type": "presence", **user_view(user_id, devices)}
        await self.broker.publish(Delivery(app_id, (), frame, topic=topic(user_id)))

    def _failed(self, op: str) -> None:
        metrics.BROKER_ERRORS.labels(f"presence_{op}").inc()
        logger.warning("presence %s failed", op, extra={"node": self.node_id}, exc_info=True)

    # --- upkeep ----------------------------------------------------------------------

    def start(self) -> None:
        self._task = asyncio.create_task(self._upkeep_forever(), name="presence-upkeep")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _upkeep_forever(self) -> None:
        while True:
            await asyncio.sleep(self._tick)
            await self.upkeep()

    async def upkeep(self) -> None:
        """Refresh this node's devices, then forget other nodes' expired ones."""
        try:
            await self.registry.refresh([self._entry(c) for c in self.hub.logged_in()])
            changed = await self.registry.sweep()
            found = {}
            for app_id, user_id in changed:
                found[(app_id, user_id)] = (await self.registry.devices(app_id, [user_id]))[user_id]
        except Exception:
            self._failed("upkeep")
            return
        for (app_id, user_id), devices in found.items():
            await self._announce(app_id, user_id, devices)
