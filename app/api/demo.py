"""The H5 demo at /demo, mounted only when PARLEY_DEMO_ENABLED is true.

The page (app/demo/) is a chat client built on the JavaScript SDK alone (sdk/js/parley.js,
served from the source tree). What an App Server would do for it, importing users and
minting their tokens, is the one route here: `POST /demo/session` hands a token to anyone
who names a user, which is why the demo is off by default and never for a public server.
All demo users live in one app, `parley-demo`, made on first use.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field

from app.api.deps import Ctx
from app.errors import NotFound
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


class SessionRequest(BaseModel):
    user: str = Field(min_length=1, max_length=64)
    peer: str = Field(min_length=1, max_length=64)


class SessionOut(BaseModel):
    app_key: str
    token: str
    user_id_md5: str
    peer_id_md5: str


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


@router.post("/session")
async def session(ctx: Ctx, request: Request, body: SessionRequest) -> SessionOut:
    """Import the user and the peer into the demo app and mint the user a token."""
    demo = await _demo_app(ctx, request)
    outcomes = await users.import_users(ctx, demo.id, [{"user_id": body.user},
                                                       {"user_id": body.peer}])
    me, peer = (o.user_id_md5 for o in outcomes)
    assert me is not None and peer is not None  # plain IDs of 1 to 64 characters pass
    minted = await tokens.mint(ctx, demo.id, me, TOKEN_TTL_SECONDS)
    return SessionOut(app_key=demo.key, token=minted.token, user_id_md5=me, peer_id_md5=peer)
