"""Secrets: app secrets, login tokens, user passwords.

App secrets and login tokens are 256-bit random values, so a single SHA-256 is enough
to store them (nobody can brute-force 2^256); comparing digests in constant time keeps
timing quiet. User passwords are low-entropy and get argon2id.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets

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


class PasswordVault:
    """argon2id hashing, run off the event loop: one hash holds a core for ~20 ms."""

    def __init__(self, settings: Settings) -> None:
        self._hasher = PasswordHasher(
            time_cost=settings.argon2_time_cost,
            memory_cost=settings.argon2_memory_kib,
            parallelism=settings.argon2_parallelism,
        )
        # Checked against when a login names no user or one without a password, so
        # that such a login costs what a wrong password costs.
        self.decoy = self._hasher.hash(secrets.token_hex(16))

    async def hash(self, password_md5: str) -> str:
        return await asyncio.to_thread(self._hasher.hash, password_md5)

    async def verify(self, stored: str, password_md5: str) -> bool:
        return await asyncio.to_thread(self._verify, stored, password_md5)

    def _verify(self, stored: str, password_md5: str) -> bool:
        try:
            return self._hasher.verify(stored, password_md5)
        except (VerificationError, InvalidHashError):
            return False
