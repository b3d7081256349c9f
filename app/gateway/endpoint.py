"""The ``/ws`` route: reads frames, runs one request at a time, writes replies.

Requests on one connection are handled in order, so a client's sends get seqs in the
order it sent them. Every reply to a request echoes the request's ``id``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from starlette.websockets import WebSocket

from app import ids
from app.errors import CloseCode, InvalidRequest, LoginRequired, ParleyError, ProtocolError
from app.gateway import frames, presence
from app.gateway.codec import HEARTBEAT, JsonCodec
from app.gateway.connection import Connection
from app.gateway.hub import Hub
from app.moderation import review
from app.observability import metrics
from app.services import conversations, groups, messages, recall, tokens
from app.services.context import Context
from app.services.tokens import Session
from app.storage.db import now_us
from app.timefmt import iso_from_us
from app.webhooks import outbox

logger = logging.getLogger(__name__)

Reply = dict[str, Any] | None

# U+0000 can only reach a frame as this JSON escape. PostgreSQL's text cannot hold it, so
# a field with it would fail the statement it reaches, and with a batch of other users'
# writes (see app.services.committer): refused here, whatever the field.
NUL_ESCAPE = "\\u0000"
NUL_REFUSED = "Frames may not hold the character U+0000."
Handler = Callable[[Context, Hub, Connection, Any], Awaitable[Reply]]


async def serve(ws: WebSocket) -> None:
    ctx: Context = ws.app.state.ctx
    hub: Hub = ws.app.state.hub
    await ws.accept()
    conn = hub.open(ws)
    logger.debug("connection opened", extra={"conn": conn.id})
    try:
        await _read_loop(ctx, hub, conn)
    finally:
        hub.remove(conn)
        await conn.stop()
        if conn.logged_in and hub.presence is not None:
            await hub.presence.depart(conn)
        if conn.app_id is not None:
            await _presence_event(ctx, conn, "user.disconnected")
        logger.info("connection closed", extra={"conn": conn.id, "app": conn.app_id,
                                               "user": conn.user_id})


async def _read_loop(ctx: Context, hub: Hub, conn: Connection) -> None:
    limit = ctx.settings.max_frame_bytes
    budget = FrameBudget(ctx.settings.max_frames_per_second)
    while True:
        event = await conn.ws.receive()
        if event["type"] == "websocket.disconnect":
            return
        text = _admit(conn, budget, limit, event)
        # While it waits for the next frame, a connection holds on to nothing of the last.
        del event
        if text is None:
            continue
        conn.busy = True  # a drain waits for the reply before it closes the connection
        try:
            await _handle(ctx, hub, conn, text)
        finally:
            conn.busy = False
        del text


def _admit(conn: Connection, budget: FrameBudget, limit: int, event: Mapping[str, Any]
           ) -> str | None:
    """The text of a frame that is a request; None for one that was answered here (a
    heartbeat, or a frame refused) or that comes after the connection began to close."""
    conn.touch()
    if conn.closing:
        return None
    if not budget.take(time.monotonic()):
        _fail(conn, ProtocolError("Too many frames; slow down.", code="too_many_frames"),
              CloseCode.TOO_MANY_FRAMES)
        return None
    text: str | None = event.get("text")
    if text is None:
        _fail(conn, ProtocolError("Frames are text; binary is not accepted.",
                                  code="binary_frame"))
        return None
    if len(text) > limit // 4 and len(text.encode()) > limit:
        _fail(conn, ProtocolError(f"The frame is over {limit} bytes.", code="frame_too_large"),
              CloseCode.TOO_BIG)
        return None
    if text == HEARTBEAT:
        metrics.FRAMES_IN.labels("h").inc()
        conn.push(HEARTBEAT)
        return None
    return text


class FrameBudget:
    """A token bucket over a connection's frames, heartbeats included: a flood from one
    client must not take the core from everyone else. Bursts of twice the rate pass."""

    __slots__ = ("at", "capacity", "rate", "tokens")

    def __init__(self, per_second: float) -> None:
        self.rate = per_second
        self.capacity = 2 * per_second
        self.tokens = self.capacity
        self.at: float | None = None

    def take(self, now: float) -> bool:
        if self.at is not None:
            self.tokens = min(self.capacity, self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


async def _handle(ctx: Context, hub: Hub, conn: Connection, text: str) -> None:
    request_id = None
    try:
        raw = JsonCodec.decode(text)
        request_id = _request_id(raw.get("id"))
        if NUL_ESCAPE in text and _holds_nul(raw):
            raise InvalidRequest(NUL_REFUSED, code="invalid_field")
        if not conn.logged_in and raw["type"] != "login":
            raise LoginRequired("Log in first.")
        frame = frames.parse(raw)
        metrics.FRAMES_IN.labels(raw["type"]).inc()
        reply = await HANDLERS[type(frame)](ctx, hub, conn, frame)
        if reply is not None:
            conn.push(JsonCodec.encode({**reply, "id": request_id}))
    except ParleyError as exc:
        _fail(conn, exc, request_id=request_id)
    except Exception:
        logger.exception("request failed", extra={"conn": conn.id})
        _fail(conn, ParleyError("Internal error.", code="internal_error"),
              request_id=request_id)


def _holds_nul(value: Any) -> bool:
    """Whether a decoded frame has U+0000 in a string, keys included. Only asked when the
    escape appears in the frame's text (which a text that shows a backslash also can)."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_holds_nul(k) or _holds_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_holds_nul(v) for v in value)
    return False


