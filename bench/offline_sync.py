"""Offline sync (issue 7, scenario 4): a user comes back to messages in many
conversations, sent while no device of theirs was connected; how long until a real
client holds them all?

    python -m bench.offline_sync [--conversations 50] [--per-conversation 200]
                                 [--database postgres|sqlite]

Each conversation is a 1:1 with a peer of its own; the peers send over REST, as an App
Server would, all peers at once and each peer in order. That fill is not timed. Then a
client process (`bench/sync_client.py`) logs in, pages through `conversations` and
`sync`s every conversation to its end, and checks that it holds every message once and
in order. It runs twice for each strategy: a plain one (default page of 100, one request
at a time) and the one docs/protocol.md recommends (pages of the server's maximum, several
requests in flight); the better of the two runs counts, the first one warming caches.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support import ROOT, Api, AppCreds, Server, TestDatabase

TARGET_SECONDS = 2.0
# The fill's peers send faster than Parley lets a user by default; the returning client
# meets the default frame budget, as a real one does, and paces itself to it.
FILL_SETTINGS = {"send_rate_per_second": 1000, "send_burst": 10000,
                 "flood_conversations": 0, "flood_strangers": 0}
FRAMES_PER_SECOND = 50  # PARLEY_MAX_FRAMES_PER_SECOND's default
FILL_IN_FLIGHT = 16  # REST sends in flight at once while filling
# (name, page size asked for, sync requests in flight on the one connection)
STRATEGIES = [("plain", 100, 1), ("recommended", 200, 8)]
RUNS = 2


async def fill(api: Api, app: AppCreds, away: str, peers: list[str], per_conversation: int
               ) -> float:
    """Each peer sends `per_conversation` messages to the away user, in order; the peers
    all at once. The seconds it took."""
    gate = asyncio.Semaphore(FILL_IN_FLIGHT)

    async def one_peer(k: int, peer: str) -> None:
        for n in range(per_conversation):
            async with gate:
                r = await api.call(app, "POST", "/v1/messages", json={
                    "from_user_id_md5": peer, "to_user_id_md5": away,
                    "content": {"type": "text", "text": f"c{k}:{n}"},
                    "client_msg_id": f"fill-{k}-{n}"})
            if r.status_code != 200:
                raise RuntimeError(f"fill send refused: {r.status_code} {r.text}")

    started = time.perf_counter()
    await asyncio.gather(*(one_peer(k, p) for k, p in enumerate(peers)))
    return time.perf_counter() - started


async def run_client(job: dict[str, Any]) -> dict[str, Any]:
    """One `bench.sync_client` process, run to the end; its result."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.sync_client", cwd=ROOT, stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE)
    try:
        out, _ = await asyncio.wait_for(proc.communicate(orjson.dumps(job) + b"\n"),
                                        job["timeout"] + 30)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    if proc.returncode != 0:
        raise RuntimeError(f"sync client failed ({proc.returncode})")
    return dict(orjson.loads(out.splitlines()[-1]))


async def run(database: str, conversations: int, per_conversation: int) -> dict[str, Any]:
    folder = Path(tempfile.mkdtemp(prefix="parley-bench-"))
    db = await TestDatabase.create(database, folder)
    server = Server.start(db, folder, log_level="WARNING", **FILL_SETTINGS)
    api = Api(server)
    api.http.timeout = httpx.Timeout(60)
    try:
        app = await api.create_app("bench")
        away, *peers = await api.import_users(
            app, "away", *(f"peer-{k}" for k in range(conversations)))
        fill_s = await fill(api, app, away, peers, per_conversation)
        token = await api.token(app, away)
        expected = conversations * per_conversation
        strategies = {}
        for name, limit, window in STRATEGIES:
            job = {"url": server.ws_url, "app_key": app.key, "token": token, "limit": limit,
                   "window": window, "conversations_limit": 200,
                   "frames_per_second": FRAMES_PER_SECOND,
                   "expected_messages": expected, "timeout": 300}
            runs = [await run_client(job) for _ in range(RUNS)]
            strategies[name] = {**min(runs, key=lambda r: r["total_s"]),
                                "all_runs_s": [r["total_s"] for r in runs],
                                "median_s": statistics.median(r["total_s"] for r in runs)}
    finally:
        await api.aclose()
        server.stop()
        await db.drop()
    best = min(strategies.values(), key=lambda r: r["total_s"])
    correct = all(not (s["lost"] or s["duplicated"] or s["out_of_order"])
                  for s in strategies.values())
    return {"scenario": "offline_sync", "database": database, "settings": FILL_SETTINGS,
            "conversations": conversations,
            "messages": expected, "fill_seconds": round(fill_s, 1),
            "fill_per_s": round(expected / fill_s, 1), "strategies": strategies,
            "target_seconds": TARGET_SECONDS,
            "met": correct and best["total_s"] < TARGET_SECONDS}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--conversations", type=int, default=50)
    parser.add_argument("--per-conversation", type=int, default=200)
    parser.add_argument("--database", choices=("postgres", "sqlite"), default="postgres")
    args = parser.parse_args()
    result = asyncio.run(run(args.database, args.conversations, args.per_conversation))
    print(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode())


if __name__ == "__main__":
    main()
