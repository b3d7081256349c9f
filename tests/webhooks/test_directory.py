"""The per-node copy of each app's webhook settings: one read at a time, and a copy that
ran out is answered with while it is read afresh."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from app.webhooks import outbox
from app.webhooks.outbox import AppHooks, HookDirectory


class SlowStore:
    """Stands in for the database read; each read waits until released."""

    def __init__(self) -> None:
        self.reads = 0
        self.endpoints = False
        self.release = asyncio.Event()

    async def load(self, app_id: int) -> AppHooks:
        self.reads += 1
        await self.release.wait()
        return AppHooks("ak", self.endpoints, None)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    now = [100.0]
    monkeypatch.setattr(outbox.time, "monotonic", lambda: now[0])
    return now


def _directory(store: SlowStore) -> HookDirectory:
    directory = HookDirectory(None, ttl_seconds=1.0)  # type: ignore[arg-type]
    directory._load = store.load  # type: ignore[method-assign]
    return directory


async def test_concurrent_misses_share_one_read(clock: list[float]) -> None:
    store = SlowStore()
    directory = _directory(store)
    waiting = [asyncio.ensure_future(directory.get(1)) for _ in range(50)]
    await asyncio.sleep(0)
    store.release.set()
    found: Any = await asyncio.gather(*waiting)
    assert store.reads == 1 and {h.has_endpoints for h in found} == {False}


async def test_a_stale_copy_answers_while_it_is_read_afresh(clock: list[float]) -> None:
    store = SlowStore()
    store.release.set()
    directory = _directory(store)
    assert not (await directory.get(1)).has_endpoints
    store.endpoints, clock[0] = True, 101.5  # changed elsewhere; the copy ran out
    store.release.clear()
    stale = await asyncio.wait_for(directory.get(1), 0.5)  # does not wait for the read
    assert not stale.has_endpoints and store.reads == 2
    assert not (await directory.get(1)).has_endpoints and store.reads == 2  # one read
    store.release.set()
    for _ in range(5):  # the read finishes, then its callback files the copy
        await asyncio.sleep(0)
    assert (await directory.get(1)).has_endpoints and store.reads == 2


async def test_forget_drops_a_read_that_may_predate_the_change(clock: list[float]) -> None:
    """This node changed the hooks while a read was in flight: that read's answer is not
    kept, the next get reads again."""
    store = SlowStore()
    store.release.set()
    directory = _directory(store)
    await directory.get(1)
    clock[0] = 102.0
    store.release.clear()
    await directory.get(1)  # starts a read, answers with the old copy
    directory.forget(1)
    store.endpoints = True
    store.release.set()
    assert (await directory.get(1)).has_endpoints
    assert store.reads == 3
