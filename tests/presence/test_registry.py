"""The presence registry contract, run against the in-process registry and the Redis one.

The clock is a fake moved by hand, so expiry is tested without waiting for it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest

from app.node import connect_redis
from app.presence import Device, Entry, LocalRegistry, Registry, snapshot
from app.presence.redis import RedisRegistry
from tests.cluster import REDIS_URL, unique_prefix

TTL = 30.0
APP = 3
ALICE = "6384e2b2184bcbf58eccf10ca7a6563c"
BOB = "9f9d51bc70ef21ca5c14f307980a29d8"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def entry(user: str, connection: str, node: str = "n1", platform: str = "ios") -> Entry:
    return Entry(APP, user, Device(connection, node, platform, 1_700_000_000_000_000))


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(params=["local", "redis"])
async def registries(request: pytest.FixtureRequest, clock: FakeClock
                     ) -> AsyncIterator[Callable[[], Registry]]:
    """Make registries that share one store (one, for the local kind), on the fake clock."""
    prefix, made, clients = unique_prefix(), [], []

    def make() -> Registry:
        registry: Registry
        if request.param == "redis":
            clients.append(connect_redis(REDIS_URL))
            registry = RedisRegistry(clients[-1], prefix, TTL, clock)
        else:
            if made:
                return made[0]
            registry = LocalRegistry(TTL, clock)
        made.append(registry)
        return registry

    yield make
    for registry in made:
        await registry.close()
    for client in clients:
        await client.aclose()


def _connections(devices: list[Device]) -> list[str]:
    return sorted(d.connection for d in devices)


async def test_arrive_returns_every_live_device_of_the_user(
    registries: Callable[[], Registry],
) -> None:
    """Each arrival answers with the user's devices so far, its own included."""
    registry = registries()

    first = await registry.arrive(entry(ALICE, "c1"))
    second = await registry.arrive(entry(ALICE, "c2", node="n2", platform="web"))
    await registry.arrive(entry(BOB, "c3"))

    assert _connections(first) == ["c1"]
    assert _connections(second) == ["c1", "c2"]
    assert {d.platform for d in second} == {"ios", "web"}
    assert next(d for d in second if d.connection == "c2").node == "n2"


async def test_depart_removes_the_device_and_returns_the_rest(
    registries: Callable[[], Registry],
) -> None:
    """A departure leaves the user's other devices; the last one leaves none."""
    registry = registries()
    await registry.arrive(entry(ALICE, "c1"))
    await registry.arrive(entry(ALICE, "c2"))

    left = await registry.depart(entry(ALICE, "c1"))
    none = await registry.depart(entry(ALICE, "c2"))

    assert _connections(left) == ["c2"]
    assert none == []
    assert (await registry.devices(APP, [ALICE]))[ALICE] == []


async def test_devices_not_refreshed_expire_and_sweep_reports_their_users(
    registries: Callable[[], Registry], clock: FakeClock
) -> None:
    """Past the TTL without a refresh a device is gone; a refreshed one stays."""
    registry = registries()
    await registry.arrive(entry(ALICE, "dies"))
    await registry.arrive(entry(BOB, "lives"))

    clock.now += TTL * 0.6
    await registry.refresh([entry(BOB, "lives")])
    clock.now += TTL * 0.6
    changed = await registry.sweep()

    assert changed == [(APP, ALICE)]
    found = await registry.devices(APP, [ALICE, BOB])
    assert found[ALICE] == [] and _connections(found[BOB]) == ["lives"]
    assert await registry.sweep() == []


async def test_refresh_puts_back_a_device_the_store_lost(
    registries: Callable[[], Registry], clock: FakeClock
) -> None:
    """A refresh of a device that is no longer filed (Redis restarted) files it again."""
    registry = registries()

    await registry.refresh([entry(ALICE, "c1")])

    assert _connections((await registry.devices(APP, [ALICE]))[ALICE]) == ["c1"]


async def test_a_second_node_sees_the_first_nodes_devices_and_sweeps_them(
    registries: Callable[[], Registry], clock: FakeClock
) -> None:
    """Nodes sharing a store see each other's devices, and any node forgets a dead one's."""
    first, second = registries(), registries()
    await first.arrive(entry(ALICE, "c1", node="n1"))

    seen = await second.arrive(entry(ALICE, "c2", node="n2"))
    clock.now += TTL + 1
    await second.refresh([entry(ALICE, "c2", node="n2")])

    assert _connections(seen) == ["c1", "c2"]
    assert await second.sweep() == [(APP, ALICE)]
    assert _connections((await first.devices(APP, [ALICE]))[ALICE]) == ["c2"]


async def test_snapshot_shows_online_users_with_platforms_in_the_order_asked(
    registries: Callable[[], Registry],
) -> None:
    """snapshot answers per user asked: online, and each device's platform and login time."""
    registry = registries()
    await registry.arrive(entry(BOB, "c1", platform="android"))

    views = await snapshot(registry, APP, [BOB, ALICE])

    assert views == [
        {"user_id_md5": BOB, "online": True,
         "devices": [{"platform": "android", "since": "2023-11-14T22:13:20Z"}]},
        {"user_id_md5": ALICE, "online": False, "devices": []},
    ]
