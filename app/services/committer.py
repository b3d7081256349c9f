"""Group commit for 1:1 messages and system notices.

Sends that arrive while a transaction is being written wait, and go together in the
next one. A transaction costs about the same handful of statements whether it carries
one message or two hundred, so under load each message pays a small share of it, and
on a quiet node a send is written at once, alone. (Measured on this project's 2-core
machine: one transaction per message capped a node near 230 sends/s on PostgreSQL; see
docs/performance.md for the figures with group commit.)

One batch, one transaction:

    duplicates by client_msg_id → recipients exist → seqs: one upsert over the batch's
    conversations, each row locked in key order → the new conversations' members → the
    messages → persist hooks and webhook events → the senders' read markers

Every send gets its own outcome: a recipient that does not exist fails that send, not
its neighbours. A batch that fails as a whole for a reason a retry cures (a resend
stored by another node at the same moment, a deadlock with another node's batch) is
written again; one that fails for any other reason is written again one send at a
time, so that only the send at fault fails.

Receivers' cumulative acks ride along: the node keeps the highest seq each user
acknowledged in each conversation and writes them all with the next batch, so an ack
costs a dictionary update instead of a transaction of its own.

Group messages keep their own transaction (``messages._persist``): their gate reads
the group and its members under the conversation's lock, which is not worth batching
at ten messages a second.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    BigInteger,
    and_,
    bindparam,
    case,
    literal,
    null,
    select,
    tuple_,
    union_all,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from app import ids
from app.errors import ParleyError, user_not_found
from app.services.context import Context
from app.services.messages import SYSTEM_SENDER, Ack, Outgoing, peer_of, record_stored
from app.storage.db import now_us
from app.storage.models import conversations, members, messages, users

logger = logging.getLogger(__name__)

# Sends per transaction. Past a few hundred a batch only adds latency: the statements'
# cost per row is flat by then, and the first send waits for the last.
MAX_BATCH = 256
# Transactions in flight at once. A transaction spends most of its time waiting for the
# database's answers; a second one fills that wait. Their rows are locked in key order,
# so they cannot deadlock, and two batches with a conversation in common are ordered by
# its row lock.
WRITERS = 2
# Whole-batch attempts before a batch is split into single sends.
ATTEMPTS = 3
# Acks a node remembers, so that a client's resend after a reconnect is answered
# without going through the stages (a rate-limit token, the before-send hook) again.
RECENT_ACKS = 16_384

# (app_id, conversation_id, sender, client_msg_id)
ResendKey = tuple[int, str, str, str]
# (app_id, user_id, conversation_id)
MarkKey = tuple[int, str, str]
Outcome = tuple[Ack, tuple[str, ...]]  # the ack, and who must hear of the message


@dataclass(slots=True)
class Pending:
    """One send waiting for its batch."""

    outgoing: Outgoing
    encoded: str
    # The user who must exist for the send to be stored: the recipient of a 1:1 message
    # or of a notice.
    recipient: str
    future: asyncio.Future[Outcome] = field(repr=False)

    @property
    def resend_key(self) -> ResendKey | None:
        o = self.outgoing
        if o.client_msg_id is None:
            return None
        return (o.app_id, o.conversation_id, o.sender, o.client_msg_id)


class Committer:
    """The node's writer of 1:1 messages and notices: one transaction in flight at a
    time, carrying every send that queued while the last one was written."""

    def __init__(self, max_batch: int = MAX_BATCH, writers: int = WRITERS) -> None:
        self.max_batch = max_batch
        self.writers = writers
        self._queue: list[Pending] = []
        self._delivered: dict[MarkKey, int] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.recent = RecentAcks(RECENT_ACKS)

    async def write(self, ctx: Context, outgoing: Outgoing, encoded: str, recipient: str
                    ) -> Outcome:
        future: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        self._queue.append(Pending(outgoing, encoded, recipient, future))
        self._wake(ctx)
        return await future

    def delivered(self, ctx: Context, app_id: int, user_id: str, conversation_id: str,
                  seq: int) -> None:
        """A device holds the conversation up to ``seq``: remember the highest, to be
        written with the next batch. A seq past what the user may see counts as the end
        of it; a conversation they are not in changes nothing (see write_marks)."""
        key = (app_id, user_id, conversation_id)
        if seq > self._delivered.get(key, 0):
            self._delivered[key] = seq
        self._wake(ctx)

    def _wake(self, ctx: Context) -> None:
        """Start a writer when none is free to take the new work."""
        if len(self._tasks) < self.writers:
            task = asyncio.create_task(self._drain(ctx), name="committer")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def stop(self) -> None:
        """Write what is queued, then stop."""
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _drain(self, ctx: Context) -> None:
        while self._queue or self._delivered:
            marks, self._delivered = self._delivered, {}
            batch = self._queue[:self.max_batch]
            del self._queue[:len(batch)]
            await self._commit(ctx, batch, marks)

    @staticmethod
    async def _write_marks(ctx: Context, marks: dict[MarkKey, int]) -> None:
        if not marks:
            return
        try:
            async with ctx.db.write() as conn:
                await write_marks(conn, {}, marks)
        except Exception:
            # An ack is advisory (the server never resends for want of one); the next
            # ack of the conversation carries the mark forward.
            logger.exception("could not write delivery marks", extra={"size": len(marks)})

    async def _commit(self, ctx: Context, batch: list[Pending], marks: dict[MarkKey, int]
                      ) -> None:
        outcomes: list[Outcome | BaseException] | None = None
        failure: BaseException | None = None
        for _ in range(ATTEMPTS):
            try:
                outcomes = await store(ctx, batch, marks)
                break
            except Exception as exc:  # every failure has to reach its senders
                failure = exc
                if marks and not _retryable(exc) and not _is_outage(exc):
                    # The marks ride along; if they are what was refused, they must not
                    # fail anyone's send. Write them on their own, the sends without.
                    await self._write_marks(ctx, marks)
                    marks = {}
                    continue
                if not _retryable(exc):
                    break
        if outcomes is None and len(batch) > 1 and not _is_outage(failure):
            # Something in the batch the database refuses: find it by writing the sends
            # one at a time, so the others are stored.
            logger.warning("batch failed; writing its sends one by one",
                           extra={"size": len(batch)})
            await self._write_marks(ctx, marks)
            outcomes = [await _alone(ctx, item) for item in batch]
        for i, item in enumerate(batch):
            result = outcomes[i] if outcomes is not None else failure
            if item.future.done():  # the sender went away; the message is stored anyway
                continue
            if isinstance(result, tuple):
                self.recent.put(item.resend_key, result[0])
                item.future.set_result(result)
            else:
                item.future.set_exception(result or RuntimeError("batch not written"))


async def _alone(ctx: Context, item: Pending) -> Outcome | BaseException:
    try:
        return (await store(ctx, [item]))[0]
    except Exception as exc:  # the send's own failure, for its sender
        return exc


def _retryable(exc: BaseException) -> bool:
    """A unique-index race on a resend, or a deadlock or serialisation failure: a fresh
    attempt sees the other transaction's outcome and goes through."""
    if isinstance(exc, IntegrityError):
        return True
    driver_error = exc.orig if isinstance(exc, DBAPIError) else exc
    state = getattr(driver_error, "sqlstate", None) or getattr(driver_error, "pgcode", None)
    return state in ("23505", "40P01", "40001")


