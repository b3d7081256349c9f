"""Users of an app: batch import (upsert), read, update, list, delete.

Users are named by MD5 ID only; the raw ID an App Server sends is hashed in
:func:`app.ids.md5_of_user_id` and never stored. A bad item in an import fails alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

import orjson
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator
from sqlalchemy import delete, select, update
from sqlalchemy.dialects import postgresql, sqlite

from app import ids
from app.broker import Delivery
from app.errors import CloseCode, InvalidRequest, ParleyError, user_not_found
from app.services.context import Context
from app.storage.db import now_us
from app.storage.models import login_tokens, users
from app.timefmt import iso_from_us
from app.webhooks import outbox

PASSWORD_MD5_PATTERN = r"^[0-9a-fA-F]{32}$"


class UserFields(BaseModel):
    """Profile fields an App Server may set; absent ones are left as they are."""

    model_config = ConfigDict(extra="forbid", strict=True)

    nickname: Annotated[str | None, AfterValidator(_storable)] = Field(None, max_length=128)
    avatar_url: Annotated[str | None, AfterValidator(_storable)] = Field(None, max_length=2048)
    extra: Annotated[dict[str, Any] | None, AfterValidator(_storable)] = None
    password_md5: str | None = Field(
        None,
        pattern=PASSWORD_MD5_PATTERN,
        description="MD5 hex of the password, as mobile SDKs send it; kept only under argon2id.",
    )


def _storable(value: Any) -> Any:
    """What is stored must encode: no lone surrogates, no integers past 64 bits."""
    try:
        orjson.dumps(value)
    except orjson.JSONEncodeError as exc:
        raise ValueError("holds text or a number that cannot be stored") from exc
    return value


class UserImportItem(UserFields):
    """One user to create or update. Give exactly one of user_id and user_id_md5."""

    user_id: str | None = Field(
        None, description="The app's own ID; hashed on arrival, never stored or returned."
    )
    user_id_md5: str | None = Field(None, description="32 hex digits, any case.")

    @model_validator(mode="after")
    def _one_id(self) -> UserImportItem:
        if (self.user_id is None) == (self.user_id_md5 is None):
            raise ValueError("give exactly one of user_id and user_id_md5")
        return self

    def md5(self) -> str:
        if self.user_id is not None:
            return ids.md5_of_user_id(self.user_id)
        assert self.user_id_md5 is not None
        return ids.normalise_md5(self.user_id_md5)


@dataclass(frozen=True, slots=True)
class ItemOutcome:
    index: int
    user_id_md5: str | None
    status: str  # created | updated | error
    error: dict[str, Any] | None = None


def user_view(row: Any) -> dict[str, Any]:
    return {
        "user_id_md5": row.id,
        "nickname": row.nickname,
        "avatar_url": row.avatar_url,
        "extra": row.extra,
        "has_password": row.password_hash is not None,
        "created_at": iso_from_us(row.created_at_us),
        "updated_at": iso_from_us(row.updated_at_us),
    }


def validation_error(exc: ValidationError) -> InvalidRequest:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "item"
    return InvalidRequest(f"{where}: {first['msg']}", code="invalid_request")


async def import_users(ctx: Context, app_id: int, raw_items: list[Any]) -> list[ItemOutcome]:
    outcomes: list[ItemOutcome | None] = [None] * len(raw_items)
    accepted: dict[str, tuple[int, UserImportItem]] = {}
    superseded: list[tuple[int, str]] = []
    for index, raw in enumerate(raw_items):
        try:
            item = UserImportItem.model_validate(raw)
            md5 = item.md5()
            if md5 in accepted:
                # The later item wins; the earlier one counts as applied, then updated.
                superseded.append((accepted[md5][0], md5))
            accepted[md5] = (index, item)
        except ValidationError as exc:
            outcomes[index] = ItemOutcome(index, None, "error", validation_error(exc).to_dict())
        except ParleyError as exc:
            outcomes[index] = ItemOutcome(index, None, "error", exc.to_dict())

    hashes = {
        md5: await ctx.vault.hash(item.password_md5.lower())
        for md5, (_, item) in accepted.items()
        if item.password_md5 is not None
    }
    created = await _upsert(ctx, app_id, accepted, hashes)

    for md5, (index, _) in accepted.items():
        outcomes[index] = ItemOutcome(index, md5, "created" if md5 in created else "updated")
    for index, md5 in superseded:
        outcomes[index] = ItemOutcome(index, md5, "updated")
    return [o for o in outcomes if o is not None]


async def _upsert(
    ctx: Context,
    app_id: int,
    accepted: dict[str, tuple[int, UserImportItem]],
    hashes: dict[str, str],
) -> set[str]:
    """Write the accepted items in one statement; return the IDs that were new."""
    if not accepted:
        return set()
    now = now_us()
    async with ctx.db.write() as conn:
        existing = {
            row.id: row
            for row in await conn.execute(
                select(users).where(users.c.app_id == app_id, users.c.id.in_(list(accepted)))
            )
        }
        rows = []
        for md5, (_, item) in accepted.items():
            old = existing.get(md5)
            given = item.model_fields_set
            rows.append(
                {
                    "app_id": app_id,
                    "id": md5,
                    "nickname": item.nickname if "nickname" in given or not old else old.nickname,
                    "avatar_url": (
                        item.avatar_url if "avatar_url" in given or not old else old.avatar_url
                    ),
                    "extra": item.extra if "extra" in given or not old else old.extra,
                    "password_hash": hashes.get(md5, old.password_hash if old else None),
                    "created_at_us": old.created_at_us if old else now,
                    "updated_at_us": now,
                }
            )
        dialect = postgresql if not ctx.db.is_sqlite else sqlite
        stmt = dialect.insert(users)
        stmt = stmt.on_conflict_do_update(
            index_elements=[users.c.app_id, users.c.id],
            set_={
                c: stmt.excluded[c]
                for c in ("nickname", "avatar_url", "extra", "password_hash", "updated_at_us")
            },
        )
        await conn.execute(stmt, rows)
        for md5 in accepted:
            await outbox.emit(conn, ctx.hooks, app_id, "user.imported", {
                "user_id_md5": md5, "created": md5 not in existing}, now)
    return set(accepted) - set(existing)


async def get(ctx: Context, app_id: int, user_id: str) -> dict[str, Any]:
    async with ctx.db.read() as conn:
        row = (
            await conn.execute(select(users).where(users.c.app_id == app_id, users.c.id == user_id))
        ).first()
    if row is None:
        raise user_not_found()
    return user_view(row)


async def exists(ctx: Context, app_id: int, user_id: str) -> bool:
    async with ctx.db.read() as conn:
        found = await conn.scalar(
            select(users.c.id).where(users.c.app_id == app_id, users.c.id == user_id)
        )
    return found is not None


async def update_user(
    ctx: Context, app_id: int, user_id: str, fields: UserFields
) -> dict[str, Any]:
    values: dict[str, Any] = {
        name: getattr(fields, name)
        for name in fields.model_fields_set
        if name in ("nickname", "avatar_url", "extra")
    }
    if "password_md5" in fields.model_fields_set:
        pw = fields.password_md5
        values["password_hash"] = await ctx.vault.hash(pw.lower()) if pw is not None else None
    values["updated_at_us"] = now_us()
    async with ctx.db.write() as conn:
        result = await conn.execute(
            update(users).where(users.c.app_id == app_id, users.c.id == user_id).values(values)
        )
        if result.rowcount == 0:
            raise user_not_found()
        changed = sorted(fields.model_fields_set)  # names only: never a password digest
        await outbox.emit(conn, ctx.hooks, app_id, "user.updated",
                          {"user_id_md5": user_id, "fields": changed}, values["updated_at_us"])
    return await get(ctx, app_id, user_id)


async def list_users(
    ctx: Context, app_id: int, after: str | None, limit: int
) -> tuple[list[dict[str, Any]], str | None]:
    query = select(users).where(users.c.app_id == app_id).order_by(users.c.id).limit(limit + 1)
    if after:
        query = query.where(users.c.id > after)
    async with ctx.db.read() as conn:
        rows = list(await conn.execute(query))
    more = len(rows) > limit
    rows = rows[:limit]
    return [user_view(r) for r in rows], (rows[-1].id if more else None)


async def delete_user(ctx: Context, app_id: int, user_id: str) -> None:
    """Remove the user, revoke their tokens and close their connections everywhere."""
    async with ctx.db.write() as conn:
        result = await conn.execute(
            delete(users).where(users.c.app_id == app_id, users.c.id == user_id)
        )
        if result.rowcount == 0:
            raise user_not_found()
        await conn.execute(
            delete(login_tokens).where(
                login_tokens.c.app_id == app_id, login_tokens.c.user_id == user_id
            )
        )
        await outbox.emit(conn, ctx.hooks, app_id, "user.deleted", {"user_id_md5": user_id},
                          now_us())
    await ctx.broker.publish(
        Delivery(
            app_id,
            (user_id,),
            {"type": "error", "code": "user_deleted", "message": "This user was deleted."},
            close_code=CloseCode.USER_DELETED,
            close_reason="user_deleted",
        )
    )
