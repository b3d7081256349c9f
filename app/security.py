"""Secrets: app secrets, login tokens, user passwords.

App secrets and login tokens are 256-bit random values, so a single SHA-256 is enough
to store them (nobody can brute-force 2^256); comparing digests in constant time keeps
timing quiet. User passwords are low-entropy and get argon2id.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import os
import secrets
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from app.config import Settings


def new_secret(prefix: str) -> str:
    return f"{prefix}_{secrets.token_urlsafe(32)}"


def new_app_key() -> str:
    return "ak_" + secrets.token_hex(8)


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def digest_matches(secret: str, stored_digest: str) -> bool:
    return hmac.compare_digest(digest(secret), stored_digest)


# How many steps of nice an import's hashing threads run below the rest of the process.
IMPORT_NICENESS = 10


def _lower_priority() -> None:
    """Lower the calling thread's priority. Linux alone schedules threads by their own
    nice value; elsewhere the call would reach the whole process, so it is skipped."""
    if sys.platform != "linux":
        return
    thread = threading.get_native_id()
    with contextlib.suppress(OSError):
        now = os.getpriority(os.PRIO_PROCESS, thread)
        os.setpriority(os.PRIO_PROCESS, thread, min(19, now + IMPORT_NICENESS))


class PasswordVault:
    """argon2id hashing, run off the event loop: one hash holds a core for ~20 ms.

    Logins and imports hash on thread pools of their own, each as wide as the machine
    (argon2's C code lets go of the GIL, so threads run on all cores). An import of a
    thousand passwords queues on its own pool, whose threads yield the cores to the event
    loop and to logins: a login waits for a core, not for the thousand hashes before it.
    """

    def __init__(self, settings: Settings) -> None:
        self._hasher = PasswordHasher(
            time_cost=settings.argon2_time_cost,
            memory_cost=settings.argon2_memory_kib,
            parallelism=settings.argon2_parallelism,
        )
        cores = os.cpu_count() or 1
        self._logins = ThreadPoolExecutor(cores, thread_name_prefix="argon2-login")
        self._imports = ThreadPoolExecutor(cores, thread_name_prefix="argon2-import",
                                           initializer=_lower_priority)
        # Checked against when a login names no user or one without a password, so
        # that such a login costs what a wrong password costs.
        self.decoy = self._hasher.hash(secrets.token_hex(16))

    async def hash(self, password_md5: str) -> str:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._logins, self._hasher.hash, password_md5)

    async def hash_many(self, passwords_md5: list[str]) -> list[str]:
        """Hashes of many passwords, in their order, on every core at once."""
        loop = asyncio.get_running_loop()
        return list(await asyncio.gather(*(
            loop.run_in_executor(self._imports, self._hasher.hash, p) for p in passwords_md5)))

    async def verify(self, stored: str, password_md5: str) -> bool:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._logins, self._verify, stored, password_md5)

    def _verify(self, stored: str, password_md5: str) -> bool:
        try:
            return self._hasher.verify(stored, password_md5)
        except (VerificationError, InvalidHashError):
            return False

    def close(self) -> None:
        """Drop queued hashes, so that stopping does not wait for an import's backlog."""
        self._logins.shutdown(wait=False, cancel_futures=True)
        self._imports.shutdown(wait=False, cancel_futures=True)