def _is_outage(exc: BaseException | None) -> bool:
    return isinstance(exc, ParleyError) and exc.http_status == 503


class RecentAcks:
    """The last acks given, by resend key, oldest forgotten first."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._acks: OrderedDict[ResendKey, Ack] = OrderedDict()

    def get(self, key: ResendKey | None) -> Ack | None:
        return None if key is None else self._acks.get(key)

    def put(self, key: ResendKey | None, ack: Ack) -> None:
        if key is None:
            return
        self._acks[key] = ack
        if len(self._acks) > self._size:
            self._acks.popitem(last=False)


async def store(ctx: Context, batch: list[Pending], marks: dict[MarkKey, int] | None = None
                ) -> list[Outcome | BaseException]:
    """Write a batch, and delivery marks, in one transaction; each send's ack and
    recipients, or its error."""
    # The same send twice in one batch (a resend before the first was answered) is
    # written once; the repeat gets the first one's ack, as a duplicate.
    first: dict[ResendKey, int] = {}
    slots: list[tuple[int, bool]] = []  # each send's place in `sends`; a repeat?
    sends: list[Pending] = []
    for item in batch:
        key = item.resend_key
        if key is not None and key in first:
            slots.append((first[key], True))
            continue
        if key is not None:
            first[key] = len(sends)
        slots.append((len(sends), False))
        sends.append(item)
    if not ctx.db.is_sqlite and await _plain(ctx, sends):
        results = await _store_in_one_statement(ctx, sends, marks or {})
    else:
        results = await _store_in_transaction(ctx, sends, marks or {})
    out: list[Outcome | BaseException] = []
    for index, repeat in slots:
        result = results[index]
        if repeat and isinstance(result, tuple):
            ack = result[0]
            result = (Ack(ack.msg_id, ack.conversation_id, ack.seq, ack.created_at_us,
                          duplicate=True), ())
        out.append(result)
    return out


async def _plain(ctx: Context, sends: list[Pending]) -> bool:
    """Whether no send of the batch needs more than its message row: no content finding
    and no medium to record (the persist hooks act on those only), and no webhook
    event, so the batch can be written in one statement."""
    hooked_apps = set()
    for item in sends:
        o = item.outgoing
        if o.findings or o.content.get("type") in ("image", "file"):
            return False
        if o.hooks:
            hooked_apps.add(o.app_id)
    if ctx.hooks is None:
        return True
    for app_id in hooked_apps:  # one look per app, not per send
        if (await ctx.hooks.get(app_id)).has_endpoints:
            return False
    return True


async def _store_in_one_statement(ctx: Context, sends: list[Pending],
                                  marks: dict[MarkKey, int]) -> list[Outcome | BaseException]:
    now = now_us()
    msg_ids = [ids.new_message_id() for _ in sends]
    o = [item.outgoing for item in sends]
    marked = sorted(marks.items())
    async with ctx.db.driver() as pg:
        rows = await pg.fetch(
            ONE_STATEMENT,
            [x.app_id for x in o], [x.conversation_id for x in o], [x.sender for x in o],
            [item.recipient for item in sends],
            ["system" if x.sender == SYSTEM_SENDER else "p2p" for x in o],
            [x.client_msg_id for x in o], msg_ids, [item.encoded for item in sends],
            [x.risk for x in o], now,
            [k[0] for k, _ in marked], [k[1] for k, _ in marked], [k[2] for k, _ in marked],
            [seq for _, seq in marked])
    stored = {r["msg_id"]: r["seq"] for r in rows if r["kind"] == "s"}
    earlier = {r["ord"]: r for r in rows if r["kind"] == "e"}
    results: list[Outcome | BaseException] = []
    for n, (x, msg_id) in enumerate(zip(o, msg_ids, strict=True), start=1):
        if msg_id in stored:
            results.append((Ack(msg_id, x.conversation_id, stored[msg_id], now), x.members))
        elif n in earlier:
            r = earlier[n]
            results.append((Ack(r["msg_id"], x.conversation_id, r["seq"], r["created_at_us"],
                                duplicate=True), ()))
        else:
            results.append(user_not_found())
    return results


async def _store_in_transaction(ctx: Context, sends: list[Pending], marks: dict[MarkKey, int]
                                ) -> list[Outcome | BaseException]:
    """The general path: a statement per step, in one transaction, with the persist hooks
    and webhook events in it."""
    now = now_us()
    outcomes: list[Outcome | BaseException | None] = [None] * len(sends)
    async with ctx.db.write() as conn:
        earlier, missing = await _look_up(conn, sends) if sends else ({}, set())
        fresh: list[int] = []
        for i, item in enumerate(sends):
            key = item.resend_key
            if key is not None and key in earlier:
                outcomes[i] = (earlier[key], ())
            elif (item.outgoing.app_id, item.recipient) in missing:
                outcomes[i] = user_not_found()
            else:
                fresh.append(i)

        seqs = await _take_seqs(ctx, conn, [sends[i] for i in fresh], now)
        rows = []
        for i in fresh:
            o = sends[i].outgoing
            msg_id = ids.new_message_id()
            seq = seqs[(o.app_id, o.conversation_id)].pop(0)
            outcomes[i] = (Ack(msg_id, o.conversation_id, seq, now), o.members)
            rows.append({"msg_id": msg_id, "app_id": o.app_id,
                         "conversation_id": o.conversation_id, "seq": seq,
                         "sender_id": o.sender, "client_msg_id": o.client_msg_id,
                         "content": sends[i].encoded, "created_at_us": now,
                         "countable": True, "risk": o.risk})
        if rows:
            await conn.execute(messages.insert(), rows)

        readers: dict[MarkKey, int] = {}
        for i in fresh:
            item, (ack, _) = sends[i], outcomes[i]  # type: ignore[misc]
            o = item.outgoing
            await record_stored(ctx, conn, o, ack.msg_id, ack.seq, item.encoded, now)
            if o.sender != SYSTEM_SENDER:
                readers[(o.app_id, o.sender, o.conversation_id)] = ack.seq
        await write_marks(conn, readers, marks)
    return outcomes  # type: ignore[return-value]


async def _look_up(conn: AsyncConnection, batch: list[Pending]
                  ) -> tuple[dict[ResendKey, Ack], set[tuple[int, str]]]:
    """One round trip for two questions: which sends of the batch were stored before
    (by resend key, with their first ack), and which recipients do not exist."""
    keys = sorted({k for k in (item.resend_key for item in batch) if k is not None})
    wanted = {(item.outgoing.app_id, item.recipient) for item in batch}
    c, u = messages.c, users.c
    found_users = select(literal("u").label("kind"), u.app_id, u.id.label("a"),
                         *(null().label(n) for n in _RESEND_COLUMNS)
                         ).where(tuple_(u.app_id, u.id).in_(sorted(wanted)))
    query: Any = found_users
    if keys:
        query = union_all(found_users, select(
            literal("m").label("kind"), c.app_id, c.conversation_id.label("a"), c.sender_id,
            c.client_msg_id, c.msg_id, c.seq, c.created_at_us,
        ).where(tuple_(c.app_id, c.conversation_id, c.sender_id, c.client_msg_id).in_(keys)))
    earlier: dict[ResendKey, Ack] = {}
    present = set()
    for r in await conn.execute(query):
        if r.kind == "u":
            present.add((r.app_id, r.a))
        else:
            earlier[(r.app_id, r.a, r.sender_id, r.client_msg_id)] = Ack(
                r.msg_id, r.a, r.seq, r.created_at_us, duplicate=True)
    return earlier, wanted - present


_RESEND_COLUMNS = ("sender_id", "client_msg_id", "msg_id", "seq", "created_at_us")


async def _take_seqs(ctx: Context, conn: AsyncConnection, batch: list[Pending], now: int
                     ) -> dict[tuple[int, str], list[int]]:
    """The next seqs of each conversation, in the order its sends queued.

    One upsert adds each conversation's count to its last seq, creating the
    conversation on its first message; its row stays locked until the transaction
    ends, which orders writers on every node. Rows are taken in key order, so two
    nodes' batches cannot lock each other out."""
    counts: dict[tuple[int, str], int] = {}
    kinds: dict[tuple[int, str], Outgoing] = {}
    for item in batch:
        key = (item.outgoing.app_id, item.outgoing.conversation_id)
        counts[key] = counts.get(key, 0) + 1
        kinds[key] = item.outgoing
    if not counts:
        return {}
    dialect: Any = sqlite if ctx.db.is_sqlite else postgresql
    stmt = dialect.insert(conversations)
    upsert = stmt.on_conflict_do_update(
        index_elements=[conversations.c.app_id, conversations.c.id],
        set_={"last_seq": conversations.c.last_seq + stmt.excluded.last_seq,
              "last_message_at_us": stmt.excluded.last_message_at_us},
    ).returning(conversations.c.app_id, conversations.c.id, conversations.c.last_seq)
    taken = await conn.execute(upsert, [
        {"app_id": app_id, "id": conv, "last_seq": n, "last_message_at_us": now,
         "kind": "system" if kinds[(app_id, conv)].sender == SYSTEM_SENDER else "p2p"}
        for (app_id, conv), n in sorted(counts.items())
    ])
    seqs: dict[tuple[int, str], list[int]] = {}
    created = []
    for row in taken:
        key = (row.app_id, row.id)
        n = counts[key]
        seqs[key] = list(range(row.last_seq - n + 1, row.last_seq + 1))
        if row.last_seq == n:  # it had none before: the conversation is new
            created += [{"app_id": row.app_id, "user_id": user, "conversation_id": row.id,
                         "peer_id": peer_of(row.id, user), "read_seq": 0,
                         "delivered_seq": 0} for user in kinds[key].members]
    if created:
        await conn.execute(dialect.insert(members).on_conflict_do_nothing(), created)
    return seqs


