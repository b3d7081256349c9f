"""The password vault: argon2id hashes made off the event loop, imports apart from logins."""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import AsyncIterator

import pytest

from app.config import Settings
from app.security import PasswordVault

# argon2's smallest cost: these tests check the vault's plumbing, not argon2's strength.
CHEAP = Settings(argon2_time_cost=1, argon2_memory_kib=8, argon2_parallelism=1)


@pytest.fixture
async def vault() -> AsyncIterator[PasswordVault]:
    made = PasswordVault(CHEAP)
    yield made
    made.close()


async def test_hash_many_keeps_the_order_of_the_passwords(vault: PasswordVault) -> None:
    """Each hash comes back in its password's place, and verifies against it alone."""
    passwords = [f"{i:032x}" for i in range(12)]
    hashes = await vault.hash_many(passwords)
    assert len(set(hashes)) == len(passwords)
    assert all([await vault.verify(h, p) for h, p in zip(hashes, passwords, strict=True)])
    assert not await vault.verify(hashes[0], passwords[1])


async def test_hash_many_of_nothing_is_nothing(vault: PasswordVault) -> None:
    """An import without passwords hashes nothing."""
    assert await vault.hash_many([]) == []


@pytest.mark.skipif(sys.platform != "linux", reason="threads have their own nice on Linux only")
async def test_import_threads_run_below_login_threads(vault: PasswordVault) -> None:
    """An import's hashing threads are niced below the login threads, which keep the
    process's priority."""
    await vault.hash_many(["0" * 32] * 4)
    await vault.verify(vault.decoy, "0" * 32)
    nice = {t.name.rsplit("_", 1)[0]: os.getpriority(os.PRIO_PROCESS, t.native_id or 0)
            for t in threading.enumerate() if t.name.startswith("argon2-")}
    base = os.getpriority(os.PRIO_PROCESS, 0)
    assert nice["argon2-login"] == base
    assert nice["argon2-import"] == min(19, base + 10)
