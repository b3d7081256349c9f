"""Reading conversations: sync after a seq, the conversation list, read markers,
receipts, and the App Server's chat logs."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from app.broker import Delivery
from app.errors import InvalidRequest, NotFound
from app.services.context import Context
from app.services.messages import message_view
from app.storage.models import conversations, members, messages
from app.timefmt import iso_from_us


@dataclass(frozen=True, slots=True)
class Page:
    messages: list[dict[str, Any]]
    has_more: bool
    last_seq: int


def _not_found() -> NotFound:
    return NotFound("No such conversation for this user.", code="conversation_not_found")


def _could_belong(conversation_id: str, user_id: str) -> bool:
    """A conversation the user would be in once its first message exists."""
    kind, _, rest = conversation_id.partition(":")
    if kind == "p2p":
        return user_id in rest.split(":")
    return kind == "sys" and rest == user_id


async def _last_seq_for_member(
    conn: AsyncConnection, app_id: int, user_id: str, conversation_id: str
) -> int:
    row = (
        await conn.execute(
            select(conversations.c.last_seq)
            .join(
                members,
                and_(
                    members.c.app_id == conversations.c.app_id,
                    members.c.conversation_id == conversations.c.id,
                ),
            )
            .where(
                conversations.c.app_id == app_id,
                conversations.c.id == conversation_id,
                members.c.user_id == user_id,
            )
        )
    ).first()
    if row is not None:
        return int(row.last_seq)
    if _could_belong(conversation_id, user_id):
        return 0
    raise _not_found()


def _check_seq(seq: int, last_seq: int) -> None:
    if seq > last_seq:
        raise InvalidRequest(
            f"seq {seq} is past the conversation's last seq {last_seq}.",
            code="seq_out_of_range",
            last_seq=last_seq,
        )


async def sync(
    ctx: Context, app_id: int, user_id: str, conversation_id: str, after_seq: int, limit: int
) -> Page:
    """Messages after ``after_seq`` in seq order, at most ``limit`` of them."""
    limit = max(1, min(limit, ctx.settings.sync_page_max))
    async with ctx.db.read() as conn:
        last_seq = await _last_seq_for_member(conn, app_id, user_id, conversation_id)
        _check_seq(after_seq, last_seq)
        rows = list(
            await conn.execute(
                select(messages)
                .where(
                    messages.c.app_id == app_id,
                    messages.c.conversation_id == conversation_id,
                    messages.c.seq > after_seq,
                    messages.c.seq <= last_seq,
                )
                .order_by(messages.c.seq)
                .limit(limit)
            )
        )
    has_more = bool(rows) and rows[-1].seq < last_seq
    return Page([message_view(r) for r in rows], has_more, last_seq)


async def list_for_user(
    ctx: Context, app_id: int, user_id: str, limit: int, cursor: str | None
) -> tuple[list[dict[str, Any]], str | None]:
    """Conversations by newest message first, each with its last message and unread count."""
    limit = max(1, min(limit, ctx.settings.sync_page_max))
    query = (
        select(
            conversations.c.id.label("conversation_id"),
            conversations.c.kind,
            conversations.c.last_seq,
            conversations.c.last_message_at_us,
            members.c.peer_id,
            members.c.read_seq,
            members.c.delivered_seq,
            messages.c.msg_id,
            messages.c.seq,
            messages.c.sender_id,
            messages.c.content,
            messages.c.client_msg_id,
            messages.c.created_at_us,
        )
        .join(
            members,
            and_(
                members.c.app_id == conversations.c.app_id,
                members.c.conversation_id == conversations.c.id,
            ),
        )
        .outerjoin(
            messages,
            and_(
                messages.c.app_id == conversations.c.app_id,
                messages.c.conversation_id == conversations.c.id,
                messages.c.seq == conversations.c.last_seq,
            ),
        )
        .where(members.c.app_id == app_id, members.c.user_id == user_id)
        .order_by(conversations.c.last_message_at_us.desc(), conversations.c.id.desc())
        .limit(limit + 1)
    )
    if cursor is not None:
        at, cid = _decode_cursor(cursor)
        query = query.where(
            or_(
                conversations.c.last_message_at_us < at,
                and_(conversations.c.last_message_at_us == at, conversations.c.id < cid),
            )
        )
    async with ctx.db.read() as conn:
        rows = list(await conn.execute(query))
    more = len(rows) > limit
    rows = rows[:limit]
    items = [_conversation_view(r) for r in rows]
    last = rows[-1] if more else None
    next_cursor = _encode_cursor(last.last_message_at_us, last.conversation_id) if last else None
    return items, next_cursor


def _conversation_view(row: Any) -> dict[str, Any]:
    return {
        "conversation_id": row.conversation_id,
        "kind": row.kind,
        "peer": row.peer_id or None,
        "last_seq": row.last_seq,
        "read_seq": row.read_seq,
        "delivered_seq": row.delivered_seq,
        "unread": max(0, row.last_seq - row.read_seq),
        "updated_at": iso_from_us(row.last_message_at_us),
        "last_message": message_view(row) if row.msg_id is not None else None,
    }


async def mark_read(
    ctx: Context,
    app_id: int,
    user_id: str,
    conversation_id: str,
    seq: int,
    origin_connection: str | None = None,
) -> int:
    """Move the user's read marker forward (never back); tell their other devices."""
    async with ctx.db.write() as conn:
        last_seq = await _last_seq_for_member(conn, app_id, user_id, conversation_id)
        _check_seq(seq, last_seq)
        await conn.execute(
            update(members)
            .where(
                members.c.app_id == app_id,
                members.c.user_id == user_id,
                members.c.conversation_id == conversation_id,
                members.c.read_seq < seq,
            )
            .values(read_seq=seq)
        )
        read_seq = await conn.scalar(
            select(members.c.read_seq).where(
                members.c.app_id == app_id,
                members.c.user_id == user_id,
                members.c.conversation_id == conversation_id,
            )
        )
    read_seq = int(read_seq or 0)
    await ctx.broker.publish(
        Delivery(
            app_id,
            (user_id,),
            {"type": "read", "conversation_id": conversation_id, "seq": read_seq},
            exclude_connection=origin_connection,
        )
    )
    return read_seq


