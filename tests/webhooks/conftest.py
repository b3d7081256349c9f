"""Fixtures for webhook tests: a server allowed to call loopback, and receivers."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from tests.support import Api, Server, TestDatabase
from tests.webhooks.receiver import Receiver

FAST = {
    "webhook_allow_private": "true",
    "webhook_poll_seconds": 0.05,
    "webhook_retry_base_seconds": 0.05,
    "webhook_timeout_seconds": 1,
    "webhook_disable_after_failures": 5,
    "webhook_cache_seconds": 0,
    "reaper_tick_seconds": 0.2,
}


@pytest.fixture(scope="module")
async def hook_db(backend: str, tmp_path_factory: pytest.TempPathFactory
                  ) -> AsyncIterator[TestDatabase]:
    """A database of its own: on SQLite, two busy servers on one file slow each other."""
    db = await TestDatabase.create(backend, tmp_path_factory.mktemp("hooks-db"))
    yield db
    await db.drop()


@pytest.fixture(scope="module")
def hook_server(hook_db: TestDatabase, tmp_path_factory: pytest.TempPathFactory
                ) -> Iterator[Server]:
    """A server that may call loopback URLs and retries fast."""
    srv = Server.start(hook_db, tmp_path_factory.mktemp("hooks"), **FAST)
    yield srv
    srv.stop()


@pytest.fixture
async def hapi(hook_server: Server) -> AsyncIterator[Api]:
    client = Api(hook_server)
    yield client
    await client.aclose()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    r = await Receiver().start()
    yield r
    await r.stop()


@pytest.fixture
async def hook() -> AsyncIterator[Receiver]:
    """A second receiver, for the before-send hook."""
    r = await Receiver().start()
    yield r
    await r.stop()
