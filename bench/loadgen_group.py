"""The load generator's ``group`` mode (run through bench/loadgen.py, in its own process):
members of a group post to it open-loop, and every other online member reads what it gets.

For each rate in ``steps`` (group messages a second) `send` frames are due at that rate,
round robin over the ``senders``, and each carries its number; the due time stays here, so a
slow server shows as latency, not as a slower sender. Several senders, because a server
may answer one connection's frames one at a time: one sender would measure that, not the
fan-out. The senders get the others' messages too; those receipts are not counted.

Per group message this mode keeps the time from its due time to the first and to the last
receipt among the ``members`` that read at full speed; per receipt, the time from the due
time. Receipts are counted per member: lost, duplicated, and out of order among one
sender's messages (the only order a group keeps across senders is its seq). Stepping stops
once the server falls behind (deliveries under 0.8 of those offered, or p99 to the last
member over ``stop_ms``).

``slow`` members log in too, but read one frame every ``slow_read_seconds`` (never, if 0)
through a small socket receive buffer, so the server's writes to them back up. They are not
in the latency figures: the point is whether they slow the others down. At the end each is
drained for a moment to see how it ended (4008 is Parley's SLOW_CONSUMER close). With
``text_chars`` each text is padded to about that many characters, which fills the sockets'
buffers sooner.

With ``rss_every_seconds``, the server's RSS (`/proc/<pid>/status` VmRSS) is read that
often over the run. With ``create_group`` (a member list), the first sender creates the
group with a `group_create` frame: the bare relay learns its groups that way, Parley's is
made over REST before the job. Parley's frames only: the job's ``protocol`` is not read, as
the peer baselines have no groups here yet.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from array import array
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from bench.loadgen import (
    RUN,
    _cpu_seconds,
    _dump,
    _heartbeats,
    _percentile,
    close_all,
    login_all,
)

# A slow reader's socket receive buffer. The kernel doubles it and keeps a floor, so this
# asks for its smallest: the server's writes back up after a few frames, not a few thousand.
SLOW_RECEIVE_BUFFER = 4096
RSS_SAMPLES_MAX = 20000  # a bound on the sampling loop: hours at any sensible interval
SLOW_DRAIN_SECONDS = 3.0  # at the end, how long a slow reader reads fast to see its close
HEARTBEAT = "h"  # the one frame that is not JSON; Parley answers each one the same way


class Receipts:
    """What the full-speed members got, per group message and per step."""

    def __init__(self, members: int, steps: int, senders: int) -> None:
        self.members = members
        self.senders = senders
        self.due: list[float] = []  # group message n was due at due[n]
        self.step_of: list[int] = []
        self.count: list[int] = []
        self.first: list[float] = []
        self.last: list[float] = []
        self.waits = [array("d") for _ in range(steps)]  # every receipt's latency, per step
        self.seen = [bytearray() for _ in range(members)]
        # Order holds per sender: group message n came from sender n % senders.
        self.newest = [[-1] * senders for _ in range(members)]
        self.total = 0
        self.duplicated = 0
        self.out_of_order = 0
        self.arrived = asyncio.Event()

    def sent(self, step: int, due: float) -> int:
        self.due.append(due)
        self.step_of.append(step)
        self.count.append(0)
        self.first.append(float("inf"))
        self.last.append(0.0)
        return len(self.due) - 1

    def received(self, member: int, n: int, now: float) -> None:
        seen = self.seen[member]
        if n < len(seen) and seen[n]:
            self.duplicated += 1
            return
        if n >= len(seen):
            seen.extend(bytes(n + 1 - len(seen)))
        seen[n] = 1
        newest = self.newest[member]
        if n < newest[n % self.senders]:
            self.out_of_order += 1
        newest[n % self.senders] = max(newest[n % self.senders], n)

        self.count[n] += 1
        self.first[n] = min(self.first[n], now)
        self.last[n] = max(self.last[n], now)
        self.waits[self.step_of[n]].append(now - self.due[n])
        self.total += 1
        self.arrived.set()

    async def wait_for(self, expected: int, seconds: float) -> None:
        """Until `expected` receipts have arrived in all, or `seconds` pass."""
        deadline = time.perf_counter() + seconds
        while self.total < expected and (left := deadline - time.perf_counter()) > 0:
            self.arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.arrived.wait(), left)


async def _read_member(ws: ClientConnection, member: int, receipts: Receipts) -> None:
    with contextlib.suppress(ConnectionClosed):
        async for raw in ws:
            if raw == HEARTBEAT:
                continue
            frame = orjson.loads(raw)
            if frame.get("type") == "message":
                number = frame["message"]["content"]["text"].partition(" ")[0]
                receipts.received(member, int(number), time.perf_counter())


async def _read_sender(ws: ClientConnection, replies: Counter[str]) -> None:
    with contextlib.suppress(ConnectionClosed):
        async for raw in ws:
            if raw == HEARTBEAT:
                continue
            frame = orjson.loads(raw)
            if frame.get("type") == "send_ok":
                replies["send_ok"] += 1
            elif frame.get("type") == "error":
                replies[str(frame.get("code"))] += 1


async def _slow_login(url: str, app_key: str, token: str) -> ClientConnection:
    """A connection whose socket holds little and whose client buffers one frame: once it
    stops reading, the server's writes to it stop going through."""
    parts = urlsplit(url)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SLOW_RECEIVE_BUFFER)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, (parts.hostname, parts.port or 80))
    ws = await connect(url, sock=sock, compression=None, ping_interval=None, max_queue=1,
                       max_size=2**22, open_timeout=60)
    await ws.send(_dump({"type": "login", "id": 1, "app_key": app_key, "token": token}))
    for _ in range(10):
        reply = orjson.loads(await asyncio.wait_for(ws.recv(), 30))
        if reply.get("type") == "login_ok":
            return ws
    raise RuntimeError("no login_ok for a slow reader")


