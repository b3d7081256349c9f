"""Sends queued events to their endpoints, with retries, on every node.

Each pass (every PARLEY_WEBHOOK_POLL_SECONDS) does two things:

1. fan out: each new event gets a delivery row for every enabled endpoint of its app
   that subscribed to its type;
2. claim and send: due deliveries are claimed by pushing ``next_attempt_at_us`` past the
   request timeout (a lease), then sent. A node that dies mid-send leaves the delivery
   due again once the lease runs out, so nothing is lost and the receiver may see an
   event twice: it de-duplicates by event ID.

On PostgreSQL, ``FOR UPDATE SKIP LOCKED`` lets several nodes claim side by side.

Which answers are retried: a timeout or connection error, any 5xx, 408 and 429. Any
other answer outside 2xx fails the delivery at once. Retries back off exponentially
with jitter until the event is PARLEY_WEBHOOK_RETRY_MAX_SECONDS old. An endpoint whose
deliveries fail PARLEY_WEBHOOK_DISABLE_AFTER_FAILURES times in a row is disabled, with
the reason kept for the app to read.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from app.config import Settings
from app.errors import ParleyError
from app.storage.db import Database, now_us
from app.storage.models import (
    webhook_attempts,
    webhook_deliveries,
    webhook_endpoints,
    webhook_events,
)
from app.webhooks import safety, signing

logger = logging.getLogger(__name__)

RETRYABLE_STATUS = {408, 429}
BATCH = 100
BACKOFF_CAP_SECONDS = 3600


@dataclass(frozen=True, slots=True)
class Job:
    delivery_id: int
    endpoint_id: int
    url: str
    secret: str
    event_id: str
    event_type: str
    body: str
    event_created_at_us: int
    attempts: int


@dataclass(frozen=True, slots=True)
class Result:
    status_code: int | None
    error: str | None
    duration_ms: int

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300

    @property
    def retryable(self) -> bool:
        code = self.status_code
        return code is None or code >= 500 or code in RETRYABLE_STATUS


class Dispatcher:
    def __init__(self, settings: Settings, db: Database) -> None:
        self.settings = settings
        self.db = db
        self.http = httpx.AsyncClient(
            timeout=settings.webhook_timeout_seconds, follow_redirects=False
        )
        # Deliveries under way per endpoint. A pass claims no more than an endpoint's
        # free places, so no claimed delivery waits so long that its lease runs out.
        self._busy: dict[int, int] = {}
        self._task: asyncio.Task[None] | None = None
        self._in_flight: set[asyncio.Task[None]] = set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="webhook-dispatcher")

    async def stop(self, grace_seconds: float = 5.0) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._in_flight:
            await asyncio.wait(self._in_flight, timeout=grace_seconds)
        await self.http.aclose()

    async def _run(self) -> None:
        while True:
            try:
                await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("webhook pass failed")
            await asyncio.sleep(self.settings.webhook_poll_seconds)

    async def run_once(self) -> int:
        """One pass: fan out new events, claim due deliveries, start sending them."""
        events, due = await self._pending_work()
        if events:
            await self._fan_out()
        if not (events or due):
            return 0
        jobs = await self._claim()
        for job in jobs:
            task = asyncio.create_task(self._deliver(job))
            self._in_flight.add(task)
            task.add_done_callback(self._in_flight.discard)
        return len(jobs)

    async def _pending_work(self) -> tuple[bool, bool]:
        """Whether there are events to fan out and deliveries due: a cheap read first, so
        an idle node does not take the write lock (on SQLite, the whole file) 5 times a
        second for nothing."""
        now = now_us()
        async with self.db.read() as conn:
            events = await conn.scalar(select(webhook_events.c.id)
                                       .where(webhook_events.c.fanned_out.is_(False)).limit(1))
            due = await conn.scalar(select(webhook_deliveries.c.id).where(
                webhook_deliveries.c.status == "pending",
                webhook_deliveries.c.next_attempt_at_us <= now).limit(1))
        return events is not None, due is not None

    async def _fan_out(self) -> None:
        now = now_us()
        async with self.db.write() as conn:
            query = (select(webhook_events.c.id, webhook_events.c.app_id, webhook_events.c.type)
                     .where(webhook_events.c.fanned_out.is_(False))
                     .order_by(webhook_events.c.id).limit(BATCH))
            if not self.db.is_sqlite:
                query = query.with_for_update(skip_locked=True)
            events = list(await conn.execute(query))
            if not events:
                return
            endpoints = await _endpoints_of(conn, {e.app_id for e in events})
            rows = [
                {"app_id": e.app_id, "endpoint_id": ep.id, "event_row_id": e.id,
                 "status": "pending", "attempts": 0, "next_attempt_at_us": now,
                 "created_at_us": now, "updated_at_us": now}
                for e in events
                for ep in endpoints.get(e.app_id, [])
                if "*" in ep.event_types or e.type in ep.event_types
            ]
            if rows:
                await conn.execute(insert(webhook_deliveries), rows)
            await conn.execute(update(webhook_events)
                               .where(webhook_events.c.id.in_([e.id for e in events]))
                               .values(fanned_out=True))

    async def _claim(self) -> list[Job]:
        now = now_us()
        lease = int((self.settings.webhook_timeout_seconds + 5) * 1_000_000)
        async with self.db.write() as conn:
            query = (
                select(webhook_deliveries.c.id, webhook_deliveries.c.endpoint_id,
                       webhook_deliveries.c.attempts, webhook_endpoints.c.url,
                       webhook_endpoints.c.secret, webhook_events.c.event_id,
                       webhook_events.c.type, webhook_events.c.body,
                       webhook_events.c.created_at_us)
                .join(webhook_endpoints,
                      webhook_endpoints.c.id == webhook_deliveries.c.endpoint_id)
                .join(webhook_events, webhook_events.c.id == webhook_deliveries.c.event_row_id)
                .where(webhook_deliveries.c.status == "pending",
                       webhook_deliveries.c.next_attempt_at_us <= now,
                       webhook_endpoints.c.enabled.is_(True))
                .order_by(webhook_deliveries.c.next_attempt_at_us).limit(BATCH)
            )
            if not self.db.is_sqlite:
                query = query.with_for_update(of=webhook_deliveries, skip_locked=True)
            rows = self._fit(list(await conn.execute(query)))
            if rows:
                await conn.execute(
                    update(webhook_deliveries)
                    .where(webhook_deliveries.c.id.in_([r.id for r in rows]))
                    .values(next_attempt_at_us=now + lease,
                            attempts=webhook_deliveries.c.attempts + 1, updated_at_us=now)
                )
        return [Job(r.id, r.endpoint_id, r.url, r.secret, r.event_id, r.type, r.body,
                    r.created_at_us, r.attempts + 1) for r in rows]

    def _fit(self, rows: list[Any]) -> list[Any]:
        """Keep the rows each endpoint has room for, and count them as under way."""
        room = self.settings.webhook_concurrency_per_endpoint
        kept = []
        for row in rows:
            if self._busy.get(row.endpoint_id, 0) < room:
                self._busy[row.endpoint_id] = self._busy.get(row.endpoint_id, 0) + 1
                kept.append(row)
        return kept

    async def _deliver(self, job: Job) -> None:
        try:
            result = await self.send(job.url, job.secret, job.event_id, job.event_type,
                                     job.body.encode())
            await self._record(job, result)
        except Exception:
            logger.exception("could not record a webhook attempt",
                             extra={"delivery": job.delivery_id})
        finally:
            self._busy[job.endpoint_id] -= 1

    async def send(self, url: str, secret: str, event_id: str, event_type: str,
                   body: bytes) -> Result:
        """One signed POST; the answer's body is read only up to a limit."""
        started = time.perf_counter()
        try:
            await safety.check(url, self.settings.webhook_allow_private)
            headers = signing.headers(secret, body, event_id, event_type)
            async with self.http.stream("POST", url, content=body, headers=headers) as reply:
                await _read_some(reply, self.settings.webhook_max_response_bytes)
                code: int | None = reply.status_code
                error = None if 200 <= reply.status_code < 300 else f"HTTP {reply.status_code}"
        except ParleyError as exc:
            code, error = None, exc.code
        except httpx.TimeoutException:
            code, error = None, "timeout"
        except httpx.HTTPError as exc:
            code, error = None, type(exc).__name__
        return Result(code, error, int((time.perf_counter() - started) * 1000))

    async def _record(self, job: Job, result: Result) -> None:
        now = now_us()
        status, next_at = self._next_state(job, result, now)
        async with self.db.write() as conn:
            await conn.execute(insert(webhook_attempts).values(
                delivery_id=job.delivery_id, at_us=now, status_code=result.status_code,
                error=result.error, duration_ms=result.duration_ms))
            await conn.execute(update(webhook_deliveries)
                               .where(webhook_deliveries.c.id == job.delivery_id)
                               .values(status=status, next_attempt_at_us=next_at,
                                       last_status_code=result.status_code,
                                       last_error=result.error, updated_at_us=now))
            await self._score_endpoint(conn, job.endpoint_id, result, now)
        logger.debug("webhook attempt", extra={"delivery": job.delivery_id, "status": status,
                                               "code": result.status_code})

    def _next_state(self, job: Job, result: Result, now: int) -> tuple[str, int]:
        if result.ok:
            return "delivered", now
        if not result.retryable:
            return "failed", now
        s = self.settings
        delay = min(BACKOFF_CAP_SECONDS, s.webhook_retry_base_seconds * 2 ** (job.attempts - 1))
        next_at = now + int(delay * random.uniform(0.5, 1.0) * 1_000_000)
        if next_at - job.event_created_at_us > s.webhook_retry_max_seconds * 1_000_000:
            return "dead", now
        return "pending", next_at

    async def _score_endpoint(self, conn: AsyncConnection, endpoint_id: int, result: Result,
                              now: int) -> None:
        if result.ok:
            await conn.execute(update(webhook_endpoints)
                               .where(webhook_endpoints.c.id == endpoint_id)
                               .values(consecutive_failures=0))
            return
        failures = await conn.scalar(
            update(webhook_endpoints).where(webhook_endpoints.c.id == endpoint_id)
            .values(consecutive_failures=webhook_endpoints.c.consecutive_failures + 1)
            .returning(webhook_endpoints.c.consecutive_failures)
        )
        limit = self.settings.webhook_disable_after_failures
        if failures is not None and failures >= limit:
            reason = f"{failures} failed deliveries in a row; the last: {result.error}"
            await conn.execute(update(webhook_endpoints)
                               .where(webhook_endpoints.c.id == endpoint_id)
                               .values(enabled=False, disabled_reason=reason[:512],
                                       updated_at_us=now))
            logger.info("webhook endpoint disabled", extra={"endpoint": endpoint_id})


async def _endpoints_of(conn: AsyncConnection, app_ids: set[int]) -> dict[int, list[Any]]:
    rows = await conn.execute(
        select(webhook_endpoints.c.id, webhook_endpoints.c.app_id,
               webhook_endpoints.c.event_types)
        .where(webhook_endpoints.c.app_id.in_(app_ids), webhook_endpoints.c.enabled.is_(True))
    )
    found: dict[int, list[Any]] = {}
    for row in rows:
        found.setdefault(row.app_id, []).append(row)
    return found


async def _read_some(reply: httpx.Response, limit: int) -> bytes:
    """Read at most ``limit`` bytes of the answer: a receiver cannot flood Parley."""
    taken = bytearray()
    async for chunk in reply.aiter_raw():
        taken += chunk[: limit - len(taken)]
        if len(taken) >= limit:
            break
    return bytes(taken)
