"""What every service needs, built once at start-up."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncConnection

from app.broker import Broker
from app.config import Settings
from app.security import PasswordVault
from app.storage.db import Database
from app.webhooks.outbox import HookDirectory

if TYPE_CHECKING:
    from app.services.committer import Committer

# (ctx, connection, outgoing, msg_id); see Context.persist_hooks.
PersistHook = Callable[["Context", AsyncConnection, Any, str], Awaitable[None]]


@dataclass(slots=True)
class Context:
    settings: Settings
    db: Database
    broker: Broker
    vault: PasswordVault
    # Steps every message passes between validation and storage, in order; each takes
    # and returns an app.services.messages.Outgoing. Moderation and hooks join here.
    send_stages: tuple[Callable[[Context, Any], Awaitable[Any]], ...] = field(default=())
    # Run inside a message's write transaction once its row is in, with the connection,
    # the Outgoing and the new msg_id: what they write commits or rolls back with it.
    persist_hooks: tuple[PersistHook, ...] = field(default=())
    # Which apps have webhooks; None where no events are written (the CLI).
    hooks: HookDirectory | None = None
    # The node's group-commit writer of 1:1 messages and notices (app.services.committer).
    committer: Committer = field(kw_only=True)
