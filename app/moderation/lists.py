"""The App Server's control of an app's content rules: keywords, domains and settings.

Every change bumps the app's version (``moderation_settings.version``) in the same
transaction. Nodes compare that number with the one their compiled copy was built
from (see :mod:`app.moderation.cache`), which is how a change reaches every node
sharing the database within about PARLEY_MODERATION_CACHE_SECONDS.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError
from sqlalchemy import Table, delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from app.errors import InvalidRequest, NotFound, ParleyError
from app.moderation import lookalikes
from app.moderation.keywords import KeywordRule
from app.moderation.links import DomainRule, domain_entry
from app.moderation.normalise import Folder
from app.moderation.policy import ModerationSettings
from app.moderation.rules import ACTIONS
from app.services.context import Context
from app.storage.db import now_us
from app.storage.models import domains, keywords, moderation_settings
from app.timefmt import iso_from_us

WORD_MAX = 100
CATEGORY_MAX = 64
DEFAULT_KEYWORD_CATEGORY = "default"
DEFAULT_DOMAIN_CATEGORY = "link"
LISTS = ("block", "allow")
# A text import may be a list of many thousands of words; past this it is refused
# rather than held in memory and written in one transaction.
IMPORT_LINES_MAX = 200_000
ERRORS_SHOWN = 100  # failed items an answer lists; the count covers them all
_CHUNK = 1000  # rows per statement

# Keys fold without any look-alike table, so that an app changing its table does not
# change which of its keywords count as the same.
_PLAIN = Folder()


@dataclass(slots=True)
class Outcome:
    """What a batch of list changes did."""

    created: int = 0
    updated: int = 0
    failed: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)

    def fail(self, index: int, exc: ParleyError) -> None:
        self.failed += 1
        if len(self.errors) < ERRORS_SHOWN:
            self.errors.append({"index": index, "code": exc.code, "message": exc.message})


def _dialect(ctx: Context) -> Any:
    return sqlite if ctx.db.is_sqlite else postgresql


async def bump_version(ctx: Context, conn: AsyncConnection, app_id: int,
                       overrides: dict[str, Any] | None = None) -> None:
    """Mark the app's rules changed; with ``overrides``, replace its settings too."""
    now = now_us()
    changes: dict[str, Any] = {"version": moderation_settings.c.version + 1,
                               "updated_at_us": now}
    if overrides is not None:
        changes["overrides"] = overrides
    await conn.execute(
        _dialect(ctx).insert(moderation_settings)
        .values(app_id=app_id, version=1, overrides=overrides or {}, updated_at_us=now)
        .on_conflict_do_update(index_elements=["app_id"], set_=changes)
    )


# --- keywords -------------------------------------------------------------------------


def _category(value: Any, default: str) -> str:
    if value is None:
        return default
    if not isinstance(value, str) or not 0 < len(value.strip()) <= CATEGORY_MAX:
        raise InvalidRequest(f"category is a string of 1 to {CATEGORY_MAX} characters.",
                             code="invalid_category")
    return value.strip()


def _action(value: Any, default: str, allowed: Iterable[str] = ACTIONS) -> str:
    if value is None:
        return default
    if value not in allowed:
        raise InvalidRequest(f"action is one of {', '.join(allowed)}.", code="invalid_action")
    return str(value)


def keyword_row(word: Any, category: Any, action: Any) -> dict[str, Any]:
    """A keyword checked and keyed; raises InvalidRequest for a bad one."""
    if not isinstance(word, str) or not 0 < len(word.strip()) <= WORD_MAX:
        raise InvalidRequest(f"word is a string of 1 to {WORD_MAX} characters.",
                             code="invalid_keyword")
    word = word.strip()
    if any(c in word for c in "\t\r\n"):
        raise InvalidRequest("word may not hold tabs or line breaks.", code="invalid_keyword")
    key = _PLAIN.key(word)
    if not key:
        raise InvalidRequest("word has no letter or digit to match.", code="invalid_keyword")
    return {"word": word, "key": key[:200],
            "category": _category(category, DEFAULT_KEYWORD_CATEGORY),
            "action": _action(action, "block")}


