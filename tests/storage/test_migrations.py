"""Alembic migrations are the only source of the schema, and they match the models."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.ext.asyncio import create_async_engine

from app.storage.migrate import alembic_config, upgrade
from app.storage.models import Base
from tests.support import TestDatabase


async def _diff(url: str) -> list:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(
                lambda sync: compare_metadata(MigrationContext.configure(sync), Base.metadata)
            )
    finally:
        await engine.dispose()


async def test_models_and_migrations_agree(backend: str, tmp_path: Path) -> None:
    """A database built only by the migrations has exactly the schema the models declare."""
    db = await TestDatabase.create(backend, tmp_path)
    try:
        await asyncio.to_thread(upgrade, db.url)
        assert await _diff(db.url) == []
    finally:
        await db.drop()


async def test_migrations_go_down_and_up_again(backend: str, tmp_path: Path) -> None:
    """Downgrading to nothing and upgrading again leaves the same schema."""
    db = await TestDatabase.create(backend, tmp_path)
    try:
        cfg = alembic_config(db.url)
        await asyncio.to_thread(command.upgrade, cfg, "head")
        await asyncio.to_thread(command.downgrade, cfg, "base")
        await asyncio.to_thread(command.upgrade, cfg, "head")
        assert await _diff(db.url) == []
    finally:
        await db.drop()
