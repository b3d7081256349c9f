"""Group fan-out: one group of many members, some online; time from a group message's send
to its receipt by the last online member. Three measures, each run by `python -m bench`:

- ``group_fanout``: Parley at a fixed rate (issue 7: p99 under 100 ms at 10 a second),
  with the distribution of those times for the plots.
- ``group_broadcast``: Parley and the bare relay, group messages open-loop at rates
  stepping up until each falls behind; the saturated broadcast rate (deliveries a second
  to the online members) and Parley's share of the relay's (issue 7: at least 0.5).
- ``group_slow_readers``: Parley at the fixed rate twice, without and with a few slow
  readers among the online members: the others' p99, the server's RSS over each run, and
  how the slow connections ended (Parley closes one whose outbound queue is full with
  SLOW_CONSUMER, 4008).

    python -m bench.group_fanout [--members 2000] [--online 500] [--messages 50]
                                 [--rate 10] [--database sqlite|postgres]

runs the first on its own and writes bench/results/group_fanout-<database>.json. Every
server runs in its own process and the load generator (bench/loadgen.py, ``group`` mode) in
another; this process only sets up and reads the results.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.loadgen import _cpu_seconds
from bench.messaging import TOKEN_CHUNK, UNLIMITED
from bench.procs import RelayServer, rss_kib, run_loadgen
from tests.support import Api, Server, TestDatabase

RESULTS = Path(__file__).resolve().parent / "results"
GROUP_ID = "bench"
STOP_MS = 1000  # p99 to the last member past this: the server has fallen behind


@dataclass
class GroupTarget:
    """A running server with a group whose first members send and the next ones read."""

    url: str
    app_key: str
    pid: int
    senders: list[str]  # the senders' login tokens
    tokens: list[str]  # login tokens of the members after the senders, as many as asked
    create_group: list[str] | None  # the members, for a server that learns its groups in-band


@asynccontextmanager
async def parley_group(database: str, members: int, online: int, senders: int = 1,
                       **settings: Any) -> AsyncIterator[GroupTarget]:
    """Parley with `members` users in one group; tokens for `senders` and `online` more."""
    folder = Path(tempfile.mkdtemp(prefix="parley-bench-"))
    db = await TestDatabase.create(database, folder)
    server = Server.start(db, folder, log_level="WARNING", **{**UNLIMITED, **settings})
    api = Api(server)
    try:
        app = await api.create_app("bench")
        users: list[str] = []
        for start in range(0, members, 1000):
            users += await api.import_users(
                app, *(f"member-{i}" for i in range(start, min(start + 1000, members))))
        r = await api.call(app, "POST", "/v1/groups", json={
            "owner": users[0], "group_id": GROUP_ID, "name": "bench", "members": users[1:],
            "member_limit": max(members, 2)})
        if r.status_code != 201:
            raise RuntimeError(f"group not created: {r.text}")
        online_users = users[:senders + online]
        tokens: list[str] = []
        for start in range(0, len(online_users), TOKEN_CHUNK):
            tokens += await asyncio.gather(
                *(api.token(app, u) for u in online_users[start:start + TOKEN_CHUNK]))
        yield GroupTarget(server.ws_url, app.key, server.process.pid, tokens[:senders],
                          tokens[senders:], None)
    finally:
        await api.aclose()
        server.stop()
        await db.drop()


@asynccontextmanager
async def relay_group(members: int, online: int, senders: int = 1
                      ) -> AsyncIterator[GroupTarget]:
    """The bare relay; the load generator tells it the group's members."""
    server = RelayServer.start()
    names = [f"member-{i}" for i in range(members)]
    try:
        yield GroupTarget(server.ws_url, "relay", server.process.pid, names[:senders],
                          names[senders:senders + online], names)
    finally:
        server.stop()


def _job(t: GroupTarget, members: list[str], steps: list[float], step_seconds: float,
         drain_seconds: float, **extra: Any) -> dict[str, Any]:
    return {"mode": "group", "url": t.url, "app_key": t.app_key, "group_id": GROUP_ID,
            "senders": t.senders, "members": members, "create_group": t.create_group,
            "steps": steps, "step_seconds": step_seconds, "stop_ms": STOP_MS,
            # How long after a step's last send its deliveries may still arrive in time,
            # and after the last step before the missing count as lost.
            "grace_seconds": min(drain_seconds, 5.0), "drain_seconds": drain_seconds,
            "server_pid": t.pid, "timeout": 900, **extra}


async def fanout(database: str, members: int, online: int, messages: int, rate: float
                 ) -> dict[str, Any]:
    """Parley at one rate: p50/p99 to the first and last online member, and their spread."""
    async with parley_group(database, members, online) as t:
        cpu_before = _cpu_ms(t.pid)
        out = await run_loadgen(_job(t, t.tokens, [rate], messages / rate, 30.0,
                                     distribution=True))
        peak = rss_kib(t.pid, "VmHWM")
        cpu = _cpu_ms(t.pid) - cpu_before
    step = out["steps"][0]
    return {
        "scenario": "group_fanout", "database": database, "members": members,
        "online": out["members"], "messages": out["sent"], "rate_per_s": rate,
        "complete_messages": step["complete"], "lost_deliveries": out["lost"],
        "duplicated": out["duplicated"], "out_of_order": out["out_of_order"],
        "errors": out["errors"],
        "p50_to_last_ms": step["p50_ms"], "p99_to_last_ms": _finite(step["p99_ms"]),
        "max_to_last_ms": step["max_ms"], "p50_to_first_ms": step["p50_to_first_ms"],
        "delivery_p50_ms": step["delivery_p50_ms"], "delivery_p99_ms": step["delivery_p99_ms"],
        "deliveries_per_s": step["delivered_per_s"] or None,
        # Logins and the drain included, as before: what one group message costs in all.
        "server_cpu_ms_per_message": round(cpu / max(out["sent"], 1), 2),
        "server_peak_rss_mib": round(peak / 1024, 1),
        "to_last_ms": out["to_last_ms"],
        "delivery_percentiles_ms": out["delivery_percentiles_ms"],
    }


