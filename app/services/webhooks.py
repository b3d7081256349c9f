"""Managing an app's webhooks: endpoints, the before-send hook, the delivery log, and
re-delivery. Sending is app/webhooks/dispatcher.py's job."""

from __future__ import annotations

import secrets
from typing import Any

from sqlalchemy import and_, delete, insert, select, update

from app.errors import InvalidRequest, NotFound
from app.services.context import Context
from app.storage.db import now_us
from app.storage.models import (
    apps,
    webhook_attempts,
    webhook_deliveries,
    webhook_endpoints,
    webhook_events,
)
from app.timefmt import iso_from_us
from app.webhooks import safety
from app.webhooks.outbox import EVENT_TYPES

ON_ERROR = ("allow", "reject")


def _new_secret() -> str:
    return "whsec_" + secrets.token_hex(24)


def _not_found() -> NotFound:
    return NotFound("No such webhook endpoint in this app.", code="webhook_not_found")


def _types(event_types: list[str]) -> list[str]:
    unknown = set(event_types) - set(EVENT_TYPES) - {"*"}
    if not event_types or unknown:
        raise InvalidRequest(f"event_types are '*' or among: {', '.join(EVENT_TYPES)}.",
                             code="invalid_event_type", unknown=sorted(unknown))
    return sorted(set(event_types))


def endpoint_view(row: Any, secret: str | None = None) -> dict[str, Any]:
    view = {
        "id": row.id,
        "url": row.url,
        "event_types": row.event_types,
        "enabled": row.enabled,
        "disabled_reason": row.disabled_reason,
        "consecutive_failures": row.consecutive_failures,
        "created_at": iso_from_us(row.created_at_us),
    }
    if secret is not None:
        view["secret"] = secret
    return view


def _forget(ctx: Context, app_id: int) -> None:
    if ctx.hooks is not None:
        ctx.hooks.forget(app_id)


async def create_endpoint(ctx: Context, app_id: int, url: str, event_types: list[str]
                          ) -> dict[str, Any]:
    await safety.check(url, ctx.settings.webhook_allow_private)
    secret, now = _new_secret(), now_us()
    async with ctx.db.write() as conn:
        new_id = await conn.scalar(insert(webhook_endpoints).values(
            app_id=app_id, url=url, event_types=_types(event_types), secret=secret,
            enabled=True, consecutive_failures=0, created_at_us=now, updated_at_us=now,
        ).returning(webhook_endpoints.c.id))
    _forget(ctx, app_id)
    return endpoint_view(await _endpoint(ctx, app_id, int(new_id or 0)), secret)


async def _endpoint(ctx: Context, app_id: int, endpoint_id: int) -> Any:
    async with ctx.db.read() as conn:
        row = (await conn.execute(select(webhook_endpoints).where(
            webhook_endpoints.c.app_id == app_id, webhook_endpoints.c.id == endpoint_id))).first()
    if row is None:
        raise _not_found()
    return row


async def get_endpoint(ctx: Context, app_id: int, endpoint_id: int) -> Any:
    return await _endpoint(ctx, app_id, endpoint_id)


async def list_endpoints(ctx: Context, app_id: int) -> list[dict[str, Any]]:
    async with ctx.db.read() as conn:
        rows = await conn.execute(select(webhook_endpoints)
                                  .where(webhook_endpoints.c.app_id == app_id)
                                  .order_by(webhook_endpoints.c.id))
        return [endpoint_view(r) for r in rows]


async def update_endpoint(ctx: Context, app_id: int, endpoint_id: int, fields: dict[str, Any]
                          ) -> dict[str, Any]:
    values: dict[str, Any] = {"updated_at_us": now_us()}
    if fields.get("url") is not None:
        await safety.check(fields["url"], ctx.settings.webhook_allow_private)
        values["url"] = fields["url"]
    if fields.get("event_types") is not None:
        values["event_types"] = _types(fields["event_types"])
    if fields.get("enabled") is not None:
        values["enabled"] = fields["enabled"]
        if fields["enabled"]:
            values.update(disabled_reason=None, consecutive_failures=0)
    async with ctx.db.write() as conn:
        done = await conn.execute(update(webhook_endpoints).where(
            webhook_endpoints.c.app_id == app_id, webhook_endpoints.c.id == endpoint_id
        ).values(values))
    if done.rowcount == 0:
        raise _not_found()
    _forget(ctx, app_id)
    return endpoint_view(await _endpoint(ctx, app_id, endpoint_id))


async def rotate_secret(ctx: Context, app_id: int, endpoint_id: int) -> dict[str, Any]:
    secret = _new_secret()
    async with ctx.db.write() as conn:
        done = await conn.execute(update(webhook_endpoints).where(
            webhook_endpoints.c.app_id == app_id, webhook_endpoints.c.id == endpoint_id
        ).values(secret=secret, updated_at_us=now_us()))
    if done.rowcount == 0:
        raise _not_found()
    return endpoint_view(await _endpoint(ctx, app_id, endpoint_id), secret)