async def write_marks(conn: AsyncConnection, read: dict[MarkKey, int],
                      delivered: dict[MarkKey, int]) -> None:
    """Move read and delivery marks forward in one statement, never back, and a delivery
    mark never past the end of the user's window: the conversation's last seq, or for a
    former group member the seq they left at. A mark past it counts as one at it: the
    node keeps only the highest ack, and a stray one past the end must not hide a good
    one behind it. Rows go in key order, as everywhere in a batch, so that two writers
    cannot deadlock on them."""
    if not read and not delivered:
        return
    m, conv = members.c, conversations.c
    last_seq = (select(conv.last_seq).where(conv.app_id == m.app_id,
                                            conv.id == m.conversation_id).scalar_subquery())
    high = case((and_(m.left_seq.is_not(None), m.left_seq < last_seq), m.left_seq),
                else_=last_seq)
    r, d = bindparam("r", type_=BigInteger), bindparam("d", type_=BigInteger)
    held = case((d < high, d), else_=high)
    await conn.execute(
        update(members)
        .where(m.app_id == bindparam("a"), m.user_id == bindparam("u"),
               m.conversation_id == bindparam("c"))
        .values(read_seq=case((r > m.read_seq, r), else_=m.read_seq),
                delivered_seq=case((held > m.delivered_seq, held), else_=m.delivered_seq)),
        [{"a": a, "u": u, "c": c, "r": read.get(key, 0), "d": delivered.get(key, 0)}
         for key in sorted(read.keys() | delivered.keys()) for a, u, c in [key]],
    )


