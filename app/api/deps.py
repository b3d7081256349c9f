"""Who is calling: the operator (admin token), an App Server (key and secret), or a
client (a login token). Each is a typed dependency a route declares."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Path, Request
from fastapi.security import (
    HTTPAuthorizationCredentials,
    HTTPBasic,
    HTTPBasicCredentials,
    HTTPBearer,
)

from app import ids
from app.errors import Forbidden, Unauthorized
from app.services import apps, tokens
from app.services.apps import AppRecord
from app.services.context import Context
from app.services.tokens import Session

_basic = HTTPBasic(auto_error=False, description="App key as user name, app secret as password.")
_admin_bearer = HTTPBearer(
    auto_error=False, scheme_name="AdminToken", description="PARLEY_ADMIN_TOKEN."
)
_client_bearer = HTTPBearer(
    auto_error=False, scheme_name="LoginToken", description="A user's login token."
)


def get_ctx(request: Request) -> Context:
    ctx: Context = request.app.state.ctx
    return ctx


Ctx = Annotated[Context, Depends(get_ctx)]


async def require_admin(
    ctx: Ctx, creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_admin_bearer)]
) -> None:
    expected = ctx.settings.admin_token
    if expected is None:
        raise Forbidden("The admin API is off: PARLEY_ADMIN_TOKEN is not set.",
                        code="admin_disabled")
    if creds is None or not hmac.compare_digest(
        creds.credentials.encode(), expected.get_secret_value().encode()
    ):
        raise Unauthorized("A valid admin token is required.", code="bad_admin_token")


async def require_app(
    ctx: Ctx, creds: Annotated[HTTPBasicCredentials | None, Depends(_basic)]
) -> AppRecord:
    if creds is None:
        raise Unauthorized("Send the app key and secret as HTTP Basic credentials.",
                           code="bad_app_credentials")
    return await apps.authenticate(ctx, creds.username, creds.password)


async def require_session(
    ctx: Ctx, creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_client_bearer)]
) -> Session:
    if creds is None:
        raise Unauthorized("Send a login token as a Bearer credential.", code="token_invalid")
    return await tokens.verify(ctx, creds.credentials)


def _user_path(
    user_id_md5: Annotated[str, Path(description="The user's MD5 ID (32 hex digits).")],
) -> str:
    return ids.normalise_md5(user_id_md5)


AdminAuth = Depends(require_admin)
CallingApp = Annotated[AppRecord, Depends(require_app)]
ClientSession = Annotated[Session, Depends(require_session)]
UserPath = Annotated[str, Depends(_user_path)]
