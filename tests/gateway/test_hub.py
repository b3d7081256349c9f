"""The hub on its own: a fake clock moved by hand, fake sockets that record what they get.

Nothing here sleeps. A test waits only for a connection's writer task to hand its
queued frames to the fake socket, which takes a few turns of the event loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import orjson
import pytest

from app.broker import Delivery
from app.config import Settings
from app.gateway.connection import Connection
from app.gateway.hub import Hub

APP = 1
LOGIN_TIMEOUT = 10.0
HEARTBEAT_TIMEOUT = 75.0
QUEUE_LIMIT = 8
HOUR_US = 3600 * 1_000_000


class FakeClock:
    """Monotonic seconds and wall-clock microseconds that move only when told to."""

    def __init__(self) -> None:
        self.seconds = 1000.0
        self.wall = 1_800_000_000 * 1_000_000

    def monotonic(self) -> float:
        return self.seconds

    def wall_us(self) -> int:
        return self.wall

    def advance(self, seconds: float) -> None:
        self.seconds += seconds
        self.wall += int(seconds * 1_000_000)


class FakeSocket:
    """Records frames sent and the close; a stuck one never finishes a send."""

    def __init__(self, stuck: bool = False) -> None:
        self.sent: list[str] = []
        self.close_code: int | None = None
        self.close_reason: str | None = None
        self._stuck = stuck
        self._changed = asyncio.Event()

    async def send_text(self, text: str) -> None:
        if self._stuck:
            await asyncio.Future()  # a peer that stopped reading: the send never ends
        self.sent.append(text)
        self._changed.set()

    async def close(self, code: int = 1000, reason: str = "") -> None:
        self.close_code, self.close_reason = code, reason
        self._changed.set()

    @property
    def frames(self) -> list[dict[str, Any]]:
        return [orjson.loads(text) for text in self.sent]

    async def until(self, condition: Callable[[], bool]) -> None:
        async with asyncio.timeout(1):  # a guard against a hang, not a wait for time
            while not condition():
                self._changed.clear()
                await self._changed.wait()

    async def until_closed(self) -> int:
        await self.until(lambda: self.close_code is not None)
        assert self.close_code is not None
        return self.close_code


class Harness:
    """A hub with a fake clock, and the connections a test opened on it."""

    def __init__(self) -> None:
        self.clock = FakeClock()
        settings = Settings(
            login_timeout_seconds=LOGIN_TIMEOUT,
            heartbeat_timeout_seconds=HEARTBEAT_TIMEOUT,
            outbound_queue_frames=QUEUE_LIMIT,
        )
        self.hub = Hub(settings, monotonic=self.clock.monotonic, wall_us=self.clock.wall_us)
        self.opened: list[Connection] = []

    def open(self, stuck: bool = False) -> tuple[Connection, FakeSocket]:
        ws = FakeSocket(stuck)
        conn = self.hub.open(ws)  # type: ignore[arg-type]
        self.opened.append(conn)
        return conn, ws

    def log_in(self, user: str, app_id: int = APP, stuck: bool = False
               ) -> tuple[Connection, FakeSocket]:
        """A connection logged in as `user`, with a session an hour long."""
        conn, ws = self.open(stuck)
        conn.app_id, conn.app_key, conn.user_id = app_id, f"key-{app_id}", user
        conn.expires_at_us = self.clock.wall + HOUR_US
        self.hub.bind(conn)
        return conn, ws

    async def drain(self, *pairs: tuple[Connection, FakeSocket]) -> None:
        """Close each connection after its queue and wait: then `sent` holds all it got."""
        for conn, ws in pairs:
            conn.close(1000, "test_over")
            await ws.until_closed()

    async def aclose(self) -> None:
        for conn in self.opened:
            self.hub.remove(conn)
            await conn.stop()


@pytest.fixture
async def harness() -> AsyncIterator[Harness]:
    h = Harness()
    yield h
    await h.aclose()


async def test_reaper_closes_a_connection_that_never_logs_in_with_4001(harness: Harness) -> None:
    """No login by the login timeout: a login_timeout error frame, then close 4001."""
    _, ws = harness.open()
    harness.clock.advance(LOGIN_TIMEOUT)
    assert harness.hub.reap() == 0  # at the timeout exactly, not yet

    harness.clock.advance(0.001)
    assert harness.hub.reap() == 1

    assert await ws.until_closed() == 4001
    assert ws.close_reason == "login_timeout"
    assert [f["code"] for f in ws.frames] == ["login_timeout"]


async def test_reaper_closes_an_idle_connection_with_4005(harness: Harness) -> None:
    """Nothing heard for the heartbeat timeout: heartbeat_timeout, then close 4005."""
    conn, ws = harness.log_in("alice")
    harness.clock.advance(HEARTBEAT_TIMEOUT - 1)
    conn.touch()  # a heartbeat arrives and restarts the count
    harness.clock.advance(HEARTBEAT_TIMEOUT - 1)
    assert harness.hub.reap() == 0

    harness.clock.advance(1.001)
    assert harness.hub.reap() == 1

    assert await ws.until_closed() == 4005
    assert [f["code"] for f in ws.frames] == ["heartbeat_timeout"]


async def test_reaper_closes_an_expired_session_with_4003(harness: Harness) -> None:
    """A session past its end by the wall clock gets token_expired, then close 4003."""
    conn, ws = harness.log_in("alice")
    conn.expires_at_us = harness.clock.wall + 5_000_000
    harness.clock.advance(4.999)
    assert harness.hub.reap() == 0

    harness.clock.advance(0.001)
    assert harness.hub.reap() == 1

    assert await ws.until_closed() == 4003
    assert [f["code"] for f in ws.frames] == ["token_expired"]


async def test_reaper_leaves_fresh_connections_alone(harness: Harness) -> None:
    """A new connection, logged in or not yet, is not touched by a reaper pass."""
    pending, pending_ws = harness.open()
    active, active_ws = harness.log_in("alice")
    harness.clock.advance(1)

    assert harness.hub.reap() == 0

    assert not pending.closing and not active.closing
    assert pending_ws.sent == [] and active_ws.sent == []


async def test_reaper_closes_a_connection_once(harness: Harness) -> None:
    """A connection already on its way out is not counted or sent a second error."""
    _, ws = harness.open()
    harness.clock.advance(LOGIN_TIMEOUT + 1)

    assert harness.hub.reap() == 1
    assert harness.hub.reap() == 0

    await ws.until_closed()
    assert len(ws.sent) == 1


async def test_deliver_reaches_every_device_but_the_excluded_one(harness: Harness) -> None:
    """A delivery goes to each device of each user named, except exclude_connection."""
    phone = harness.log_in("alice")
    laptop = harness.log_in("alice")
    bob = harness.log_in("bob")
    carol = harness.log_in("carol")
    same_id_other_app = harness.log_in("alice", app_id=APP + 1)

    harness.hub.deliver(Delivery(APP, ("alice", "bob"), {"type": "message", "n": 1},
                                 exclude_connection=phone[0].id))
    harness.hub.deliver(Delivery(APP, ("alice",), {"type": "message", "n": 2}))
    await harness.drain(phone, laptop, bob, carol, same_id_other_app)

    assert [f["n"] for f in phone[1].frames] == [2]
    assert [f["n"] for f in laptop[1].frames] == [1, 2]
    assert [f["n"] for f in bob[1].frames] == [1]
    assert carol[1].sent == [] and same_id_other_app[1].sent == []


async def test_deliver_with_a_close_code_sends_the_frame_then_closes(harness: Harness) -> None:
    """A closing delivery (a kick) sends its frame to every device, then closes it."""
    devices = [harness.log_in("alice") for _ in range(2)]
    bob_conn, _ = harness.log_in("bob")

    harness.hub.deliver(Delivery(APP, ("alice",), {"type": "kicked", "reason": ""},
                                 close_code=4004, close_reason="kicked"))

    for _, ws in devices:
        assert await ws.until_closed() == 4004
        assert ws.frames == [{"type": "kicked", "reason": ""}]
    assert not bob_conn.closing


async def test_slow_connection_is_closed_4008_and_the_others_still_get_every_frame(
    harness: Harness,
) -> None:
    """A device whose queue passes the limit is closed SLOW_CONSUMER; its peers miss nothing."""
    _, slow_ws = harness.log_in("alice", stuck=True)
    fast, fast_ws = harness.log_in("alice")
    # One frame sits in the stuck send and QUEUE_LIMIT queue behind it; the next overflows,
    # and a few more show the fast device is still served after the slow one is gone.
    count = QUEUE_LIMIT + 5

    for n in range(count):
        harness.hub.deliver(Delivery(APP, ("alice",), {"type": "message", "n": n}))
        await fast_ws.until(lambda n=n: len(fast_ws.sent) == n + 1)

    assert await slow_ws.until_closed() == 4008
    assert slow_ws.close_reason == "slow_consumer"
    assert slow_ws.sent == []
    assert [f["n"] for f in fast_ws.frames] == list(range(count))
    assert not fast.closing