async def add_keywords(ctx: Context, app_id: int, items: list[Any]) -> Outcome:
    """Create or update keywords; an item that fails fails alone."""
    outcome, rows = Outcome(), {}
    for index, item in enumerate(items):
        try:
            if not isinstance(item, dict):
                raise InvalidRequest("Each keyword is an object.", code="invalid_keyword")
            row = keyword_row(item.get("word"), item.get("category"), item.get("action"))
        except InvalidRequest as exc:
            outcome.fail(index, exc)
            continue
        rows[row["key"]] = row  # the last spelling of one key wins
    await _upsert(ctx, app_id, keywords, "key", list(rows.values()), outcome)
    return outcome


async def _upsert(ctx: Context, app_id: int, table: Table, unique: str,
                  rows: list[dict[str, Any]], outcome: Outcome) -> None:
    if not rows:
        return
    now = now_us()
    column = table.c[unique]
    async with ctx.db.write() as conn:
        for start in range(0, len(rows), _CHUNK):
            chunk = rows[start : start + _CHUNK]
            held = set(await conn.scalars(select(column).where(
                table.c.app_id == app_id, column.in_([r[unique] for r in chunk]))))
            outcome.updated += len(held)
            outcome.created += len(chunk) - len(held)
            statement = _dialect(ctx).insert(table)
            await conn.execute(
                statement.on_conflict_do_update(
                    index_elements=["app_id", unique],
                    set_={k: statement.excluded[k] for k in chunk[0] if k != unique},
                ),
                [{**r, "app_id": app_id, "created_at_us": now} for r in chunk],
            )
        await bump_version(ctx, conn, app_id)


def parse_lines(text: str) -> Iterable[tuple[int, list[str]]]:
    """(line number, tab-separated fields) of each line that is not blank or a comment."""
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            yield number, [f.strip() for f in line.split("\t")]


def _too_many_lines() -> InvalidRequest:
    return InvalidRequest(f"An import holds at most {IMPORT_LINES_MAX} lines.",
                          code="import_too_large", limit=IMPORT_LINES_MAX)


async def import_keywords(ctx: Context, app_id: int, text: str, category: str | None,
                          action: str | None) -> Outcome:
    """A text file, one keyword a line, optionally ``word<TAB>category<TAB>action``;
    ``category`` and ``action`` are the defaults for lines that do not say."""
    default_category = _category(category, DEFAULT_KEYWORD_CATEGORY)
    default_action = _action(action, "block")
    outcome, rows = Outcome(), {}
    for number, fields in parse_lines(text):
        if number > IMPORT_LINES_MAX:
            raise _too_many_lines()
        fields += [""] * (3 - len(fields))
        try:
            row = keyword_row(fields[0], fields[1] or default_category,
                              fields[2] or default_action)
        except InvalidRequest as exc:
            outcome.fail(number, exc)
            continue
        rows[row["key"]] = row
    await _upsert(ctx, app_id, keywords, "key", list(rows.values()), outcome)
    return outcome


def keyword_view(row: Any) -> dict[str, Any]:
    return {"id": row.id, "word": row.word, "category": row.category,
            "action": row.action, "created_at": iso_from_us(row.created_at_us)}


async def list_keywords(ctx: Context, app_id: int, category: str | None, action: str | None,
                        cursor: str | None, limit: int) -> tuple[list[dict[str, Any]], str | None]:
    query = select(keywords).where(keywords.c.app_id == app_id)
    if category is not None:
        query = query.where(keywords.c.category == category)
    if action is not None:
        query = query.where(keywords.c.action == action)
    rows, next_cursor = await _page(ctx, keywords, query, cursor, limit)
    return [keyword_view(r) for r in rows], next_cursor


