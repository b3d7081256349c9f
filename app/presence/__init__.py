"""Who is online: each logged-in device of each user, on whichever node holds it.

A registry keeps one entry per device (connection) with an expiry. The node holding the
device refreshes it; a node that dies stops refreshing, and any live node's sweep drops
its entries once they expire. So a node that vanishes without a goodbye is forgotten
within ``ttl`` plus one sweep. :class:`LocalRegistry` serves one node;
:mod:`app.presence.redis` shares the entries between nodes. Both pass the contract tests
in ``tests/presence/test_registry.py``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from app.errors import ServiceUnavailable
from app.timefmt import iso_from_us


@dataclass(frozen=True, slots=True)
class Device:
    """One logged-in connection, as presence sees it."""

    connection: str
    node: str
    platform: str
    since_us: int


@dataclass(frozen=True, slots=True)
class Entry:
    """A device of a user of an app: what a node refreshes."""

    app_id: int
    user_id: str
    device: Device


class Registry(Protocol):
    async def arrive(self, entry: Entry) -> list[Device]:
        """Add the device; return the user's live devices, this one included."""

    async def depart(self, entry: Entry) -> list[Device]:
        """Remove the device; return the user's live devices left."""

    async def refresh(self, entries: Iterable[Entry]) -> None:
        """Move these devices' expiry forward (and put back any that were lost)."""

    async def sweep(self) -> list[tuple[int, str]]:
        """Drop expired devices; return the (app, user) pairs that lost one."""

    async def devices(self, app_id: int, users: Iterable[str]) -> dict[str, list[Device]]:
        """The live devices of each user asked about, by user."""

    async def close(self) -> None: ...


def user_view(user_id: str, devices: list[Device]) -> dict[str, Any]:
    """A user's presence as clients and the App Server see it."""
    return {
        "user_id_md5": user_id,
        "online": bool(devices),
        "devices": [{"platform": d.platform, "since": iso_from_us(d.since_us)}
                    for d in sorted(devices, key=lambda d: (d.since_us, d.connection))],
    }


async def snapshot(registry: Registry, app_id: int, users: Iterable[str]
                   ) -> list[dict[str, Any]]:
    """The presence of each user asked about, in the order asked."""
    try:
        found = await registry.devices(app_id, users)
    except Exception as exc:
        raise ServiceUnavailable("Presence cannot be read now; try again.",
                                 code="presence_unavailable") from exc
    return [user_view(user, devices) for user, devices in found.items()]


class LocalRegistry:
    """Presence kept in this process, for a single node."""

    def __init__(self, ttl_seconds: float, clock: Callable[[], float] = time.time) -> None:
        self._ttl = ttl_seconds
        self._clock = clock
        # (app, user) -> connection -> (device, expires at, in clock seconds)
        self._users: dict[tuple[int, str], dict[str, tuple[Device, float]]] = {}

    async def arrive(self, entry: Entry) -> list[Device]:
        self._put(entry)
        return self._live(entry.app_id, entry.user_id)

    async def depart(self, entry: Entry) -> list[Device]:
        key = (entry.app_id, entry.user_id)
        devices = self._users.get(key, {})
        devices.pop(entry.device.connection, None)
        if not devices:
            self._users.pop(key, None)
        return self._live(*key)

    async def refresh(self, entries: Iterable[Entry]) -> None:
        for entry in entries:
            self._put(entry)

    async def sweep(self) -> list[tuple[int, str]]:
        now, changed = self._clock(), []
        for key, devices in list(self._users.items()):
            expired = [c for c, (_, expires) in devices.items() if expires <= now]
            for connection in expired:
                del devices[connection]
            if expired:
                changed.append(key)
            if not devices:
                del self._users[key]
        return changed

    async def devices(self, app_id: int, users: Iterable[str]) -> dict[str, list[Device]]:
        return {user: self._live(app_id, user) for user in users}

    async def close(self) -> None:
        self._users.clear()

    def _put(self, entry: Entry) -> None:
        devices = self._users.setdefault((entry.app_id, entry.user_id), {})
        devices[entry.device.connection] = (entry.device, self._clock() + self._ttl)

    def _live(self, app_id: int, user_id: str) -> list[Device]:
        now = self._clock()
        devices = self._users.get((app_id, user_id), {})
        return [device for device, expires in devices.values() if expires > now]
