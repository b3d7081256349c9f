"""The send pipeline: every message, from a client or the App Server, goes through here.

    validate content → stages (moderation, before-send hooks join here) → persist with
    the next seq of its conversation → commit → publish to the recipients' devices

A message is published only after its transaction commits, so no device can hear of
seq N before N can be fetched. Within one conversation the row lock taken to assign
the seq makes commits happen in seq order, so the sequence has no gaps.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from app import ids
from app.broker import Delivery
from app.errors import Forbidden, InvalidRequest
from app.services import membership
from app.services.context import Context
from app.storage.db import now_us
from app.storage.models import conversations, members, mentions, messages
from app.timefmt import iso_from_us
from app.webhooks import outbox

SYSTEM_SENDER = ""
CUSTOM_TYPE_MAX = 64
CLIENT_MSG_ID_MAX = 64
MENTIONS_MAX = 100
MENTION_ALL = "all"
MEDIA_ID = re.compile(r"[0-9a-f]{32}")
MEDIA_NAME_MAX = 255


@dataclass(frozen=True, slots=True)
class Outgoing:
    """A message on its way in, before it has a seq."""

    app_id: int
    sender: str  # an MD5 ID, or SYSTEM_SENDER for a notice from the App Server
    conversation_id: str
    members: tuple[str, ...]
    content: dict[str, Any]
    client_msg_id: str | None = None
    origin_connection: str | None = None
    # Set by a moderation stage: the category the message is flagged with for review,
    # shown to recipients; and what the stages found, for the persist hooks to record.
    risk: str | None = None
    findings: tuple[Any, ...] = ()
    # False for an App Server send that asked not to trigger webhooks, so a receiver
    # that answers an event by posting into the conversation cannot start a loop.
    hooks: bool = True


@dataclass(frozen=True, slots=True)
class Ack:
    msg_id: str
    conversation_id: str
    seq: int
    created_at_us: int
    duplicate: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "msg_id": self.msg_id,
            "conversation_id": self.conversation_id,
            "seq": self.seq,
            "created_at": iso_from_us(self.created_at_us),
            "duplicate": self.duplicate,
        }


# A stage may refuse a message (raise a ParleyError) or return it changed.
SendStage = Callable[[Context, Outgoing], Awaitable[Outgoing]]


def validate_content(ctx: Context, content: Any) -> dict[str, Any]:
    """The kinds of content a sender writes: text, a custom JSON payload of the app's own
    type, and an uploaded image or file."""
    if not isinstance(content, dict):
        raise InvalidRequest("content must be an object.", code="invalid_content")
    kind = content.get("type")
    if kind == "text":
        checked = _text_content(ctx, content)
    elif kind == "custom":
        checked = _custom_content(ctx, content)
    elif kind in ("image", "file"):
        checked = _media_content(ctx, content)
    else:
        raise InvalidRequest('content.type must be "text", "custom", "image" or "file".',
                             code="invalid_content")
    try:
        orjson.dumps(checked)
    except orjson.JSONEncodeError as exc:
        # A lone surrogate in a string, or an integer past 64 bits, that JSON over REST
        # let in but that cannot be stored and sent on.
        raise InvalidRequest("content holds text or a number that cannot be stored.",
                             code="invalid_content") from exc
    return checked


def _text_content(ctx: Context, content: dict[str, Any]) -> dict[str, Any]:
    text = content.get("text")
    if not isinstance(text, str) or text == "":
        raise InvalidRequest("content.text must be a non-empty string.", code="invalid_content")
    limit = ctx.settings.max_text_chars
    if len(text) > limit:
        raise InvalidRequest(
            f"content.text is longer than {limit} characters.", code="text_too_long", limit=limit
        )
    if set(content) - {"type", "text", "mentions"}:
        raise InvalidRequest("text content takes type, text and mentions.",
                             code="invalid_content")
    if "mentions" not in content:
        return {"type": "text", "text": text}
    return {"type": "text", "text": text, "mentions": _mentions(content["mentions"])}


def _media_content(ctx: Context, content: dict[str, Any]) -> dict[str, Any]:
    """An uploaded medium, by its media_id: an image with an optional caption, or a file
    with an optional name. The media stage checks the sender may use it."""
    media_id = content.get("media_id")
    if not isinstance(media_id, str) or not MEDIA_ID.fullmatch(media_id):
        raise InvalidRequest("content.media_id must be an ID an upload returned.",
                             code="invalid_content")
    extra = "text" if content["type"] == "image" else "name"
    if set(content) - {"type", "media_id", extra}:
        raise InvalidRequest(f"{content['type']} content takes type, media_id and {extra}.",
                             code="invalid_content")
    if extra == "text" and "text" in content:
        _text_content(ctx, {"type": "text", "text": content["text"]})
    name = content.get("name")
    if extra == "name" and name is not None and (
            not isinstance(name, str) or not 0 < len(name) <= MEDIA_NAME_MAX):
        raise InvalidRequest(f"content.name must be a string of 1 to {MEDIA_NAME_MAX} "
                             "characters.", code="invalid_content")
    return dict(content)


def _mentions(value: Any) -> list[str]:
    """Users named by MD5 ID, or "all"; only group messages may carry them."""
    if not isinstance(value, list) or len(value) > MENTIONS_MAX:
        raise InvalidRequest(f"mentions is a list of at most {MENTIONS_MAX} MD5 IDs or \"all\".",
                             code="invalid_content")
    return sorted({m if m == MENTION_ALL else ids.normalise_md5(m) for m in value})


def _custom_content(ctx: Context, content: dict[str, Any]) -> dict[str, Any]:
    custom_type = content.get("custom_type")
    if not isinstance(custom_type, str) or not 0 < len(custom_type) <= CUSTOM_TYPE_MAX:
        raise InvalidRequest(
            "content.custom_type must be a string of 1 to 64 characters.",
            code="invalid_content",
        )
    if set(content) - {"type", "custom_type", "data", "text"}:
        raise InvalidRequest(
            "custom content takes type, custom_type, data and an optional text.",
            code="invalid_content",
        )
    if "text" in content:
        _text_content(ctx, {"type": "text", "text": content["text"]})
    try:
        size = len(orjson.dumps(content))
    except orjson.JSONEncodeError as exc:
        raise InvalidRequest("content holds text or a number that cannot be stored.",
                             code="invalid_content") from exc
    if size > ctx.settings.max_custom_bytes:
        raise InvalidRequest(
            f"custom content is {size} bytes; the limit is {ctx.settings.max_custom_bytes}.",
            code="content_too_large",
            limit=ctx.settings.max_custom_bytes,
        )
    return dict(content)


def validate_client_msg_id(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not 0 < len(value) <= CLIENT_MSG_ID_MAX:
        raise InvalidRequest(
            "client_msg_id must be a string of 1 to 64 characters.", code="invalid_request"
        )
    return value


def _refuse_mentions(content: dict[str, Any]) -> dict[str, Any]:
    if "mentions" in content:
        raise InvalidRequest("Mentions are for group messages.", code="invalid_mention")
    return content


async def send_direct(
    ctx: Context,
    app_id: int,
    sender: str,
    recipient: str,
    content: Any,
    client_msg_id: str | None = None,
    origin_connection: str | None = None,
    *,
    hooks: bool = True,
) -> Ack:
    """A 1:1 message from one user of the app to another."""
    outgoing = Outgoing(
        app_id,
        sender,
        ids.p2p_conversation_id(sender, recipient),
        tuple(sorted({sender, recipient})),
        _refuse_mentions(validate_content(ctx, content)),
        validate_client_msg_id(client_msg_id),
        origin_connection,
        hooks=hooks,
    )
    return await _send(ctx, outgoing, recipient)


async def send_notice(
    ctx: Context,
    app_id: int,
    recipient: str,
    content: Any,
    client_msg_id: str | None = None,
    *,
    hooks: bool = True,
) -> Ack:
    """A system notice from the App Server, in the user's own system conversation."""
    outgoing = Outgoing(
        app_id,
        SYSTEM_SENDER,
        ids.system_conversation_id(recipient),
        (recipient,),
        _refuse_mentions(validate_content(ctx, content)),
        validate_client_msg_id(client_msg_id),
        hooks=hooks,
    )
    return await _send(ctx, outgoing, recipient)


