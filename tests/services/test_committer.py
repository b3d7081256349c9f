"""Group commit: many sends share a transaction, each keeps its own outcome.

These drive app.services.committer directly on the run's real databases (SQLite and
PostgreSQL), beside the server the other tests use; each test makes its own app.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import pytest
from sqlalchemy import insert, select

from app import ids
from app.broker import InProcessBroker
from app.config import Settings
from app.errors import NotFound
from app.security import PasswordVault
from app.services import apps, committer, groups, messages
from app.services.committer import Committer
from app.services.context import Context
from app.storage.db import Database
from app.storage.models import conversations, members, users
from tests.support import TestDatabase


@pytest.fixture
async def ctx(database: TestDatabase, server: Any) -> AsyncIterator[Context]:
    """A context of our own on the run's database (the server fixture has migrated it)."""
    settings = Settings(database_url=database.url, admin_token="t" * 32)
    db = Database(database.url)
    yield Context(settings, db, InProcessBroker(), PasswordVault(settings),
                  committer=Committer())
    await db.dispose()


async def _app_with_users(ctx: Context, count: int) -> tuple[int, list[str]]:
    created = await apps.create(ctx, "committer")
    people = [ids.md5_of_user_id(f"user-{i}") for i in range(count)]
    async with ctx.db.write() as conn:
        await conn.execute(insert(users), [
            {"app_id": created.app.id, "id": p, "created_at_us": 0, "updated_at_us": 0}
            for p in people])
    return created.app.id, people


def _count_commits(db: Database) -> list[int]:
    """Count the write transactions: the general path's and the one-statement path's."""
    commits = [0]
    write, driver = db.write, db.driver

    def counted(opener: Any) -> Any:
        def open_counted() -> Any:
            commits[0] += 1
            return opener()
        return open_counted

    db.write, db.driver = counted(write), counted(driver)  # type: ignore[method-assign]
    return commits


def _text(n: int) -> dict[str, Any]:
    return {"type": "text", "text": f"message {n}"}


async def test_concurrent_sends_share_transactions_and_keep_their_order(ctx: Context) -> None:
    """200 sends in flight at once are written in a few transactions, not 200; each
    conversation's seqs run 1..n with no gap, in the order the sends queued."""
    app_id, people = await _app_with_users(ctx, 5)
    alice, others = people[0], people[1:]
    commits = _count_commits(ctx.db)
    acks = await asyncio.gather(*(
        messages.send_direct(ctx, app_id, alice, others[i % 4], _text(i), f"c{i}")
        for i in range(200)))
    assert commits[0] < 20
    for peer in others:
        conv = ids.p2p_conversation_id(alice, peer)
        seqs = [a.seq for a in acks if a.conversation_id == conv]
        assert seqs == list(range(1, 51))
    async with ctx.db.read() as conn:
        last = dict((await conn.execute(select(conversations.c.id, conversations.c.last_seq)
                                        .where(conversations.c.app_id == app_id))).all())
        rows = (await conn.execute(select(members.c.user_id, members.c.read_seq)
                                   .where(members.c.app_id == app_id))).all()
    assert set(last.values()) == {50}
    # Both members of each new conversation exist; the sender has read up to its end.
    assert len(rows) == 8
    assert {r.read_seq for r in rows if r.user_id == alice} == {50}


async def test_a_send_to_an_unknown_user_fails_alone(ctx: Context) -> None:
    """The bad item gets user_not_found; the sends batched with it are stored."""
    app_id, (alice, bob) = await _app_with_users(ctx, 2)
    nobody = ids.md5_of_user_id("nobody")
    results = await asyncio.gather(
        *(messages.send_direct(ctx, app_id, alice, bob, _text(i)) for i in range(20)),
        messages.send_direct(ctx, app_id, alice, nobody, _text(99)),
        *(messages.send_notice(ctx, app_id, bob, _text(i)) for i in range(5)),
        return_exceptions=True)
    failed = [r for r in results if isinstance(r, BaseException)]
    assert len(failed) == 1
    assert isinstance(failed[0], NotFound) and failed[0].code == "user_not_found"
    assert sorted(r.seq for r in results[:20]) == list(range(1, 21))  # type: ignore[union-attr]
    assert [r.seq for r in results[21:]] == [1, 2, 3, 4, 5]  # type: ignore[union-attr]


async def test_a_resend_in_the_same_batch_or_later_gets_the_first_ack(ctx: Context) -> None:
    """One client_msg_id twice in one batch is stored once; sent again later (through
    another node's memory, i.e. with this one's forgotten) it is still the same message."""
    app_id, (alice, bob) = await _app_with_users(ctx, 2)
    first, again = await asyncio.gather(
        messages.send_direct(ctx, app_id, alice, bob, _text(1), "same"),
        messages.send_direct(ctx, app_id, alice, bob, _text(1), "same"))
    assert (first.duplicate, again.duplicate) == (False, True)
    assert again.msg_id == first.msg_id and again.seq == first.seq == 1
    ctx.committer.recent = committer.RecentAcks(10)  # as if it reached another node
    later = await messages.send_direct(ctx, app_id, alice, bob, _text(1), "same")
    assert later.duplicate and later.msg_id == first.msg_id
    nxt = await messages.send_direct(ctx, app_id, alice, bob, _text(2), "next")
    assert nxt.seq == 2  # the resends took no seq


