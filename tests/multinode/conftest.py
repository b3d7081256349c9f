"""Fixtures for several real nodes: `python -m app serve` processes sharing one PostgreSQL
database and one Redis key prefix, as a deployment behind a load balancer would.

These tests need PostgreSQL (two processes cannot share a SQLite file), so they run only
when the postgres backend is selected.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.cluster import REDIS_URL, unique_prefix
from tests.conftest import BACKENDS
from tests.support import Api, AppCreds, Server, TestDatabase

# Presence entries expire quickly here so that a test sees a dead node forgotten.
PRESENCE_TTL = 1.5
NODE_SETTINGS: dict[str, Any] = {
    "reaper_tick_seconds": 0.2,
    "presence_ttl_seconds": PRESENCE_TTL,
    "device_policy": "one_per_platform",
    "drain_timeout_seconds": 4,
}

class Nodes:
    """Starts nodes on one database and Redis prefix; stops each at the end."""

    def __init__(self, db: TestDatabase, folder: Path, redis_url: str = REDIS_URL) -> None:
        self.db = db
        self.folder = folder
        self.redis_url = redis_url
        self.prefix = unique_prefix()
        self.started: list[Server] = []

    def start(self, **settings: Any) -> Server:
        node = Server.start(self.db, self.folder, redis_url=self.redis_url,
                            redis_prefix=self.prefix, **{**NODE_SETTINGS, **settings})
        self.started.append(node)
        return node

    def stop_all(self) -> None:
        for node in self.started:
            if node.process.poll() is None:
                node.stop()


@pytest.fixture(scope="session")
def postgres_selected() -> None:
    if "postgres" not in BACKENDS:
        pytest.skip("several nodes need the postgres backend")


@pytest.fixture(scope="session")
async def pg_database(postgres_selected: None, tmp_path_factory: pytest.TempPathFactory
                      ) -> AsyncIterator[TestDatabase]:
    db = await TestDatabase.create("postgres", tmp_path_factory.mktemp("multinode-db"))
    yield db
    await db.drop()


@pytest.fixture
def nodes(pg_database: TestDatabase, tmp_path: Path) -> Iterator[Nodes]:
    """Nodes of this test's own; they stop when it ends, passed or failed."""
    made = Nodes(pg_database, tmp_path)
    yield made
    made.stop_all()


@pytest.fixture(scope="module")
def pair(pg_database: TestDatabase, tmp_path_factory: pytest.TempPathFactory
         ) -> Iterator[tuple[Server, Server]]:
    """Two nodes that the tests of a module share and leave running."""
    made = Nodes(pg_database, tmp_path_factory.mktemp("pair"))
    try:
        yield made.start(), made.start()
    finally:
        made.stop_all()


@pytest.fixture
async def api(pair: tuple[Server, Server]) -> AsyncIterator[Api]:
    client = Api(pair[0])
    yield client
    await client.aclose()


@pytest.fixture
async def app(api: Api) -> AppCreds:
    return await api.create_app()