# The whole of a plain batch on PostgreSQL, as one statement: one round trip, and a
# transaction by itself, so no BEGIN and COMMIT either. Under load every round trip
# waits for a turn of a busy event loop (about 5 ms each at 1,000 sends/s here), so a
# batch of ten statements took ~50 ms; this one takes one turn. The steps are those of
# the general path: resends and unknown recipients drop out, each conversation's count
# is added to its last seq under its row lock (rows in key order), the messages get the
# seqs in queue order, a new conversation gets its members (the sender having read up to
# their message), and read and delivery marks move forward, never back (a delivery mark
# held to the user's window, as in write_marks).
# $1-$9: per send, in queue order. $10: now. $11-$14: delivery marks.
ONE_STATEMENT = """
WITH item AS (
    SELECT * FROM unnest($1::int[], $2::text[], $3::text[], $4::text[], $5::text[],
                         $6::text[], $7::text[], $8::text[], $9::text[])
        WITH ORDINALITY AS t(app_id, conv, sender, recipient, kind, cmid, msg_id,
                             content, risk, ord)
), earlier AS (
    SELECT i.ord, m.msg_id, m.seq, m.created_at_us
    FROM item i JOIN messages m ON m.app_id = i.app_id AND m.conversation_id = i.conv
        AND m.sender_id = i.sender AND m.client_msg_id = i.cmid
), fresh AS (
    SELECT i.*, row_number() OVER (PARTITION BY i.app_id, i.conv ORDER BY i.ord) AS n
    FROM item i
    WHERE NOT EXISTS (SELECT 1 FROM earlier e WHERE e.ord = i.ord)
        AND EXISTS (SELECT 1 FROM users u WHERE u.app_id = i.app_id AND u.id = i.recipient)
), counts AS (
    SELECT app_id, conv, min(kind) AS kind, count(*) AS k FROM fresh GROUP BY app_id, conv
), taken AS (
    INSERT INTO conversations AS c (app_id, id, kind, last_seq, last_message_at_us)
    SELECT app_id, conv, kind, k, $10 FROM counts ORDER BY app_id, conv
    ON CONFLICT (app_id, id) DO UPDATE
        SET last_seq = c.last_seq + excluded.last_seq,
            last_message_at_us = excluded.last_message_at_us
    RETURNING c.app_id, c.id, c.last_seq
), numbered AS (
    SELECT f.*, t.last_seq - cn.k + f.n AS seq, t.last_seq = cn.k AS created
    FROM fresh f
    JOIN counts cn ON cn.app_id = f.app_id AND cn.conv = f.conv
    JOIN taken t ON t.app_id = f.app_id AND t.id = f.conv
), stored AS (
    INSERT INTO messages (msg_id, app_id, conversation_id, seq, sender_id, client_msg_id,
                          content, created_at_us, countable, risk)
    SELECT msg_id, app_id, conv, seq, sender, cmid, content, $10, true, risk FROM numbered
    RETURNING msg_id, seq
), read_up_to AS (
    SELECT app_id, sender AS user_id, conv, max(seq) AS seq, bool_or(created) AS created
    FROM numbered WHERE sender <> '' GROUP BY app_id, sender, conv
), new_members AS (
    INSERT INTO conversation_members (app_id, user_id, conversation_id, peer_id, read_seq,
                                      delivered_seq)
    SELECT n.app_id, who.user_id,  n.conv, who.peer_id, coalesce(r.seq, 0), 0
    FROM (SELECT DISTINCT app_id, conv FROM numbered WHERE created) n
    CROSS JOIN LATERAL (
        SELECT split_part(n.conv, ':', 2) AS user_id,
               CASE WHEN n.conv LIKE 'p2p:%' THEN split_part(n.conv, ':', 3) ELSE '' END
        UNION ALL
        SELECT split_part(n.conv, ':', 3), split_part(n.conv, ':', 2)
        WHERE n.conv LIKE 'p2p:%'
    ) AS who(user_id, peer_id)
    LEFT JOIN read_up_to r ON r.app_id = n.app_id AND r.conv = n.conv
        AND r.user_id = who.user_id
    ON CONFLICT DO NOTHING
), marks AS (
    SELECT app_id, user_id, conv, max(r) AS r, max(d) AS d FROM (
        SELECT app_id, user_id, conv, seq AS r, 0::bigint AS d FROM read_up_to WHERE NOT created
        UNION ALL
        SELECT a, u, c, 0, s FROM unnest($11::int[], $12::text[], $13::text[], $14::bigint[])
            AS d(a, u, c, s)
    ) AS both_kinds GROUP BY app_id, user_id, conv
), marked AS (
    UPDATE conversation_members m
    SET read_seq = greatest(m.read_seq, mk.r),
        delivered_seq = greatest(m.delivered_seq,
                                 least(mk.d, c.last_seq, coalesce(m.left_seq, c.last_seq)))
    FROM marks mk JOIN conversations c ON c.app_id = mk.app_id AND c.id = mk.conv
    WHERE m.app_id = mk.app_id AND m.user_id = mk.user_id AND m.conversation_id = mk.conv
)
SELECT 's' AS kind, msg_id, seq, 0::bigint AS ord, 0::bigint AS created_at_us FROM stored
UNION ALL
SELECT 'e', msg_id, seq, ord, created_at_us FROM earlier
"""