async def _read_slowly(ws: ClientConnection, every: float, stop: asyncio.Event
                       ) -> dict[str, Any]:
    """One frame per `every` seconds (none if 0) until `stop`; then read fast for a moment
    to see whether the server closed the connection, and with which code."""
    read = 0
    with contextlib.suppress(ConnectionClosed):
        while not stop.is_set():
            if every > 0:
                with contextlib.suppress(TimeoutError):  # websockets' recv is safe to cancel
                    await asyncio.wait_for(ws.recv(), every)
                    read += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), every or None)

        deadline = time.perf_counter() + SLOW_DRAIN_SECONDS
        with contextlib.suppress(TimeoutError):
            while (left := deadline - time.perf_counter()) > 0:
                await asyncio.wait_for(ws.recv(), left)
                read += 1
    return {"frames_read": read, "close_code": ws.close_code}


async def _create_group(ws: ClientConnection, group_id: str, members: list[str]) -> None:
    await ws.send(_dump({"type": "group_create", "id": 1, "group_id": group_id,
                         "members": members}))
    reply = orjson.loads(await asyncio.wait_for(ws.recv(), 30))
    if reply.get("type") != "group_create_ok":
        raise RuntimeError(f"group not created: {reply}")


async def _sample_rss(pid: int, every: float, samples: list[list[float]]) -> None:
    started = time.perf_counter()
    for _ in range(RSS_SAMPLES_MAX):
        samples.append([round(time.perf_counter() - started, 2), _rss_kib(pid)])
        await asyncio.sleep(every)


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


async def _run_step(step: int, rate: float, job: dict[str, Any],
                    senders: list[ClientConnection], receipts: Receipts) -> float:
    count = max(1, int(rate * job["step_seconds"]))
    padding = " " + "x" * job["text_chars"] if job.get("text_chars") else ""
    start = time.perf_counter() + 0.05
    for i in range(count):
        due = start + i / rate
        delay = due - time.perf_counter()
        if delay > 0.001:
            await asyncio.sleep(delay)
        n = receipts.sent(step, due)
        await senders[n % len(senders)].send(_dump({
            "type": "send", "id": n, "group_id": job["group_id"],
            "client_msg_id": f"{RUN}-g{n}", "content": {"type": "text", "text": f"{n}{padding}"}}))
    return start


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 2)


@dataclass(frozen=True)
class StepMark:
    """What is known of a step when its sends are done: the rest is in the receipts."""

    rate: float
    start: float
    server_cpu: float  # seconds of the server's CPU over the step
    own_cpu: float  # and of this process's
    wall: float


def _step_summary(mark: StepMark, step: int, receipts: Receipts) -> dict[str, Any]:
    """A step's figures; p50_ms and p99_ms are to the last member, as the issue asks."""
    ours = [n for n, s in enumerate(receipts.step_of) if s == step]
    complete = [n for n in ours if receipts.count[n] == receipts.members]
    to_last = [receipts.last[n] - receipts.due[n] for n in complete]
    to_first = [receipts.first[n] - receipts.due[n] for n in ours if receipts.count[n]]
    waits = list(receipts.waits[step])
    last = max((receipts.last[n] for n in ours if receipts.count[n]), default=mark.start)
    span = last - mark.start
    return {
        "offered_per_s": mark.rate,
        "offered_deliveries_per_s": mark.rate * receipts.members,
        "sent": len(ours),
        "complete": len(complete),
        "delivered": len(waits),
        "delivered_per_s": round(len(waits) / span, 1) if span > 0 else 0.0,
        "p50_ms": _ms(_percentile(to_last, 0.5)) if to_last else None,
        "p99_ms": _ms(_percentile(to_last, 0.99)) if to_last else float("inf"),
        "max_ms": _ms(max(to_last)) if to_last else None,
        "p50_to_first_ms": _ms(_percentile(to_first, 0.5)) if to_first else None,
        "delivery_p50_ms": _ms(_percentile(waits, 0.5)) if waits else None,
        "delivery_p99_ms": _ms(_percentile(waits, 0.99)) if waits else None,
        "server_cpu_ms_per_message": round(mark.server_cpu / len(ours) * 1000, 2)
        if ours else None,
        # Near 1.0 the load generator, not the server, was the limit of this step.
        "loadgen_cpu_share": round(mark.own_cpu / mark.wall, 2) if mark.wall > 0 else None,
    }


