"""App Server routes for users: import, read, update, list, delete, tokens, kick."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from app.api.deps import CallingApp, Ctx, UserPath
from app.api.responses import ERRORS
from app.api.schemas import (
    ImportItemResult,
    ImportResult,
    KickOut,
    KickRequest,
    TokenOut,
    TokenRequest,
    UserImportRequest,
    UserOut,
    UserPage,
)
from app.services import tokens, users
from app.services.users import UserFields
from app.timefmt import iso_from_us

router = APIRouter(prefix="/v1/users", tags=["users"], responses=ERRORS)


@router.post("/import", operation_id="import_users")
async def import_users(ctx: Ctx, app: CallingApp, body: UserImportRequest) -> ImportResult:
    """Create or update up to 1,000 users; each item gets its own outcome."""
    outcomes = await users.import_users(ctx, app.id, body.users)
    results = [ImportItemResult.model_validate(o, from_attributes=True) for o in outcomes]
    count = {s: sum(1 for o in outcomes if o.status == s) for s in ("created", "updated", "error")}
    return ImportResult(created=count["created"], updated=count["updated"],
                        failed=count["error"], results=results)


@router.get("", operation_id="list_users")
async def list_users(
    ctx: Ctx,
    app: CallingApp,
    cursor: Annotated[str | None, Query(max_length=32)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 100,
) -> UserPage:
    """List users by MD5 ID, a page at a time."""
    items, next_cursor = await users.list_users(ctx, app.id, cursor, limit)
    return UserPage(users=[UserOut(**u) for u in items], next_cursor=next_cursor)


@router.get("/{user_id_md5}", operation_id="get_user")
async def get_user(ctx: Ctx, app: CallingApp, user: UserPath) -> UserOut:
    """Get one user."""
    return UserOut(**await users.get(ctx, app.id, user))


@router.patch("/{user_id_md5}", operation_id="update_user")
async def update_user(ctx: Ctx, app: CallingApp, user: UserPath, body: UserFields) -> UserOut:
    """Change the fields given; a null clears one."""
    return UserOut(**await users.update_user(ctx, app.id, user, body))


@router.delete("/{user_id_md5}", status_code=status.HTTP_204_NO_CONTENT,
               operation_id="delete_user")
async def delete_user(ctx: Ctx, app: CallingApp, user: UserPath) -> Response:
    """Delete a user: their tokens stop working and their connections close."""
    await users.delete_user(ctx, app.id, user)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{user_id_md5}/tokens", status_code=status.HTTP_201_CREATED,
             operation_id="mint_token")
async def mint_token(
    ctx: Ctx, app: CallingApp, user: UserPath, body: TokenRequest | None = None
) -> TokenOut:
    """Mint a short-lived login token for a client of this user."""
    minted = await tokens.mint(ctx, app.id, user, body.ttl_seconds if body else None)
    return TokenOut(user_id_md5=user, token=minted.token,
                    expires_at=iso_from_us(minted.expires_at_us))


@router.post("/{user_id_md5}/kick", operation_id="kick_user")
async def kick_user(
    ctx: Ctx, app: CallingApp, user: UserPath, body: KickRequest | None = None
) -> KickOut:
    """Revoke the user's tokens and close their connections with the kicked code."""
    revoked = await tokens.kick(ctx, app.id, user, body.reason if body else "")
    return KickOut(revoked_tokens=revoked)
