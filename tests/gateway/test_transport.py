"""The lean WebSocket transport: its inbox and write gate on their own, then the protocol
and the path to the gateway on a real uvicorn over loopback, with an echo endpoint."""

from __future__ import annotations

import asyncio
import resource
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
import uvicorn
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from app import serving
from app.gateway.connection import Connection
from app.gateway.transport import Gate, Inbox, LeanWebSocketProtocol, straight_to_gateway
from tests.support import free_port


async def test_inbox_gives_events_in_order_and_waits_for_the_next() -> None:
    """get returns what was put, oldest first, and waits when there is nothing."""
    inbox = Inbox()
    inbox.put_nowait(1)
    inbox.put_nowait(2)
    assert [await inbox.get(), await inbox.get()] == [1, 2]
    assert inbox.empty()

    waiting = asyncio.create_task(inbox.get())
    await asyncio.sleep(0)
    assert not waiting.done()
    inbox.put_nowait(3)
    assert await waiting == 3


async def test_inbox_keeps_its_events_when_a_reader_is_cancelled() -> None:
    """A cancelled get takes nothing: the next get still has every event."""
    inbox = Inbox()
    waiting = asyncio.create_task(inbox.get())
    await asyncio.sleep(0)
    waiting.cancel()
    inbox.put_nowait("kept")

    assert await inbox.get() == "kept"


async def test_gate_lets_writers_through_only_while_open() -> None:
    """wait returns at once while open; while closed it holds every writer until set."""
    gate = Gate()
    assert await gate.wait() is True

    gate.clear()
    writers = [asyncio.create_task(gate.wait()) for _ in range(2)]
    await asyncio.sleep(0)
    assert not any(w.done() for w in writers) and not gate.is_set()

    gate.set()
    assert await asyncio.gather(*writers) == [True, True]


async def test_gate_forgets_a_cancelled_writer() -> None:
    """A writer cancelled while the gate is closed is not held on to."""
    gate = Gate()
    gate.clear()
    writer = asyncio.create_task(gate.wait())
    await asyncio.sleep(0)
    writer.cancel()
    await asyncio.gather(writer, return_exceptions=True)

    assert not gate._waiters
    gate.set()


@dataclass
class Served:
    """A uvicorn on loopback with the lean protocol, and the sockets its endpoint saw."""

    server: uvicorn.Server
    port: int

    def protocols(self) -> list[LeanWebSocketProtocol]:
        return [p for p in self.server.server_state.connections
                if isinstance(p, LeanWebSocketProtocol)]


# What the "push N" endpoint saw: after each burst, whether the connection needed its
# writer task (True: some frame had to wait).
BURSTS: list[bool] = []


async def _echo(ws: WebSocket) -> None:
    """Echo each text frame; "close NNNN" closes with that code; "push N [slow]" pushes N
    frames through a gateway Connection, with the socket's write gate shut first if slow."""
    await ws.accept()
    conn = Connection(ws, 1000, time.monotonic)
    try:
        while True:
            text = await ws.receive_text()
            if text.startswith("close "):
                await ws.close(int(text.split()[1]), "asked")
                return
            if text.startswith("push "):
                _push(ws, conn, int(text.split()[1]), slow=text.endswith("slow"))
                continue
            await ws.send_text(text)
    except WebSocketDisconnect:
        return


def _push(ws: WebSocket, conn: Connection, count: int, slow: bool) -> None:
    gate = ws._send.__self__.writable  # type: ignore[attr-defined]
    if slow:
        gate.clear()  # as when the peer reads too slowly
    for n in range(count):
        conn.push(f"pushed {n}")
    BURSTS.append(conn._writer is not None)
    if slow:
        asyncio.get_running_loop().call_later(0.05, gate.set)


async def _rest_of_the_app(scope: Scope, receive: Receive, send: Send) -> None:
    """Everything but /ws: a 200 for HTTP, a refusal for any other WebSocket path."""
    if scope["type"] == "http":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"app"})
    elif scope["type"] == "websocket":
        await send({"type": "websocket.close", "code": 1000})


