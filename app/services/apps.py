"""Apps (tenants): creation, secrets, and the App Server's authentication."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert, select, update

from app import security
from app.errors import NotFound, Unauthorized
from app.services.context import Context
from app.storage.db import now_us
from app.storage.models import apps


@dataclass(frozen=True, slots=True)
class AppRecord:
    id: int
    key: str
    name: str
    created_at_us: int
    group_member_limit: int | None = None
    device_policy: str | None = None


@dataclass(frozen=True, slots=True)
class NewCredentials:
    app: AppRecord
    secret: str


def _record(row: object) -> AppRecord:
    return AppRecord(row.id, row.key, row.name, row.created_at_us,  # type: ignore[attr-defined]
                     row.group_member_limit, row.device_policy)  # type: ignore[attr-defined]


async def create(ctx: Context, name: str) -> NewCredentials:
    key, secret, now = security.new_app_key(), security.new_secret("as"), now_us()
    async with ctx.db.write() as conn:
        result = await conn.execute(
            insert(apps)
            .values(key=key, name=name, secret_digest=security.digest(secret), created_at_us=now)
            .returning(apps.c.id)
        )
        app_id = result.scalar_one()
    return NewCredentials(AppRecord(app_id, key, name, now), secret)


async def list_all(ctx: Context) -> list[AppRecord]:
    async with ctx.db.read() as conn:
        rows = await conn.execute(select(apps).order_by(apps.c.id))
    return [_record(r) for r in rows]


async def get(ctx: Context, key: str) -> AppRecord:
    async with ctx.db.read() as conn:
        row = (await conn.execute(select(apps).where(apps.c.key == key))).first()
    if row is None:
        raise NotFound("No app with that key.", code="app_not_found")
    return _record(row)


async def rotate_secret(ctx: Context, key: str) -> NewCredentials:
    """The old secret stops working as soon as this commits."""
    secret = security.new_secret("as")
    async with ctx.db.write() as conn:
        result = await conn.execute(
            update(apps).where(apps.c.key == key).values(secret_digest=security.digest(secret))
        )
        if result.rowcount == 0:
            raise NotFound("No app with that key.", code="app_not_found")
    return NewCredentials(await get(ctx, key), secret)


async def configure(ctx: Context, key: str, changes: dict[str, Any]) -> AppRecord:
    """Per-app policy; None returns a setting to the server-wide default."""
    async with ctx.db.write() as conn:
        result = await conn.execute(update(apps).where(apps.c.key == key).values(**changes))
        if result.rowcount == 0:
            raise NotFound("No app with that key.", code="app_not_found")
    return await get(ctx, key)


async def authenticate(ctx: Context, key: str, secret: str) -> AppRecord:
    async with ctx.db.read() as conn:
        row = (await conn.execute(select(apps).where(apps.c.key == key))).first()
    # Compare even when the key is unknown, so timing does not say which part was wrong.
    stored = row.secret_digest if row is not None else "0" * 64
    if not security.digest_matches(secret, stored) or row is None:
        raise Unauthorized("App key or secret is wrong.", code="bad_app_credentials")
    return _record(row)
