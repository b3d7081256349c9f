"""App Server routes for groups, recall and read receipts. The App Server may do
everything a group's owner may, in any group of its app."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Response, status
from pydantic import Field

from app import ids
from app.api.deps import CallingApp, Ctx, UserPath
from app.api.responses import ERRORS
from app.api.schemas import HOOKS_HELP, AckOut, Body, Content
from app.services import groups, messages, recall
from app.services.groups import Outcome
from app.timefmt import us_from_datetime

router = APIRouter(prefix="/v1", tags=["groups"], responses=ERRORS)

GroupId = Annotated[str, Path(max_length=64, description="The group's ID.")]
ConversationId = Annotated[str, Path(max_length=80)]
Md5 = Annotated[str, Field(min_length=32, max_length=32, description="An MD5 user ID.")]
Policy = Literal["free", "approval", "invite"]


class GroupCreate(Body):
    group_id: str | None = Field(None, max_length=64, description="Generated when absent.")
    owner: Md5
    name: str = Field(min_length=1, max_length=128)
    members: list[Md5] = Field(default_factory=list, max_length=2000)
    join_policy: Policy = "approval"
    history_visible: bool = Field(False, description="New members see earlier messages.")
    avatar_url: str | None = Field(None, max_length=2048)
    notice: str | None = Field(None, max_length=4000)
    extra: dict[str, Any] | None = None
    member_limit: int | None = Field(None, ge=2, le=1_000_000,
                                     description="Defaults to the app's limit.")


class GroupUpdate(Body):
    name: str | None = Field(None, min_length=1, max_length=128)
    avatar_url: str | None = Field(None, max_length=2048)
    notice: str | None = Field(None, max_length=4000)
    extra: dict[str, Any] | None = None
    join_policy: Policy | None = None
    history_visible: bool | None = None


class UserList(Body):
    users: list[Md5] = Field(min_length=1, max_length=2000)


class OutcomeOut(Body):
    user_id_md5: str
    status: str
    error: dict[str, Any] | None = None


class Outcomes(Body):
    results: list[OutcomeOut]


class NewOwner(Body):
    user_id_md5: Md5


class RoleChange(Body):
    role: Literal["admin", "member"]


class MuteMember(Body):
    until: datetime | None = Field(description="Muted until then; null unmutes.")


class MuteAll(Body):
    on: bool


class Decision(Body):
    approve: bool


class GroupSend(Body):
    from_user_id_md5: Md5 | None = Field(None, description="Absent: a system message.")
    content: Content
    client_msg_id: str | None = Field(None, min_length=1, max_length=64)
    trigger_hooks: bool = Field(True, description=HOOKS_HELP)


def _outcomes(items: list[Outcome]) -> Outcomes:
    return Outcomes(results=[OutcomeOut(user_id_md5=o.user_id_md5, status=o.status,
                                        error=o.error) for o in items])


def _md5s(values: list[str]) -> list[str]:
    return [ids.normalise_md5(v) for v in values]


@router.post("/groups", status_code=status.HTTP_201_CREATED, operation_id="create_group")
async def create_group(ctx: Ctx, app: CallingApp, body: GroupCreate) -> dict[str, Any]:
    """Create a group with an owner and its first members."""
    return await groups.create(
        ctx, app.id, None, owner=ids.normalise_md5(body.owner), name=body.name,
        initial_members=_md5s(body.members), group_id=body.group_id,
        join_policy=body.join_policy, history_visible=body.history_visible,
        avatar_url=body.avatar_url, notice=body.notice, extra=body.extra,
        member_limit=body.member_limit,
    )


@router.get("/groups/{group_id}", operation_id="get_group")
async def get_group(ctx: Ctx, app: CallingApp, group_id: GroupId) -> dict[str, Any]:
    """Get a group."""
    return await groups.get(ctx, app.id, None, group_id)


@router.patch("/groups/{group_id}", operation_id="update_group")
async def update_group(ctx: Ctx, app: CallingApp, group_id: GroupId, body: GroupUpdate
                       ) -> dict[str, Any]:
    """Change a group's name, avatar, notice, extra, join policy or history visibility."""
    fields = {k: getattr(body, k) for k in body.model_fields_set}
    return await groups.update_info(ctx, app.id, None, group_id, fields)


@router.delete("/groups/{group_id}", status_code=status.HTTP_204_NO_CONTENT,
               operation_id="dismiss_group")
