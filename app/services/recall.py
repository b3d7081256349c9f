"""Recall and read receipts: the two things done to one message after it is sent.

A recall keeps the message's place in the sequence as a tombstone (content
``{"type": "recalled"}``, no longer counted as unread or as a mention) and appends a
system message that names it, so devices that were offline learn of it by sync.

Who may recall: the sender, within PARLEY_RECALL_WINDOW_SECONDS; in a group, the owner
any member's message and an admin a plain member's; the App Server anything, any time.
"""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from app import ids
from app.broker import Delivery
from app.errors import Forbidden, NotFound
from app.services import membership
from app.services.context import Context
from app.services.membership import RANK, Member
from app.services.messages import (
    SYSTEM_SENDER,
    Stored,
    insert_message,
    message_view,
    next_seq,
)
from app.storage.db import now_us
from app.storage.models import members, messages
from app.webhooks import outbox

TOMBSTONE = '{"type":"recalled"}'


def _no_message() -> NotFound:
    return NotFound("No such message in this conversation.", code="message_not_found")


async def _target(conn: AsyncConnection, app_id: int, conversation_id: str, seq: int,
                  lock: bool = False) -> Any:
    query = select(messages).where(
        messages.c.app_id == app_id, messages.c.conversation_id == conversation_id,
        messages.c.seq == seq)
    if lock:
        # Two recalls of one message take turns, so only one tombstone notice is written.
        query = query.with_for_update()
    row = (await conn.execute(query)).first()
    if row is None:
        raise _no_message()
    return row


async def _visible_member(conn: AsyncConnection, app_id: int, conversation_id: str,
                          user: str, seq: int) -> Member:
    me = await membership.load_member(conn, app_id, conversation_id, user)
    if me is None or seq <= me.joined_seq or (me.left_seq is not None and seq > me.left_seq):
        raise _no_message()
    return me


def _still_in(me: Member) -> None:
    """Someone who left a group no longer acts in it, even on their own messages."""
    if not me.current:
        raise Forbidden("You are no longer a member of this group.", code="not_a_member")


def access_recall(actor: Member | None, sender: Member | None, row: Any, is_app_server: bool,
                  now: int, window_us: int) -> None:
    if is_app_server:
        return
    if row.sender_id == SYSTEM_SENDER:
        raise Forbidden("System messages cannot be recalled by a client.", code="not_allowed")
    if actor is not None and actor.user_id == row.sender_id:
        if now - row.created_at_us > window_us:
            raise Forbidden("The time to recall this message has passed.",
                            code="recall_window_passed")
        return
    if actor is None or not actor.is_admin:
        raise Forbidden("Only the sender, or a group's owner or admin, may recall.",
                        code="not_allowed")
    if sender is not None and RANK[actor.role] <= RANK[sender.role]:
        raise Forbidden("An admin may recall only plain members' messages.", code="not_allowed")


async def recall(ctx: Context, app_id: int, actor: str | None, conversation_id: str,
                 seq: int) -> dict[str, Any]:
    now = now_us()
    async with ctx.db.write() as conn:
        row = await _target(conn, app_id, conversation_id, seq, lock=True)
        me = None
        if actor is not None:
            me = await _visible_member(conn, app_id, conversation_id, actor, seq)
            _still_in(me)
        if row.recalled_at_us is not None:
            return {"conversation_id": conversation_id, "seq": seq, "msg_id": row.msg_id,
                    "recalled": True}
        sender = None
        if row.sender_id and conversation_id.startswith("grp:"):
            sender = await membership.load_member(conn, app_id, conversation_id, row.sender_id)
        window_us = ctx.settings.recall_window_seconds * 1_000_000
        access_recall(me, sender, row, actor is None, now, window_us)

        await conn.execute(update(messages).where(messages.c.id == row.id).values(
            content=TOMBSTONE, countable=False, recalled_at_us=now))
        notice_seq = await next_seq(conn, app_id, conversation_id, now)
        msg_id = ids.new_message_id()
        encoded = orjson.dumps({"type": "system", "event": "recalled", "by": actor,
                                "msg_id": row.msg_id, "seq": seq}).decode()
        await insert_message(conn, app_id, conversation_id, notice_seq, msg_id, SYSTEM_SENDER,
                             encoded, now, countable=False)
        audience = await _audience(conn, app_id, conversation_id)
        await outbox.emit(conn, ctx.hooks, app_id, "message.recalled", {
            "conversation_id": conversation_id, "seq": seq, "msg_id": row.msg_id, "by": actor,
        }, now)
    view = message_view(Stored(conversation_id, notice_seq, msg_id, SYSTEM_SENDER, encoded,
                               None, now))
    await ctx.broker.publish(Delivery(app_id, audience, {"type": "message", "message": view}))
    return {"conversation_id": conversation_id, "seq": seq, "msg_id": row.msg_id,
            "recalled": True}


async def _audience(conn: AsyncConnection, app_id: int, conversation_id: str
                    ) -> tuple[str, ...]:
    if conversation_id.startswith("grp:"):
        return tuple(await membership.current_member_ids(conn, app_id, conversation_id))
    rows = await conn.execute(select(members.c.user_id).where(
        members.c.app_id == app_id, members.c.conversation_id == conversation_id))
    return tuple(r.user_id for r in rows)


async def receipts(ctx: Context, app_id: int, actor: str | None, conversation_id: str,
                   seq: int) -> dict[str, Any]:
    """Which members have read the message: its sender (or the App Server) may ask."""
    async with ctx.db.read() as conn:
        row = await _target(conn, app_id, conversation_id, seq)
        if actor is not None:
            await _visible_member(conn, app_id, conversation_id, actor, seq)
            if actor != row.sender_id:
                raise Forbidden("Only the sender may see who read a message.",
                                code="not_allowed")
        rows = await conn.execute(select(members.c.user_id, members.c.read_seq).where(
            members.c.app_id == app_id, members.c.conversation_id == conversation_id,
            members.c.user_id != row.sender_id, members.c.joined_seq < seq,
            (members.c.left_seq.is_(None)) | (members.c.left_seq >= seq)))
        audience = list(rows)
    read = sorted(r.user_id for r in audience if r.read_seq >= seq)
    unread = sorted(r.user_id for r in audience if r.read_seq < seq)
    return {"conversation_id": conversation_id, "seq": seq, "msg_id": row.msg_id,
            "read_count": len(read), "unread_count": len(unread), "read": read,
            "unread": unread}
