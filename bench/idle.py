"""Idle connections at scale, for the idle_connections scenario: Parley on one node or on
several sharing PostgreSQL and Redis, logged in to by as many load generator processes
as the connections need, and the server RSS per connection while they are held.

Login tokens are written straight to the database: minting tens of thousands over the
REST API takes minutes (about 90 a second here) and measures nothing this scenario is
about.
"""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
import redis.asyncio as aioredis

from app import security
from app.storage.db import now_us
from bench.procs import hold_idle_many, rss_kib
from tests.cluster import REDIS_URL, unique_prefix
from tests.support import Api, Server, TestDatabase

# Connections one load generator holds at most: one descriptor each, under the 20,000
# a process may open here, with room to spare.
CLIENTS_PER_LOADGEN = 15_000
# Logins each load generator keeps in flight. Three nodes' database pools at 30
# connections each would pass PostgreSQL's 100 with other clients about; 25 logins at a
# time keep a node's pool well under that.
IN_FLIGHT = 25
# Logins of the warm-up round, before the RSS is first read: as many as are in flight
# at once, so that each server has opened the database connections it will use. Their
# memory, once freed, is used again by the measured connections: keep the round small.
WARM_UP = IN_FLIGHT
TOKEN_TTL_SECONDS = 4 * 3600  # outlives any run of the scenario
IMPORT_BATCH = 1000


async def redis_missing() -> str | None:
    """Why several nodes cannot run here, or None."""
    client = aioredis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        await client.ping()
    except (OSError, aioredis.RedisError) as e:
        return f"no Redis at {REDIS_URL}: {e}"
    finally:
        await client.aclose()
    return None


@asynccontextmanager
async def parley_nodes(database: str, users: int, nodes: int, settings: dict[str, Any]
                       ) -> AsyncIterator[list[dict[str, Any]]]:
    """`nodes` Parley processes on one database (and Redis, when more than one), with
    `users` users and a token each; yields one target a node, the tokens dealt out."""
    folder = Path(tempfile.mkdtemp(prefix="parley-bench-"))
    db = await TestDatabase.create(database, folder)
    shared = {"log_level": "WARNING", **settings}
    prefix = unique_prefix()
    if nodes > 1:
        shared.update(redis_url=REDIS_URL, redis_prefix=prefix)
    servers: list[Server] = []
    api: Api | None = None
    try:
        servers += [Server.start(db, folder, **shared) for _ in range(nodes)]
        api = Api(servers[0])
        app = await api.create_app("bench")
        ids: list[str] = []
        for start in range(0, users, IMPORT_BATCH):
            ids += await api.import_users(
                app, *(f"u{i}" for i in range(start, min(start + IMPORT_BATCH, users))))
        tokens = await write_tokens(db, app.key, ids)
        yield [{"url": s.ws_url, "pid": s.process.pid, "app_key": app.key,
                "tokens": tokens[i::nodes]} for i, s in enumerate(servers)]
    finally:
        if api is not None:
            await api.aclose()
        for server in servers:
            server.stop()
        await db.drop()
        if nodes > 1:
            await _forget_prefix(prefix)


async def write_tokens(db: TestDatabase, app_key: str, user_ids: list[str]) -> list[str]:
    """A fresh login token for each user, as `tokens.mint` would store it."""
    tokens = [security.new_secret("lt") for _ in user_ids]
    now = now_us()
    expires = now + TOKEN_TTL_SECONDS * 1_000_000
    (app_row,) = await db.execute("SELECT id FROM apps WHERE key = $1", app_key)
    rows = [(security.digest(t), app_row[0], u, expires, now)
            for t, u in zip(tokens, user_ids, strict=True)]
    columns = ["digest", "app_id", "user_id", "expires_at_us", "created_at_us"]
    if db.backend == "sqlite":
        import aiosqlite

        async with aiosqlite.connect(db.url.split("///", 1)[1]) as conn:
            await conn.executemany(
                f"INSERT INTO login_tokens ({', '.join(columns)}) VALUES (?, ?, ?, ?, ?)", rows)
            await conn.commit()
        return tokens
    conn = await asyncpg.connect(db.url.replace("+asyncpg", ""))
    try:
        await conn.copy_records_to_table("login_tokens", records=rows, columns=columns)
    finally:
        await conn.close()
    return tokens


async def _forget_prefix(prefix: str) -> None:
    client = aioredis.from_url(REDIS_URL)
    try:
        keys = [key async for key in client.scan_iter(match=f"{prefix}*", count=1000)]
        for start in range(0, len(keys), 1000):
            await client.delete(*keys[start:start + 1000])
    finally:
        await client.aclose()


async def hold(targets: list[dict[str, Any]], hold_seconds: float, protocol: str = "parley"
               ) -> dict[str, Any]:
    """Log every target's tokens in, hold them `hold_seconds`, and read each server's RSS
    before and during; per connection, summed over the targets' servers."""
    # A first round of logins fills each server's database pool and caches, once; that
    # is not what each further connection costs.
    warm = [{**t, "tokens": t["tokens"][:WARM_UP]} for t in targets]
    await hold_idle_many([job for t in warm for job in _jobs(t, 0, protocol)],
                         [t["pid"] for t in targets], 0)
    before = {t["pid"]: rss_kib(t["pid"]) for t in targets}
    jobs = [(t["pid"], job) for t in targets for job in _jobs(t, hold_seconds, protocol)]
    results, during = await hold_idle_many([job for _, job in jobs], list(before),
                                           hold_seconds)
    logged_in = dict.fromkeys(before, 0)
    for (pid, _), result in zip(jobs, results, strict=True):
        logged_in[pid] += result["connections"]
    per_node = [_node_row(logged_in[pid], before[pid], during[pid]) for pid in before]
    row = dict(per_node[0]) if len(per_node) == 1 else _cluster_row(per_node)
    row.update(open_at_end=sum(r["open_at_end"] for r in results),
               login_seconds=max(r["login_seconds"] for r in results),
               failed_logins=sum(r.get("failed_logins", 0) for r in results))
    errors = sorted({e for r in results for e in r.get("login_errors", [])})
    if errors:
        row["login_errors"] = errors[:3]
    return row


def _jobs(target: dict[str, Any], hold_seconds: float, protocol: str) -> list[dict[str, Any]]:
    tokens = target["tokens"]
    # Logging in runs at a few hundred a second; allow for a slow, shared machine.
    timeout = 300 + len(tokens) / 20
    return [{"mode": "idle", "url": target["url"], "app_key": target["app_key"],
             "tokens": tokens[start:start + CLIENTS_PER_LOADGEN], "protocol": protocol,
             "in_flight": IN_FLIGHT, "hold_seconds": hold_seconds + timeout,
             "timeout": timeout}
            for start in range(0, len(tokens), CLIENTS_PER_LOADGEN)]


def _node_row(count: int, before: int, during: int) -> dict[str, Any]:
    return {"connections": count, "rss_before_kib": before, "rss_held_kib": during,
            "kib_per_connection": round((during - before) / max(count, 1), 2)}


def _cluster_row(per_node: list[dict[str, Any]]) -> dict[str, Any]:
    grown = sum(n["rss_held_kib"] - n["rss_before_kib"] for n in per_node)
    count = sum(n["connections"] for n in per_node)
    return {"nodes": len(per_node), "connections": count,
            "kib_per_connection": round(grown / max(count, 1), 2), "per_node": per_node}