async def send_group(
    ctx: Context,
    app_id: int,
    sender: str,
    group_id: str,
    content: Any,
    client_msg_id: str | None = None,
    origin_connection: str | None = None,
    *,
    hooks: bool = True,
) -> Ack:
    """A message to a group, from a member (or from the system when sender is empty).

    Who receives it is decided inside the transaction, from the members at its seq."""
    outgoing = Outgoing(
        app_id,
        sender,
        membership.group_conversation_id(group_id),
        (),
        validate_content(ctx, content),
        validate_client_msg_id(client_msg_id),
        origin_connection,
        hooks=hooks,
    )
    return await _send(ctx, outgoing)


async def _send(ctx: Context, outgoing: Outgoing, recipient: str | None = None) -> Ack:
    """Stages, storage, then the push. ``recipient`` is the user a 1:1 message or notice
    is for (it must exist); a group message has none."""
    if outgoing.client_msg_id is not None:
        # A resend of a stored message gets its ack again before any stage runs: it
        # must not use up a rate-limit token or ask the App Server's hook twice.
        earlier = await _find_duplicate(ctx, outgoing)
        if earlier is not None:
            return earlier
    for stage in ctx.send_stages:
        outgoing = await stage(ctx, outgoing)
    encoded = orjson.dumps(outgoing.content).decode()

    if recipient is not None:
        ack, recipients = await ctx.committer.write(ctx, outgoing, encoded, recipient)
    else:
        try:
            ack, recipients = await _persist(ctx, outgoing, encoded)
        except IntegrityError:
            # Two resends of one client_msg_id raced; the other one won. Return its ack.
            earlier = await _find_duplicate(ctx, outgoing, stored=True)
            if earlier is None:
                raise
            ack, recipients = earlier, ()

    if recipients:
        view = _view(
            outgoing.conversation_id,
            ack.seq,
            ack.msg_id,
            outgoing.sender,
            orjson.Fragment(encoded),
            outgoing.client_msg_id,
            ack.created_at_us,
            outgoing.risk,
        )
        await ctx.broker.publish(
            Delivery(
                outgoing.app_id,
                recipients,
                {"type": "message", "message": view},
                exclude_connection=outgoing.origin_connection,
            )
        )
    return ack


