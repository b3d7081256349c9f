"""The SDK's bot client against a real Parley: chat, catch-up, reconnects, kicks."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from parley_sdk import AsyncAppClient, Backoff, BotClient, SessionEnded

from tests.support import Api, AppCreds, Server, TestDatabase

QUICK = Backoff(initial=0.05, maximum=0.2)


@pytest.fixture(scope="module")
async def busy_db(backend: str, tmp_path_factory: pytest.TempPathFactory
                  ) -> AsyncIterator[TestDatabase]:
    db = await TestDatabase.create(backend, tmp_path_factory.mktemp(f"sdk-{backend}"))
    yield db
    await db.drop()


@pytest.fixture(scope="module")
def busy_server(busy_db: TestDatabase, tmp_path_factory: pytest.TempPathFactory
                ) -> Iterator[Server]:
    """A server whose rate limits sit far above these bursts: they are not under test."""
    srv = Server.start(busy_db, tmp_path_factory.mktemp("sdk-server"), send_burst=1000,
                       send_rate_per_second=1000, max_frames_per_second=1000,
                       reaper_tick_seconds=0.2)
    yield srv
    srv.stop()


@pytest.fixture
async def parley(busy_server: Server) -> AsyncIterator[tuple[AsyncAppClient, AppCreds]]:
    api = Api(busy_server)
    creds = await api.create_app()
    await api.aclose()
    async with AsyncAppClient(busy_server.base_url, creds.key, creds.secret) as client:
        yield client, creds


async def bot(server: Server, parley: tuple[AsyncAppClient, AppCreds], user: str,
              **options: Any) -> BotClient:
    rest, creds = parley
    token = (await rest.mint_token(user))["token"]
    client = BotClient(server.ws_url, creds.key, token, backoff=QUICK, **options)
    await client.connect()
    return client


async def take(client: BotClient, count: int, timeout: float = 10) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    async with asyncio.timeout(timeout):
        async for message in client.messages():
            out.append(message)
            if len(out) == count:
                return out
    return out


async def users(parley: tuple[AsyncAppClient, AppCreds], *names: str) -> list[str]:
    result = await parley[0].import_users(names)
    return [item["user_id_md5"] for item in result["results"]]


async def test_two_bots_chat_in_order(busy_server: Server, parley: Any) -> None:
    """Each bot gets the other's message and its own, in seq order."""
    ann, ben = await users(parley, "ann", "ben")
    a, b = await bot(busy_server, parley, ann), await bot(busy_server, parley, ben)
    first = await a.send_text("hi ben", to=ben)
    await b.send_text("hi ann", to=ann)
    got_a, got_b = await take(a, 2), await take(b, 2)
    assert [m["content"]["text"] for m in got_a] == ["hi ben", "hi ann"]
    assert [m["seq"] for m in got_b] == [1, 2] and first["duplicate"] is False
    await a.close()
    await b.close()


async def test_a_burst_survives_both_ends_dropping(busy_server: Server, parley: Any) -> None:
    """Connections cut mid-burst at both ends: every message arrives once, in order."""
    cat, dan = await users(parley, "cat", "dan")
    c, d = await bot(busy_server, parley, cat), await bot(busy_server, parley, dan)
    sends = []
    for i in range(1, 61):
        sends.append(asyncio.create_task(c.send_text(f"m{i}", to=dan)))
        if i == 15:
            d.drop_connection()
        if i == 30:
            c.drop_connection()
        if i % 10 == 0:
            await asyncio.sleep(0.005)
    stored = await asyncio.gather(*sends)
    got = await take(d, 60)

    assert [m["content"]["text"] for m in got] == [f"m{i}" for i in range(1, 61)]
    assert sorted(m["seq"] for m in stored) == list(range(1, 61))
    assert c.logins >= 2 and d.logins >= 2
    log = await parley[0].chat_log(stored[0]["conversation_id"], "2000-01-01T00:00:00Z",
                                   "2100-01-01T00:00:00Z", limit=500)
    assert len(log["messages"]) == 60
    await c.close()
    await d.close()


async def test_messages_sent_while_away_arrive_by_catch_up(busy_server: Server,
                                                           parley: Any) -> None:
    """A bot that starts from a saved cursor gets only what came after it."""
    eve, fay = await users(parley, "eve", "fay")
    e = await bot(busy_server, parley, eve)
    first = await e.send_text("one", to=fay)
    await e.send_text("two", to=fay)
    f = await bot(busy_server, parley, fay, cursors={first["conversation_id"]: 1})
    assert [m["content"]["text"] for m in await take(f, 1)] == ["two"]
    assert f.cursors()[first["conversation_id"]] == 2
    await e.close()
    await f.close()


async def test_a_kick_ends_the_session_with_its_code(busy_server: Server, parley: Any) -> None:
    """After a kick, messages() raises SessionEnded with kicked and 4004; no reconnect."""
    (gus,) = await users(parley, "gus")
    g = await bot(busy_server, parley, gus)
    await parley[0].kick(gus, "bye")
    with pytest.raises(SessionEnded) as ended:
        await take(g, 1)
    assert (ended.value.code, ended.value.close_code) == ("kicked", 4004)
    assert g.logins == 1
    await g.close()


async def test_a_refused_send_raises_the_server_code(busy_server: Server, parley: Any) -> None:
    """A send the server refuses raises RealtimeError with its code and leaves the outbox."""
    (hal,) = await users(parley, "hal")
    h = await bot(busy_server, parley, hal)
    with pytest.raises(Exception) as refused:
        await h.send_text("anyone?", to="f" * 32)
    assert getattr(refused.value, "code", None) == "user_not_found"
    assert h.outbox() == []
    await h.close()


async def test_an_expired_session_comes_back_with_a_new_token(busy_server: Server,
                                                              parley: Any) -> None:
    """At 4003 the bot asks get_token for a token and logs in again."""
    rest, creds = parley
    (ivy,) = await users(parley, "ivy")

    renewed = asyncio.Event()

    async def new_token() -> str:
        renewed.set()
        return str((await rest.mint_token(ivy))["token"])

    short = (await rest.mint_token(ivy, ttl_seconds=1))["token"]
    i = BotClient(busy_server.ws_url, creds.key, short, get_token=new_token, backoff=QUICK)
    await i.connect()
    async with asyncio.timeout(10):
        await renewed.wait()
        await i.wait_open()
    assert i.logins == 2 and i.ended is None
    await i.close()
