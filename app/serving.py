"""uvicorn with a graceful drain on SIGTERM.

uvicorn on its own answers SIGTERM by closing every WebSocket at once with 1012. A
Parley node instead stops listening, reports not ready, sends each client to another
node with close code 4010 once its request in hand has its reply, and only then lets
uvicorn shut down: the broker flushes, presence entries are removed, the database pool
closes. All of it within ``PARLEY_DRAIN_TIMEOUT_SECONDS``; past that the process ends
anyway. A second SIGTERM, or SIGINT, skips the drain.

Each WebSocket is served as lean as it can be (see ``app.gateway.transport``): a node
holds many idle connections.
"""

from __future__ import annotations

import asyncio
import logging
import os
import resource
import signal
import threading
from types import FrameType
from typing import Any

import uvicorn
from fastapi import FastAPI

from app.config import Settings
from app.gateway import endpoint, transport

logger = logging.getLogger(__name__)

# Shares of the drain timeout: clients leaving, then uvicorn's own wait for sockets;
# the rest is for the app's shut-down (broker flush, presence, database).
CLIENTS_SHARE = 0.6
SOCKETS_SHARE = 0.1


class DrainingServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, app: FastAPI, drain_seconds: float) -> None:
        super().__init__(config)
        self._app = app
        self._drain_seconds = drain_seconds
        self._drain_asked = False
        self._drain: asyncio.Task[None] | None = None

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if sig == signal.SIGTERM and not self._drain_asked:
            self._drain_asked = True  # on_tick starts the drain on the event loop
            return
        super().handle_exit(sig, frame)

    async def on_tick(self, counter: int) -> bool:
        if self._drain_asked and self._drain is None:
            self._drain = asyncio.create_task(self._run_drain(), name="drain")
        if self._drain is not None and self._drain.done():
            self.should_exit = True
        return await super().on_tick(counter)

    async def _run_drain(self) -> None:
        _exit_anyway_after(self._drain_seconds)
        state = self._app.state
        logger.info("draining", extra={"connections": len(state.hub),
                                       "timeout": self._drain_seconds})
        for server in self.servers:
            server.close()
        state.node.draining = True
        left = await state.hub.drain(self._drain_seconds * CLIENTS_SHARE)
        logger.info("drained", extra={"connections_left": left})


def _exit_anyway_after(seconds: float) -> None:
    """End the process at the deadline even if a shut-down step hangs."""
    def stop() -> None:
        logger.error("drain timeout passed; exiting now")
        logging.shutdown()
        os._exit(1)

    timer = threading.Timer(seconds, stop)
    timer.daemon = True
    timer.start()


def raise_file_limit() -> int:
    """Lift this process's soft limit on open files to the hard limit, and return it.

    Each connection is a socket, and the usual soft limit of 1,024 would stop a node long
    before its memory does; the hard limit is the operator's to set.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if resource.RLIM_INFINITY not in (soft, hard) and soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def run(app: FastAPI, settings: Settings, options: dict[str, Any]) -> None:
    logger.info("open file limit", extra={"limit": raise_file_limit()})
    config = uvicorn.Config(
        transport.straight_to_gateway(app, endpoint.serve),
        timeout_graceful_shutdown=max(1, int(settings.drain_timeout_seconds * SOCKETS_SHARE)),
        **{"ws": transport.LeanWebSocketProtocol, **options},
    )
    DrainingServer(config, app, settings.drain_timeout_seconds).run()