def _distribution(receipts: Receipts, step: int) -> dict[str, Any]:
    """Enough of one step's latencies to draw their distribution: to the last member per
    group message, and every receipt's as percentiles 0 to 100."""
    ours = [n for n, s in enumerate(receipts.step_of) if s == step]
    to_last = [_ms(receipts.last[n] - receipts.due[n])
               for n in ours if receipts.count[n] == receipts.members]
    waits = sorted(receipts.waits[step])
    points = [_ms(waits[min(len(waits) - 1, len(waits) * q // 100)]) for q in range(101)]
    return {"to_last_ms": to_last, "delivery_percentiles_ms": points if waits else []}


async def group(job: dict[str, Any]) -> dict[str, Any]:
    url, key, group_id = job["url"], job["app_key"], job["group_id"]
    senders = await login_all(url, key, job["senders"])
    if job.get("create_group"):
        await _create_group(senders[0], group_id, job["create_group"])
    members = await login_all(url, key, job["members"])
    slow = [await _slow_login(url, key, t) for t in job.get("slow", [])]
    receipts = Receipts(len(members), len(job["steps"]), len(senders))
    replies: Counter[str] = Counter()
    stop_slow = asyncio.Event()
    rss: list[list[float]] = []

    readers = [asyncio.create_task(_read_member(ws, i, receipts)) for i, ws in enumerate(members)]
    readers += [asyncio.create_task(_read_sender(ws, replies)) for ws in senders]
    slow_tasks = [asyncio.create_task(_read_slowly(ws, job.get("slow_read_seconds", 1.0),
                                                   stop_slow)) for ws in slow]
    background = [asyncio.create_task(_heartbeats([*senders, *members, *slow],
                                                  job.get("timeout", 600)))]
    if job.get("rss_every_seconds"):
        background.append(asyncio.create_task(
            _sample_rss(job["server_pid"], job["rss_every_seconds"], rss)))
    try:
        steps, fell_behind = await _steps(job, senders, receipts)
        stop_slow.set()
        slow_ends = await asyncio.gather(*slow_tasks)
    finally:
        failed = [t.exception() for t in readers if t.done() and not t.cancelled()]
        for task in [*readers, *slow_tasks, *background]:
            task.cancel()
        await close_all([*senders, *members, *slow])

    sent = len(receipts.due)
    refused = sum(v for k, v in replies.items() if k != "send_ok")
    return {"members": len(members), "slow_readers": slow_ends, "steps": steps, "sent": sent,
            "send_ok": replies["send_ok"], "errors": {k: v for k, v in replies.items()
                                                      if k != "send_ok"},
            "lost": (sent - refused) * len(members) - receipts.total,
            "duplicated": receipts.duplicated, "out_of_order": receipts.out_of_order,
            "saturated_per_s": max((s["delivered_per_s"] for s in steps), default=0.0),
            # False: the last step still kept up, so saturated_per_s is only a floor.
            "fell_behind": fell_behind,
            "reader_failures": [repr(e) for e in failed if e is not None][:3], "rss_kib": rss,
            **(_distribution(receipts, 0) if job.get("distribution") else {})}


async def _steps(job: dict[str, Any], senders: list[ClientConnection], receipts: Receipts
                 ) -> tuple[list[dict[str, Any]], bool]:
    """Each rate in turn until the server falls behind; then the stragglers' time to come.
    The steps' figures, and whether it fell behind."""
    marks: list[StepMark] = []
    fell_behind = False
    for step, rate in enumerate(job["steps"]):
        cpu_before, own_before = _cpu_seconds(job["server_pid"]), time.process_time()
        start = await _run_step(step, rate, job, senders, receipts)
        await receipts.wait_for(len(receipts.due) * receipts.members, job["grace_seconds"])
        marks.append(StepMark(rate, start, _cpu_seconds(job["server_pid"]) - cpu_before,
                              time.process_time() - own_before, time.perf_counter() - start))
        summary = _step_summary(marks[-1], step, receipts)
        if (summary["delivered_per_s"] < 0.8 * summary["offered_deliveries_per_s"]
                or summary["p99_ms"] > job["stop_ms"]):
            fell_behind = True
            break
    # Whatever the server still holds is late, not lost: give it time to arrive.
    await receipts.wait_for(len(receipts.due) * receipts.members, job["drain_seconds"])
    return [_step_summary(mark, i, receipts) for i, mark in enumerate(marks)], fell_behind
