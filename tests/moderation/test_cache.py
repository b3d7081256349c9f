"""The per-node rule cache: trusted for its period, then a version check, and a rebuild
only when the version moved. The clock is moved by hand."""

from __future__ import annotations

from typing import Any

import pytest

from app.config import Settings
from app.moderation import lists
from app.moderation.cache import PolicyCache
from app.moderation.keywords import KeywordRule
from app.moderation.policy import ModerationSettings


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class FakeStore:
    """Stands in for the database: a version and a word list, counting reads."""

    def __init__(self) -> None:
        self.version, self.words = 1, ["bad"]
        self.version_reads = self.loads = 0

    async def current_version(self, ctx: Any, app_id: int) -> int:
        self.version_reads += 1
        return self.version

    async def load(self, ctx: Any, app_id: int) -> lists.Snapshot:
        self.loads += 1
        settings = ModerationSettings.effective(Settings(), {})
        return lists.Snapshot(self.version, settings,
                              [KeywordRule(w, "x", "block") for w in self.words], [])


@pytest.fixture
def store(monkeypatch: pytest.MonkeyPatch) -> FakeStore:
    fake = FakeStore()
    monkeypatch.setattr(lists, "current_version", fake.current_version)
    monkeypatch.setattr(lists, "load", fake.load)
    return fake


async def test_a_copy_is_trusted_for_its_period_without_asking(store: FakeStore) -> None:
    """Within the period, repeated gets neither read the version nor rebuild."""
    clock = Clock()
    cache = PolicyCache(0.5, clock)
    first = await cache.get(None, 7)  # type: ignore[arg-type]
    clock.now = 0.4
    assert await cache.get(None, 7) is first  # type: ignore[arg-type]
    assert (store.loads, store.version_reads) == (1, 0)


async def test_after_the_period_an_unchanged_version_keeps_the_copy(store: FakeStore) -> None:
    """Past the period one version read confirms the copy, which then lasts another period."""
    clock = Clock()
    cache = PolicyCache(0.5, clock)
    first = await cache.get(None, 7)  # type: ignore[arg-type]
    clock.now = 0.6
    assert await cache.get(None, 7) is first  # type: ignore[arg-type]
    clock.now = 1.0
    await cache.get(None, 7)  # type: ignore[arg-type]
    assert (store.loads, store.version_reads) == (1, 1)


async def test_a_new_version_is_loaded_and_built_after_the_period(store: FakeStore) -> None:
    """A change made elsewhere shows within one period: the new words match."""
    clock = Clock()
    cache = PolicyCache(0.5, clock)
    old = await cache.get(None, 7)  # type: ignore[arg-type]
    store.version, store.words = 2, ["worse"]
    clock.now = 0.5
    new = await cache.get(None, 7)  # type: ignore[arg-type]
    assert new.version == 2 and store.loads == 2
    assert [h.rule for h in new.inspect("worse").hits] == ["worse"]
    assert old.inspect("worse").hits == []