async def _page(ctx: Context, table: Table, query: Any, cursor: str | None, limit: int
                ) -> tuple[list[Any], str | None]:
    """A page in id order; the cursor is the last id of the page before."""
    if cursor is not None:
        if not cursor.isdigit():
            raise InvalidRequest("The cursor is not one this API returned.", code="bad_cursor")
        query = query.where(table.c.id > int(cursor))
    async with ctx.db.read() as conn:
        rows = list(await conn.execute(query.order_by(table.c.id).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (str(rows[-1].id) if more else None)


async def export_keywords(ctx: Context, app_id: int, category: str | None) -> str:
    """Every keyword as a line ``word<TAB>category<TAB>action``: what the import reads."""
    query = select(keywords.c.word, keywords.c.category, keywords.c.action).where(
        keywords.c.app_id == app_id).order_by(keywords.c.id)
    if category is not None:
        query = query.where(keywords.c.category == category)
    async with ctx.db.read() as conn:
        rows = await conn.execute(query)
        return "".join(f"{r.word}\t{r.category}\t{r.action}\n" for r in rows)


async def delete_keyword(ctx: Context, app_id: int, keyword_id: int) -> None:
    await _delete_one(ctx, app_id, keywords, keyword_id, "keyword_not_found")


async def delete_keywords(ctx: Context, app_id: int, category: str) -> int:
    """Delete every keyword of a category; return how many there were."""
    return await _delete_where(ctx, app_id, keywords, keywords.c.category == category)


async def _delete_one(ctx: Context, app_id: int, table: Table, row_id: int, code: str) -> None:
    async with ctx.db.write() as conn:
        result = await conn.execute(
            delete(table).where(table.c.app_id == app_id, table.c.id == row_id))
        if result.rowcount == 0:
            raise NotFound("No such entry in this app.", code=code)
        await bump_version(ctx, conn, app_id)


async def _delete_where(ctx: Context, app_id: int, table: Table, condition: Any) -> int:
    async with ctx.db.write() as conn:
        result = await conn.execute(delete(table).where(table.c.app_id == app_id, condition))
        await bump_version(ctx, conn, app_id)
    return int(result.rowcount)


# --- domains --------------------------------------------------------------------------


def domain_row(domain: Any, list_name: Any, category: Any) -> dict[str, Any]:
    canonical = domain_entry(domain) if isinstance(domain, str) and len(domain) <= 2048 else None
    if canonical is None:
        raise InvalidRequest("domain is not a host name or IP address.", code="invalid_domain")
    if list_name not in LISTS:
        raise InvalidRequest('list is "block" or "allow".', code="invalid_list")
    return {"domain": canonical, "list": list_name,
            "category": _category(category, DEFAULT_DOMAIN_CATEGORY)}


async def add_domains(ctx: Context, app_id: int, items: list[Any]) -> Outcome:
    """Put domains on the block or allow list; a domain moves if it was on the other."""
    outcome, rows = Outcome(), {}
    for index, item in enumerate(items):
        try:
            if not isinstance(item, dict):
                raise InvalidRequest("Each domain is an object.", code="invalid_domain")
            row = domain_row(item.get("domain"), item.get("list", "block"), item.get("category"))
        except InvalidRequest as exc:
            outcome.fail(index, exc)
            continue
        rows[row["domain"]] = row
    await _upsert(ctx, app_id, domains, "domain", list(rows.values()), outcome)
    return outcome


async def import_domains(ctx: Context, app_id: int, text: str, list_name: str,
                         category: str | None) -> Outcome:
    """A text file, one domain a line, optionally ``domain<TAB>category``."""
    default_category = _category(category, DEFAULT_DOMAIN_CATEGORY)
    outcome, rows = Outcome(), {}
    for number, fields in parse_lines(text):
        if number > IMPORT_LINES_MAX:
            raise _too_many_lines()
        try:
            row = domain_row(fields[0], list_name,
                             fields[1] if len(fields) > 1 and fields[1] else default_category)
        except InvalidRequest as exc:
            outcome.fail(number, exc)
            continue
        rows[row["domain"]] = row
    await _upsert(ctx, app_id, domains, "domain", list(rows.values()), outcome)
    return outcome


def domain_view(row: Any) -> dict[str, Any]:
    return {"id": row.id, "domain": row.domain, "list": row.list,
            "category": row.category, "created_at": iso_from_us(row.created_at_us)}


async def list_domains(ctx: Context, app_id: int, list_name: str | None, cursor: str | None,
                       limit: int) -> tuple[list[dict[str, Any]], str | None]:
    query = select(domains).where(domains.c.app_id == app_id)
    if list_name is not None:
        query = query.where(domains.c.list == list_name)
    rows, next_cursor = await _page(ctx, domains, query, cursor, limit)
    return [domain_view(r) for r in rows], next_cursor


async def export_domains(ctx: Context, app_id: int, list_name: str) -> str:
    """Every domain of a list as a line ``domain<TAB>category``: what the import reads."""
    async with ctx.db.read() as conn:
        rows = await conn.execute(
            select(domains.c.domain, domains.c.category)
            .where(domains.c.app_id == app_id, domains.c.list == list_name)
            .order_by(domains.c.id)
        )
        return "".join(f"{r.domain}\t{r.category}\n" for r in rows)


async def delete_domain(ctx: Context, app_id: int, domain_id: int) -> None:
    await _delete_one(ctx, app_id, domains, domain_id, "domain_not_found")


async def delete_domains(ctx: Context, app_id: int, list_name: str) -> int:
    """Empty one list; return how many domains were on it."""
    return await _delete_where(ctx, app_id, domains, domains.c.list == list_name)


# --- settings and loading -------------------------------------------------------------


async def _overrides(conn: AsyncConnection, app_id: int) -> tuple[int, dict[str, Any]]:
    row = (await conn.execute(
        select(moderation_settings.c.version, moderation_settings.c.overrides)
        .where(moderation_settings.c.app_id == app_id)
    )).first()
    return (0, {}) if row is None else (int(row.version), dict(row.overrides or {}))


async def get_settings(ctx: Context, app_id: int) -> ModerationSettings:
    async with ctx.db.read() as conn:
        _, overrides = await _overrides(conn, app_id)
    return ModerationSettings.effective(ctx.settings, overrides)


async def update_settings(ctx: Context, app_id: int, changes: dict[str, Any]
                          ) -> ModerationSettings:
    """Apply the fields given; a field given as null goes back to the node's default."""
    async with ctx.db.write() as conn:
        _, overrides = await _overrides(conn, app_id)
        for name, value in changes.items():
            if value is None:
                overrides.pop(name, None)
            else:
                overrides[name] = value
        try:
            effective = ModerationSettings.effective(ctx.settings, overrides)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise InvalidRequest(f"{where}: {first['msg']}", code="invalid_settings") from None
        lookalikes.checked(effective.lookalikes)
        await bump_version(ctx, conn, app_id, overrides)
    return effective


async def current_version(ctx: Context, app_id: int) -> int:
    async with ctx.db.read() as conn:
        version = await conn.scalar(select(moderation_settings.c.version)
                                    .where(moderation_settings.c.app_id == app_id))
    return int(version or 0)


@dataclass(frozen=True, slots=True)
class Snapshot:
    """One version of an app's rules, as stored."""

    version: int
    settings: ModerationSettings
    keywords: list[KeywordRule]
    domains: list[DomainRule]


async def load(ctx: Context, app_id: int) -> Snapshot:
    """The app's rules. The version is read first: a change that lands while the rows are
    read makes the next check see a newer version and load again, never the reverse."""
    async with ctx.db.read() as conn:
        version, overrides = await _overrides(conn, app_id)
        keyword_rows = await conn.execute(
            select(keywords.c.word, keywords.c.category, keywords.c.action)
            .where(keywords.c.app_id == app_id))
        words = [KeywordRule(r.word, r.category, r.action) for r in keyword_rows]
        domain_rows = await conn.execute(
            select(domains.c.domain, domains.c.list, domains.c.category)
            .where(domains.c.app_id == app_id))
        entries = [DomainRule(r.domain, r.list, r.category) for r in domain_rows]
    return Snapshot(version, ModerationSettings.effective(ctx.settings, overrides), words,
                    entries)
