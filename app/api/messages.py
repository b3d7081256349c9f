"""App Server routes for messages: send as a user, send a notice, query chat logs."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query
from starlette.responses import Response

from app import ids
from app.api.deps import CallingApp, Ctx, UserPath
from app.api.responses import ERRORS, OrjsonResponse
from app.api.schemas import AckOut, MessagePage, NoticeRequest, SendRequest
from app.errors import InvalidRequest, user_not_found
from app.services import conversations, messages, users
from app.timefmt import us_from_datetime

router = APIRouter(prefix="/v1", tags=["messages"], responses=ERRORS)


def _user_ref(raw: str | None, md5: str | None, role: str) -> str:
    if (raw is None) == (md5 is None):
        raise InvalidRequest(f"Give exactly one of {role}_user_id and {role}_user_id_md5.",
                             code="invalid_user_id")
    return ids.md5_of_user_id(raw) if raw is not None else ids.normalise_md5(md5 or "")


@router.post("/messages", operation_id="send_message")
async def send_message(ctx: Ctx, app: CallingApp, body: SendRequest) -> AckOut:
    """Send a 1:1 message on behalf of a user, through the same path as a client's send."""
    sender = _user_ref(body.from_user_id, body.from_user_id_md5, "from")
    recipient = _user_ref(body.to_user_id, body.to_user_id_md5, "to")
    if not await users.exists(ctx, app.id, sender):
        raise user_not_found()
    ack = await messages.send_direct(ctx, app.id, sender, recipient, body.content,
                                     body.client_msg_id, hooks=body.trigger_hooks)
    return AckOut(**ack.to_dict())


@router.post("/notices", operation_id="send_notice")
async def send_notice(ctx: Ctx, app: CallingApp, body: NoticeRequest) -> AckOut:
    """Send a system notice to a user; it arrives in their system conversation."""
    recipient = _user_ref(body.to_user_id, body.to_user_id_md5, "to")
    ack = await messages.send_notice(ctx, app.id, recipient, body.content, body.client_msg_id,
                                     hooks=body.trigger_hooks)
    return AckOut(**ack.to_dict())


FromTime = Annotated[datetime, Query(alias="from", description="Included. ISO 8601 with offset.")]
ToTime = Annotated[datetime, Query(alias="to", description="Excluded. ISO 8601 with offset.")]
Cursor = Annotated[str | None, Query(max_length=200, description="next_cursor of a page.")]
Limit = Annotated[int, Query(ge=1, le=500)]


@router.get("/conversations/{conversation_id}/messages", response_model=MessagePage,
            operation_id="conversation_chat_log")
async def conversation_chat_log(
    ctx: Ctx,
    app: CallingApp,
    conversation_id: Annotated[str, Path(max_length=80)],
    start: FromTime,
    end: ToTime,
    cursor: Cursor = None,
    limit: Limit = 100,
) -> Response:
    """A conversation's messages with from <= created_at < to, oldest first."""
    items, next_cursor = await conversations.chat_log(
        ctx, app.id, conversation_id=conversation_id,
        start_us=us_from_datetime(start, "from"), end_us=us_from_datetime(end, "to"),
        cursor=cursor, limit=limit,
    )
    return OrjsonResponse({"messages": items, "next_cursor": next_cursor})


@router.get("/users/{user_id_md5}/messages", response_model=MessagePage,
            operation_id="user_chat_log")
async def user_chat_log(
    ctx: Ctx,
    app: CallingApp,
    user: UserPath,
    start: FromTime,
    end: ToTime,
    cursor: Cursor = None,
    limit: Limit = 100,
) -> Response:
    """Every message in the user's conversations with from <= created_at < to."""
    items, next_cursor = await conversations.chat_log(
        ctx, app.id, user_id=user,
        start_us=us_from_datetime(start, "from"), end_us=us_from_datetime(end, "to"),
        cursor=cursor, limit=limit,
    )
    return OrjsonResponse({"messages": items, "next_cursor": next_cursor})
