"""The frames a client may send, as strict models: a string is never taken for a number.

Unknown fields are ignored so that older servers accept newer clients' frames.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from app.errors import InvalidRequest

RequestId = Annotated[str, Field(min_length=1, max_length=64)] | int
# Seqs and times fit a signed 64-bit column; anything larger is a client bug.
MAX_SEQ = 2**62
Seq = Annotated[int, Field(ge=0, le=MAX_SEQ)]


class Frame(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore")

    id: RequestId | None = None


Platform = Literal["ios", "android", "web", "desktop", "other"]
# Users one connection may watch the presence of; a contact list rarely passes a few
# hundred, and each watched user is one entry in this node's topic table.
PRESENCE_WATCH_MAX = 1000


class Login(Frame):
    type: Literal["login"]
    app_key: str = Field(max_length=64)
    token: str | None = Field(None, max_length=256)
    user_id_md5: str | None = Field(None, max_length=32)
    password_md5: str | None = Field(None, max_length=32)
    platform: Platform = "other"


class Refresh(Frame):
    type: Literal["refresh"]
    token: str = Field(max_length=256)


class Send(Frame):
    """To a user (``to``) or to a group (``group_id``): exactly one of the two."""

    type: Literal["send"]
    to: str | None = Field(None, max_length=32)
    group_id: str | None = Field(None, max_length=64)
    content: dict[str, Any]
    client_msg_id: str | None = Field(None, min_length=1, max_length=64)

    @model_validator(mode="after")
    def _one_target(self) -> Send:
        if (self.to is None) == (self.group_id is None):
            raise ValueError("give exactly one of to and group_id")
        return self


class Sync(Frame):
    type: Literal["sync"]
    conversation_id: str = Field(max_length=80)
    after_seq: Seq = 0
    limit: int = Field(100, ge=1, le=1000)


class Conversations(Frame):
    type: Literal["conversations"]
    limit: int = Field(50, ge=1, le=1000)
    cursor: str | None = Field(None, max_length=200)


class Read(Frame):
    type: Literal["read"]
    conversation_id: str = Field(max_length=80)
    seq: Seq


class Ack(Frame):
    type: Literal["ack"]
    conversation_id: str = Field(max_length=80)
    seq: Seq


class Recall(Frame):
    type: Literal["recall"]
    conversation_id: str = Field(max_length=80)
    seq: Annotated[int, Field(ge=1, le=MAX_SEQ)]


class Receipts(Frame):
    type: Literal["receipts"]
    conversation_id: str = Field(max_length=80)
    seq: Annotated[int, Field(ge=1, le=MAX_SEQ)]


GroupId = Annotated[str, Field(min_length=1, max_length=64)]
Md5 = Annotated[str, Field(min_length=32, max_length=32)]
Users = Annotated[list[Md5], Field(min_length=1, max_length=2000)]
Policy = Literal["free", "approval", "invite"]


class GroupCreate(Frame):
    type: Literal["group_create"]
    group_id: GroupId | None = None
    name: str = Field(min_length=1, max_length=128)
    members: list[Md5] = Field(default_factory=list, max_length=2000)
    join_policy: Policy = "approval"
    history_visible: bool = False
    avatar_url: str | None = Field(None, max_length=2048)
    notice: str | None = Field(None, max_length=4000)
    extra: dict[str, Any] | None = None


class GroupFrame(Frame):
    """A request about one group."""

    group_id: GroupId


class GroupGet(GroupFrame):
    type: Literal["group_get"]


class GroupMembers(GroupFrame):
    type: Literal["group_members"]


class GroupList(Frame):
    type: Literal["group_list"]


class GroupUpdate(GroupFrame):
    type: Literal["group_update"]
    name: str | None = Field(None, min_length=1, max_length=128)
    avatar_url: str | None = Field(None, max_length=2048)
    notice: str | None = Field(None, max_length=4000)
    extra: dict[str, Any] | None = None
    join_policy: Policy | None = None
    history_visible: bool | None = None


class GroupAdd(GroupFrame):
    type: Literal["group_add"]
    users: Users


class GroupRemove(GroupFrame):
    type: Literal["group_remove"]
    users: Users


class GroupLeave(GroupFrame):
    type: Literal["group_leave"]


class GroupJoin(GroupFrame):
    type: Literal["group_join"]
    note: str | None = Field(None, max_length=256)


class GroupRequests(GroupFrame):
    type: Literal["group_requests"]


class GroupDecide(GroupFrame):
    type: Literal["group_decide"]
    user_id_md5: Md5
    approve: bool


class GroupTransfer(GroupFrame):
    type: Literal["group_transfer"]
    user_id_md5: Md5


class GroupSetRole(GroupFrame):
    type: Literal["group_set_role"]
    user_id_md5: Md5
    role: Literal["admin", "member"]


class GroupMuteMember(GroupFrame):
    type: Literal["group_mute_member"]
    user_id_md5: Md5
    until_ms: Annotated[int, Field(ge=0, le=253_402_300_799_999)] = Field(
        description="Unix time in ms the mute ends; 0 unmutes."
    )


class GroupMuteAll(GroupFrame):
    type: Literal["group_mute_all"]
    on: bool


class GroupDismiss(GroupFrame):
    type: Literal["group_dismiss"]


class Report(Frame):
    """A user reports a message they can see; it joins the app's review queue."""

    type: Literal["report"]
    msg_id: str = Field(min_length=1, max_length=26)
    reason: str = Field("", max_length=200)


class PresenceSubscribe(Frame):
    type: Literal["presence_subscribe"]
    users: Annotated[list[Md5], Field(min_length=1, max_length=PRESENCE_WATCH_MAX)]


class PresenceUnsubscribe(Frame):
    type: Literal["presence_unsubscribe"]
    users: Annotated[list[Md5], Field(min_length=1, max_length=PRESENCE_WATCH_MAX)]


MODELS: dict[str, type[Frame]] = {
    "login": Login,
    "refresh": Refresh,
    "send": Send,
    "sync": Sync,
    "conversations": Conversations,
    "read": Read,
    "ack": Ack,
    "report": Report,
    "recall": Recall,
    "receipts": Receipts,
    "group_create": GroupCreate,
    "group_get": GroupGet,
    "group_list": GroupList,
    "group_members": GroupMembers,
    "group_update": GroupUpdate,
    "group_add": GroupAdd,
    "group_remove": GroupRemove,
    "group_leave": GroupLeave,
    "group_join": GroupJoin,
    "group_requests": GroupRequests,
    "group_decide": GroupDecide,
    "group_transfer": GroupTransfer,
    "group_set_role": GroupSetRole,
    "group_mute_member": GroupMuteMember,
    "group_mute_all": GroupMuteAll,
    "group_dismiss": GroupDismiss,
    "presence_subscribe": PresenceSubscribe,
    "presence_unsubscribe": PresenceUnsubscribe,
}


def parse(frame: dict[str, Any]) -> Frame:
    model = MODELS.get(frame["type"])
    if model is None:
        raise InvalidRequest(f"Unknown frame type {frame['type'][:32]!r}.", code="unknown_type")
    try:
        return model.model_validate(frame)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "frame"
        raise InvalidRequest(f"{where}: {first['msg']}", code="invalid_field") from exc
