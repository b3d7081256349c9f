"""Login tokens: minted for the App Server, checked on login, revoked by a kick.

A token is an opaque random string; only its SHA-256 digest is stored, with the app
and user it belongs to. Revocation deletes the rows, so it holds at once on every node
and over both the WebSocket and REST paths.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import and_, delete, insert, select

from app import security
from app.broker import Delivery
from app.errors import AuthClose, CloseCode, InvalidRequest, TokenExpired, user_not_found
from app.services import users as user_service
from app.services.context import Context
from app.storage.db import now_us
from app.storage.models import apps, login_tokens
from app.storage.models import users as users_table


@dataclass(frozen=True, slots=True)
class Session:
    """Who a connection or REST caller is, and until when."""

    app_id: int
    app_key: str
    user_id: str
    expires_at_us: int
    # The app's own device policy, or None for the server's.
    device_policy: str | None = None


# The shortest token an App Server may mint. A one-second token is of no use to a
# real client, but it lets a test watch a session expire without a long wait.
TOKEN_TTL_MIN_SECONDS = 1


@dataclass(frozen=True, slots=True)
class MintedToken:
    token: str
    expires_at_us: int


async def mint(ctx: Context, app_id: int, user_id: str, ttl_seconds: int | None) -> MintedToken:
    ttl = ctx.settings.token_ttl_seconds if ttl_seconds is None else ttl_seconds
    if not TOKEN_TTL_MIN_SECONDS <= ttl <= ctx.settings.token_ttl_max_seconds:
        raise InvalidRequest(
            f"ttl_seconds must be between {TOKEN_TTL_MIN_SECONDS} and "
            f"{ctx.settings.token_ttl_max_seconds}.",
            code="invalid_ttl",
        )
    if not await user_service.exists(ctx, app_id, user_id):
        raise user_not_found()
    return await _insert(ctx, app_id, user_id, ttl)


async def _insert(ctx: Context, app_id: int, user_id: str, ttl: int) -> MintedToken:
    token, now = security.new_secret("lt"), now_us()
    expires = now + ttl * 1_000_000
    async with ctx.db.write() as conn:
        await conn.execute(
            insert(login_tokens).values(
                digest=security.digest(token),
                app_id=app_id,
                user_id=user_id,
                expires_at_us=expires,
                created_at_us=now,
            )
        )
    return MintedToken(token, expires)


async def verify(ctx: Context, token: str, app_key: str | None = None) -> Session:
    """The session a token opens; an app key, when given, must be the token's app."""
    async with ctx.db.read() as conn:
        row = (
            await conn.execute(
                select(login_tokens.c.app_id, login_tokens.c.user_id, login_tokens.c.expires_at_us,
                       apps.c.key, apps.c.device_policy)
                .join(apps, apps.c.id == login_tokens.c.app_id)
                # A token outlives nobody: a token minted while its user was being
                # deleted finds no user here and opens nothing.
                .join(users_table, and_(users_table.c.app_id == login_tokens.c.app_id,
                                        users_table.c.id == login_tokens.c.user_id))
                .where(login_tokens.c.digest == security.digest(token))
            )
        ).first()
    if row is None or (app_key is not None and row.key != app_key):
        raise AuthClose("The token is not valid for this app.", code="token_invalid")
    if row.expires_at_us <= now_us():
        raise TokenExpired("The token has expired.")
    return Session(row.app_id, row.key, row.user_id, row.expires_at_us, row.device_policy)


async def password_login(
    ctx: Context, app_key: str, user_id: str, password_md5: str
) -> tuple[Session, MintedToken]:
    """Check a password digest and mint a token the client can reconnect with."""
    async with ctx.db.read() as conn:
        row = (
            await conn.execute(
                select(apps.c.id, apps.c.device_policy, users_table.c.password_hash)
                .join(users_table, users_table.c.app_id == apps.c.id)
                .where(apps.c.key == app_key, users_table.c.id == user_id)
            )
        ).first()
    # Hash even when there is nothing to compare with, so the time taken does not say
    # whether the user exists or has a password.
    stored = row.password_hash if row is not None and row.password_hash else None
    ok = await ctx.vault.verify(stored or ctx.vault.decoy, password_md5.lower())
    if not ok or stored is None or row is None:
        raise AuthClose("User ID or password is wrong.", code="bad_password")
    minted = await _insert(ctx, row.id, user_id, ctx.settings.token_ttl_seconds)
    return Session(row.id, app_key, user_id, minted.expires_at_us, row.device_policy), minted


async def kick(ctx: Context, app_id: int, user_id: str, reason: str) -> int:
    """Revoke every token of the user and close their connections on every node."""
    if not await user_service.exists(ctx, app_id, user_id):
        raise user_not_found()
    async with ctx.db.write() as conn:
        result = await conn.execute(
            delete(login_tokens).where(
                login_tokens.c.app_id == app_id, login_tokens.c.user_id == user_id
            )
        )
    await ctx.broker.publish(
        Delivery(
            app_id,
            (user_id,),
            {"type": "kicked", "reason": reason},
            close_code=CloseCode.KICKED,
            close_reason="kicked",
        )
    )
    return int(result.rowcount or 0)
