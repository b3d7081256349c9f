"""The load generator, a process of its own: reads one JSON job on stdin, drives a server
(Parley or a baseline, the frames are the same) over real WebSocket connections, and
writes one JSON result line on stdout.

Jobs:
- ``idle``: log in every token, ``in_flight`` at a time (logins that fail are counted,
  not fatal), print ``ready``, hold until a line arrives on stdin (or ``hold_seconds``
  pass), then close. Heartbeats start with the first login.
- ``pairs``: each pair is a sender and a receiver connection. For each rate in ``steps``,
  sends are scheduled open-loop at that total rate, round robin over the pairs, and the
  due time is stamped in the text, so a slow server shows as latency, not as a slower
  sender. The receiver acks every message (Parley's ``ack``) and counts lost, duplicated
  and out-of-order messages per pair. Stepping stops once the server falls behind.
- ``group``: one sender posts to a group at stepped rates and every online member reads;
  latency to the first and last member, slow readers, server RSS (bench/loadgen_group.py).

A job's ``protocol`` (default ``parley``) picks how the connections log in and carry the
frames: ``socketio`` and ``xmpp`` drive the peer baselines through bench/clients.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import sys
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from bench import clients

RUN = uuid.uuid4().hex[:8]  # Parley takes a repeated client message ID for a retry

HEARTBEAT_SECONDS = 20.0  # under the 30 s interval Parley's login_ok asks for
CONNECT_CHUNK = 100  # logins in flight at once; more only queues in the server's backlog
CLOSE_SECONDS = 60.0  # an idle job's wait for its connections' closing handshakes


async def login(url: str, app_key: str, token: str) -> ClientConnection:
    ws = await connect(url, compression=None, ping_interval=None, max_size=2**22,
                       open_timeout=60)
    await ws.send(_dump({"type": "login", "id": 1, "app_key": app_key, "token": token}))
    for _ in range(10):
        reply = orjson.loads(await asyncio.wait_for(ws.recv(), 30))
        if reply.get("type") == "login_ok":
            return ws
        if reply.get("type") == "error":
            raise RuntimeError(f"login refused: {reply}")
    raise RuntimeError("no login_ok")


async def login_all(url: str, app_key: str, tokens: list[str]) -> list[ClientConnection]:
    out: list[ClientConnection] = []
    for start in range(0, len(tokens), CONNECT_CHUNK):
        chunk = tokens[start:start + CONNECT_CHUNK]
        out += await asyncio.gather(*(login(url, app_key, t) for t in chunk))
    return out


async def connect_all(job: dict[str, Any], tokens: list[str]) -> list[Any]:
    """Parley's frames for Parley and the bare relay; for a baseline with a protocol of its
    own (the job's `protocol`: "socketio" or "xmpp"), adapters that take and give the same
    frames (bench/clients.py)."""
    protocol = job.get("protocol", "parley")
    if protocol == "parley":
        return await login_all(job["url"], job["app_key"], tokens)
    return await clients.login_all(protocol, job["url"], job["app_key"], tokens)


async def close_all(conns: list[ClientConnection]) -> None:
    for start in range(0, len(conns), CONNECT_CHUNK):
        await asyncio.gather(*(c.close() for c in conns[start:start + CONNECT_CHUNK]),
                             return_exceptions=True)


async def idle(job: dict[str, Any]) -> dict[str, Any]:
    """Log in every token, ``in_flight`` at a time; heartbeats start with the first login,
    since logging in tens of thousands takes longer than Parley's heartbeat timeout."""
    _raise_file_limit()
    conns: list[Any] = []
    failures: list[BaseException] = []
    beat = asyncio.create_task(_heartbeats(conns, job["hold_seconds"] + job.get("timeout", 600)))
    started = time.perf_counter()
    step = job.get("in_flight", CONNECT_CHUNK)
    for start in range(0, len(job["tokens"]), step):
        opened = await _connect_some(job, job["tokens"][start:start + step])
        conns += [c for c in opened if not isinstance(c, BaseException)]
        failures += [c for c in opened if isinstance(c, BaseException)]
    login_s = time.perf_counter() - started
    print("ready", flush=True)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(asyncio.to_thread(sys.stdin.readline), job["hold_seconds"])
    beat.cancel()
    result = {"connections": len(conns),
              "open_at_end": sum(1 for c in conns if c.close_code is None),
              "login_seconds": round(login_s, 2), "failed_logins": len(failures),
              "login_errors": sorted({repr(e)[:200] for e in failures})[:3]}
    # Told now, since closing many may take the server a while; the last line repeats it.
    print(_dump(result), flush=True)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(close_all(conns), CLOSE_SECONDS)
    return result


async def _connect_some(job: dict[str, Any], tokens: list[str]) -> list[Any]:
    """Connections for `tokens`; a login that fails is there as its exception."""
    if job.get("protocol", "parley") != "parley":
        return await connect_all(job, tokens)
    return await asyncio.gather(*(login(job["url"], job["app_key"], t) for t in tokens),
                                return_exceptions=True)


def _raise_file_limit() -> None:
    """One socket per connection: a load generator holding 15,000 needs more descriptors
    than the usual soft limit of 1,024, and may take up to the hard limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if resource.RLIM_INFINITY not in (soft, hard) and soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


async def _heartbeats(conns: list[Any], seconds: float) -> None:
    """Parley's one-byte heartbeat on every connection, as an idle client sends it; without
    it Parley closes a connection after its heartbeat timeout (75 s by default). `conns`
    may still be growing."""
    for _ in range(int(seconds // HEARTBEAT_SECONDS) + 1):
        await asyncio.sleep(HEARTBEAT_SECONDS)
        for ws in list(conns):
            with contextlib.suppress(ConnectionClosed):
                await ws.send("h")


class PairStats:
    """What the receivers saw, per step and per pair."""

    def __init__(self, pairs: int, steps: int) -> None:
        self.last = [-1] * pairs
        self.seen: list[set[int]] = [set() for _ in range(pairs)]
        self.latency: list[list[float]] = [[] for _ in range(steps)]
        self.arrivals: list[list[float]] = [[] for _ in range(steps)]
        self.duplicated = 0
        self.out_of_order = 0
        self.send_ok = 0
        self.errors: Counter[str] = Counter()
        self.arrived = asyncio.Event()

    def count(self) -> int:
        return sum(len(v) for v in self.latency)

    async def wait_for(self, expected: int, seconds: float) -> None:
        """Until `expected` messages have arrived in all, or `seconds` pass."""
        deadline = time.perf_counter() + seconds
        while self.count() < expected and (left := deadline - time.perf_counter()) > 0:
            self.arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.arrived.wait(), left)

    def received(self, text: str, now: float) -> None:
        step, pair, n, due = text.split(":")
        p, k = int(pair), int(n)
        if k in self.seen[p]:
            self.duplicated += 1
            return
        self.seen[p].add(k)
        if k < self.last[p]:
            self.out_of_order += 1
        self.last[p] = max(self.last[p], k)
        self.latency[int(step)].append(now - float(due))
        self.arrivals[int(step)].append(now)
        self.arrived.set()


async def _read_sender(ws: ClientConnection, stats: PairStats) -> None:
    with contextlib.suppress(ConnectionClosed):
        async for raw in ws:
            frame = orjson.loads(raw)
            if frame.get("type") == "send_ok":
                stats.send_ok += 1
            elif frame.get("type") == "error":
                stats.errors[str(frame.get("code"))] += 1


async def _read_receiver(ws: ClientConnection, stats: PairStats, ack: bool) -> None:
    with contextlib.suppress(ConnectionClosed):
        async for raw in ws:
            frame = orjson.loads(raw)
            if frame.get("type") != "message":
                continue
            message = frame["message"]
            stats.received(message["content"]["text"], time.perf_counter())
            if ack:
                await ws.send(_dump({"type": "ack", "conversation_id": message[
                    "conversation_id"], "seq": message["seq"]}))


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def _run_step(step: int, rate: float, seconds: float, senders: list[ClientConnection],
                    receivers: list[str], counters: list[int]) -> tuple[int, float]:
    count = int(rate * seconds)
    start = time.perf_counter() + 0.05
    for i in range(count):
        due = start + i / rate
        delay = due - time.perf_counter()
        if delay > 0.001:
            await asyncio.sleep(delay)
        p = i % len(senders)
        n = counters[p]
        counters[p] += 1
        await senders[p].send(_dump({
            "type": "send", "id": n, "to": receivers[p], "client_msg_id": f"{RUN}-{p}-{n}",
            "content": {"type": "text", "text": f"{step}:{p}:{n}:{due:.6f}"}}))
    return count, start


async def pairs(job: dict[str, Any]) -> dict[str, Any]:
    tokens = [t for s, r, _ in job["pairs"] for t in (s, r)]
    conns = await connect_all(job, tokens)
    senders, receivers = conns[0::2], conns[1::2]
    stats = PairStats(len(senders), len(job["steps"]))
    readers = [asyncio.create_task(_read_sender(ws, stats)) for ws in senders]
    readers += [asyncio.create_task(_read_receiver(ws, stats, job["ack"])) for ws in receivers]
    counters = [0] * len(senders)
    steps: list[dict[str, Any]] = []
    sent_so_far = 0
    try:
        for step, rate in enumerate(job["steps"]):
            cpu_before = _cpu_seconds(job["server_pid"])
            sent, start = await _run_step(step, rate, job["step_seconds"], senders,
                                          [r for _, _, r in job["pairs"]], counters)
            sent_so_far += sent
            await stats.wait_for(sent_so_far, job["grace_seconds"])
            cpu = _cpu_seconds(job["server_pid"]) - cpu_before
            steps.append(_step_summary(rate, sent, start, stats, step, cpu))
            steps[-1].update(start=start, cpu=cpu)
            if steps[-1]["delivered_per_s"] < 0.8 * rate or steps[-1]["p99_ms"] > job["stop_ms"]:
                break
        # Whatever is still queued in the server is late, not lost: give it time to arrive.
        await stats.wait_for(sent_so_far, job["drain_seconds"])
        steps = [_step_summary(s["offered_per_s"], s["sent"], s["start"], stats, i, s["cpu"])
                 for i, s in enumerate(steps)]
    finally:
        failed = [t.exception() for t in readers if t.done() and not t.cancelled()]
        for task in readers:
            task.cancel()
        await close_all(conns)
    sent_total = sum(s["sent"] for s in steps)
    received = stats.count()
    # A send answered with an error was refused, not lost: the sender knows.
    refused = sum(stats.errors.values())
    return {"pairs": len(senders), "steps": steps, "sent": sent_total, "send_ok": stats.send_ok,
            "refused": refused,
            "lost": sent_total - received - refused, "duplicated": stats.duplicated,
            "out_of_order": stats.out_of_order, "errors": dict(stats.errors),
            "reader_failures": [repr(e) for e in failed if e is not None][:3],
            "saturated_per_s": max((s["delivered_per_s"] for s in steps), default=0.0)}


def _step_summary(rate: float, sent: int, start: float, stats: PairStats, step: int,
                  cpu: float) -> dict[str, Any]:
    waits = stats.latency[step]
    span = max(stats.arrivals[step], default=start) - start
    return {
        "offered_per_s": rate,
        "sent": sent,
        "delivered": len(waits),
        "delivered_per_s": round(len(waits) / span, 1) if span > 0 else 0.0,
        "p50_ms": round(_percentile(waits, 0.5) * 1000, 2) if waits else None,
        "p99_ms": round(_percentile(waits, 0.99) * 1000, 2) if waits else float("inf"),
        "max_ms": round(max(waits) * 1000, 2) if waits else None,
        "server_cpu_ms_per_message": round(cpu / len(waits) * 1000, 3) if waits else None,
    }


def _dump(frame: dict[str, Any]) -> str:
    return orjson.dumps(frame).decode()


async def main() -> None:
    job = orjson.loads(sys.stdin.readline())
    from bench.loadgen_group import group  # it builds on this module's helpers

    work = {"idle": idle, "pairs": pairs, "group": group}[job["mode"]]
    result = await asyncio.wait_for(work(job), job.get("timeout", 600))
    await clients.release()
    print(_dump(result), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
