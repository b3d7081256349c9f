"""The H5 demo at /demo, mounted only when PARLEY_DEMO_ENABLED is true.

The page (app/demo/) is a chat client built on the JavaScript SDK alone (sdk/js/parley.js,
served from the source tree). What an App Server would do for it, importing users and
minting their tokens, is done by the routes here: `POST /demo/session` hands a token to
anyone who names a user, which is why the demo is off by default and never for a public
server. `POST /demo/users` imports the people a user names for a 1:1 chat or a group, and
`GET /demo/users` turns MD5 IDs back into names for the conversation list; the page makes
groups itself with the `group_create` frame, as any client would. All demo users live in
one app, `parley-demo`, made on first use, each with their name as the nickname.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field

from app.api.deps import Ctx
from app.errors import InvalidRequest, NotFound
from app.services import apps, tokens, users
from app.services.apps import AppRecord
from app.services.context import Context

logger = logging.getLogger(__name__)

PAGES = Path(__file__).resolve().parents[1] / "demo"
SDK = Path(__file__).resolve().parents[2] / "sdk" / "js" / "parley.js"
DEMO_APP = "parley-demo"
# A demo session is short: a token seen on a shared screen ages out within the hour.
TOKEN_TTL_SECONDS = 3600

router = APIRouter(prefix="/demo", include_in_schema=False)
_app_lock = asyncio.Lock()


# Names are the users' plain IDs in the demo app, shown as their nicknames too.
DemoName = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^\S(.*\S)?$")]
# A group in the demo is small; the page names its members one by one.
MAX_NAMES = 20


class SessionRequest(BaseModel):
    user: DemoName


class SessionOut(BaseModel):
    app_key: str
    token: str
    user_id_md5: str


class UsersRequest(BaseModel):
    names: list[DemoName] = Field(min_length=1, max_length=MAX_NAMES)


class DemoUser(BaseModel):
    name: str
    user_id_md5: str


class UsersOut(BaseModel):
    users: list[DemoUser]


async def _demo_app(ctx: Context, request: Request) -> AppRecord:
    # One lock per process: two first visitors at once must not make two demo apps.
    async with _app_lock:
        cached: AppRecord | None = getattr(request.app.state, "demo_app", None)
        if cached is None:
            found = [a for a in await apps.list_all(ctx) if a.name == DEMO_APP]
            cached = found[0] if found else (await apps.create(ctx, DEMO_APP)).app
            request.app.state.demo_app = cached
            logger.info("demo app ready")
        return cached


@router.get("")
async def page() -> FileResponse:
    """The demo page."""
    return FileResponse(PAGES / "index.html", media_type="text/html")


@router.get("/demo.js")
async def script() -> FileResponse:
    """The page's own script."""
    return FileResponse(PAGES / "demo.js", media_type="text/javascript")


@router.get("/parley.js")
async def sdk() -> FileResponse:
    """The JavaScript SDK, straight from sdk/js."""
    if not SDK.exists():
        raise NotFound("The JavaScript SDK is not in this installation.", code="not_found")
    return FileResponse(SDK, media_type="text/javascript")


async def _import(ctx: Context, demo: AppRecord, names: list[str]) -> list[DemoUser]:
    outcomes = await users.import_users(ctx, demo.id, [{"user_id": n, "nickname": n}
                                                       for n in names])
    found = [DemoUser(name=n, user_id_md5=o.user_id_md5)
             for n, o in zip(names, outcomes, strict=True) if o.user_id_md5 is not None]
    if len(found) != len(names):
        raise InvalidRequest("A demo name could not be imported.", code="invalid_user_id")
    return found


@router.post("/session")
async def session(ctx: Ctx, request: Request, body: SessionRequest) -> SessionOut:
    """Import the user into the demo app and mint the user a token."""
    demo = await _demo_app(ctx, request)
    (me,) = await _import(ctx, demo, [body.user])
    minted = await tokens.mint(ctx, demo.id, me.user_id_md5, TOKEN_TTL_SECONDS)
    return SessionOut(app_key=demo.key, token=minted.token, user_id_md5=me.user_id_md5)


@router.post("/users")
async def import_named(ctx: Ctx, request: Request, body: UsersRequest) -> UsersOut:
    """Import users by name, so the page can start a 1:1 chat or a group with them."""
    demo = await _demo_app(ctx, request)
    return UsersOut(users=await _import(ctx, demo, body.names))


@router.get("/users")
async def names(ctx: Ctx, request: Request,
                ids: Annotated[list[str], Query(max_length=MAX_NAMES)]) -> UsersOut:
    """The names of demo users by MD5 ID, for the conversation list; unknown IDs are left out."""
    demo = await _demo_app(ctx, request)
    known = []
    for user_id in ids:
        if await users.exists(ctx, demo.id, user_id):
            view = await users.get(ctx, demo.id, user_id)
            known.append(DemoUser(name=view["nickname"] or user_id, user_id_md5=user_id))
    return UsersOut(users=known)