async def broadcast(database: str, members: int, online: int, steps: list[float],
                    step_seconds: float, drain_seconds: float, senders: int = 10
                    ) -> dict[str, Any]:
    """Saturated broadcast rate, Parley against the bare relay, the same load generator.

    `senders` members take turns to send, besides the `online` that are measured: a server
    that handles one connection's frames in turn would otherwise be measured by its time
    per send, not by its fan-out.
    """
    out: dict[str, Any] = {"scenario": "group_broadcast", "database": database,
                           "members": members, "online": online, "senders": senders,
                           "step_seconds": step_seconds, "settings": UNLIMITED,
                           "target_ratio": 0.5}
    targets = {"parley": parley_group(database, members, online, senders),
               "relay": relay_group(members, online, senders)}
    for name, target in targets.items():
        async with target as t:
            result = await run_loadgen(_job(t, t.tokens, steps, step_seconds, drain_seconds))
            result["server_peak_rss_mib"] = round(rss_kib(t.pid, "VmHWM") / 1024, 1)
            result.pop("rss_kib")
            out[name] = result
    out["ratio"] = round(out["parley"]["saturated_per_s"]
                         / max(out["relay"]["saturated_per_s"], 1.0), 3)
    # The relay's rate is only a floor, and the ratio a ceiling, if the relay kept up to
    # the last step, or if the one load generator process ran flat out reading for all.
    out["relay_loadgen_bound"] = any((s["loadgen_cpu_share"] or 0) >= 0.9
                                     for s in out["relay"]["steps"])
    out["relay_saturated"] = out["relay"]["fell_behind"]
    return out


async def slow_readers(database: str, members: int, online: int, slow: int, rate: float,
                       seconds: float, slow_read_seconds: float, text_chars: int = 0,
                       queue_frames: int | None = None) -> dict[str, Any]:
    """The full-speed members' latency and the server's RSS, without and with slow readers.

    Both runs are on the same server and the same `online - slow` full-speed members; the
    second adds `slow` members that read one frame every `slow_read_seconds` (0: never).
    """
    settings = {"outbound_queue_frames": queue_frames} if queue_frames else {}
    out: dict[str, Any] = {"scenario": "group_slow_readers", "database": database,
                           "members": members, "online": online, "slow": slow,
                           "rate_per_s": rate, "seconds": seconds,
                           "slow_read_seconds": slow_read_seconds, "text_chars": text_chars,
                           "outbound_queue_frames": queue_frames or "default"}
    async with parley_group(database, members, online, **settings) as t:
        fast, slow_tokens = t.tokens[:online - slow], t.tokens[online - slow:online]
        for name, extra in (("without", []), ("with", slow_tokens)):
            result = await run_loadgen(_job(
                t, fast, [rate], seconds, 10.0, slow=extra,
                slow_read_seconds=slow_read_seconds, text_chars=text_chars,
                rss_every_seconds=0.5))
            out[name] = _slow_summary(result)
    base, loaded = out["without"]["p99_to_last_ms"], out["with"]["p99_to_last_ms"]
    out["p99_ratio"] = round(loaded / base, 2) if base and loaded else None
    return out


def _slow_summary(result: dict[str, Any]) -> dict[str, Any]:
    step = result["steps"][0]
    rss = [kib for _, kib in result["rss_kib"]]
    half = rss[len(rss) // 2:] or [0]
    return {
        "members": result["members"], "sent": result["sent"],
        "p50_to_last_ms": step["p50_ms"], "p99_to_last_ms": _finite(step["p99_ms"]),
        "max_to_last_ms": step["max_ms"], "lost": result["lost"], "errors": result["errors"],
        "slow_readers": result["slow_readers"],
        "rss_start_mib": round(rss[0] / 1024, 1) if rss else None,
        "rss_peak_mib": round(max(rss) / 1024, 1) if rss else None,
        "rss_end_mib": round(rss[-1] / 1024, 1) if rss else None,
        # Growth over the second half of the run: a queue without bound keeps climbing.
        "rss_second_half_growth_mib": round((half[-1] - half[0]) / 1024, 1),
        "rss_kib": result["rss_kib"],
    }


def _finite(value: float | None) -> float | None:
    return None if value is None or value == float("inf") else value


def _cpu_ms(pid: int) -> float:
    return _cpu_seconds(pid) * 1000


async def run(args: argparse.Namespace) -> dict[str, Any]:
    return await fanout(args.database, args.members, args.online, args.messages, args.rate)


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