async def _persist(
    ctx: Context, outgoing: Outgoing, encoded: str
) -> tuple[Ack, tuple[str, ...]]:
    """Store a group message under the group's next seq; return its ack and who must hear
    of it (nobody for a resend, which was delivered the first time). 1:1 messages and
    notices are written in batches by app.services.committer instead."""
    now = now_us()
    async with ctx.db.write() as conn:
        if outgoing.client_msg_id is not None:
            earlier = await _lookup_duplicate(conn, outgoing)
            if earlier is not None:
                return earlier, ()
        seq = await next_seq(conn, outgoing.app_id, outgoing.conversation_id, now)
        recipients = await _group_gate(conn, outgoing, seq, now)
        msg_id = ids.new_message_id()
        await insert_message(conn, outgoing.app_id, outgoing.conversation_id, seq, msg_id,
                             outgoing.sender, encoded, now, outgoing.client_msg_id,
                             risk=outgoing.risk)
        await record_stored(ctx, conn, outgoing, msg_id, seq, encoded, now)
        if outgoing.sender != SYSTEM_SENDER:
            # Writing in a conversation counts as having read it up to there.
            await conn.execute(
                update(members)
                .where(
                    members.c.app_id == outgoing.app_id,
                    members.c.user_id == outgoing.sender,
                    members.c.conversation_id == outgoing.conversation_id,
                )
                .values(read_seq=seq)
            )
    return Ack(msg_id, outgoing.conversation_id, seq, now), recipients


async def record_stored(ctx: Context, conn: AsyncConnection, outgoing: Outgoing, msg_id: str,
                        seq: int, encoded: str, now: int) -> None:
    """What a stored message writes besides its row, in its transaction: the persist
    hooks' records and, unless the sender asked for none, the message.sent event."""
    for hook in ctx.persist_hooks:
        await hook(ctx, conn, outgoing, msg_id)
    if outgoing.hooks:
        stored = Stored(outgoing.conversation_id, seq, msg_id, outgoing.sender, encoded,
                        outgoing.client_msg_id, now, outgoing.risk)
        await outbox.emit(conn, ctx.hooks, outgoing.app_id, "message.sent",
                          {"message": message_view(stored)}, now)


async def next_seq(conn: AsyncConnection, app_id: int, conversation_id: str, now: int) -> int:
    """Take the conversation's next seq. The row stays locked until the transaction ends,
    which orders concurrent writers and keeps the sequence free of gaps."""
    seq = await conn.scalar(
        update(conversations)
        .where(conversations.c.app_id == app_id, conversations.c.id == conversation_id)
        .values(last_seq=conversations.c.last_seq + 1, last_message_at_us=now)
        .returning(conversations.c.last_seq)
    )
    if seq is None:
        raise membership.group_not_found()
    return int(seq)


async def insert_message(
    conn: AsyncConnection,
    app_id: int,
    conversation_id: str,
    seq: int,
    msg_id: str,
    sender: str,
    encoded: str,
    now: int,
    client_msg_id: str | None = None,
    countable: bool = True,
    risk: str | None = None,
) -> None:
    await conn.execute(
        insert(messages).values(
            msg_id=msg_id,
            app_id=app_id,
            conversation_id=conversation_id,
            seq=seq,
            sender_id=sender,
            client_msg_id=client_msg_id,
            content=encoded,
            created_at_us=now,
            countable=countable,
            risk=risk,
        )
    )


