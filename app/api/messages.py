"""App Server routes for messages: send as a user, send a notice, query chat logs."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, status
from pydantic import BaseModel, Field
from starlette.responses import Response

from app import ids
from app.api.deps import CallingApp, Ctx, UserPath
from app.api.responses import ERRORS, OrjsonResponse
from app.api.schemas import (
    HOOKS_HELP,
    AckOut,
    Body,
    Content,
    MessagePage,
    NoticeRequest,
    SendRequest,
)
from app.errors import InvalidRequest, ParleyError, user_not_found
from app.services import conversations, messages, push, users
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


class PushRequest(Body):
    """A system notice to up to 1,000 users; name them by raw ID or by MD5 ID."""

    to_user_ids: list[str] | None = Field(None, max_length=1000)
    to_user_ids_md5: list[str] | None = Field(None, max_length=1000)
    content: Content
    trigger_hooks: bool = Field(True, description=HOOKS_HELP)


class PushOutcomeOut(BaseModel):
    user_id_md5: str | None
    status: Literal["sent", "error"]
    msg_id: str | None = None
    error: dict[str, Any] | None = None


class PushResult(BaseModel):
    sent: int
    failed: int
    results: list[PushOutcomeOut]


class BroadcastRequest(Body):
    content: Content
    trigger_hooks: bool = Field(True, description=HOOKS_HELP)


class BroadcastOut(BaseModel):
    broadcast_id: int
    status: Literal["running", "done"]
    sent: int = Field(description="Users who have the notice so far.")
    created_at: str
    updated_at: str


@router.post("/push", operation_id="push_notice")
async def push_notice(ctx: Ctx, app: CallingApp, body: PushRequest) -> PushResult:
    """Send one system notice to many users; each gets its own outcome."""
    if (body.to_user_ids is None) == (body.to_user_ids_md5 is None):
        raise InvalidRequest("Give exactly one of to_user_ids and to_user_ids_md5.",
                             code="invalid_user_id")
    outcomes: list[PushOutcomeOut] = []
    wanted: list[str] = []
    for raw in body.to_user_ids or body.to_user_ids_md5 or []:
        try:
            wanted.append(ids.md5_of_user_id(raw) if body.to_user_ids is not None
                          else ids.normalise_md5(raw))
        except ParleyError as exc:
            outcomes.append(PushOutcomeOut(user_id_md5=None, status="error",
                                           error=exc.to_dict()))
    done = await push.push(ctx, app.id, wanted, body.content, hooks=body.trigger_hooks)
    outcomes += [PushOutcomeOut.model_validate(o, from_attributes=True) for o in done]
    sent = sum(1 for o in outcomes if o.status == "sent")
    return PushResult(sent=sent, failed=len(outcomes) - sent, results=outcomes)


@router.post("/broadcasts", status_code=status.HTTP_202_ACCEPTED, operation_id="broadcast")
async def broadcast(ctx: Ctx, app: CallingApp, body: BroadcastRequest) -> BroadcastOut:
    """Send a system notice to every user of the app, paced in the background."""
    return BroadcastOut(**await push.start_broadcast(ctx, app.id, body.content,
                                                     hooks=body.trigger_hooks))


@router.get("/broadcasts/{broadcast_id}", operation_id="get_broadcast")
async def get_broadcast(ctx: Ctx, app: CallingApp,
                        broadcast_id: Annotated[int, Path(ge=1)]) -> BroadcastOut:
    """How far a broadcast has got."""
    return BroadcastOut(**await push.get_broadcast(ctx, app.id, broadcast_id))
