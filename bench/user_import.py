"""User import (issue 7, scenario 5): an App Server moves its users into Parley through
the batch API; how many users a second, without passwords and with them, and what does
a password login cost with the argon2 parameters that rate was bought with?

    python -m bench.user_import [--users 100000] [--password-users 2000]
                                [--database postgres|sqlite]

The App Server's side runs in this process: batches of 1,000 (the API's most), a few in
flight at once, as a migration script with a connection pool would send them; bodies
are encoded before the clock starts. While each import runs, a logged-in WebSocket
client sends a heartbeat every 50 ms and times the answer: a server that hashes
passwords on its event loop, or holds it for a whole batch, shows there as a stall.
Then password logins are timed one after another on the idle server, and each OWASP
argon2id configuration is timed in this process, for choosing between them.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import orjson
from argon2 import PasswordHasher
from websockets.asyncio.client import ClientConnection, connect

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support import Api, AppCreds, Server, TestDatabase

TARGET_PER_S = 5000.0
BATCH = 1000  # the API's largest batch (PARLEY_IMPORT_BATCH_MAX)
PASSWORD_BATCH = 250  # hashing a batch holds its reply back; smaller ones keep it short
IN_FLIGHT = 4  # import requests an App Server keeps open at once
BEAT_SECONDS = 0.05  # how often the watching client sends a heartbeat
LOGIN_SAMPLES = 10
# OWASP's Password Storage Cheat Sheet, Argon2id: five configurations it rates as equally
# strong, trading memory (KiB) against passes. (memory_kib, time_cost), parallelism 1.
OWASP_ARGON2ID = [(47104, 1), (19456, 2), (12288, 3), (9216, 4), (7168, 5)]


def md5(raw: str) -> str:
    return hashlib.md5(raw.encode()).hexdigest()


def bodies(prefix: str, count: int, batch: int, passwords: bool) -> list[bytes]:
    """Import bodies, encoded up front so the clock times the server, not the client."""
    out = []
    for start in range(0, count, batch):
        users = [{"user_id": f"{prefix}{i}", "nickname": f"User {i}",
                  **({"password_md5": md5(f"pw-{prefix}{i}")} if passwords else {})}
                 for i in range(start, min(start + batch, count))]
        out.append(orjson.dumps({"users": users}))
    return out


async def import_all(api: Api, app: AppCreds, batches: list[bytes]) -> tuple[float, int]:
    """Send every batch, IN_FLIGHT at a time; the seconds taken and the users created."""
    queue = list(reversed(batches))
    created = 0

    async def worker() -> None:
        nonlocal created
        while queue:
            body = queue.pop()
            r = await api.call(app, "POST", "/v1/users/import", content=body,
                               headers={"content-type": "application/json"})
            if r.status_code != 200 or r.json()["failed"]:
                raise RuntimeError(f"import refused: {r.status_code} {r.text[:300]}")
            created += r.json()["created"]

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(IN_FLIGHT)))
    return time.perf_counter() - started, created


class HeartbeatWatch:
    """Times the server's answer to a heartbeat, sent every BEAT_SECONDS."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.waits: list[float] = []
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.waits = []
        self._task = asyncio.create_task(self._beat())

    async def stop(self) -> dict[str, float | int | None]:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        waits = sorted(self.waits)
        return {"beats": len(waits),
                "p50_ms": round(statistics.median(waits) * 1000, 1) if waits else None,
                "max_ms": round(waits[-1] * 1000, 1) if waits else None}

    async def _beat(self) -> None:
        for _ in range(100_000):  # bounded: stop() ends it long before
            sent = time.perf_counter()
            await self.ws.send("h")
            while await self.ws.recv() != "h":
                pass
            self.waits.append(time.perf_counter() - sent)
            await asyncio.sleep(BEAT_SECONDS)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def watched_import(server: Server, api: Api, app: AppCreds, watch: HeartbeatWatch,
                         batches: list[bytes], count: int) -> dict[str, Any]:
    watch.start()
    cpu = cpu_seconds(server.process.pid)
    seconds, created = await import_all(api, app, batches)
    cpu = cpu_seconds(server.process.pid) - cpu
    heartbeat = await watch.stop()
    if created != count:
        raise RuntimeError(f"{created} users created of {count}")
    return {"users": count, "seconds": round(seconds, 2),
            "per_s": round(count / seconds, 1),
            "server_cpu_ms_per_1000": round(cpu / count * 1e6, 1),
            "heartbeat_during": heartbeat}


