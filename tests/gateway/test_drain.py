"""The hub's node-level duties on fake sockets: draining, resync hints, topics and
deliveries narrowed to some connections. Nothing here waits for a timeout to pass."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from app.broker import Delivery
from app.gateway.connection import Connection
from tests.gateway.test_hub import APP, FakeSocket, Harness


@pytest.fixture
async def harness() -> AsyncIterator[Harness]:
    h = Harness()
    yield h
    await h.aclose()


async def _remove_when_closed(harness: Harness, conn: Connection, ws: FakeSocket) -> None:
    """What the endpoint does when a socket ends: take the connection off the hub."""
    await ws.until_closed()
    harness.hub.remove(conn)


async def test_drain_sends_queued_frames_then_server_draining_and_closes_4010(
    harness: Harness,
) -> None:
    """Each connection gets what was queued for it, then server_draining, then 4010; the
    drain ends as soon as the hub is empty."""
    conn, ws = harness.log_in("alice")
    pending, pending_ws = harness.open()
    conn.push('{"type":"message","n":1}')
    removers = [asyncio.create_task(_remove_when_closed(harness, c, w))
                for c, w in ((conn, ws), (pending, pending_ws))]

    left = await harness.hub.drain(1.0)
    await asyncio.gather(*removers)

    assert left == 0
    assert [f.get("code", f["type"]) for f in ws.frames] == ["message", "server_draining"]
    assert (ws.close_code, ws.close_reason) == (4010, "server_draining")
    assert pending_ws.close_code == 4010


async def test_drain_waits_for_the_reply_to_a_request_in_hand(harness: Harness) -> None:
    """A connection handling a request is closed only after its reply is queued."""
    conn, ws = harness.log_in("alice")
    conn.busy = True
    remover = asyncio.create_task(_remove_when_closed(harness, conn, ws))
    draining = asyncio.create_task(harness.hub.drain(1.0))
    await asyncio.sleep(0.1)  # two drain passes go by while the request runs
    assert ws.close_code is None

    conn.push('{"type":"send_ok","id":7}')
    conn.busy = False
    await asyncio.gather(draining, remover)

    assert [f["type"] for f in ws.frames] == ["send_ok", "error"]
    assert ws.close_code == 4010


async def test_drain_gives_up_at_its_deadline_and_says_how_many_were_left(
    harness: Harness,
) -> None:
    """A connection that never finishes its request is left for shut-down to close."""
    conn, _ = harness.log_in("alice")
    conn.busy = True

    assert await harness.hub.drain(0.1) == 1


async def test_resync_goes_to_logged_in_connections_only(harness: Harness) -> None:
    """resync asks every logged-in client to sync; a connection not logged in gets nothing."""
    alice, alice_ws = harness.log_in("alice")
    pending, pending_ws = harness.open()

    harness.hub.resync()
    await harness.drain((alice, alice_ws), (pending, pending_ws))

    assert alice_ws.frames == [{"type": "resync"}]
    assert pending_ws.frames == []


async def test_a_topic_delivery_reaches_its_watchers_in_that_app_until_they_unwatch(
    harness: Harness,
) -> None:
    """Deliveries on a topic go to the connections watching it in that app only."""
    watcher, watcher_ws = harness.log_in("alice")
    other_app, other_ws = harness.log_in("alice", app_id=APP + 1)
    idle, idle_ws = harness.log_in("bob")
    harness.hub.watch(watcher, ["presence:carol"])
    harness.hub.watch(other_app, ["presence:carol"])

    harness.hub.deliver(Delivery(APP, (), {"type": "presence", "n": 1}, topic="presence:carol"))
    harness.hub.unwatch(watcher, ["presence:carol"])
    harness.hub.deliver(Delivery(APP, (), {"type": "presence", "n": 2}, topic="presence:carol"))
    await harness.drain((watcher, watcher_ws), (other_app, other_ws), (idle, idle_ws))

    assert watcher_ws.frames == [{"type": "presence", "n": 1}]
    assert other_ws.frames == [] and idle_ws.frames == []
    assert watcher.topics == set()


async def test_a_delivery_narrowed_to_connections_reaches_only_those(harness: Harness) -> None:
    """`connections` picks some devices of the users named; the others hear nothing."""
    old, old_ws = harness.log_in("alice")
    new, new_ws = harness.log_in("alice")

    harness.hub.deliver(Delivery(APP, ("alice",), {"type": "error", "code": "replaced"},
                                 close_code=4011, close_reason="replaced",
                                 connections=(old.id,)))
    assert await old_ws.until_closed() == 4011
    await harness.drain((new, new_ws))

    assert [f["code"] for f in old_ws.frames] == ["replaced"]
    assert new_ws.frames == []
