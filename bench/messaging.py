"""Two scenarios run against Parley and the bare relay with the same load generator:
idle connections (server memory per logged-in connection) and 1:1 messages (open-loop
rate steps, send-to-deliver latency, correctness counters, saturated rate).

Two peer baselines run in the same scenarios when their software is there: a
python-socketio relay with its Redis manager, and Debian's ejabberd (XMPP over WebSocket,
archive in PostgreSQL). When one cannot run, its result is `{"not_run": reason}`.

The suite runs them through `python -m bench`; each returns the dict written to
bench/results/<scenario>.json.
"""

from __future__ import annotations

import asyncio
import importlib.util
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import idle
from bench.ejabberd import server as ejabberd_server
from bench.procs import RelayServer, rss_kib, run_loadgen
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
    protocol: str = "parley"  # how the load generator talks to it (bench/clients.py)


@dataclass
class NotRun:
    """A baseline that cannot run here, and why."""

    reason: str

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


@asynccontextmanager
async def socketio(users: int) -> AsyncIterator[Target | NotRun]:
    if (reason := await _socketio_missing()) is not None:
        yield NotRun(reason)
        return
    server = RelayServer.start("bench.socketio_relay")
    names = [f"u{i}" for i in range(users)]
    try:
        yield Target(server.ws_url, "socketio", server.process.pid, names, names, "socketio")
    finally:
        server.stop()


async def _socketio_missing() -> str | None:
    for module in ("socketio", "aiohttp"):
        if importlib.util.find_spec(module) is None:
            return f"{module} not installed (pip install -e '.[bench]')"
    return await idle.redis_missing()


@asynccontextmanager
async def ejabberd(users: int) -> AsyncIterator[Target | NotRun]:
    if (reason := ejabberd_server.missing()) is not None:
        yield NotRun(reason)
        return
    names = [f"u{i}" for i in range(users)]
    server = await ejabberd_server.EjabberdServer.start(names)
    try:
        # The XMPP domain stands where Parley's app key does; the user name is the token.
        yield Target(server.ws_url, server.domain, server.process.pid, names,
                     [f"{n}@{server.domain}" for n in names], "xmpp")
    finally:
        await server.stop()


# The peers take a while to start (ejabberd's VM about 12 s), so `--quick`, a check that
# the suite works, leaves them out; `python -m bench` sets this.
run_peers = True


def _targets(database: str, users: int) -> dict[str, Any]:
    peers = ({"socketio": socketio(users), "ejabberd": ejabberd(users)} if run_peers else
             {"socketio": _skipped(), "ejabberd": _skipped()})
    return {"parley": parley(database, users), "relay": relay(users), **peers}


@asynccontextmanager
async def _skipped() -> AsyncIterator[NotRun]:
    yield NotRun("peer baselines run at full size only; --quick leaves them out")


PEERS = ("socketio", "ejabberd")


def _peer_ratios(result: dict[str, Any], key: str) -> dict[str, float | None]:
    """Parley's `key` over each peer baseline's; None for a baseline that did not run."""
    ratios: dict[str, float | None] = {}
    for peer in PEERS:
        theirs = result.get(peer, {}).get(key)
        ratios[peer] = round(result["parley"][key] / theirs, 3) if theirs else None
    return ratios


async def idle_connections(database: str, counts: list[int], hold: float,
                           cluster: dict[str, int] | None = None) -> dict[str, Any]:
    """Server RSS per logged-in idle connection, Parley on one node against the bare relay
    (and the peer baselines) at each of `counts`; then, given `cluster` (e.g. {"nodes": 3,
    "connections": 45000}), Parley over several nodes sharing PostgreSQL and Redis, against
    the relay's figure at the largest of `counts`."""
    rows = [await _idle_row(database, count, hold) for count in counts]
    out: dict[str, Any] = {"scenario": "idle_connections", "database": database,
                           "hold_seconds": hold, "settings": UNLIMITED, "rows": rows,
                           "target_ratio": 1.5}
    ratios = [r["ratio"] for r in rows]
    if cluster is not None:
        out["cluster"] = await _idle_cluster(database, hold, rows[-1]["relay"], **cluster)
        ratios.append(out["cluster"].get("ratio"))
    out["met"] = all(r is not None and r <= 1.5 for r in ratios)
    return out


async def _idle_row(database: str, count: int, hold: float) -> dict[str, Any]:
    row: dict[str, Any] = {"connections": count}
    targets = {**_targets(database, count),
               "parley": idle.parley_nodes(database, count, 1, UNLIMITED)}
    for name, target in targets.items():
        async with target as t:
            if isinstance(t, NotRun):
                row[name] = {"not_run": t.reason}
            elif isinstance(t, Target):
                row[name] = await idle.hold([_idle_target(t)], hold, t.protocol)
            else:
                row[name] = await idle.hold(t, hold)
    row["ratio"] = round(row["parley"]["kib_per_connection"]
                         / max(row["relay"]["kib_per_connection"], 0.01), 2)
    row["peer_ratios"] = _peer_ratios(row, "kib_per_connection")
    return row


def _idle_target(t: Target) -> dict[str, Any]:
    return {"url": t.url, "pid": t.pid, "app_key": t.app_key, "tokens": t.tokens}


async def _idle_cluster(database: str, hold: float, relay: dict[str, Any], nodes: int,
                        connections: int) -> dict[str, Any]:
    if database != "postgres":
        return {"not_run": "several nodes share PostgreSQL; run with --database postgres"}
    if (reason := await idle.redis_missing()) is not None:
        return {"not_run": reason}
    async with idle.parley_nodes(database, connections, nodes, UNLIMITED) as targets:
        parley = await idle.hold(targets, hold)
    return {"nodes": nodes, "connections": connections, "parley": parley,
            "relay_connections": relay["connections"],
            "relay_kib_per_connection": relay["kib_per_connection"],
            "ratio": round(parley["kib_per_connection"]
                           / max(relay["kib_per_connection"], 0.01), 2)}


async def one_to_one(database: str, pairs: int, steps: list[float], step_seconds: float,
                     drain_seconds: float, ack: bool = True) -> dict[str, Any]:
    """Open-loop 1:1 messages at stepped rates, Parley against the bare relay."""
    out: dict[str, Any] = {"scenario": "one_to_one", "database": database, "pairs": pairs,
                           "step_seconds": step_seconds, "settings": UNLIMITED,
                           "receiver_acks": ack}
    for name, target in _targets(database, 2 * pairs).items():
        async with target as t:
            if isinstance(t, NotRun):
                out[name] = {"not_run": t.reason}
                continue
            job = {"mode": "pairs", "url": t.url, "app_key": t.app_key, "ack": ack,
                   "protocol": t.protocol,
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
    out["peer_ratios"] = _peer_ratios(out, "saturated_per_s")
    return out
