"""App Server route for presence: which of these users are online, on which platforms."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from app import ids
from app.api.deps import CallingApp
from app.api.responses import ERRORS
from app.presence import snapshot

router = APIRouter(prefix="/v1/presence", tags=["presence"], responses=ERRORS)

# Users one query may ask about: a page of a contact list, and one Redis round trip.
QUERY_MAX = 1000


class PresenceQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    users: Annotated[list[str], Field(min_length=1, max_length=QUERY_MAX,
                                      description="MD5 IDs, 32 hex digits, any case.")]


class DeviceOut(BaseModel):
    platform: Literal["ios", "android", "web", "desktop", "other"]
    since: str = Field(description="When the device logged in (ISO 8601, UTC).")


class UserPresence(BaseModel):
    user_id_md5: str
    online: bool
    devices: list[DeviceOut]


class PresenceOut(BaseModel):
    presence: list[UserPresence]


@router.post("/query", operation_id="query_presence",
             responses={503: {"model": ERRORS[400]["model"]}})
async def query_presence(request: Request, app: CallingApp, body: PresenceQuery) -> PresenceOut:
    """Whether each user is online now, with their logged-in devices, on every node."""
    users = list(dict.fromkeys(ids.normalise_md5(u) for u in body.users))
    found = await snapshot(request.app.state.node.registry, app.id, users)
    return PresenceOut.model_validate({"presence": found})
