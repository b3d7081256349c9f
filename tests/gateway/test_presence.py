"""The presence tracker on one node, with fake sockets, the in-process broker and
registry, and a clock moved by hand: announcements, the device policy, expiry of another
node's devices, and a registry that fails."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from typing import Any

import pytest

from app.broker import InProcessBroker
from app.gateway.connection import Connection
from app.gateway.presence import Tracker, topic
from app.presence import Device, Entry, LocalRegistry
from tests.gateway.test_hub import APP, FakeSocket, Harness

TTL = 30.0


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


class Setup:
    def __init__(self, one_per_platform: bool, registry: Any = None) -> None:
        self.harness = Harness()
        self.clock = Clock()
        self.registry = registry or LocalRegistry(TTL, self.clock)
        self.broker = InProcessBroker()
        self.tracker = Tracker(self.harness.hub, self.broker, self.registry, "node-1", TTL,
                               one_per_platform)

    async def start(self) -> None:
        await self.broker.start(self.harness.hub.deliver)

    async def log_in(self, user: str, platform: str = "ios") -> tuple[Connection, FakeSocket]:
        conn, ws = self.harness.log_in(user)
        conn.platform = platform
        await self.tracker.arrive(conn)
        return conn, ws

    def watch(self, user: str) -> tuple[Connection, FakeSocket]:
        conn, ws = self.harness.log_in("watcher")
        self.harness.hub.watch(conn, [topic(user)])
        return conn, ws


@pytest.fixture
async def multi() -> AsyncIterator[Setup]:
    setup = Setup(one_per_platform=False)
    await setup.start()
    yield setup
    await setup.harness.aclose()


@pytest.fixture
async def single() -> AsyncIterator[Setup]:
    setup = Setup(one_per_platform=True)
    await setup.start()
    yield setup
    await setup.harness.aclose()


def _presence(ws: FakeSocket) -> list[tuple[bool, list[str]]]:
    """(online, platforms) of each presence push; the fake clock gives every device one
    login time, so platforms are compared sorted."""
    return [(f["online"], sorted(d["platform"] for d in f["devices"]))
            for f in ws.frames if f["type"] == "presence"]


async def test_logins_and_logouts_are_announced_to_watchers(multi: Setup) -> None:
    """Each device that logs in or out sends watchers the user's devices as they now are."""
    watcher = multi.watch("bob")
    phone = await multi.log_in("bob", "ios")
    await multi.log_in("bob", "web")

    await multi.tracker.depart(phone[0])
    await multi.harness.drain(watcher)

    assert _presence(watcher[1]) == [(True, ["ios"]), (True, ["ios", "web"]), (True, ["web"])]


async def test_without_the_policy_two_devices_on_one_platform_both_stay(multi: Setup) -> None:
    """Under `multi`, a second iOS login closes nothing."""
    first = await multi.log_in("alice", "ios")
    second = await multi.log_in("alice", "ios")
    await multi.harness.drain(first, second)

    assert first[1].close_code == second[1].close_code == 1000  # closed by the test only


async def test_the_policy_replaces_the_older_device_of_the_same_platform(single: Setup) -> None:
    """Under one_per_platform the older iOS connection gets `replaced` and 4011; the web one
    stays, and watchers see the replaced device gone."""
    watcher = single.watch("alice")
    old_phone = await single.log_in("alice", "ios")
    web = await single.log_in("alice", "web")
    new_phone = await single.log_in("alice", "ios")

    assert await old_phone[1].until_closed() == 4011
    await single.harness.drain(web, new_phone, watcher)

    assert [f["code"] for f in old_phone[1].frames if f["type"] == "error"] == ["replaced"]
    assert web[1].close_code == new_phone[1].close_code == 1000
    assert _presence(watcher[1])[-1] == (True, ["ios", "web"])


async def test_upkeep_forgets_a_dead_nodes_device_and_announces_it(single: Setup) -> None:
    """A device filed by another node that stops refreshing is dropped by this node's
    upkeep once it expires, and its watchers hear the user go offline."""
    watcher = single.watch("carol")
    ghost = Entry(APP, "carol", Device("c-9", "dead-node", "android", 1))
    await single.registry.arrive(ghost)

    single.clock.now += TTL + 1
    await single.tracker.upkeep()
    await single.harness.drain(watcher)

    assert _presence(watcher[1]) == [(False, [])]


class BrokenRegistry(LocalRegistry):
    """A registry whose store cannot be reached."""

    async def arrive(self, entry: Entry) -> list[Device]:
        raise ConnectionError("store away")

    async def devices(self, app_id: int, users: Iterable[str]) -> dict[str, list[Device]]:
        raise ConnectionError("store away")


async def test_a_login_succeeds_when_the_registry_fails_and_the_policy_holds_locally() -> None:
    """With the registry away, arrive raises nothing and this node's own older device on
    the platform is still replaced; a snapshot reports presence_unavailable."""
    setup = Setup(one_per_platform=True, registry=BrokenRegistry(TTL))
    await setup.start()
    try:
        old = await setup.log_in("alice", "ios")
        new = await setup.log_in("alice", "ios")

        assert await old[1].until_closed() == 4011
        with pytest.raises(Exception, match="Presence cannot be read"):
            await setup.tracker.snapshot(APP, ["alice"])
        await setup.harness.drain(new)
        assert new[1].close_code == 1000
    finally:
        await setup.harness.aclose()