@pytest.fixture
async def served() -> AsyncIterator[Served]:
    port = free_port()
    config = uvicorn.Config(straight_to_gateway(_rest_of_the_app, _echo), host="127.0.0.1",
                            port=port, ws=LeanWebSocketProtocol, ws_max_size=1024,
                            ws_per_message_deflate=False, ws_ping_interval=None,
                            lifespan="off", log_config=None)
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    async with asyncio.timeout(10):
        while not server.started:  # noqa: ASYNC110 - uvicorn has no event to wait on
            await asyncio.sleep(0.01)
    yield Served(server, port)
    server.should_exit = True
    await task


async def test_frames_go_both_ways_in_order(served: Served) -> None:
    """Text frames reach the endpoint and its replies come back, in order."""
    async with connect(f"ws://127.0.0.1:{served.port}/ws", compression=None) as ws:
        for n in range(20):
            await ws.send(f"frame {n}")
        assert [await ws.recv() for _ in range(20)] == [f"frame {n}" for n in range(20)]


async def test_pushes_are_written_at_once_while_the_socket_takes_them(served: Served) -> None:
    """A connection's frames go straight to the transport, no writer task, while the
    socket takes writes; while it does not, they queue and the writer sends them after,
    in order."""
    BURSTS.clear()
    async with connect(f"ws://127.0.0.1:{served.port}/ws", compression=None) as ws:
        await ws.send("push 50")
        assert [await ws.recv() for _ in range(50)] == [f"pushed {n}" for n in range(50)]
        await ws.send("push 50 slow")
        assert [await ws.recv() for _ in range(50)] == [f"pushed {n}" for n in range(50)]
    assert BURSTS == [False, True]


async def test_an_open_socket_keeps_no_handshake(served: Served) -> None:
    """Once accepted, the protocol holds neither the upgrade request nor its response."""
    async with connect(f"ws://127.0.0.1:{served.port}/ws", compression=None,
                       additional_headers={"X-Bulky": "x" * 500}) as ws:
        await ws.send("hello")
        assert await ws.recv() == "hello"
        (protocol,) = served.protocols()

        assert not hasattr(protocol, "request") and not hasattr(protocol, "response")
        assert isinstance(protocol.queue, Inbox) and isinstance(protocol.writable, Gate)


async def test_the_endpoint_close_code_reaches_the_client(served: Served) -> None:
    """A close from the endpoint arrives with its code and reason."""
    async with connect(f"ws://127.0.0.1:{served.port}/ws", compression=None) as ws:
        await ws.send("close 4008")
        with pytest.raises(ConnectionClosed):
            await ws.recv()
    assert (ws.close_code, ws.close_reason) == (4008, "asked")


async def test_a_frame_over_the_size_limit_closes_1009(served: Served) -> None:
    """ws_max_size still holds: a larger frame closes the socket with 1009."""
    async with connect(f"ws://127.0.0.1:{served.port}/ws", compression=None) as ws:
        await ws.send("x" * 2000)
        with pytest.raises(ConnectionClosed):
            await ws.recv()
    assert ws.close_code == 1009


async def test_other_paths_still_reach_the_app(served: Served) -> None:
    """HTTP, and WebSockets to any other path, go to the app as before."""
    async with httpx.AsyncClient() as http:
        r = await http.get(f"http://127.0.0.1:{served.port}/ws")
    assert r.text == "app"
    with pytest.raises(Exception, match="403"):
        async with connect(f"ws://127.0.0.1:{served.port}/other"):
            pass


def test_a_node_may_open_as_many_sockets_as_the_hard_limit_allows() -> None:
    """Serving lifts the soft limit on open files to the hard one, for many connections."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(soft, 256), hard))

        limit = serving.raise_file_limit()

        assert limit == resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        assert limit == hard or resource.RLIM_INFINITY in (soft, hard)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
