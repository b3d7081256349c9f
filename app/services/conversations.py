"""Reading conversations: sync after a seq, the conversation list, read markers,
receipts, and the App Server's chat logs."""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, and_, bindparam, case, exists, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from app import ids
from app.broker import Delivery
from app.errors import InvalidRequest, NotFound
from app.services.context import Context
from app.services.messages import message_view
from app.storage.models import conversations, members, mentions, messages
from app.timefmt import iso_from_us


@dataclass(frozen=True, slots=True)
class Page:
    messages: list[dict[str, Any]]
    has_more: bool
    last_seq: int


def _not_found() -> NotFound:
    return NotFound("No such conversation for this user.", code="conversation_not_found")


def _could_belong(conversation_id: str, user_id: str) -> bool:
    """A well-formed conversation the user would be in once its first message exists."""
    kind, _, rest = conversation_id.partition(":")
    if kind == "p2p":
        pair = rest.split(":")
        return (len(pair) == 2 and all(ids.is_md5(p) for p in pair)
                and user_id in pair and conversation_id == ids.p2p_conversation_id(*pair))
    return kind == "sys" and rest == user_id


@dataclass(frozen=True, slots=True)
class Window:
    """The seqs a user may see in a conversation: low < seq <= high."""

    low: int
    high: int


