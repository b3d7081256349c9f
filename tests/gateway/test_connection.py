"""A connection's outbound side on fake sockets: what an idle connection holds, and how
its writer comes and goes. Nothing here sleeps."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from app.gateway.connection import Connection
from tests.gateway.test_hub import FakeSocket, Harness


@pytest.fixture
async def harness() -> AsyncIterator[Harness]:
    h = Harness()
    yield h
    await h.aclose()


def _holds_nothing(conn: Connection) -> bool:
    return conn._writer is None and conn._queue is None and conn._queued_chars == 0


class BrokenSocket(FakeSocket):
    """A peer that went away: every send fails."""

    async def send_text(self, text: str) -> None:
        self._changed.set()
        raise ConnectionResetError


async def test_an_idle_connection_holds_no_writer_and_no_queue(harness: Harness) -> None:
    """Once its frames are out, a connection keeps neither a task nor a queue."""
    conn, ws = harness.log_in("alice")
    assert _holds_nothing(conn)

    conn.push('{"n":1}')
    conn.push('{"n":2}')
    assert conn._writer is not None
    await ws.until(lambda: len(ws.sent) == 2)
    await ws.until(lambda: _holds_nothing(conn))

    assert [f["n"] for f in ws.frames] == [1, 2]


async def test_frames_pushed_after_the_writer_ended_go_out_in_order(harness: Harness) -> None:
    """Each burst starts a writer of its own, and the order across bursts holds."""
    conn, ws = harness.log_in("alice")

    for burst in range(3):
        for n in range(3):
            conn.push(f'{{"n":{3 * burst + n}}}')
        await ws.until(lambda: _holds_nothing(conn))

    assert [f["n"] for f in ws.frames] == list(range(9))


async def test_close_waits_for_the_queued_frames_then_lets_go(harness: Harness) -> None:
    """close() sends what is queued, then closes; later pushes are dropped."""
    conn, ws = harness.log_in("alice")
    conn.push('{"n":1}')
    conn.close(4010, "server_draining")
    conn.push('{"n":2}')

    assert await ws.until_closed() == 4010
    await ws.until(lambda: conn._writer is None)
    assert [f["n"] for f in ws.frames] == [1]


async def test_a_failed_send_stops_the_writing_for_good(harness: Harness) -> None:
    """A peer that went away is written to no more: the reader will see it and clean up."""
    ws = BrokenSocket()
    conn = harness.hub.open(ws)  # type: ignore[arg-type]
    harness.opened.append(conn)

    conn.push('{"n":1}')
    await ws.until(lambda: conn.closing)
    conn.push('{"n":2}')

    assert conn.closing and conn._writer is None
    assert ws.sent == []


async def test_watching_topics_and_stopping_leave_no_set_behind(harness: Harness) -> None:
    """Topics are kept as a shared empty set until watched, and again after unwatching."""
    conn, _ = harness.log_in("alice")
    idle, _ = harness.log_in("bob")
    assert conn.topics is idle.topics

    harness.hub.watch(conn, ["t1", "t2"])
    assert conn.topics == {"t1", "t2"}
    harness.hub.unwatch(conn, ["t1", "t2"])

    assert conn.topics is idle.topics
