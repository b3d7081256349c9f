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
from sqlalchemy.ext.asyncio import AsyncConnection

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


# Profile fields an import item may set; one it does not give keeps its stored value.
PROFILE_FIELDS = ("nickname", "avatar_url", "extra")
USER_KEY = [users.c.app_id, users.c.id]  # the conflict target of an import


@dataclass(slots=True)
class _Checked:
    """An import batch after validation: outcomes of the bad items, the good ones by MD5
    ID (a later item with the same ID wins), and the earlier items that lost to it."""

    outcomes: list[ItemOutcome | None]
    accepted: dict[str, tuple[int, UserImportItem]]
    superseded: list[tuple[int, str]]


def _check_items(raw_items: list[Any]) -> _Checked:
    checked = _Checked([None] * len(raw_items), {}, [])
    for index, raw in enumerate(raw_items):
        try:
            item = UserImportItem.model_validate(raw)
            md5 = item.md5()
        except ValidationError as exc:
            checked.outcomes[index] = ItemOutcome(index, None, "error",
                                                  validation_error(exc).to_dict())
            continue
        except ParleyError as exc:
            checked.outcomes[index] = ItemOutcome(index, None, "error", exc.to_dict())
            continue
        if md5 in checked.accepted:
            # The later item wins; the earlier one counts as applied, then updated.
            checked.superseded.append((checked.accepted[md5][0], md5))
        checked.accepted[md5] = (index, item)
    return checked


async def import_users(ctx: Context, app_id: int, raw_items: list[Any]) -> list[ItemOutcome]:
    checked = _check_items(raw_items)
    hashes = await _hash_passwords(ctx, checked.accepted)
    created = await _upsert(ctx, app_id, checked.accepted, hashes)

    outcomes = checked.outcomes
    for md5, (index, _) in checked.accepted.items():
        outcomes[index] = ItemOutcome(index, md5, "created" if md5 in created else "updated")
    for index, md5 in checked.superseded:
        outcomes[index] = ItemOutcome(index, md5, "updated")
    return [o for o in outcomes if o is not None]


async def _hash_passwords(
    ctx: Context, accepted: dict[str, tuple[int, UserImportItem]]
) -> dict[str, str]:
    """argon2id hashes of the given passwords by MD5 ID, hashed on all cores at once."""
    given = [(md5, item.password_md5.lower()) for md5, (_, item) in accepted.items()
             if item.password_md5 is not None]
    hashed = await ctx.vault.hash_many([password for _, password in given])
    return {md5: digest for (md5, _), digest in zip(given, hashed, strict=True)}


async def _upsert(
    ctx: Context,
    app_id: int,
    accepted: dict[str, tuple[int, UserImportItem]],
    hashes: dict[str, str],
) -> set[str]:
    """Write the accepted items; return the IDs that were new.

    New users go in with one multi-row INSERT that skips the IDs already taken. The ones
    it skipped get one multi-row upsert for each set of fields given, which writes only
    those: an App Server sends items of one shape, so that is nearly always one more
    statement, and none for a batch of new users."""
    if not accepted:
        return set()
    now = now_us()
    rows = {md5: _new_row(app_id, md5, item, hashes.get(md5), now)
            for md5, (_, item) in accepted.items()}
    async with ctx.db.write() as conn:
        insert = _dialect(ctx).insert(users).on_conflict_do_nothing(index_elements=USER_KEY)
        # RETURNING makes SQLAlchemy send the rows as one INSERT ... VALUES statement
        # (its "insertmanyvalues"), not as a thousand executions of a one-row INSERT.
        result = await conn.execute(insert.returning(users.c.id), list(rows.values()))
        created = set(result.scalars())
        for columns, group in _by_given_fields(accepted, hashes, created).items():
            await _update(ctx, conn, columns, [rows[md5] for md5 in group])
        await outbox.emit_many(conn, ctx.hooks, app_id, "user.imported", [
            {"user_id_md5": md5, "created": md5 in created} for md5 in accepted], now)
    return created


def _dialect(ctx: Context) -> Any:
    return sqlite if ctx.db.is_sqlite else postgresql


def _new_row(app_id: int, md5: str, item: UserImportItem, password_hash: str | None,
             now: int) -> dict[str, Any]:
    return {"app_id": app_id, "id": md5, "nickname": item.nickname,
            "avatar_url": item.avatar_url, "extra": item.extra,
            "password_hash": password_hash, "created_at_us": now, "updated_at_us": now}


def _by_given_fields(
    accepted: dict[str, tuple[int, UserImportItem]], hashes: dict[str, str], created: set[str]
) -> dict[tuple[str, ...], list[str]]:
    """Users that existed already, grouped by the columns their items set."""
    groups: dict[tuple[str, ...], list[str]] = {}
    for md5, (_, item) in accepted.items():
        if md5 in created:
            continue
        given = item.model_fields_set
        columns = tuple(f for f in PROFILE_FIELDS if f in given)
        if md5 in hashes:
            columns += ("password_hash",)
        groups.setdefault(columns, []).append(md5)
    return groups


async def _update(ctx: Context, conn: AsyncConnection, columns: tuple[str, ...],
                  rows: list[dict[str, Any]]) -> None:
    """Set `columns` (and the update time) of users that exist. An upsert, not an UPDATE:
    a user deleted since the INSERT above is made again rather than lost."""
    stmt = _dialect(ctx).insert(users)
    stmt = stmt.on_conflict_do_update(
        index_elements=USER_KEY,
        set_={c: stmt.excluded[c] for c in (*columns, "updated_at_us")},
    )
    await conn.execute(stmt.returning(users.c.id), rows)


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