async def _window(
    conn: AsyncConnection, app_id: int, user_id: str, conversation_id: str
) -> Window:
    row = (
        await conn.execute(
            select(conversations.c.last_seq, members.c.joined_seq, members.c.left_seq)
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
        high = row.last_seq if row.left_seq is None else min(row.last_seq, row.left_seq)
        return Window(int(row.joined_seq), int(high))
    if _could_belong(conversation_id, user_id):
        return Window(0, 0)
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
    """Messages after ``after_seq`` in seq order, at most ``limit`` of them.

    The page is read together with the user's window, so catching up costs one query a
    page. Only an empty page reads the window alone: it may be the end of the
    conversation, a seq past it, or a conversation that is not the user's."""
    limit = max(1, min(limit, ctx.settings.sync_page_max))
    async with ctx.db.read() as conn:
        rows = list(await conn.execute(_PAGE, {
            "app_id": app_id, "user_id": user_id, "conversation_id": conversation_id,
            "after_seq": after_seq, "limit": limit}))
        if rows:
            window = _row_window(rows[0])
        else:
            window = await _window(conn, app_id, user_id, conversation_id)
    _check_seq(after_seq, window.high)
    rows = _within_budget(rows)
    has_more = bool(rows) and rows[-1].seq < window.high
    return Page([message_view(r) for r in rows], has_more, window.high)


def _page_query() -> Select[Any]:
    """The user's visible messages after a seq, with their window beside each. It goes
    through the user's membership, so a conversation that is not theirs gives no rows.
    Built once, with the values bound at each call: building a query of this size costs
    more than running it."""
    return (
        select(
            messages.c.conversation_id, messages.c.seq, messages.c.msg_id,
            messages.c.sender_id, messages.c.content, messages.c.client_msg_id,
            messages.c.created_at_us, messages.c.risk,
            conversations.c.last_seq, members.c.joined_seq, members.c.left_seq,
        )
        .select_from(members)
        .join(conversations, and_(conversations.c.app_id == members.c.app_id,
                                  conversations.c.id == members.c.conversation_id))
        .join(messages, and_(messages.c.app_id == members.c.app_id,
                             messages.c.conversation_id == members.c.conversation_id))
        .where(
            members.c.app_id == bindparam("app_id"),
            members.c.conversation_id == bindparam("conversation_id"),
            members.c.user_id == bindparam("user_id"),
            messages.c.seq > bindparam("after_seq"),
            messages.c.seq > members.c.joined_seq,
            messages.c.seq <= conversations.c.last_seq,
            or_(members.c.left_seq.is_(None), messages.c.seq <= members.c.left_seq),
            # Filtered here, not after the limit, so a page never comes back empty
            # while has_more says go on.
            messages.c.hidden_at_us.is_(None),
        )
        .order_by(messages.c.seq)
        .limit(bindparam("limit"))
    )


_PAGE = _page_query()


def _row_window(row: Any) -> Window:
    """The window read beside a page's message, as :func:`_window` reads it alone."""
    high = row.last_seq if row.left_seq is None else min(row.last_seq, row.left_seq)
    return Window(int(row.joined_seq), int(high))


# A sync page stops growing past this many characters of content (always keeping one
# message), so a page of 200 long messages is not one 6 MB frame; has_more says go on.
SYNC_PAGE_CHARS = 256 * 1024


def _within_budget(rows: list[Any]) -> list[Any]:
    total = 0
    for count, row in enumerate(rows):
        total += len(row.content)
        if total > SYNC_PAGE_CHARS and count > 0:
            return rows[:count]
    return rows


async def list_for_user(
    ctx: Context, app_id: int, user_id: str, limit: int, cursor: str | None
) -> tuple[list[dict[str, Any]], str | None]:
    """Conversations by newest message first, each with its last visible message, its
    unread count and whether an unread message mentions the user."""
    limit = max(1, min(limit, ctx.settings.sync_page_max))
    high = case(
        (and_(members.c.left_seq.is_not(None), members.c.left_seq < conversations.c.last_seq),
         members.c.left_seq),
        else_=conversations.c.last_seq,
    )
    unread_window = and_(messages.c.seq > members.c.read_seq, messages.c.seq > members.c.joined_seq,
                         messages.c.seq <= high)
    query = (
        select(
            conversations.c.id.label("conversation_id"),
            conversations.c.kind,
            high.label("last_seq"),
            conversations.c.last_message_at_us,
            members.c.peer_id,
            members.c.read_seq,
            members.c.delivered_seq,
            members.c.role,
            members.c.left_seq,
            _unread_count(user_id, unread_window).label("unread"),
            _mentioned(user_id, unread_window).label("mentioned"),
        )
        .join(
            members,
            and_(
                members.c.app_id == conversations.c.app_id,
                members.c.conversation_id == conversations.c.id,
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
        last_messages = await _messages_at(conn, app_id, [(r.conversation_id, r.last_seq)
                                                          for r in rows])
    items = [_conversation_view(r, last_messages.get(r.conversation_id)) for r in rows]
    last = rows[-1] if more else None
    next_cursor = _encode_cursor(last.last_message_at_us, last.conversation_id) if last else None
    return items, next_cursor


def _unread_count(user_id: str, window: Any) -> Any:
    """Others' text and custom messages after the read marker, not recalled."""
    return (
        select(func.count())
        .where(
            messages.c.app_id == members.c.app_id,
            messages.c.conversation_id == members.c.conversation_id,
            window,
            messages.c.countable.is_(True),
            messages.c.hidden_at_us.is_(None),
            messages.c.sender_id != user_id,
        )
        .scalar_subquery()
    )


def _mentioned(user_id: str, window: Any) -> Any:
    """Whether an unread, unrecalled message mentions the user or everyone."""
    return exists().where(
        mentions.c.app_id == members.c.app_id,
        mentions.c.conversation_id == members.c.conversation_id,
        mentions.c.user_id.in_([user_id, "*"]),
        messages.c.app_id == mentions.c.app_id,
        messages.c.conversation_id == mentions.c.conversation_id,
        messages.c.seq == mentions.c.seq,
        messages.c.countable.is_(True),
        messages.c.hidden_at_us.is_(None),
        messages.c.sender_id != user_id,
        window,
    )


async def _messages_at(conn: AsyncConnection, app_id: int, wanted: list[tuple[str, int]]
                       ) -> dict[str, Any]:
    if not wanted:
        return {}
    pairs = [and_(messages.c.conversation_id == c, messages.c.seq == s) for c, s in wanted]
    rows = await conn.execute(select(messages).where(messages.c.app_id == app_id, or_(*pairs)))
    return {r.conversation_id: r for r in rows if r.hidden_at_us is None}


def _conversation_view(row: Any, last_message: Any) -> dict[str, Any]:
    view = {
        "conversation_id": row.conversation_id,
        "kind": row.kind,
        "peer": row.peer_id or None,
        "last_seq": row.last_seq,
        "read_seq": row.read_seq,
        "delivered_seq": row.delivered_seq,
        "unread": row.unread,
        "mentioned": bool(row.mentioned),
        "updated_at": iso_from_us(row.last_message_at_us),
        "last_message": message_view(last_message) if last_message is not None else None,
    }
    if row.kind == "group":
        view["role"] = row.role if row.left_seq is None else None
        view["left"] = row.left_seq is not None
    return view


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
        _check_seq(seq, (await _window(conn, app_id, user_id, conversation_id)).high)
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


def acknowledge(
    ctx: Context, app_id: int, user_id: str, conversation_id: str, seq: int
) -> None:
    """Record that the user's device holds everything up to ``seq`` (cumulative); it is
    written with the node's next batch (see app.services.committer)."""
    ctx.committer.delivered(ctx, app_id, user_id, conversation_id, seq)


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
        if not re.fullmatch(r"[0-9]{1,18}", key):
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
    # A message a reviewer ruled a violation is left out; the cursor still moves past it.
    return [message_view(r) for r in rows if r.hidden_at_us is None], next_cursor


def _encode_cursor(at_us: int, key: str) -> str:
    return base64.urlsafe_b64encode(f"{at_us}|{key}".encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[int, str]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        at, _, key = base64.urlsafe_b64decode(padded).decode().partition("|")
        if not re.fullmatch(r"-?[0-9]{1,18}", at):
            raise ValueError(at)
        return int(at), key
    except ValueError as exc:
        raise InvalidRequest("The cursor is not one this API returned.", code="bad_cursor") from exc
