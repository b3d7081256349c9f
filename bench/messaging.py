"""Two scenarios run against Parley and the bare relay with the same load generator:
idle connections (server memory per logged-in connection) and 1:1 messages (open-loop
rate steps, send-to-deliver latency, correctness counters, saturated rate).

The suite runs them through `python -m bench`; each returns the dict written to
bench/results/<scenario>.json.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.procs import RelayServer, hold_idle, rss_kib, run_loadgen
from tests.support import Api, Server, TestDatabase

# Parley's anti-abuse pacing, lifted so the benchmark measures the server, not the limits.
# Each is the loosest value the settings accept (or off).
UNLIMITED = {
    "max_frames_per_second": 100000,
    "send_rate_per_second": 1000,
    "send_burst": 10000,
    "flood_conversations": 0,
    "flood_strangers": 0,
}
TOKEN_CHUNK = 50  # token requests in flight at once


@dataclass
class Target:
    """A running server the load generator can log in to."""

    url: str
    app_key: str
    pid: int
    tokens: list[str]
    user_ids: list[str]


@asynccontextmanager
async def parley(database: str, users: int) -> AsyncIterator[Target]:
    folder = Path(tempfile.mkdtemp(prefix="parley-bench-"))
    db = await TestDatabase.create(database, folder)
    server = Server.start(db, folder, log_level="WARNING", **UNLIMITED)
    api = Api(server)
    try:
        app = await api.create_app("bench")
        ids: list[str] = []
        for start in range(0, users, 1000):
            ids += await api.import_users(
                app, *(f"u{i}" for i in range(start, min(start + 1000, users))))
        tokens: list[str] = []
        for start in range(0, users, TOKEN_CHUNK):
            tokens += await asyncio.gather(
                *(api.token(app, u) for u in ids[start:start + TOKEN_CHUNK]))
        yield Target(server.ws_url, app.key, server.process.pid, tokens, ids)
    finally:
        await api.aclose()
        server.stop()
        await db.drop()


@asynccontextmanager
async def relay(users: int) -> AsyncIterator[Target]:
    server = RelayServer.start()
    names = [f"u{i}" for i in range(users)]
    try:
        yield Target(server.ws_url, "relay", server.process.pid, names, names)
    finally:
        server.stop()


def _targets(database: str, users: int) -> dict[str, Any]:
    return {"parley": parley(database, users), "relay": relay(users)}


async def idle_connections(database: str, counts: list[int], hold: float) -> dict[str, Any]:
    """Server RSS per logged-in idle connection, Parley against the bare relay."""
    rows = []
    for count in counts:
        row: dict[str, Any] = {"connections": count}
        for name, target in _targets(database, count).items():
            async with target as t:
                before = rss_kib(t.pid)
                job = {"mode": "idle", "url": t.url, "app_key": t.app_key, "tokens": t.tokens,
                       "hold_seconds": hold + 120, "timeout": 600}
                held, during = await hold_idle(job, t.pid, hold)
                row[name] = {"rss_before_kib": before, "rss_held_kib": during,
                             "kib_per_connection": round((during - before) / count, 2),
                             "open_at_end": held["open_at_end"],
                             "login_seconds": held["login_seconds"]}
        row["ratio"] = round(row["parley"]["kib_per_connection"]
                             / max(row["relay"]["kib_per_connection"], 0.01), 2)
        rows.append(row)
    return {"scenario": "idle_connections", "database": database, "hold_seconds": hold,
            "settings": UNLIMITED, "rows": rows, "target_ratio": 1.5,
            "met": all(r["ratio"] <= 1.5 for r in rows)}


async def one_to_one(database: str, pairs: int, steps: list[float], step_seconds: float,
                     drain_seconds: float, ack: bool = True) -> dict[str, Any]:
    """Open-loop 1:1 messages at stepped rates, Parley against the bare relay."""
    out: dict[str, Any] = {"scenario": "one_to_one", "database": database, "pairs": pairs,
                           "step_seconds": step_seconds, "settings": UNLIMITED,
                           "receiver_acks": ack}
    for name, target in _targets(database, 2 * pairs).items():
        async with target as t:
            job = {"mode": "pairs", "url": t.url, "app_key": t.app_key, "ack": ack,
                   "pairs": [[t.tokens[2 * i], t.tokens[2 * i + 1], t.user_ids[2 * i + 1]]
                             for i in range(pairs)],
                   "steps": steps, "step_seconds": step_seconds, "stop_ms": 1000,
                   # How long after a step's last send its messages may still arrive in
                   # time, and after the last step before the missing count as lost.
                   "grace_seconds": min(drain_seconds, 5.0), "drain_seconds": drain_seconds,
                   "server_pid": t.pid, "timeout": 900}
            out[name] = await run_loadgen(job)
            out[name]["server_peak_rss_mib"] = round(rss_kib(t.pid, "VmHWM") / 1024, 1)
    out["ratio"] = round(out["parley"]["saturated_per_s"]
                         / max(out["relay"]["saturated_per_s"], 1.0), 3)
    return out
