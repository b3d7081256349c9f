"""Client routes (Bearer login token): the same reads as the data plane, for clients that
are not connected. A kicked or expired token stops working here at once too."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query
from starlette.responses import Response

from app.api.deps import ClientSession, Ctx
from app.api.responses import ERRORS, OrjsonResponse
from app.api.schemas import ConversationPage, MeOut, ReadOut, ReadRequest, SyncPage
from app.services import conversations
from app.timefmt import iso_from_us

router = APIRouter(prefix="/v1/me", tags=["client"], responses=ERRORS)

ConversationId = Annotated[str, Path(max_length=80)]


@router.get("", operation_id="me")
async def me(session: ClientSession) -> MeOut:
    """Who this token belongs to, and until when."""
    return MeOut(user_id_md5=session.user_id, app_key=session.app_key,
                 expires_at=iso_from_us(session.expires_at_us))


@router.get("/conversations", response_model=ConversationPage, operation_id="my_conversations")
async def my_conversations(
    ctx: Ctx,
    session: ClientSession,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
) -> Response:
    """The caller's conversations, newest first, with last message and unread count."""
    items, next_cursor = await conversations.list_for_user(
        ctx, session.app_id, session.user_id, limit, cursor
    )
    return OrjsonResponse({"conversations": items, "next_cursor": next_cursor})


@router.get("/conversations/{conversation_id}/messages", response_model=SyncPage,
            operation_id="my_sync")
async def my_sync(
    ctx: Ctx,
    session: ClientSession,
    conversation_id: ConversationId,
    after_seq: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> Response:
    """Messages after a seq, in seq order; has_more says whether to ask again."""
    page = await conversations.sync(
        ctx, session.app_id, session.user_id, conversation_id, after_seq, limit
    )
    return OrjsonResponse({"conversation_id": conversation_id, "messages": page.messages,
                           "has_more": page.has_more, "last_seq": page.last_seq})


@router.post("/conversations/{conversation_id}/read", operation_id="my_mark_read")
async def my_mark_read(
    ctx: Ctx, session: ClientSession, conversation_id: ConversationId, body: ReadRequest
) -> ReadOut:
    """Move the caller's read marker; their connected devices hear of it."""
    seq = await conversations.mark_read(
        ctx, session.app_id, session.user_id, conversation_id, body.seq
    )
    return ReadOut(conversation_id=conversation_id, seq=seq)
