"""What every service needs, built once at start-up."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from app.broker import Broker
from app.config import Settings
from app.security import PasswordVault
from app.storage.db import Database


@dataclass(slots=True)
class Context:
    settings: Settings
    db: Database
    broker: Broker
    vault: PasswordVault
    # Steps every message passes between validation and storage, in order; each takes
    # and returns an app.services.messages.Outgoing. Moderation and hooks join here.
    send_stages: tuple[Callable[[Context, Any], Awaitable[Any]], ...] = field(default=())