async def test_a_batch_the_database_refuses_is_retried_one_by_one(ctx: Context) -> None:
    """When a statement of the batch fails for one send, the others are stored: here a
    persist hook (they run for sends with findings) that the database refuses."""
    app_id, (alice, bob) = await _app_with_users(ctx, 2)

    async def find_something(_: Context, outgoing: Any) -> Any:
        return replace(outgoing, findings=("a finding",))

    async def refuse_one(_: Context, conn: Any, outgoing: Any, msg_id: str) -> None:
        if outgoing.content.get("text") == "poison":
            await conn.exec_driver_sql("SELECT * FROM no_such_table")

    ctx.send_stages, ctx.persist_hooks = (find_something,), (refuse_one,)
    await _one_bad_send_fails_alone(ctx, app_id, alice, bob)


async def test_a_plain_batch_the_database_refuses_is_retried_one_by_one(
        ctx: Context, backend: str) -> None:
    """The same on PostgreSQL's one-statement path: a value too long for its column."""
    if backend != "postgres":
        pytest.skip("SQLite does not enforce column lengths")
    app_id, (alice, bob) = await _app_with_users(ctx, 2)

    async def overlong_risk(_: Context, outgoing: Any) -> Any:
        if outgoing.content.get("text") == "poison":
            return replace(outgoing, risk="x" * 100)
        return outgoing

    ctx.send_stages = (overlong_risk,)
    await _one_bad_send_fails_alone(ctx, app_id, alice, bob)


async def _one_bad_send_fails_alone(ctx: Context, app_id: int, alice: str, bob: str) -> None:
    commits = _count_commits(ctx.db)
    results = await asyncio.gather(
        *(messages.send_direct(ctx, app_id, alice, bob, _text(i)) for i in range(10)),
        messages.send_direct(ctx, app_id, alice, bob, {"type": "text", "text": "poison"}),
        return_exceptions=True)
    assert not any(isinstance(r, BaseException) for r in results[:10])
    assert isinstance(results[10], Exception)
    assert sorted(r.seq for r in results[:10]) == list(range(1, 11))  # type: ignore[union-attr]
    assert commits[0] <= 12


async def test_delivery_marks_move_forward_only_and_stop_at_the_end(ctx: Context) -> None:
    """Acks are kept in memory and written with the next batch: the highest wins, one
    past the conversation's end counts as its end (so it cannot hide a good one queued
    with it), a mark never goes back."""
    app_id, (alice, bob) = await _app_with_users(ctx, 2)
    for i in range(3):
        await messages.send_direct(ctx, app_id, alice, bob, _text(i))
    conv = ids.p2p_conversation_id(alice, bob)

    for seq in (1, 2):
        ctx.committer.delivered(ctx, app_id, bob, conv, seq)
    assert await _delivered(ctx, app_id, bob, conv) == 2
    ctx.committer.delivered(ctx, app_id, bob, conv, 1)
    assert await _delivered(ctx, app_id, bob, conv) == 2
    for seq in (3, 999):  # a good ack, then a stray one, before either is written
        ctx.committer.delivered(ctx, app_id, bob, conv, seq)
    assert await _delivered(ctx, app_id, bob, conv) == 3
    await messages.send_direct(ctx, app_id, alice, bob, _text(4))
    assert await _delivered(ctx, app_id, bob, conv) == 3  # 999 held no claim on seq 4


async def test_a_former_member_s_mark_stops_where_they_left(ctx: Context) -> None:
    """A user who left a group sees it up to the seq they left at; an ack cannot carry
    their delivery mark past that, however far the group has gone on."""
    app_id, (alice, carol) = await _app_with_users(ctx, 2)
    group = await groups.create(ctx, app_id, alice, owner=alice, name="g",
                                initial_members=[carol])
    conv = group["conversation_id"]
    await groups.leave(ctx, app_id, carol, group["group_id"])
    for i in range(4):
        await messages.send_group(ctx, app_id, alice, group["group_id"], _text(i))
    async with ctx.db.read() as conn:
        left = await conn.scalar(select(members.c.left_seq).where(
            members.c.app_id == app_id, members.c.user_id == carol,
            members.c.conversation_id == conv))
    ctx.committer.delivered(ctx, app_id, carol, conv, left + 4)  # the group's last seq
    assert await _delivered(ctx, app_id, carol, conv) == left


async def _delivered(ctx: Context, app_id: int, user: str, conv: str) -> int:
    await ctx.committer.stop()  # until what is queued is written
    async with ctx.db.read() as conn:
        return int(await conn.scalar(select(members.c.delivered_seq).where(
            members.c.app_id == app_id, members.c.user_id == user,
            members.c.conversation_id == conv)) or 0)


async def test_stop_writes_what_is_queued(ctx: Context) -> None:
    """A node that stops writes every queued send before it goes."""
    app_id, (alice, bob) = await _app_with_users(ctx, 2)
    sends = [asyncio.ensure_future(messages.send_direct(ctx, app_id, alice, bob, _text(i)))
             for i in range(30)]
    await asyncio.sleep(0)  # each send is queued now
    await ctx.committer.stop()
    async with ctx.db.read() as conn:
        stored = await conn.scalar(select(conversations.c.last_seq).where(
            conversations.c.app_id == app_id))
    assert stored == 30
    assert [s.seq for s in await asyncio.gather(*sends)] == list(range(1, 31))


async def test_a_mark_the_database_refuses_fails_no_send(ctx: Context) -> None:
    """Delivery marks ride in the batch's transaction; one PostgreSQL cannot store (a
    U+0000, which the gateway refuses but the committer must not trust) is dropped
    and the sends in its batch are stored."""
    app_id, (alice, bob) = await _app_with_users(ctx, 2)
    ctx.committer.delivered(ctx, app_id, bob, "p2p:x\x00y", 1)
    ack = await messages.send_direct(ctx, app_id, alice, bob, _text(1))
    assert ack.seq == 1
