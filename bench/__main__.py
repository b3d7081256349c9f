"""Issue 7's suite in one command: every scenario, Parley beside its baselines.

    python -m bench [--quick] [--database postgres|sqlite] [--only idle_connections ...]

`--quick` runs each scenario at a small size (under a minute on 2 cores). Everything is
started on loopback and stopped again; results go to bench/results/<scenario>.json and a
Markdown table is printed at the end. PostgreSQL is the default database (the tests'
server on 127.0.0.1:5432); the content filter scenario always uses SQLite.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import content_filter, group_fanout, messaging, offline_sync, plots, user_import
from bench.report import table

RESULTS = Path(__file__).resolve().parent / "results"

# (quick, full) sizes for each scenario.
SIZES: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "idle_connections": ({"counts": [100], "hold": 0.5},
                         {"counts": [1000, 15000], "hold": 60.0,
                          "cluster": {"nodes": 3, "connections": 45000}}),
    "one_to_one": ({"pairs": 20, "steps": [100, 1600, 6400],
                    "step_seconds": 1.0, "drain_seconds": 10.0},
                   {"pairs": 500, "steps": [50, 100, 200, 500, 1000, 2000, 3000, 5000, 8000,
                                            12000, 16000, 24000, 32000],
                    "step_seconds": 5.0, "drain_seconds": 30.0}),
    "group_fanout": ({"members": 100, "online": 20, "messages": 10, "rate": 10.0},
                     {"members": 2000, "online": 500, "messages": 50, "rate": 10.0}),
    "content_filter": ({"messages": 20}, {"messages": 400}),
    "group_broadcast": ({"members": 100, "online": 20, "steps": [40, 640],
                         "step_seconds": 1.0, "drain_seconds": 5.0},
                        {"members": 2000, "online": 500,
                         "steps": [5, 10, 20, 40, 80, 160, 320, 640, 1280],
                         "step_seconds": 5.0, "drain_seconds": 20.0}),
    # 4,000-character texts and a 64-frame outbound queue, so that the slow readers fill
    # the kernel's socket buffers (about 3 MB each on loopback) and then Parley's queue
    # within the run; with short texts and the default 1,024 frames it takes 25 minutes.
    "group_slow_readers": ({"members": 100, "online": 20, "slow": 5, "rate": 10.0,
                            "seconds": 2.0, "slow_read_seconds": 1.0, "text_chars": 0},
                           {"members": 2000, "online": 500, "slow": 5, "rate": 10.0,
                            "seconds": 120.0, "slow_read_seconds": 1.0, "text_chars": 4000,
                            "queue_frames": 64}),
    "offline_sync": ({"conversations": 10, "per_conversation": 50},
                     {"conversations": 50, "per_conversation": 200}),
    "user_import": ({"users": 5000, "password_users": 100},
                    {"users": 100_000, "password_users": 2000}),
}


async def _idle(database: str, size: dict[str, Any]) -> dict[str, Any]:
    return await messaging.idle_connections(database, size["counts"], size["hold"],
                                            size.get("cluster"))


async def _one_to_one(database: str, size: dict[str, Any]) -> dict[str, Any]:
    return await messaging.one_to_one(database, size["pairs"], size["steps"],
                                      size["step_seconds"], size["drain_seconds"])


async def _group_fanout(database: str, size: dict[str, Any]) -> dict[str, Any]:
    return await group_fanout.run(argparse.Namespace(database=database, **size))


async def _content_filter(_: str, size: dict[str, Any]) -> dict[str, Any]:
    rng = random.Random(7)
    words, domains = content_filter._lists(rng)
    checks = content_filter.check_times(words, domains, rng)
    rates = await content_filter.send_rate(words, domains, size["messages"])
    return {"scenario": "content_filter", "database": "sqlite", "keywords": len(words),
            "domains": len(domains), **checks, **rates}


async def _group_broadcast(database: str, size: dict[str, Any]) -> dict[str, Any]:
    return await group_fanout.broadcast(database, **size)


async def _group_slow_readers(database: str, size: dict[str, Any]) -> dict[str, Any]:
    return await group_fanout.slow_readers(database, **size)


async def _offline_sync(database: str, size: dict[str, Any]) -> dict[str, Any]:
    return await offline_sync.run(database, **size)


async def _user_import(database: str, size: dict[str, Any]) -> dict[str, Any]:
    return await user_import.run(database, **size)


SCENARIOS: dict[str, Callable[[str, dict[str, Any]], Awaitable[dict[str, Any]]]] = {
    "idle_connections": _idle,
    "one_to_one": _one_to_one,
    "group_fanout": _group_fanout,
    "content_filter": _content_filter,
    "group_broadcast": _group_broadcast,
    "group_slow_readers": _group_slow_readers,
    "offline_sync": _offline_sync,
    "user_import": _user_import,
}


async def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    RESULTS.mkdir(exist_ok=True)
    messaging.run_peers = not args.quick
    results = []
    for name in args.only or list(SCENARIOS):
        size = SIZES[name][0 if args.quick else 1]
        started = time.perf_counter()
        result = await SCENARIOS[name](args.database, size)
        result["quick"] = args.quick
        result["seconds"] = round(time.perf_counter() - started, 1)
        (RESULTS / f"{name}.json").write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2))
        print(f"{name}: {result['seconds']} s", file=sys.stderr)
        results.append(result)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--database", choices=("postgres", "sqlite"), default="postgres")
    parser.add_argument("--only", nargs="*", choices=list(SCENARIOS))
    args = parser.parse_args()
    print(table(asyncio.run(run(args))))
    print(plots.render_or_skip(RESULTS, plots.QUICK if args.quick else plots.DOCS),
          file=sys.stderr)


if __name__ == "__main__":
    main()
