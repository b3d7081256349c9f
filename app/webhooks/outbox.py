"""Writing events into the outbox, inside the caller's transaction.

Most apps have no endpoint, and most messages must not pay for webhooks they do not
use: :class:`HookDirectory` remembers, per app, whether it has an enabled endpoint and
its before-send settings, for ``PARLEY_WEBHOOK_CACHE_SECONDS``. A new endpoint hears
events from then on; a message sent in the cache window before it may not be sent to it.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from app.storage.db import Database
from app.storage.models import apps, webhook_endpoints, webhook_events
from app.timefmt import iso_from_us

EVENT_TYPES = (
    "message.sent",
    "message.recalled",
    "user.connected",
    "user.disconnected",
    "user.imported",
    "user.updated",
    "user.deleted",
    "group.created",
    "group.dismissed",
    "group.member_joined",
    "group.member_left",
    "group.member_removed",
)
PING = "webhook.ping"


@dataclass(frozen=True, slots=True)
class BeforeSend:
    url: str
    secret: str
    timeout_ms: int
    on_error: str  # allow | reject


@dataclass(frozen=True, slots=True)
class AppHooks:
    app_key: str
    has_endpoints: bool
    before_send: BeforeSend | None


class HookDirectory:
    """Per-app webhook settings, cached briefly so the send path rarely reads them."""

    def __init__(self, db: Database, ttl_seconds: float) -> None:
        self._db = db
        self._ttl = ttl_seconds
        self._cache: dict[int, tuple[float, AppHooks]] = {}
        # One read per app at a time: when the copy runs out under load, the sends
        # that find it stale wait for the same read instead of each making their own.
        self._loading: dict[int, asyncio.Future[AppHooks]] = {}

    def forget(self, app_id: int) -> None:
        """This node changed the app's hooks: read them afresh next time."""
        self._cache.pop(app_id, None)
        self._loading.pop(app_id, None)

    async def get(self, app_id: int) -> AppHooks:
        """The app's settings as of at most one period and one read ago. A copy that ran
        out is still answered with while it is read afresh, so that the sends of that
        moment do not all wait for the read."""
        hit = self._cache.get(app_id)
        if hit is not None and time.monotonic() - hit[0] < self._ttl:
            return hit[1]
        loading = self._loading.get(app_id) or self._reload(app_id)
        if hit is not None:
            return hit[1]
        return await asyncio.shield(loading)

    def _reload(self, app_id: int) -> asyncio.Future[AppHooks]:
        started = time.monotonic()
        loading = asyncio.ensure_future(self._load(app_id))
        self._loading[app_id] = loading

        def loaded(done: asyncio.Future[AppHooks]) -> None:
            if self._loading.get(app_id) is not done:
                return  # forgotten while it was read: it may predate the change
            del self._loading[app_id]
            if not done.cancelled() and done.exception() is None:
                self._cache[app_id] = (started, done.result())

        loading.add_done_callback(loaded)
        return loading

    async def _load(self, app_id: int) -> AppHooks:
        async with self._db.read() as conn:
            row = (await conn.execute(select(apps).where(apps.c.id == app_id))).one()
            endpoints = await conn.scalar(
                select(func.count()).select_from(webhook_endpoints).where(
                    webhook_endpoints.c.app_id == app_id, webhook_endpoints.c.enabled.is_(True))
            )
        before = None
        if row.before_send_url:
            before = BeforeSend(row.before_send_url, row.before_send_secret or "",
                                row.before_send_timeout_ms or 2000,
                                row.before_send_on_error or "reject")
        return AppHooks(row.key, bool(endpoints), before)


def new_event_id() -> str:
    return "ev_" + secrets.token_hex(12)


def event_body(event_id: str, event_type: str, app_key: str, data: Any, at_us: int) -> str:
    return orjson.dumps({
        "event_id": event_id,
        "type": event_type,
        "created_at": iso_from_us(at_us),
        "app_key": app_key,
        "data": data,
    }).decode()


async def emit(conn: AsyncConnection, directory: HookDirectory | None, app_id: int,
               event_type: str, data: Any, now_us: int) -> None:
    """Queue an event in the caller's transaction; nothing when the app has no endpoint."""
    if directory is None:
        return
    hooks = await directory.get(app_id)
    if not hooks.has_endpoints:
        return
    event_id = new_event_id()
    await conn.execute(insert(webhook_events).values(
        event_id=event_id, app_id=app_id, type=event_type,
        body=event_body(event_id, event_type, hooks.app_key, data, now_us),
        fanned_out=False, created_at_us=now_us,
    ))


async def emit_many(conn: AsyncConnection, directory: HookDirectory | None, app_id: int,
                    event_type: str, datas: list[Any], now_us: int) -> None:
    """Queue an event for each of ``datas``, in their order, with one statement: a batch
    of a thousand imported users must not cost a thousand round trips."""
    if directory is None or not datas:
        return
    hooks = await directory.get(app_id)
    if not hooks.has_endpoints:
        return
    rows = []
    for data in datas:
        event_id = new_event_id()
        rows.append({"event_id": event_id, "app_id": app_id, "type": event_type,
                     "body": event_body(event_id, event_type, hooks.app_key, data, now_us),
                     "fanned_out": False, "created_at_us": now_us})
    await conn.execute(insert(webhook_events), rows)


async def record(db: Database, directory: HookDirectory | None, app_id: int,
                 event_type: str, data: Any, now_us: int) -> None:
    """An event with no transaction of its own to join, such as a connection opening."""
    if directory is None or not (await directory.get(app_id)).has_endpoints:
        return
    async with db.write() as conn:
        await emit(conn, directory, app_id, event_type, data, now_us)
