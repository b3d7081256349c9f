"""The frames a client may send, as strict models: a string is never taken for a number.

Unknown fields are ignored so that older servers accept newer clients' frames.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from app.errors import InvalidRequest

RequestId = Annotated[str, Field(min_length=1, max_length=64)] | int
Seq = Annotated[int, Field(ge=0)]


class Frame(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore")

    id: RequestId | None = None


class Login(Frame):
    type: Literal["login"]
    app_key: str = Field(max_length=64)
    token: str | None = Field(None, max_length=256)
    user_id_md5: str | None = Field(None, max_length=32)
    password_md5: str | None = Field(None, max_length=32)


class Refresh(Frame):
    type: Literal["refresh"]
    token: str = Field(max_length=256)


class Send(Frame):
    type: Literal["send"]
    to: str = Field(max_length=32)
    content: dict[str, Any]
    client_msg_id: str | None = Field(None, min_length=1, max_length=64)


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


MODELS: dict[str, type[Frame]] = {
    "login": Login,
    "refresh": Refresh,
    "send": Send,
    "sync": Sync,
    "conversations": Conversations,
    "read": Read,
    "ack": Ack,
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
