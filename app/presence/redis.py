"""Presence shared between nodes, in Redis.

Each user has a sorted set of their devices scored by expiry time (ms), and one sorted
set of deadlines, across users, lets any node find expired devices without scanning
keys. Arrive, depart and sweep are Lua scripts, so concurrent nodes see each change
whole: of two logins on one platform at once, the later one sees the earlier.

Keys: ``{prefix}presence:{app}:{user}`` (members ``connection|node|platform|since``)
and ``{prefix}presence-deadlines`` (members ``app|user|<member>``). The sweep script
builds user keys itself, which a single Redis allows and Redis Cluster does not; see
docs/deploy.md.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from redis.asyncio import Redis

from app.presence import Device, Entry

# Most expired devices one sweep call removes; a sweep loops until it gets fewer.
SWEEP_BATCH = 500
# A set outlives its last write this many TTLs; key expiry is only garbage collection
# (of a deployment or test run that went away), the scores decide who is online.
KEY_TTL_FACTOR = 3

_ARRIVE = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[4])
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[2])
redis.call('PEXPIRE', KEYS[2], ARGV[5])
return redis.call('ZRANGE', KEYS[1], 0, -1)
"""

_DEPART = """
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[3])
return redis.call('ZRANGE', KEYS[1], 0, -1)
"""

# A deadline whose device was refreshed meanwhile is put back at the device's new score.
_SWEEP = """
local now = tonumber(ARGV[1])
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, ARGV[2])
local changed = {}
for _, entry in ipairs(due) do
  redis.call('ZREM', KEYS[1], entry)
  local app, user, member = string.match(entry, '^([^|]*)|([^|]*)|(.*)$')
  local key = ARGV[3] .. app .. ':' .. user
  local score = redis.call('ZSCORE', key, member)
  if score and tonumber(score) <= now then
    redis.call('ZREM', key, member)
    table.insert(changed, app .. '|' .. user)
  elseif score then
    redis.call('ZADD', KEYS[1], score, entry)
  end
end
return {#due, changed}
"""


def _member(device: Device) -> str:
    return f"{device.connection}|{device.node}|{device.platform}|{device.since_us}"


def _device(member: bytes | str) -> Device:
    text = member.decode() if isinstance(member, bytes) else member
    connection, node, platform, since = text.split("|", 3)
    return Device(connection, node, platform, int(since))


class RedisRegistry:
    def __init__(self, redis: Redis, prefix: str, ttl_seconds: float,
                 clock: Callable[[], float] = time.time) -> None:
        self._redis = redis
        self._users_prefix = f"{prefix}presence:"
        self._deadlines = f"{prefix}presence-deadlines"
        self._ttl_ms = int(ttl_seconds * 1000)
        self._clock = clock
        self._arrive = redis.register_script(_ARRIVE)
        self._depart = redis.register_script(_DEPART)
        self._sweep = redis.register_script(_SWEEP)

    def _key(self, app_id: int, user_id: str) -> str:
        return f"{self._users_prefix}{app_id}:{user_id}"

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    async def arrive(self, entry: Entry) -> list[Device]:
        member, now = _member(entry.device), self._now_ms()
        found = await self._arrive(
            keys=[self._key(entry.app_id, entry.user_id), self._deadlines],
            args=[member, f"{entry.app_id}|{entry.user_id}|{member}", now + self._ttl_ms, now,
                  self._ttl_ms * KEY_TTL_FACTOR],
        )
        return [_device(m) for m in found]

    async def depart(self, entry: Entry) -> list[Device]:
        member = _member(entry.device)
        found = await self._depart(
            keys=[self._key(entry.app_id, entry.user_id), self._deadlines],
            args=[member, f"{entry.app_id}|{entry.user_id}|{member}", self._now_ms()],
        )
        return [_device(m) for m in found]

    async def refresh(self, entries: Iterable[Entry]) -> None:
        expires = self._now_ms() + self._ttl_ms
        async with self._redis.pipeline(transaction=False) as pipe:
            for entry in entries:
                key, member = self._key(entry.app_id, entry.user_id), _member(entry.device)
                pipe.zadd(key, {member: expires})
                pipe.pexpire(key, self._ttl_ms * KEY_TTL_FACTOR)
                pipe.zadd(self._deadlines, {f"{entry.app_id}|{entry.user_id}|{member}": expires})
            pipe.pexpire(self._deadlines, self._ttl_ms * KEY_TTL_FACTOR)
            await pipe.execute()

    async def sweep(self) -> list[tuple[int, str]]:
        changed: set[tuple[int, str]] = set()
        while True:
            seen, users = await self._sweep(
                keys=[self._deadlines], args=[self._now_ms(), SWEEP_BATCH, self._users_prefix]
            )
            for pair in users:
                app, user = (pair.decode() if isinstance(pair, bytes) else pair).split("|")
                changed.add((int(app), user))
            if int(seen) < SWEEP_BATCH:
                return sorted(changed)

    async def devices(self, app_id: int, users: Iterable[str]) -> dict[str, list[Device]]:
        wanted, now = list(users), self._now_ms()
        async with self._redis.pipeline(transaction=False) as pipe:
            for user in wanted:
                pipe.zrangebyscore(self._key(app_id, user), f"({now}", "+inf")
            found = await pipe.execute()
        return {user: [_device(m) for m in members] for user, members in zip(wanted, found,
                                                                             strict=True)}

    async def close(self) -> None:
        return None