async def acknowledge(
    ctx: Context, app_id: int, user_id: str, conversation_id: str, seq: int
) -> None:
    """Record that the user's device holds everything up to ``seq`` (cumulative)."""
    async with ctx.db.write() as conn:
        last_seq = await _last_seq_for_member(conn, app_id, user_id, conversation_id)
        _check_seq(seq, last_seq)
        await conn.execute(
            update(members)
            .where(
                members.c.app_id == app_id,
                members.c.user_id == user_id,
                members.c.conversation_id == conversation_id,
                members.c.delivered_seq < seq,
            )
            .values(delivered_seq=seq)
        )


async def chat_log(
    ctx: Context,
    app_id: int,
    *,
    conversation_id: str | None = None,
    user_id: str | None = None,
    start_us: int,
    end_us: int,
    cursor: str | None,
    limit: int,
) -> tuple[list[dict[str, Any]], str | None]:
    """Messages with start <= created_at < end, oldest first, by (created_at, storage id).

    The storage id breaks ties between messages of one microsecond, so a page boundary
    never skips or repeats one."""
    if end_us <= start_us:
        raise InvalidRequest("to must be later than from.", code="invalid_time_range")
    query = (
        select(messages)
        .where(
            messages.c.app_id == app_id,
            messages.c.created_at_us >= start_us,
            messages.c.created_at_us < end_us,
        )
        .order_by(messages.c.created_at_us, messages.c.id)
        .limit(limit + 1)
    )
    if conversation_id is not None:
        query = query.where(messages.c.conversation_id == conversation_id)
    if user_id is not None:
        query = query.join(
            members,
            and_(
                members.c.app_id == messages.c.app_id,
                members.c.conversation_id == messages.c.conversation_id,
                members.c.user_id == user_id,
            ),
        )
    if cursor is not None:
        at, key = _decode_cursor(cursor)
        if not key.isdigit():
            raise InvalidRequest("The cursor is not one this API returned.", code="bad_cursor")
        query = query.where(
            or_(
                messages.c.created_at_us > at,
                and_(messages.c.created_at_us == at, messages.c.id > int(key)),
            )
        )
    async with ctx.db.read() as conn:
        rows = list(await conn.execute(query))
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = _encode_cursor(rows[-1].created_at_us, str(rows[-1].id)) if more else None
    return [message_view(r) for r in rows], next_cursor


def _encode_cursor(at_us: int, key: str) -> str:
    return base64.urlsafe_b64encode(f"{at_us}|{key}".encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[int, str]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        at, _, key = base64.urlsafe_b64decode(padded).decode().partition("|")
        return int(at), key
    except ValueError as exc:
        raise InvalidRequest("The cursor is not one this API returned.", code="bad_cursor") from exc