async def _group_gate(
    conn: AsyncConnection, outgoing: Outgoing, seq: int, now: int
) -> tuple[str, ...]:
    """Check the sender may post and mention as asked; return the members at this seq."""
    group, sender, recipients = await membership.load_for_send(
        conn, outgoing.app_id, outgoing.conversation_id[4:], outgoing.sender)
    if outgoing.sender != SYSTEM_SENDER:
        membership.access_send(group, sender, now)
    elif group.dismissed_at_us is not None:
        raise Forbidden("The group was dismissed.", code="group_dismissed")

    mentioned = outgoing.content.get("mentions") or []
    if MENTION_ALL in mentioned:
        membership.access_mention_all(sender, outgoing.sender == SYSTEM_SENDER)
    unknown = set(mentioned) - set(recipients) - {MENTION_ALL}
    if unknown:
        raise InvalidRequest("Only current members can be mentioned.", code="invalid_mention")
    if mentioned:
        await conn.execute(insert(mentions), [
            {"app_id": outgoing.app_id, "conversation_id": outgoing.conversation_id,
             "seq": seq, "user_id": "*" if m == MENTION_ALL else m}
            for m in mentioned
        ])
    return tuple(recipients)


async def _lookup_duplicate(conn: AsyncConnection, outgoing: Outgoing) -> Ack | None:
    row = (
        await conn.execute(
            select(
                messages.c.msg_id,
                messages.c.conversation_id,
                messages.c.seq,
                messages.c.created_at_us,
            ).where(
                messages.c.app_id == outgoing.app_id,
                messages.c.conversation_id == outgoing.conversation_id,
                messages.c.sender_id == outgoing.sender,
                messages.c.client_msg_id == outgoing.client_msg_id,
            )
        )
    ).first()
    if row is None:
        return None
    return Ack(row.msg_id, row.conversation_id, row.seq, row.created_at_us, duplicate=True)


async def _find_duplicate(ctx: Context, outgoing: Outgoing, *, stored: bool = False
                          ) -> Ack | None:
    """The ack of an earlier send with this client_msg_id, if it was stored.

    Before the stages, the node's memory of its recent acks answers for a resend after
    a reconnect; the database is asked only for an app with a before-send hook, whose
    App Server must not be asked twice. A resend that reaches another node, or comes
    long after, passes the stages again and is then found by the committer."""
    if outgoing.client_msg_id is None:
        return None
    key = (outgoing.app_id, outgoing.conversation_id, outgoing.sender, outgoing.client_msg_id)
    if not stored:
        recent = ctx.committer.recent.get(key)
        if recent is not None:
            return Ack(recent.msg_id, recent.conversation_id, recent.seq,
                       recent.created_at_us, duplicate=True)
        if ctx.hooks is None or (await ctx.hooks.get(outgoing.app_id)).before_send is None:
            return None
    async with ctx.db.read() as conn:
        return await _lookup_duplicate(conn, outgoing)


def peer_of(conversation_id: str, user: str) -> str:
    kind, _, rest = conversation_id.partition(":")
    if kind != "p2p":
        return ""
    lo, _, hi = rest.partition(":")
    return hi if user == lo else lo


def _view(
    conversation_id: str,
    seq: int,
    msg_id: str,
    sender: str,
    content: Any,
    client_msg_id: str | None,
    created_at_us: int,
    risk: str | None = None,
) -> dict[str, Any]:
    to: str | None
    if conversation_id.startswith(("sys:", "grp:")):
        to = conversation_id[4:]
    elif sender == SYSTEM_SENDER:
        to = None  # a notice in a 1:1 conversation, such as a recall, is for both
    else:
        to = peer_of(conversation_id, sender)
    return {
        "msg_id": msg_id,
        "conversation_id": conversation_id,
        "seq": seq,
        "from": sender or None,
        "to": to,
        "content": content,
        "client_msg_id": client_msg_id,
        "created_at": iso_from_us(created_at_us),
        # Null, or the category a content rule flagged the message with: a client may
        # show it as a warning.
        "risk": risk,
    }


@dataclass(frozen=True, slots=True)
class Stored:
    """A message just written, shaped like its row, for building its view."""

    conversation_id: str
    seq: int
    msg_id: str
    sender_id: str
    content: str
    client_msg_id: str | None
    created_at_us: int
    risk: str | None = None


def message_view(row: Any) -> dict[str, Any]:
    """A stored message as every path shows it; content spliced in without parsing."""
    return _view(
        row.conversation_id,
        row.seq,
        row.msg_id,
        row.sender_id,
        orjson.Fragment(row.content),
        row.client_msg_id,
        row.created_at_us,
        row.risk,
    )
