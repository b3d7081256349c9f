"""The moderation log, and the review queue that is part of it.

Every block, mask, flag, slow-down and report is one entry: what happened, the rule
or list that matched, the message (its msg_id once stored; for a refused message the
text alone, as it was never stored), and when. Entries that await a reviewer have
status ``open``: flags and reports. A reviewer's verdict on a message closes them all:
``fine`` clears the message's risk flag; ``violation`` hides the message from sync,
conversation lists and chat logs (a recall that also reaches devices is issue 3's).

Entries of a stored message are written inside the message's own transaction (a
persist hook), so a message and its log entries exist together or not at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import orjson
from sqlalchemy import and_, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from app.errors import InvalidRequest, NotFound
from app.services.context import Context
from app.storage.db import now_us
from app.storage.models import members, messages, moderation_log
from app.timefmt import iso_from_us

Verdict = Literal["fine", "violation"]
OPEN = "open"
# Entries one message may add: a text hitting hundreds of listed words is logged by
# its first few distinct rules, which is all a reviewer needs.
ENTRIES_PER_MESSAGE_MAX = 16
REASON_MAX = 200


@dataclass(frozen=True, slots=True)
class Finding:
    """What a check found in a message that is still delivered (masked or flagged)."""

    action: Literal["mask", "review"]
    source: Literal["keyword", "link", "flood", "qr"]
    rule: str
    category: str
    excerpt: str | None  # the text as typed, before masking


def _entry(app_id: int, **fields: Any) -> dict[str, Any]:
    return {
        "app_id": app_id, "rule": None, "category": None, "msg_id": None,
        "conversation_id": None, "sender_id": None, "reporter_id": None, "excerpt": None,
        "note": None, "status": None, "created_at_us": now_us(), **fields,
    }


async def record_refusal(ctx: Context, outgoing: Any, action: str, source: str, rule: str,
                         category: str, excerpt: str | None) -> None:
    """A message that was not delivered: blocked, or the send that brought a penalty."""
    entry = _entry(outgoing.app_id, action=action, source=source, rule=rule,
                   category=category, conversation_id=outgoing.conversation_id,
                   sender_id=outgoing.sender or None, excerpt=excerpt)
    async with ctx.db.write() as conn:
        await conn.execute(insert(moderation_log).values(entry))


async def record_findings(ctx: Context, conn: AsyncConnection, outgoing: Any,
                          msg_id: str) -> None:
    """The persist hook: a stored message's masks and flags, in its transaction."""
    findings = [f for f in outgoing.findings if isinstance(f, Finding)]
    if not findings:
        return
    seen, entries = set(), []
    for f in findings:
        if (f.action, f.source, f.rule) in seen:
            continue
        seen.add((f.action, f.source, f.rule))
        entries.append(_entry(
            outgoing.app_id, action=f.action, source=f.source, rule=f.rule[:256],
            category=f.category, msg_id=msg_id, conversation_id=outgoing.conversation_id,
            sender_id=outgoing.sender or None, excerpt=f.excerpt,
            status=OPEN if f.action == "review" else None,
        ))
    await conn.execute(insert(moderation_log), entries[:ENTRIES_PER_MESSAGE_MAX])


def _message_not_found() -> NotFound:
    return NotFound("No such message for this user.", code="message_not_found")


def _excerpt(content: str) -> str:
    """The text of stored content, for a reviewer; the JSON itself when it has none."""
    try:
        text = orjson.loads(content).get("text")
    except (orjson.JSONDecodeError, AttributeError):
        text = None
    return text if isinstance(text, str) else content


async def report(ctx: Context, app_id: int, reporter: str, msg_id: str, reason: str) -> int:
    """A user's report of a message they can see; reporting it again returns the same
    report. Returns the report's log entry ID."""
    if len(reason) > REASON_MAX:
        raise InvalidRequest(f"reason is at most {REASON_MAX} characters.",
                             code="invalid_field")
    async with ctx.db.write() as conn:
        row = (await conn.execute(
            select(messages.c.msg_id, messages.c.conversation_id, messages.c.sender_id,
                   messages.c.content)
            .join(members, and_(members.c.app_id == messages.c.app_id,
                                members.c.conversation_id == messages.c.conversation_id,
                                members.c.user_id == reporter))
            .where(messages.c.app_id == app_id, messages.c.msg_id == msg_id)
        )).first()
        if row is None:
            raise _message_not_found()
        earlier = await conn.scalar(select(moderation_log.c.id).where(
            moderation_log.c.app_id == app_id, moderation_log.c.msg_id == msg_id,
            moderation_log.c.reporter_id == reporter, moderation_log.c.status == OPEN))
        if earlier is not None:
            return int(earlier)
        entry = _entry(app_id, action="report", source="report", msg_id=msg_id,
                       conversation_id=row.conversation_id, sender_id=row.sender_id or None,
                       reporter_id=reporter, excerpt=_excerpt(row.content),
                       note=reason or None, status=OPEN)
        return int(await conn.scalar(
            insert(moderation_log).values(entry).returning(moderation_log.c.id)))


def entry_view(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "action": row.action,
        "source": row.source,
        "rule": row.rule,
        "category": row.category,
        "msg_id": row.msg_id,
        "conversation_id": row.conversation_id,
        "sender": row.sender_id,
        "reporter": row.reporter_id,
        "excerpt": row.excerpt,
        "note": row.note,
        "status": row.status,
        "created_at": iso_from_us(row.created_at_us),
        "decided_at": iso_from_us(row.decided_at_us) if row.decided_at_us else None,
    }


async def entries(ctx: Context, app_id: int, *, action: str | None = None,
                  source: str | None = None, status: str | None = None,
                  msg_id: str | None = None, cursor: str | None = None, limit: int = 100
                  ) -> tuple[list[dict[str, Any]], str | None]:
    """Log entries, newest first; the cursor is the last ID of the page before."""
    query = select(moderation_log).where(moderation_log.c.app_id == app_id)
    for column, value in (("action", action), ("source", source), ("status", status),
                          ("msg_id", msg_id)):
        if value is not None:
            query = query.where(moderation_log.c[column] == value)
    if cursor is not None:
        if not cursor.isdigit():
            raise InvalidRequest("The cursor is not one this API returned.", code="bad_cursor")
        query = query.where(moderation_log.c.id < int(cursor))
    async with ctx.db.read() as conn:
        rows = list(await conn.execute(
            query.order_by(moderation_log.c.id.desc()).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    return [entry_view(r) for r in rows], (str(rows[-1].id) if more else None)


async def decide(ctx: Context, app_id: int, msg_id: str, verdict: Verdict) -> int:
    """A reviewer's verdict on a message; returns how many log entries it settled."""
    now = now_us()
    async with ctx.db.write() as conn:
        found = await conn.scalar(select(messages.c.id).where(
            messages.c.app_id == app_id, messages.c.msg_id == msg_id))
        if found is None:
            raise NotFound("No such message in this app.", code="message_not_found")
        settled = await conn.execute(
            update(moderation_log)
            .where(moderation_log.c.app_id == app_id, moderation_log.c.msg_id == msg_id,
                   moderation_log.c.status.is_not(None))
            .values(status=verdict, decided_at_us=now)
        )
        if verdict == "violation":
            change: dict[str, Any] = {"hidden_at_us": now}
        else:
            change = {"hidden_at_us": None, "risk": None}
        await conn.execute(update(messages).where(messages.c.id == found).values(change))
    return int(settled.rowcount)
