"""The app factory: routes, the WebSocket endpoint, start-up and shut-down.

``uvicorn app.main:app`` serves the settings from the environment; tests and the CLI
call :func:`create_app` with their own.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from app.api import admin, client, docs, groups, messages, users
from app.api.responses import install_error_handlers
from app.broker import InProcessBroker
from app.config import Settings, get_settings
from app.errors import ServiceUnavailable
from app.gateway import endpoint
from app.gateway.hub import Hub
from app.observability.logging import configure as configure_logging
from app.security import PasswordVault
from app.services.context import Context
from app.storage import migrate
from app.storage.db import Database

logger = logging.getLogger(__name__)

DESCRIPTION = """
Parley is an instant-messaging backend your App Server drives over this REST API,
while your clients connect to the WebSocket data plane at `/ws` (see docs/protocol.md).

* **admin**: the operator's calls, with `Authorization: Bearer $PARLEY_ADMIN_TOKEN`.
* **users**, **messages**: the App Server's calls, with HTTP Basic auth (app key, app secret).
* **client**: a user's own reads, with `Authorization: Bearer <login token>`.

Users are named only by the lowercase hex MD5 of the app's own user ID.
Every error is `{"code": ..., "message": ...}`; the codes are stable.
"""


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if settings.auto_migrate:
            await asyncio.to_thread(migrate.upgrade, settings.database_url)
        db = Database(settings.database_url)
        broker = InProcessBroker()
        hub = Hub(settings)
        await broker.start(hub.deliver)
        hub.start()
        app.state.ctx = Context(settings, db, broker, PasswordVault(settings))
        app.state.hub = hub
        logger.info("parley started", extra={"database": db.url.get_backend_name()})
        try:
            yield
        finally:
            await hub.stop()
            await broker.close()
            await db.dispose()
            logger.info("parley stopped")

    app = FastAPI(
        title="Parley",
        version="0.1.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    install_error_handlers(app)
    if settings.docs_enabled:
        docs.install(app)
    for router in (admin.router, users.router, messages.router, groups.router, client.router):
        app.include_router(router)
    app.add_api_websocket_route("/ws", endpoint.serve)

    @app.get("/healthz", tags=["health"], operation_id="healthz")
    async def healthz() -> dict[str, str]:
        """Alive: the process answers."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"], operation_id="readyz")
    async def readyz() -> dict[str, str]:
        """Ready: the database answers."""
        try:
            await app.state.ctx.db.ping()
        except Exception as exc:
            raise ServiceUnavailable("The database does not answer.",
                                     code="database_unavailable") from exc
        return {"status": "ready"}

    return app


def _from_environment() -> FastAPI:
    settings = get_settings()
    configure_logging(settings.log_level, settings.log_format)
    return create_app(settings)


def __getattr__(name: str) -> FastAPI:
    # `uvicorn app.main:app` builds the app on first use, not at import.
    if name == "app":
        return _from_environment()
    raise AttributeError(name)

