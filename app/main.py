"""The app factory: routes, the WebSocket endpoint, start-up and shut-down.

``uvicorn app.main:app`` serves the settings from the environment; tests and the CLI
call :func:`create_app` with their own.
"""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Response
from fastapi.responses import PlainTextResponse

from app import node as cluster
from app.api import admin, client, demo, docs, groups, messages, moderation, users, webhooks
from app.api import media as media_api
from app.api import presence as presence_api
from app.api.limits import BodyLimit
from app.api.responses import install_error_handlers
from app.config import Settings, get_settings
from app.errors import ServiceUnavailable
from app.gateway import endpoint
from app.gateway.hub import Hub
from app.media import service as media_service
from app.media.stage import MediaStage
from app.media.store import LocalDiskStore
from app.moderation import review
from app.moderation.stage import Moderator
from app.observability import metrics as observability_metrics
from app.observability.logging import configure as configure_logging
from app.security import PasswordVault
from app.services.committer import Committer
from app.services.context import Context
from app.services.push import Broadcaster
from app.storage import migrate
from app.storage.db import Database
from app.webhooks.before_send import BeforeSendHook
from app.webhooks.dispatcher import Dispatcher
from app.webhooks.outbox import HookDirectory

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


# Young-generation size before the cyclic collector runs; the older two thresholds as
# Python's defaults. A send allocates a few hundred objects, so at Python's default of
# 700 the collector ran several times per message batch, and every tenth of tenth run
# walked every connection's objects: py-spy put 15-25% of a loaded node's samples on
# lines that merely allocate. Nearly all of a message's objects die young, by reference
# counting, whatever the threshold.
GC_YOUNG_THRESHOLD = 50_000


def _tune_garbage_collector() -> None:
    """Move what start-up built out of the collector's sight, and let it run less often."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if settings.auto_migrate:
            await asyncio.to_thread(migrate.upgrade, settings.database_url)
        db = Database(settings.database_url)
        hub = Hub(settings)
        node = await cluster.start(settings, hub)
        broker = node.broker
        hub.start()
        moderator = Moderator(settings.moderation_cache_seconds)
        media_stage = MediaStage(moderator.policies)
        app.state.media_store = LocalDiskStore(settings.media_dir)
        directory = HookDirectory(db, settings.webhook_cache_seconds)
        dispatcher = Dispatcher(settings, db)
        before_send = BeforeSendHook(directory, dispatcher.http, settings.webhook_allow_private,
                                     settings.webhook_max_response_bytes)
        # Local content rules first: they are cheap, and a message they block never
        # reaches the App Server's hook. The media stage comes after the rate check, so
        # that a flood of image messages is slowed before any medium is looked up.
        app.state.ctx = Context(settings, db, broker, PasswordVault(settings),
                                send_stages=(moderator.check, media_stage.check,
                                             before_send.check),
                                persist_hooks=(review.record_findings,
                                               media_service.record_ref),
                                hooks=directory, committer=Committer())
        app.state.hub = hub
        app.state.node = node
        app.state.dispatcher = dispatcher
        dispatcher.start()
        broadcaster = Broadcaster(app.state.ctx)
        broadcaster.start()
        _tune_garbage_collector()
        logger.info("parley started", extra={"database": db.url.get_backend_name()})
        try:
            yield
        finally:
            await broadcaster.stop()
            await app.state.ctx.committer.stop()
            await dispatcher.stop()
            await hub.stop()
            await node.stop()
            await db.dispose()
            app.state.ctx.vault.close()
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
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes,
                       exempt=frozenset({media_api.UPLOAD_PATH}))
    if settings.docs_enabled:
        docs.install(app)
    for router in (admin.router, users.router, messages.router, groups.router, client.router,
                   moderation.router, moderation.client_router, webhooks.router):
        app.include_router(router)
    app.include_router(presence_api.router)
    if settings.demo_enabled:
        app.include_router(demo.router)
    app.include_router(media_api.router)
    app.add_api_websocket_route("/ws", endpoint.serve)

    @app.get("/healthz", tags=["health"], operation_id="healthz")
    async def healthz() -> dict[str, str]:
        """Alive: the process answers."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"], operation_id="readyz")
    async def readyz() -> dict[str, str]:
        """Ready: the database and the broker answer, and the node is not draining."""
        try:
            await app.state.ctx.db.ping()
        except Exception as exc:
            raise ServiceUnavailable("The database does not answer.",
                                     code="database_unavailable") from exc
        await app.state.node.check_ready()
        return {"status": "ready"}

    @app.get("/metrics", tags=["health"], operation_id="metrics",
             response_class=PlainTextResponse)
    async def metrics() -> Response:
        """Prometheus metrics of this node; keep the path off the public proxy."""
        return Response(observability_metrics.render(),
                        media_type=observability_metrics.CONTENT_TYPE)

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