def _request_id(value: Any) -> str | int | None:
    """Echo only an id the protocol allows: a string of 1-64 characters or an integer."""
    if isinstance(value, str) and 0 < len(value) <= 64:
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return None


def _fail(conn: Connection, exc: ParleyError, close_code: int | None = None,
          request_id: Any = None) -> None:
    body: dict[str, Any] = {"type": "error", "id": request_id, **exc.to_dict()}
    metrics.ERRORS_SENT.labels(exc.code).inc()
    conn.push(JsonCodec.encode(body))
    close_code = close_code or exc.close_code
    if close_code is not None:
        conn.close(close_code, exc.code)


async def _login(ctx: Context, hub: Hub, conn: Connection, frame: frames.Login) -> Reply:
    if conn.logged_in:
        raise InvalidRequest("This connection is logged in already.", code="already_logged_in")
    minted = None
    if frame.token is not None:
        session = await tokens.verify(ctx, frame.token, frame.app_key)
    elif frame.user_id_md5 is not None and frame.password_md5 is not None:
        session, minted = await tokens.password_login(
            ctx, frame.app_key, ids.normalise_md5(frame.user_id_md5), frame.password_md5
        )
    else:
        raise InvalidRequest(
            "Log in with a token, or with user_id_md5 and password_md5.", code="invalid_field"
        )
    conn.platform = frame.platform
    _bind(hub, conn, session)
    # A kick that landed between the check above and the bind could not reach this
    # connection; look once more now that it can be reached.
    await tokens.verify(ctx, minted.token if minted else frame.token or "", frame.app_key)
    s = ctx.settings
    reply: dict[str, Any] = {
        "type": "login_ok",
        "user_id_md5": session.user_id,
        "expires_at": iso_from_us(session.expires_at_us),
        "heartbeat": {
            "interval_ms": int(s.heartbeat_interval_seconds * 1000),
            "timeout_ms": int(s.heartbeat_timeout_seconds * 1000),
        },
        "limits": {"max_frame_bytes": s.max_frame_bytes, "max_text_chars": s.max_text_chars,
                   "max_custom_bytes": s.max_custom_bytes},
    }
    if minted is not None:
        reply["token"] = minted.token
    logger.info("logged in", extra={"conn": conn.id, "app": session.app_id,
                                    "user": session.user_id})
    metrics.LOGINS.inc()
    if hub.presence is not None:
        await hub.presence.arrive(conn)
    await _presence_event(ctx, conn, "user.connected")
    return reply


async def _presence_event(ctx: Context, conn: Connection, event_type: str) -> None:
    """Tell the App Server's webhooks; a failure here must not break the connection."""
    assert conn.app_id is not None
    try:
        await outbox.record(ctx.db, ctx.hooks, conn.app_id, event_type,
                            {"user_id_md5": conn.user_id, "connection_id": conn.id}, now_us())
    except Exception:
        logger.exception("could not queue a webhook event", extra={"conn": conn.id})


def _bind(hub: Hub, conn: Connection, session: Session) -> None:
    conn.app_id, conn.app_key = session.app_id, session.app_key
    conn.user_id, conn.expires_at_us = session.user_id, session.expires_at_us
    conn.device_policy = session.device_policy
    hub.bind(conn)


