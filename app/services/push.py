"""Server push: one notice to many users at once, and broadcasts to every user of an app.

A push is up to 1,000 users in one call, each with its own outcome. A broadcast is
accepted at once and sent by a background worker on any node, a batch of users at a time,
paced by PARLEY_BROADCAST_RATE_PER_SECOND so live traffic keeps the server. Each user's
notice carries the client_msg_id ``broadcast:<id>``, so a batch that a dying node half
sent is sent again without anyone getting the notice twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import insert, select, update

from app.errors import NotFound, ParleyError
from app.services import messages
from app.services.context import Context
from app.storage.db import now_us
from app.storage.models import broadcasts, users
from app.timefmt import iso_from_us

logger = logging.getLogger(__name__)

# A node that holds a broadcast renews this lease with every batch; another node takes
# over one whose lease ran out.
LEASE_SECONDS = 30


@dataclass(frozen=True, slots=True)
class PushOutcome:
    user_id_md5: str
    status: str  # sent | error
    msg_id: str | None = None
    error: dict[str, Any] | None = None


async def push(ctx: Context, app_id: int, recipients: list[str], content: Any,
               hooks: bool = True) -> list[PushOutcome]:
    """A system notice to each user; an unknown user fails alone."""
    checked = messages.validate_content(ctx, content)
    outcomes = []
    for user in dict.fromkeys(recipients):
        try:
            ack = await messages.send_notice(ctx, app_id, user, checked, hooks=hooks)
            outcomes.append(PushOutcome(user, "sent", ack.msg_id))
        except ParleyError as exc:
            outcomes.append(PushOutcome(user, "error", error=exc.to_dict()))
    return outcomes


def broadcast_view(row: Any) -> dict[str, Any]:
    return {"broadcast_id": row.id, "status": row.status, "sent": row.sent,
            "created_at": iso_from_us(row.created_at_us),
            "updated_at": iso_from_us(row.updated_at_us)}


async def start_broadcast(ctx: Context, app_id: int, content: Any, hooks: bool = True
                          ) -> dict[str, Any]:
    encoded = orjson.dumps(messages.validate_content(ctx, content)).decode()
    now = now_us()
    async with ctx.db.write() as conn:
        new_id = await conn.scalar(insert(broadcasts).values(
            app_id=app_id, content=encoded, hooks=hooks, status="running", cursor="", sent=0,
            lease_until_us=0, created_at_us=now, updated_at_us=now,
        ).returning(broadcasts.c.id))
    return await get_broadcast(ctx, app_id, int(new_id or 0))


async def get_broadcast(ctx: Context, app_id: int, broadcast_id: int) -> dict[str, Any]:
    async with ctx.db.read() as conn:
        row = (await conn.execute(select(broadcasts).where(
            broadcasts.c.app_id == app_id, broadcasts.c.id == broadcast_id))).first()
    if row is None:
        raise NotFound("No such broadcast in this app.", code="broadcast_not_found")
    return broadcast_view(row)


class Broadcaster:
    """The background worker: takes a running broadcast whose lease is free, and sends it."""

    def __init__(self, ctx: Context, poll_seconds: float = 1.0) -> None:
        self.ctx = ctx
        self.poll_seconds = poll_seconds
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="broadcaster")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            try:
                job = await self._claim()
                if job is not None:
                    await self._work(job)
                    continue
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("broadcast pass failed")
            await asyncio.sleep(self.poll_seconds)

    async def _claim(self) -> Any:
        now = now_us()
        async with self.ctx.db.read() as conn:  # idle nodes do not take the write lock
            waiting = await conn.scalar(select(broadcasts.c.id).where(
                broadcasts.c.status == "running", broadcasts.c.lease_until_us <= now).limit(1))
        if waiting is None:
            return None
        async with self.ctx.db.write() as conn:
            query = (select(broadcasts).where(broadcasts.c.status == "running",
                                              broadcasts.c.lease_until_us <= now)
                     .order_by(broadcasts.c.id).limit(1))
            if not self.ctx.db.is_sqlite:
                query = query.with_for_update(skip_locked=True)
            row = (await conn.execute(query)).first()
            if row is None:
                return None
            await conn.execute(update(broadcasts).where(broadcasts.c.id == row.id)
                               .values(lease_until_us=now + LEASE_SECONDS * 1_000_000))
        return row

    async def _work(self, job: Any) -> None:
        """Send batch after batch until every user has the notice."""
        settings = self.ctx.settings
        content = orjson.loads(job.content)
        cursor, sent = job.cursor, job.sent
        while True:
            async with self.ctx.db.read() as conn:
                batch = list(await conn.scalars(
                    select(users.c.id).where(users.c.app_id == job.app_id, users.c.id > cursor)
                    .order_by(users.c.id).limit(settings.broadcast_batch)))
            for user in batch:
                with contextlib.suppress(ParleyError):  # deleted meanwhile: skip
                    await messages.send_notice(self.ctx, job.app_id, user, content,
                                               f"broadcast:{job.id}", hooks=job.hooks)
            if batch:
                cursor, sent = batch[-1], sent + len(batch)
            done = len(batch) < settings.broadcast_batch
            await self._advance(job.id, cursor, sent, done)
            if done:
                logger.info("broadcast done", extra={"app": job.app_id, "sent": sent})
                return
            await asyncio.sleep(len(batch) / settings.broadcast_rate_per_second)

    async def _advance(self, broadcast_id: int, cursor: str, sent: int, done: bool) -> None:
        now = now_us()
        async with self.ctx.db.write() as conn:
            await conn.execute(update(broadcasts).where(broadcasts.c.id == broadcast_id).values(
                cursor=cursor, sent=sent, status="done" if done else "running",
                lease_until_us=0 if done else now + LEASE_SECONDS * 1_000_000,
                updated_at_us=now))
