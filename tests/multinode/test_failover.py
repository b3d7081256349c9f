"""Failures, on real processes: a node killed, a node drained, Redis restarted, PostgreSQL
gone for a while. Each test starts the nodes (and private servers) it breaks."""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.cluster import PrivatePostgres, PrivateRedis
from tests.multinode.conftest import PRESENCE_TTL, Nodes
from tests.support import Api, AppCreds, Client, Server, TestDatabase


def _is(kind: str) -> Any:
    return lambda f: isinstance(f, dict) and f["type"] == kind


def text(body: str) -> dict[str, str]:
    return {"type": "text", "text": body}


async def _app_with(node: Server, *users: str) -> tuple[Api, AppCreds, list[str]]:
    api = Api(node)
    app = await api.create_app()
    return api, app, await api.import_users(app, *users)


async def _status(node: Server, path: str) -> tuple[int, Any]:
    async with httpx.AsyncClient(base_url=node.base_url, timeout=5) as http:
        r = await http.get(path)
    return r.status_code, r.json()


async def test_clients_of_a_killed_node_reconnect_to_another_sync_and_lose_nothing(
    nodes: Nodes,
) -> None:
    """SIGKILL one node: its client's socket drops, it logs in on the other node, and sync
    returns the message sent to it while it was away."""
    a, doomed = nodes.start(), nodes.start()
    api, app, (alice, bob) = await _app_with(a, "alice", "bob")
    sender = await Client.login(a, app, await api.token(app, alice))
    victim = await Client.login(doomed, app, await api.token(app, bob))
    first = await sender.request({"type": "send", "to": bob, "content": text("one")})
    await victim.messages(1)

    doomed.process.kill()
    assert await victim.wait_closed() == 1006
    missed = await sender.request({"type": "send", "to": bob, "content": text("two")})
    back = await Client.login(a, app, await api.token(app, bob))
    listed = await back.request({"type": "conversations"})
    page = await back.request({"type": "sync", "conversation_id": first["conversation_id"],
                               "after_seq": first["seq"]})

    assert missed["type"] == "send_ok"
    assert listed["conversations"][0]["last_seq"] == missed["seq"]
    assert [m["msg_id"] for m in page["messages"]] == [missed["msg_id"]]
    await sender.close()
    await back.close()
    await api.aclose()


async def test_a_node_that_dies_is_forgotten_by_presence_within_the_ttl(nodes: Nodes) -> None:
    """After SIGKILL of the node holding bob, a watcher on the other node hears bob go
    offline within the presence TTL and a third of it (plus a little slack)."""
    a, doomed = nodes.start(), nodes.start()
    api, app, (alice, bob) = await _app_with(a, "alice", "bob")
    watcher = await Client.login(a, app, await api.token(app, alice))
    await watcher.request({"type": "presence_subscribe", "users": [bob]})
    await Client.login(doomed, app, await api.token(app, bob))
    assert (await watcher.wait_for(_is("presence")))["online"] is True

    doomed.process.kill()
    killed = time.monotonic()
    offline = await watcher.wait_for(_is("presence"), timeout=PRESENCE_TTL * 3)
    waited = time.monotonic() - killed
    query = await api.call(app, "POST", "/v1/presence/query", json={"users": [bob]})

    assert offline["online"] is False and offline["devices"] == []
    assert waited <= PRESENCE_TTL * 4 / 3 + 0.5, waited
    assert query.json()["presence"][0]["online"] is False
    await watcher.close()
    await api.aclose()


async def test_sigterm_drains_clients_with_4010_and_exits_within_the_drain_timeout(
    nodes: Nodes,
) -> None:
    """SIGTERM: the client gets server_draining and close 4010, new connections are
    refused, and the process exits before PARLEY_DRAIN_TIMEOUT_SECONDS."""
    drain = 3
    node = nodes.start(drain_timeout_seconds=drain)
    api, app, (alice,) = await _app_with(node, "alice")
    client = await Client.login(node, app, await api.token(app, alice))
    await api.aclose()

    started = time.monotonic()
    node.process.send_signal(signal.SIGTERM)
    code = await client.wait_closed()
    with pytest.raises(OSError):
        await Client.connect(node)
    exit_code = await asyncio.to_thread(node.process.wait, drain + 2)

    assert code == 4010 and client.close_reason == "server_draining"
    assert (await client.wait_for(_is("error")))["code"] == "server_draining"
    assert exit_code == 0
    assert time.monotonic() - started < drain


async def test_a_redis_restart_loses_no_message_and_the_nodes_recover_by_themselves(
    pg_database: TestDatabase, tmp_path: Path,
) -> None:
    """With Redis down a send is still stored and acked and /readyz says not ready; once
    Redis is back the nodes reconnect, the other node's client is told to resync and finds
    the message by sync, and pushes cross again."""
    redis = PrivateRedis()
    redis.start()
    nodes = Nodes(pg_database, tmp_path, redis.url)
    try:
        a, b = nodes.start(), nodes.start()
        api, app, (alice, bob) = await _app_with(a, "alice", "bob")
        sender = await Client.login(a, app, await api.token(app, alice))
        receiver = await Client.login(b, app, await api.token(app, bob))

        redis.stop()
        during = await sender.request({"type": "send", "to": bob, "content": text("offline")})
        down = await _status(a, "/readyz")
        redis.start()
        await receiver.wait_for(_is("resync"), timeout=10)
        page = await receiver.request({"type": "sync", "conversation_id":
                                       during["conversation_id"]})
        after = await sender.request({"type": "send", "to": bob, "content": text("online")})
        (live,) = await receiver.messages(1)

        assert during["type"] == "send_ok"
        assert down == (503, {"code": "broker_unavailable", "message": down[1]["message"]})
        assert [m["msg_id"] for m in page["messages"]] == [during["msg_id"]]
        assert live["msg_id"] == after["msg_id"]
        assert (await _status(a, "/readyz"))[0] == 200
        await sender.close()
        await receiver.close()
        await api.aclose()
    finally:
        nodes.stop_all()
        redis.stop()


async def _ready_again(node: Server, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if (await _status(node, "/readyz"))[0] == 200:
            return True
        await asyncio.sleep(0.2)
    return False


async def test_postgres_unreachable_fails_sends_with_a_retryable_code_and_recovers(
    postgres_selected: None, tmp_path: Path,
) -> None:
    """PostgreSQL stopped: a send gets database_unavailable on an open connection, /readyz
    is 503 while /healthz stays 200; started again, the node serves sends by itself."""
    pg = PrivatePostgres()
    node: Server | None = None
    try:
        pg.init()
        pg.start()
        node = Server.start(TestDatabase("postgres", pg.url), tmp_path)
        api, app, (alice, bob) = await _app_with(node, "alice", "bob")
        client = await Client.login(node, app, await api.token(app, alice))

        pg.stop()
        refused = await client.request({"type": "send", "to": bob, "content": text("x"),
                                         "client_msg_id": "retry-me"})
        ready, alive = await _status(node, "/readyz"), await _status(node, "/healthz")
        pg.start()
        recovered = await _ready_again(node, 10)
        retried = await client.request({"type": "send", "to": bob, "content": text("x"),
                                         "client_msg_id": "retry-me"})

        assert refused["type"] == "error" and refused["code"] == "database_unavailable"
        assert ready[0] == 503 and ready[1]["code"] == "database_unavailable"
        assert alive[0] == 200
        assert recovered and retried["type"] == "send_ok" and retried["seq"] == 1
        assert not client.closed
        await client.close()
        await api.aclose()
    finally:
        if node is not None:
            node.stop()
        pg.remove()
