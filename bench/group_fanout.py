"""Group fan-out: one group of many members, some online; time from send to the last
online member's receipt.

    python -m bench.group_fanout [--members 2000] [--online 500] [--messages 50]
                                 [--rate 10] [--database sqlite|postgres]

The server runs in its own process (`python -m app serve`); this process is the load
generator. Sends are scheduled open-loop at --rate and stamped when due, so a slow
server cannot hide its latency by slowing the sender. Writes bench/results/group_fanout.json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support import Api, Client, Server, TestDatabase

RESULTS = Path(__file__).resolve().parent / "results"


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def run(args: argparse.Namespace) -> dict[str, Any]:
    folder = Path(tempfile.mkdtemp(prefix="parley-bench-"))
    db = await TestDatabase.create(args.database, folder)
    server = Server.start(db, folder, log_level="WARNING")
    api = Api(server)
    clients: list[Client] = []
    try:
        app = await api.create_app("bench")
        users: list[str] = []
        for start in range(0, args.members, 1000):
            batch = [f"member-{i}" for i in range(start, min(start + 1000, args.members))]
            users += await api.import_users(app, *batch)
        r = await api.call(app, "POST", "/v1/groups", json={
            "owner": users[0], "name": "bench", "members": users[1:],
            "member_limit": max(args.members, 2)})
        group_id = r.json()["group_id"]

        online = users[1:args.online + 1]
        tokens = [await api.token(app, u) for u in online]
        for token in tokens:
            clients.append(await Client.login(server, app, token))
        received: dict[int, list[float]] = {}
        everything = asyncio.Event()
        expected = args.messages * len(clients)
        counted = [0]

        def watch(client: Client) -> None:
            # Replace the client's inbox with a timestamping counter: no frames are kept.
            def on_frame(raw: Any) -> None:
                if isinstance(raw, dict) and raw.get("type") == "message":
                    text = raw["message"]["content"].get("text", "")
                    if text.startswith("b"):
                        received.setdefault(int(text[1:]), []).append(time.perf_counter())
                        counted[0] += 1
                        if counted[0] >= expected:
                            everything.set()
            client.frames = _Sink(on_frame)  # type: ignore[assignment]

        for c in clients:
            watch(c)

        sender = users[0]
        cpu_before = _cpu_seconds(server.process.pid)
        sent_at: dict[int, float] = {}
        start = time.perf_counter()
        for i in range(args.messages):
            due = start + i / args.rate
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            sent_at[i] = due
            await api.call(app, "POST", f"/v1/groups/{group_id}/messages", json={
                "from_user_id_md5": sender, "content": {"type": "text", "text": f"b{i}"}})
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(everything.wait(), 30)
        cpu = _cpu_seconds(server.process.pid) - cpu_before

        complete = [i for i in sent_at if len(received.get(i, [])) == len(clients)]
        to_last = [max(received[i]) - sent_at[i] for i in complete]
        to_first = [min(received[i]) - sent_at[i] for i in complete]
        deliveries = sum(len(v) for v in received.values())
        span = max(max(v) for v in received.values()) - start if received else 0.0
        return {
            "scenario": "group_fanout",
            "database": args.database,
            "members": args.members,
            "online": len(clients),
            "messages": args.messages,
            "rate_per_s": args.rate,
            "complete_messages": len(complete),
            "lost_deliveries": args.messages * len(clients) - deliveries,
            "p50_to_last_ms": round(statistics.median(to_last) * 1000, 1) if to_last else None,
            "p99_to_last_ms": round(_percentile(to_last, 0.99) * 1000, 1) if to_last else None,
            "p50_to_first_ms": round(statistics.median(to_first) * 1000, 1) if to_first else None,
            "deliveries_per_s": round(deliveries / span, 1) if span else None,
            "server_cpu_ms_per_message": round(cpu / args.messages * 1000, 2),
            "server_peak_rss_mib": round(_rss_mib(server.process.pid), 1),
        }
    finally:
        for c in clients:
            with contextlib.suppress(Exception):
                await c.close()
        await api.aclose()
        server.stop()
        await db.drop()


class _Sink(list):  # type: ignore[type-arg]
    """A list that hands each appended frame to a callback and keeps nothing."""

    def __init__(self, on_frame: Any) -> None:
        super().__init__()
        self._on_frame = on_frame

    def append(self, item: Any) -> None:
        self._on_frame(item)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--members", type=int, default=2000)
    parser.add_argument("--online", type=int, default=500)
    parser.add_argument("--messages", type=int, default=50)
    parser.add_argument("--rate", type=float, default=10.0)
    parser.add_argument("--database", choices=("sqlite", "postgres"), default="sqlite")
    args = parser.parse_args()
    result = asyncio.run(run(args))
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"group_fanout-{args.database}.json"
    out.write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2))
    print(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode())


if __name__ == "__main__":
    main()
