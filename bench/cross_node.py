"""Cross-node delivery: two nodes on PostgreSQL and Redis; time from a send on node A to
its receipt by a device on node B, beside a device of the same user on node A.

    python -m bench.cross_node [--messages 200] [--rate 50] [--senders 10]

Senders on node A send 1:1 messages to one user, open-loop at --rate, round robin (so
no sender passes the default per-user send rate). That user has one device on A and one
on B. Needs PostgreSQL on 127.0.0.1:5432 and Redis on 127.0.0.1:6379, like the tests.
Writes bench/results/cross_node-postgres.json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.group_fanout import _percentile, _Sink
from tests.cluster import REDIS_URL, unique_prefix
from tests.support import Api, Client, Server, TestDatabase

RESULTS = Path(__file__).resolve().parent / "results"


def _summary(sent_at: dict[int, float], got: dict[int, float], messages: int
             ) -> dict[str, Any]:
    waits = [got[i] - sent_at[i] for i in got if i in sent_at]
    return {
        "received": len(waits),
        "lost": messages - len(waits),
        "p50_ms": round(statistics.median(waits) * 1000, 2) if waits else None,
        "p99_ms": round(_percentile(waits, 0.99) * 1000, 2) if waits else None,
        "max_ms": round(max(waits) * 1000, 2) if waits else None,
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    folder = Path(tempfile.mkdtemp(prefix="parley-bench-"))
    db = await TestDatabase.create("postgres", folder)
    shared = {"redis_url": REDIS_URL, "redis_prefix": unique_prefix(), "log_level": "WARNING"}
    a = Server.start(db, folder, **shared)
    b = Server.start(db, folder, **shared)
    api = Api(a)
    clients: list[Client] = []
    try:
        app = await api.create_app("bench")
        names = [f"sender-{i}" for i in range(args.senders)]
        *senders, target = await api.import_users(app, *names, "target")
        for user in senders:
            clients.append(await Client.login(a, app, await api.token(app, user)))
        local = await Client.login(a, app, await api.token(app, target))
        remote = await Client.login(b, app, await api.token(app, target))
        clients += [local, remote]

        arrived: dict[str, dict[int, float]] = {"same_node": {}, "cross_node": {}}
        done = asyncio.Event()

        def stamp(where: str) -> Any:
            def on_frame(raw: Any) -> None:
                if isinstance(raw, dict) and raw.get("type") == "message":
                    arrived[where][int(raw["message"]["content"]["text"])] = time.perf_counter()
                    if all(len(v) >= args.messages for v in arrived.values()):
                        done.set()
            return on_frame

        local.frames = _Sink(stamp("same_node"))  # type: ignore[assignment]
        remote.frames = _Sink(stamp("cross_node"))  # type: ignore[assignment]

        sent_at: dict[int, float] = {}
        start = time.perf_counter()
        pending = []
        for i in range(args.messages):
            due = start + i / args.rate
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            sent_at[i] = due
            sender = clients[i % len(senders)]
            pending.append(asyncio.create_task(sender.request(
                {"type": "send", "to": target, "content": {"type": "text", "text": str(i)}})))
        acks = await asyncio.gather(*pending)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(done.wait(), 30)
        return {
            "scenario": "cross_node",
            "database": "postgres",
            "messages": args.messages,
            "rate_per_s": args.rate,
            "refused_sends": sum(1 for ack in acks if ack["type"] != "send_ok"),
            "same_node": _summary(sent_at, arrived["same_node"], args.messages),
            "cross_node": _summary(sent_at, arrived["cross_node"], args.messages),
        }
    finally:
        for c in clients:
            with contextlib.suppress(Exception):
                await c.close()
        await api.aclose()
        a.stop()
        b.stop()
        await db.drop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=200)
    parser.add_argument("--rate", type=float, default=50.0)
    parser.add_argument("--senders", type=int, default=10)
    args = parser.parse_args()
    result = asyncio.run(run(args))
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / "cross_node-postgres.json"
    out.write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2))
    print(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode())


if __name__ == "__main__":
    main()