async def dismiss_group(ctx: Ctx, app: CallingApp, group_id: GroupId) -> Response:
    """Dismiss a group: members keep its history, nobody posts again."""
    await groups.dismiss(ctx, app.id, None, group_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/groups/{group_id}/members", operation_id="list_group_members")
async def list_members(ctx: Ctx, app: CallingApp, group_id: GroupId) -> dict[str, Any]:
    """The current members with their roles."""
    return {"members": await groups.list_members(ctx, app.id, None, group_id)}


@router.post("/groups/{group_id}/members", operation_id="add_group_members")
async def add_members(ctx: Ctx, app: CallingApp, group_id: GroupId, body: UserList
                      ) -> Outcomes:
    """Add members; each user gets its own outcome."""
    return _outcomes(await groups.add_members(ctx, app.id, None, group_id, _md5s(body.users)))


@router.post("/groups/{group_id}/members/remove", operation_id="remove_group_members")
async def remove_members(ctx: Ctx, app: CallingApp, group_id: GroupId, body: UserList
                         ) -> Outcomes:
    """Remove members; they see nothing after the notice of their removal."""
    return _outcomes(await groups.remove_members(ctx, app.id, None, group_id,
                                                 _md5s(body.users)))


@router.post("/groups/{group_id}/owner", operation_id="transfer_group")
async def transfer(ctx: Ctx, app: CallingApp, group_id: GroupId, body: NewOwner
                   ) -> dict[str, Any]:
    """Make another member the owner; the old owner becomes an admin."""
    return await groups.transfer(ctx, app.id, None, group_id, ids.normalise_md5(body.user_id_md5))


@router.put("/groups/{group_id}/members/{user_id_md5}/role", operation_id="set_group_role")
async def set_role(ctx: Ctx, app: CallingApp, group_id: GroupId, user: UserPath,
                   body: RoleChange) -> Response:
    """Make a member an admin, or an admin a plain member."""
    await groups.set_role(ctx, app.id, None, group_id, user, body.role)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.put("/groups/{group_id}/members/{user_id_md5}/mute", operation_id="mute_group_member")
async def mute_member(ctx: Ctx, app: CallingApp, group_id: GroupId, user: UserPath,
                      body: MuteMember) -> Response:
    """Mute a member until a time, or unmute with null."""
    until = us_from_datetime(body.until, "until") if body.until else 0
    await groups.mute_member(ctx, app.id, None, group_id, user, until)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.put("/groups/{group_id}/mute", operation_id="mute_group")
async def mute_all(ctx: Ctx, app: CallingApp, group_id: GroupId, body: MuteAll) -> Response:
    """Mute or unmute everyone but the owner and admins."""
    await groups.mute_all(ctx, app.id, None, group_id, body.on)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/groups/{group_id}/requests", operation_id="list_join_requests")
async def list_requests(ctx: Ctx, app: CallingApp, group_id: GroupId) -> dict[str, Any]:
    """Pending requests to join an approval group."""
    return {"requests": await groups.list_requests(ctx, app.id, None, group_id)}


@router.post("/groups/{group_id}/requests/{user_id_md5}", operation_id="decide_join_request")
async def decide(ctx: Ctx, app: CallingApp, group_id: GroupId, user: UserPath,
                 body: Decision) -> dict[str, str]:
    """Approve or reject a request to join."""
    return {"status": await groups.decide_request(ctx, app.id, None, group_id, user,
                                                  body.approve)}


@router.post("/groups/{group_id}/messages", operation_id="send_group_message")
async def send_group_message(ctx: Ctx, app: CallingApp, group_id: GroupId, body: GroupSend
                             ) -> AckOut:
    """Send to a group as one of its members, or as the system."""
    sender = ids.normalise_md5(body.from_user_id_md5) if body.from_user_id_md5 else ""
    ack = await messages.send_group(ctx, app.id, sender, group_id, body.content,
                                    body.client_msg_id, hooks=body.trigger_hooks)
    return AckOut(**ack.to_dict())


@router.get("/users/{user_id_md5}/groups", operation_id="list_user_groups")
async def user_groups(ctx: Ctx, app: CallingApp, user: UserPath) -> dict[str, Any]:
    """The groups a user is a member of now."""
    return {"groups": await groups.list_for_user(ctx, app.id, user)}


@router.post("/conversations/{conversation_id}/messages/{seq}/recall",
             operation_id="recall_message")
async def recall_message(ctx: Ctx, app: CallingApp, conversation_id: ConversationId,
                         seq: Annotated[int, Path(ge=1, le=2**62)]) -> dict[str, Any]:
    """Recall any message, at any time; it stays in the sequence as a tombstone."""
    return await recall.recall(ctx, app.id, None, conversation_id, seq)


@router.get("/conversations/{conversation_id}/messages/{seq}/receipts",
            operation_id="message_receipts")
async def receipts(ctx: Ctx, app: CallingApp, conversation_id: ConversationId,
                   seq: Annotated[int, Path(ge=1, le=2**62)]) -> dict[str, Any]:
    """Which members have read a message, and which have not."""
    return await recall.receipts(ctx, app.id, None, conversation_id, seq)