async def delete_endpoint(ctx: Context, app_id: int, endpoint_id: int) -> None:
    async with ctx.db.write() as conn:
        done = await conn.execute(delete(webhook_endpoints).where(
            webhook_endpoints.c.app_id == app_id, webhook_endpoints.c.id == endpoint_id))
    if done.rowcount == 0:
        raise _not_found()
    _forget(ctx, app_id)


async def deliveries(ctx: Context, app_id: int, endpoint_id: int, status: str | None,
                     limit: int) -> list[dict[str, Any]]:
    """The newest deliveries to an endpoint, each with its attempts."""
    await _endpoint(ctx, app_id, endpoint_id)
    query = (select(webhook_deliveries, webhook_events.c.event_id, webhook_events.c.type)
             .join(webhook_events, webhook_events.c.id == webhook_deliveries.c.event_row_id)
             .where(webhook_deliveries.c.endpoint_id == endpoint_id)
             .order_by(webhook_deliveries.c.id.desc()).limit(limit))
    if status is not None:
        query = query.where(webhook_deliveries.c.status == status)
    async with ctx.db.read() as conn:
        rows = list(await conn.execute(query))
        tried = await conn.execute(select(webhook_attempts).where(
            webhook_attempts.c.delivery_id.in_([r.id for r in rows] or [0]))
            .order_by(webhook_attempts.c.id))
        by_delivery: dict[int, list[dict[str, Any]]] = {}
        for a in tried:
            by_delivery.setdefault(a.delivery_id, []).append({
                "at": iso_from_us(a.at_us), "status_code": a.status_code, "error": a.error,
                "duration_ms": a.duration_ms})
    return [{"id": r.id, "event_id": r.event_id, "type": r.type, "status": r.status,
             "attempts": r.attempts, "last_status_code": r.last_status_code,
             "last_error": r.last_error,
             "next_attempt_at": iso_from_us(r.next_attempt_at_us) if r.status == "pending"
             else None,
             "log": by_delivery.get(r.id, [])} for r in rows]


async def redeliver(ctx: Context, app_id: int, *, event_id: str | None = None,
                    start_us: int | None = None, end_us: int | None = None) -> int:
    """Queue events again, by ID or by time range [start, end), for every endpoint that
    was meant to get them; returns how many deliveries were queued."""
    if (event_id is None) == (start_us is None or end_us is None):
        raise InvalidRequest("Give an event_id, or from and to.", code="invalid_request")
    where = [webhook_events.c.app_id == app_id]
    if event_id is not None:
        where.append(webhook_events.c.event_id == event_id)
    else:
        where += [webhook_events.c.created_at_us >= start_us,
                  webhook_events.c.created_at_us < end_us]
    now = now_us()
    async with ctx.db.write() as conn:
        found = select(webhook_events.c.id).where(and_(*where))
        done = await conn.execute(update(webhook_deliveries)
                                  .where(webhook_deliveries.c.event_row_id.in_(found))
                                  .values(status="pending", next_attempt_at_us=now,
                                          updated_at_us=now))
    if event_id is not None and done.rowcount == 0:
        raise NotFound("No delivery of that event to re-send.", code="event_not_found")
    return int(done.rowcount or 0)


async def set_before_send(ctx: Context, app_id: int, url: str, timeout_ms: int,
                          on_error: str) -> dict[str, Any]:
    if on_error not in ON_ERROR:
        raise InvalidRequest("on_error is allow or reject.", code="invalid_request")
    limit = ctx.settings.before_send_timeout_max_ms
    if not 100 <= timeout_ms <= limit:
        raise InvalidRequest(f"timeout_ms is between 100 and {limit}.", code="invalid_request")
    await safety.check(url, ctx.settings.webhook_allow_private)
    secret = _new_secret()
    async with ctx.db.write() as conn:
        await conn.execute(update(apps).where(apps.c.id == app_id).values(
            before_send_url=url, before_send_secret=secret, before_send_timeout_ms=timeout_ms,
            before_send_on_error=on_error))
    _forget(ctx, app_id)
    return {"url": url, "timeout_ms": timeout_ms, "on_error": on_error, "secret": secret}


async def get_before_send(ctx: Context, app_id: int) -> dict[str, Any] | None:
    async with ctx.db.read() as conn:
        row = (await conn.execute(select(apps).where(apps.c.id == app_id))).one()
    if not row.before_send_url:
        return None
    return {"url": row.before_send_url, "timeout_ms": row.before_send_timeout_ms,
            "on_error": row.before_send_on_error}


async def clear_before_send(ctx: Context, app_id: int) -> None:
    async with ctx.db.write() as conn:
        await conn.execute(update(apps).where(apps.c.id == app_id).values(
            before_send_url=None, before_send_secret=None, before_send_timeout_ms=None,
            before_send_on_error=None))
    _forget(ctx, app_id)