async def _refresh(ctx: Context, hub: Hub, conn: Connection, frame: frames.Refresh) -> Reply:
    try:
        session = await tokens.verify(ctx, frame.token, conn.app_key)
    except ParleyError as exc:
        # A bad refresh leaves the current session as it was; it is not a login failure.
        raise InvalidRequest(exc.message, code=exc.code) from None
    if session.user_id != conn.user_id:
        raise InvalidRequest("The token is for another user.", code="token_invalid")
    conn.expires_at_us = max(conn.expires_at_us, session.expires_at_us)
    return {"type": "refresh_ok", "expires_at": iso_from_us(conn.expires_at_us)}


async def _send(ctx: Context, hub: Hub, conn: Connection, frame: frames.Send) -> Reply:
    assert conn.app_id is not None and conn.user_id is not None
    if frame.group_id is not None:
        ack = await messages.send_group(ctx, conn.app_id, conn.user_id, frame.group_id,
                                        frame.content, frame.client_msg_id, conn.id)
    else:
        ack = await messages.send_direct(
            ctx,
            conn.app_id,
            conn.user_id,
            ids.normalise_md5(frame.to or ""),
            frame.content,
            frame.client_msg_id,
            origin_connection=conn.id,
        )
    return {"type": "send_ok", **ack.to_dict()}


async def _sync(ctx: Context, hub: Hub, conn: Connection, frame: frames.Sync) -> Reply:
    assert conn.app_id is not None and conn.user_id is not None
    page = await conversations.sync(
        ctx, conn.app_id, conn.user_id, frame.conversation_id, frame.after_seq, frame.limit
    )
    metrics.SYNC_SIZE.observe(len(page.messages))
    return {
        "type": "sync_ok",
        "conversation_id": frame.conversation_id,
        "messages": page.messages,
        "has_more": page.has_more,
        "last_seq": page.last_seq,
    }


async def _conversations(
    ctx: Context, hub: Hub, conn: Connection, frame: frames.Conversations
) -> Reply:
    assert conn.app_id is not None and conn.user_id is not None
    items, cursor = await conversations.list_for_user(
        ctx, conn.app_id, conn.user_id, frame.limit, frame.cursor
    )
    return {"type": "conversations_ok", "conversations": items, "next_cursor": cursor}


async def _read(ctx: Context, hub: Hub, conn: Connection, frame: frames.Read) -> Reply:
    assert conn.app_id is not None and conn.user_id is not None
    seq = await conversations.mark_read(
        ctx, conn.app_id, conn.user_id, frame.conversation_id, frame.seq, conn.id
    )
    return {"type": "read_ok", "conversation_id": frame.conversation_id, "seq": seq}


async def _ack(ctx: Context, hub: Hub, conn: Connection, frame: frames.Ack) -> Reply:
    assert conn.app_id is not None and conn.user_id is not None
    conversations.acknowledge(ctx, conn.app_id, conn.user_id, frame.conversation_id, frame.seq)
    return None


async def _recall(ctx: Context, hub: Hub, conn: Connection, frame: frames.Recall) -> Reply:
    assert conn.app_id is not None
    done = await recall.recall(ctx, conn.app_id, conn.user_id, frame.conversation_id, frame.seq)
    return {"type": "recall_ok", **done}


async def _receipts(ctx: Context, hub: Hub, conn: Connection, frame: frames.Receipts) -> Reply:
    assert conn.app_id is not None
    found = await recall.receipts(ctx, conn.app_id, conn.user_id, frame.conversation_id,
                                  frame.seq)
    return {"type": "receipts_ok", **found}


async def _group(ctx: Context, hub: Hub, conn: Connection, frame: Any) -> Reply:
    """Every group_* frame: the user acts on a group with their own role's rights."""
    assert conn.app_id is not None and conn.user_id is not None
    app_id, me = conn.app_id, conn.user_id
    result = await _group_action(ctx, app_id, me, frame)
    return {"type": f"{frame.type}_ok", **result}