async def password_login_ms(url: str, app: AppCreds, users: list[tuple[str, str]]
                            ) -> list[float]:
    """Time each password login from the frame sent to login_ok."""
    times = []
    for user, password in users:
        async with connect(url, compression=None, ping_interval=None) as ws:
            started = time.perf_counter()
            await ws.send(orjson.dumps({"type": "login", "app_key": app.key,
                                        "user_id_md5": user, "password_md5": password}).decode())
            reply = orjson.loads(await asyncio.wait_for(ws.recv(), 30))
            times.append((time.perf_counter() - started) * 1000)
            if reply["type"] != "login_ok":
                raise RuntimeError(f"password login refused: {reply}")
    return times


def argon2_candidates(samples: int = 5) -> list[dict[str, Any]]:
    """Median time of one hash for each OWASP configuration, in this process."""
    rows = []
    for memory, passes in OWASP_ARGON2ID:
        hasher = PasswordHasher(time_cost=passes, memory_cost=memory, parallelism=1)
        hasher.hash("warm-up")
        times = []
        for _ in range(samples):
            started = time.perf_counter()
            hasher.hash("0123456789abcdef0123456789abcdef")
            times.append((time.perf_counter() - started) * 1000)
        rows.append({"memory_kib": memory, "time_cost": passes, "parallelism": 1,
                     "hash_ms": round(statistics.median(times), 1)})
    return rows


async def server_argon2(server: Server) -> dict[str, int]:
    """The parameters the server hashes with, read back from a stored hash."""
    stored = await server.db.execute("SELECT password_hash FROM users "
                                     "WHERE password_hash IS NOT NULL LIMIT 1")
    params = dict(p.split("=") for p in stored[0][0].split("$")[3].split(","))
    return {"memory_kib": int(params["m"]), "time_cost": int(params["t"]),
            "parallelism": int(params["p"])}


async def run(database: str, users: int, password_users: int) -> dict[str, Any]:
    folder = Path(tempfile.mkdtemp(prefix="parley-bench-"))
    db = await TestDatabase.create(database, folder)
    server = Server.start(db, folder, log_level="WARNING")
    api = Api(server)
    api.http.timeout = httpx.Timeout(300)
    try:
        app = await api.create_app("bench")
        (watcher,) = await api.import_users(app, "watcher")
        async with connect(server.ws_url, compression=None, ping_interval=None) as ws:
            await ws.send(orjson.dumps({"type": "login", "app_key": app.key,
                                        "token": await api.token(app, watcher)}).decode())
            if orjson.loads(await ws.recv())["type"] != "login_ok":
                raise RuntimeError("watcher could not log in")
            watch = HeartbeatWatch(ws)
            plain = await watched_import(
                server, api, app, watch, bodies("u", users, BATCH, False), users)
            hashed = await watched_import(
                server, api, app, watch, bodies("p", password_users, PASSWORD_BATCH, True),
                password_users)
        samples = [(md5(f"p{i}"), md5(f"pw-p{i}")) for i in range(LOGIN_SAMPLES)]
        logins = await password_login_ms(server.ws_url, app, samples)
        params = await server_argon2(server)
    finally:
        await api.aclose()
        server.stop()
        await db.drop()
    return {"scenario": "user_import", "database": database, "batch": BATCH,
            "password_batch": PASSWORD_BATCH, "in_flight": IN_FLIGHT,
            "without_passwords": plain, "with_passwords": hashed, "argon2": params,
            "password_login_ms": {"median": round(statistics.median(logins), 1),
                                  "max": round(max(logins), 1), "samples": len(logins)},
            "argon2_candidates": argon2_candidates(), "target_per_s": TARGET_PER_S,
            "met": plain["per_s"] >= TARGET_PER_S}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--password-users", type=int, default=2000)
    parser.add_argument("--database", choices=("postgres", "sqlite"), default="postgres")
    args = parser.parse_args()
    result = asyncio.run(run(args.database, args.users, args.password_users))
    print(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode())


if __name__ == "__main__":
    main()
