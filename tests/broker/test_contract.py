"""The broker contract, run against the in-process broker and the Redis one alike, then
what only a broker between nodes must do: reach the other nodes, survive Redis going
away, and say so when pushes may have been lost.

Redis tests use the shared Redis with a key prefix of their own, or a private
redis-server when they stop it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import orjson
import pytest
from redis.asyncio import Redis

from app.broker import Broker, Delivery, InProcessBroker
from app.broker import redis as redis_broker
from app.broker.redis import RedisBroker
from app.errors import CloseCode
from app.node import connect_redis
from tests.cluster import REDIS_URL, PrivateRedis, unique_prefix
from tests.support import free_port

# A delivery that uses every field, so a lossy encoding shows.
FULL = Delivery(
    app_id=7,
    user_ids=("6384e2b2184bcbf58eccf10ca7a6563c", "9f9d51bc70ef21ca5c14f307980a29d8"),
    frame={"type": "error", "code": "replaced", "message": "x", "data": {"n": [1, None]}},
    exclude_connection="c1",
    close_code=CloseCode.REPLACED,
    close_reason="replaced",
    connections=("c2", "c3"),
    topic="presence:6384e2b2184bcbf58eccf10ca7a6563c",
)


class Inbox:
    """A subscriber that keeps what it is handed."""

    def __init__(self) -> None:
        self.got: list[Delivery] = []
        self._arrived = asyncio.Event()

    def __call__(self, delivery: Delivery) -> None:
        self.got.append(delivery)
        self._arrived.set()

    async def wait(self, count: int, seconds: float = 3.0) -> list[Delivery]:
        """What has arrived once there are count deliveries, or when the time is up."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                while len(self.got) < count:
                    self._arrived.clear()
                    await self._arrived.wait()
        return self.got


Nodes = Callable[[int], Awaitable[list[tuple[Broker, Inbox]]]]


@pytest.fixture(params=["in-process", "redis"])
async def nodes(request: pytest.FixtureRequest) -> AsyncIterator[Nodes]:
    """Start n brokers that share one bus (the in-process broker is a bus of one)."""
    prefix, started, clients = unique_prefix(), [], []

    async def make(count: int) -> list[tuple[Broker, Inbox]]:
        if request.param == "in-process" and count > 1:
            pytest.skip("the in-process broker serves a single node")
        for _ in range(count):
            inbox = Inbox()
            broker: Broker
            if request.param == "redis":
                clients.append(connect_redis(REDIS_URL))
                broker = RedisBroker(clients[-1], prefix)
            else:
                broker = InProcessBroker()
            await broker.start(inbox)
            started.append((broker, inbox))
        return started[-count:]

    yield make
    for broker, _ in started:
        await broker.close()
    for client in clients:
        await client.aclose()


# --- the contract: both brokers -----------------------------------------------------------


async def test_a_delivery_reaches_its_own_nodes_subscriber_once_and_whole(nodes: Nodes) -> None:
    """A published delivery is handed to this node's subscriber exactly once, every field kept."""
    ((broker, inbox),) = await nodes(1)

    await broker.publish(FULL)
    await asyncio.sleep(0.1)  # room for an echo that must not come

    assert inbox.got == [FULL]


async def test_deliveries_from_one_publisher_keep_their_order(nodes: Nodes) -> None:
    """Deliveries published one after another arrive in that order."""
    ((broker, inbox),) = await nodes(1)

    for n in range(50):
        await broker.publish(Delivery(1, ("u",), {"type": "message", "n": n}))

    assert [d.frame["n"] for d in await inbox.wait(50)] == list(range(50))


async def test_publish_after_close_does_nothing_and_raises_nothing(nodes: Nodes) -> None:
    """Once closed, a broker takes deliveries without error and hands them to nobody."""
    ((broker, inbox),) = await nodes(1)
    await broker.close()

    await broker.publish(FULL)

    assert inbox.got == []


async def test_ping_answers_while_the_broker_works(nodes: Nodes) -> None:
    """ping returns when deliveries can flow (readiness depends on it)."""
    ((broker, _),) = await nodes(1)

    await broker.ping()


# --- between nodes: the Redis broker -------------------------------------------------------


async def test_a_delivery_reaches_every_other_node_exactly_once(nodes: Nodes) -> None:
    """Three nodes: each delivery one publishes reaches all three subscribers once."""
    trio = await nodes(3)

    await trio[0][0].publish(FULL)
    await trio[2][0].publish(Delivery(1, ("u",), {"type": "read", "seq": 2}))

    for _, inbox in trio:
        got = await inbox.wait(2)
        await asyncio.sleep(0.05)
        assert sorted(d.frame["type"] for d in got) == ["error", "read"]
        assert FULL in got


async def test_stored_content_crosses_nodes_as_the_same_json(nodes: Nodes) -> None:
    """Message content kept as an orjson.Fragment arrives on another node as equal JSON."""
    (other, _), (_, inbox) = await nodes(2)
    content = '{"type":"text","text":"h\\u00e9llo"}'
    frame: dict[str, Any] = {"type": "message", "message": {"content": orjson.Fragment(content)}}

    await other.publish(Delivery(1, ("u",), frame))
    first = (await inbox.wait(1))[0]

    assert first.frame["message"]["content"] == orjson.loads(content)


async def test_unreachable_redis_never_fails_a_publish_and_local_delivery_goes_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With nothing listening at the Redis address, publish returns, this node still hears
    its own deliveries, and ping raises."""
    monkeypatch.setattr(redis_broker, "SUBSCRIBE_WAIT_SECONDS", 0.1)
    client = connect_redis(f"redis://127.0.0.1:{free_port()}/0")
    inbox, broker = Inbox(), RedisBroker(client, unique_prefix())
    await broker.start(inbox)
    try:
        await broker.publish(FULL)
        assert inbox.got == [FULL]
        with pytest.raises(Exception):  # noqa: B017 - any Redis or socket error will do
            await broker.ping()
    finally:
        await broker.close()
        await client.aclose()


async def test_nodes_reconnect_after_a_redis_restart_and_ask_clients_to_resync() -> None:
    """Redis killed and started again: both nodes resubscribe by themselves, report the gap
    (so their clients sync), and deliveries cross again."""
    server, prefix = PrivateRedis(), unique_prefix()
    server.start()
    gaps: list[str] = []
    both_gapped = asyncio.Event()

    def gap(name: str) -> None:
        gaps.append(name)
        if set(gaps) == {"a", "b"}:
            both_gapped.set()
    pair: list[tuple[RedisBroker, Inbox, Redis]] = []
    try:
        for name in ("a", "b"):
            client, inbox = connect_redis(server.url), Inbox()
            broker = RedisBroker(client, prefix, on_gap=lambda name=name: gap(name))
            await broker.start(inbox)
            pair.append((broker, inbox, client))
        (a, a_inbox, _), (b, b_inbox, _) = pair

        server.stop()
        await a.publish(Delivery(1, ("u",), {"type": "read", "seq": 1}))  # lost to b
        server.start()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(both_gapped.wait(), 10)
        await b.publish(Delivery(1, ("u",), {"type": "read", "seq": 2}))

        assert set(gaps) == {"a", "b"}
        assert [d.frame["seq"] for d in await a_inbox.wait(2)] == [1, 2]
        assert 2 in [d.frame["seq"] for d in await b_inbox.wait(1)]
    finally:
        for broker, _, client in pair:
            await broker.close()
            await client.aclose()
        server.stop()