async def _group_action(ctx: Context, app_id: int, me: str, frame: Any) -> dict[str, Any]:
    match frame:
        case frames.GroupCreate():
            group = await groups.create(
                ctx, app_id, me, owner=me, name=frame.name,
                initial_members=[ids.normalise_md5(u) for u in frame.members],
                group_id=frame.group_id, join_policy=frame.join_policy,
                history_visible=frame.history_visible, avatar_url=frame.avatar_url,
                notice=frame.notice, extra=frame.extra)
            return {"group": group}
        case frames.GroupGet():
            return {"group": await groups.get(ctx, app_id, me, frame.group_id)}
        case frames.GroupList():
            return {"groups": await groups.list_for_user(ctx, app_id, me)}
        case frames.GroupMembers():
            return {"members": await groups.list_members(ctx, app_id, me, frame.group_id)}
        case frames.GroupUpdate():
            fields = {k: getattr(frame, k) for k in frame.model_fields_set
                      if k not in ("type", "id", "group_id")}
            return {"group": await groups.update_info(ctx, app_id, me, frame.group_id, fields)}
        case frames.GroupAdd():
            done = await groups.add_members(ctx, app_id, me, frame.group_id,
                                            [ids.normalise_md5(u) for u in frame.users])
            return {"results": [_outcome(o) for o in done]}
        case frames.GroupRemove():
            done = await groups.remove_members(ctx, app_id, me, frame.group_id,
                                               [ids.normalise_md5(u) for u in frame.users])
            return {"results": [_outcome(o) for o in done]}
        case frames.GroupLeave():
            await groups.leave(ctx, app_id, me, frame.group_id)
        case frames.GroupJoin():
            return {"status": await groups.join(ctx, app_id, me, frame.group_id, frame.note)}
        case frames.GroupRequests():
            return {"requests": await groups.list_requests(ctx, app_id, me, frame.group_id)}
        case frames.GroupDecide():
            status = await groups.decide_request(ctx, app_id, me, frame.group_id,
                                                 ids.normalise_md5(frame.user_id_md5),
                                                 frame.approve)
            return {"status": status}
        case frames.GroupTransfer():
            group = await groups.transfer(ctx, app_id, me, frame.group_id,
                                          ids.normalise_md5(frame.user_id_md5))
            return {"group": group}
        case frames.GroupSetRole():
            await groups.set_role(ctx, app_id, me, frame.group_id,
                                  ids.normalise_md5(frame.user_id_md5), frame.role)
        case frames.GroupMuteMember():
            await groups.mute_member(ctx, app_id, me, frame.group_id,
                                     ids.normalise_md5(frame.user_id_md5),
                                     frame.until_ms * 1000)
        case frames.GroupMuteAll():
            await groups.mute_all(ctx, app_id, me, frame.group_id, frame.on)
        case frames.GroupDismiss():
            await groups.dismiss(ctx, app_id, me, frame.group_id)
    return {"group_id": frame.group_id}


def _outcome(o: Any) -> dict[str, Any]:
    return {"user_id_md5": o.user_id_md5, "status": o.status, "error": o.error}


async def _report(ctx: Context, hub: Hub, conn: Connection, frame: frames.Report) -> Reply:
    assert conn.app_id is not None and conn.user_id is not None
    report_id = await review.report(ctx, conn.app_id, conn.user_id, frame.msg_id, frame.reason)
    return {"type": "report_ok", "msg_id": frame.msg_id, "report_id": report_id}


async def _presence_subscribe(
    ctx: Context, hub: Hub, conn: Connection, frame: frames.PresenceSubscribe
) -> Reply:
    """Watch users' presence: their state now in the reply, each change as a push."""
    assert conn.app_id is not None and hub.presence is not None
    users = sorted({ids.normalise_md5(u) for u in frame.users})
    if len(conn.topics | {presence.topic(u) for u in users}) > frames.PRESENCE_WATCH_MAX:
        raise InvalidRequest(f"A connection watches at most {frames.PRESENCE_WATCH_MAX} users.",
                             code="too_many_watched", limit=frames.PRESENCE_WATCH_MAX)
    # Watch first, then read: a change between the two is pushed, not lost.
    hub.watch(conn, [presence.topic(u) for u in users])
    found = await hub.presence.snapshot(conn.app_id, users)
    return {"type": "presence_subscribe_ok", "presence": found}


async def _presence_unsubscribe(
    ctx: Context, hub: Hub, conn: Connection, frame: frames.PresenceUnsubscribe
) -> Reply:
    hub.unwatch(conn, [presence.topic(ids.normalise_md5(u)) for u in frame.users])
    return {"type": "presence_unsubscribe_ok"}


HANDLERS: dict[type[frames.Frame], Handler] = {
    frames.Login: _login,
    frames.Refresh: _refresh,
    frames.Send: _send,
    frames.Sync: _sync,
    frames.Conversations: _conversations,
    frames.Read: _read,
    frames.Ack: _ack,
    frames.Report: _report,
    frames.Recall: _recall,
    frames.Receipts: _receipts,
    **{model: _group for name, model in frames.MODELS.items() if name.startswith("group_")},
    frames.PresenceSubscribe: _presence_subscribe,
    frames.PresenceUnsubscribe: _presence_unsubscribe,
}
