"""Each node's compiled copy of every app's rules, kept fresh by a version number.

A node keeps the :class:`Policy` it built for an app and, once the copy is older than
PARLEY_MODERATION_CACHE_SECONDS, reads the app's version from the database (one
primary-key lookup). The same version: the copy is good for another period. A newer
one: the rules are read again and rebuilt. So no node serves rules older than that
period plus one query, whichever node took the change, with no messages between
nodes. While an app's rules are being rebuilt, its sends wait for the new copy rather
than pass with the old one.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from app.moderation import lists
from app.moderation.policy import Policy
from app.services.context import Context

logger = logging.getLogger(__name__)

# Below this many rules a rebuild takes well under a millisecond; above it, it goes to
# a worker thread so that other apps' sends do not wait behind it.
BUILD_IN_THREAD_ABOVE = 2000


@dataclass(frozen=True, slots=True)
class _Copy:
    policy: Policy
    checked_at: float


class PolicyCache:
    def __init__(self, ttl_seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._ttl = ttl_seconds
        self._clock = clock
        self._copies: dict[int, _Copy] = {}
        self._locks: dict[int, asyncio.Lock] = {}

    def _fresh(self, app_id: int) -> Policy | None:
        copy = self._copies.get(app_id)
        if copy is not None and self._clock() - copy.checked_at < self._ttl:
            return copy.policy
        return None

    async def get(self, ctx: Context, app_id: int) -> Policy:
        """The app's rules as of at most one cache period ago."""
        policy = self._fresh(app_id)
        if policy is not None:
            return policy
        async with self._locks.setdefault(app_id, asyncio.Lock()):
            policy = self._fresh(app_id)
            if policy is not None:
                return policy
            checked_at = self._clock()
            copy = self._copies.get(app_id)
            if copy is None or copy.policy.version != await lists.current_version(ctx, app_id):
                policy = await self._build(ctx, app_id)
            else:
                policy = copy.policy
            self._copies[app_id] = _Copy(policy, checked_at)
            return policy

    async def _build(self, ctx: Context, app_id: int) -> Policy:
        snapshot = await lists.load(ctx, app_id)
        size = len(snapshot.keywords) + len(snapshot.domains)
        started = time.perf_counter()
        args = (snapshot.version, snapshot.settings, snapshot.keywords, snapshot.domains)
        if size > BUILD_IN_THREAD_ABOVE:
            policy = await asyncio.to_thread(Policy.build, *args)
        else:
            policy = Policy.build(*args)
        logger.debug("moderation rules built", extra={
            "app": app_id, "version": snapshot.version, "rules": size,
            "ms": round((time.perf_counter() - started) * 1000, 1)})
        return policy
