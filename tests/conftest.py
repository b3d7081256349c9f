"""Fixtures: each test module runs once per database backend against a real server.

PARLEY_TEST_BACKENDS picks the backends (default "sqlite,postgres"). Each backend gets
its own database, made for the run and dropped after it, and its own server process.
Tests keep out of each other's way by making their own app (tenant).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.support import Api, AppCreds, Server, TestDatabase

BACKENDS = [b for b in os.environ.get("PARLEY_TEST_BACKENDS", "sqlite,postgres").split(",") if b]


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="session")
async def database(backend: str, tmp_path_factory: pytest.TempPathFactory
                   ) -> AsyncIterator[TestDatabase]:
    db = await TestDatabase.create(backend, tmp_path_factory.mktemp(f"db-{backend}"))
    yield db
    await db.drop()


@pytest.fixture(scope="session")
def server(database: TestDatabase, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[Server]:
    srv = Server.start(database, tmp_path_factory.mktemp("server"), reaper_tick_seconds=0.2)
    yield srv
    srv.stop()


@pytest.fixture
async def api(server: Server) -> AsyncIterator[Api]:
    client = Api(server)
    yield client
    await client.aclose()


@pytest.fixture
async def app(api: Api) -> AppCreds:
    """A fresh app (tenant) for this test alone."""
    return await api.create_app()


@pytest.fixture
def repo_root() -> Path:
    return Path(__file__).resolve().parents[1]
