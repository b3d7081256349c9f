"""A returning client's catch-up, as a process of its own: reads one JSON job on stdin,
connects and logs in, pages through `conversations`, then `sync`s every conversation
until it holds every message, and writes one JSON result line on stdout.

The job names the strategy: ``limit``, the page size asked for, and ``window``, how many
`sync` requests the client keeps in flight on its one connection (1 waits for each reply
before it sends the next). What arrived is checked against what the job says was sent:
each conversation must hold seqs 1..last_seq exactly once, in order, with the senders'
counters in order too, so a lost, repeated or reordered message shows.
"""

from __future__ import annotations

import asyncio
import itertools
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import orjson
from websockets.asyncio.client import ClientConnection, connect

REPLY_SECONDS = 30.0  # a reply slower than this fails the run instead of hanging it


@dataclass
class Held:
    """What the client holds of one conversation."""

    last_seq: int
    seqs: list[int] = field(default_factory=list)
    counters: list[int] = field(default_factory=list)

    def take(self, messages: list[dict[str, Any]]) -> None:
        for message in messages:
            self.seqs.append(message["seq"])
            self.counters.append(int(message["content"]["text"].rsplit(":", 1)[1]))

    def next_after(self) -> int:
        return self.seqs[-1] if self.seqs else 0


class Session:
    """One logged-in connection with its replies matched to requests by id. It paces its
    frames to the server's budget (`PARLEY_MAX_FRAMES_PER_SECOND`, bursts of twice that),
    as docs/protocol.md asks: going over it closes the connection."""

    def __init__(self, ws: ClientConnection, frames_per_second: float) -> None:
        self.ws = ws
        self.next_id = 0
        self.pages = 0
        self.rate = frames_per_second
        self.tokens = 2 * frames_per_second
        self.at = time.perf_counter()

    async def send(self, frame: dict[str, Any]) -> int:
        await self._pace()
        self.next_id += 1
        await self.ws.send(orjson.dumps({**frame, "id": self.next_id}).decode())
        return self.next_id

    async def _pace(self) -> None:
        now = time.perf_counter()
        self.tokens = min(2 * self.rate, self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens < 1:
            await asyncio.sleep((1 - self.tokens) / self.rate)
            self.tokens, self.at = 1.0, time.perf_counter()
        self.tokens -= 1

    async def reply(self) -> dict[str, Any]:
        """The next reply to a request; pushes and heartbeats are skipped."""
        while True:
            frame = orjson.loads(await asyncio.wait_for(self.ws.recv(), REPLY_SECONDS))
            if isinstance(frame, dict) and frame.get("id") is not None:
                if frame.get("type") == "error":
                    raise RuntimeError(f"request refused: {frame}")
                return dict(frame)

    async def ask(self, frame: dict[str, Any]) -> dict[str, Any]:
        await self.send(frame)
        return await self.reply()


async def log_in(job: dict[str, Any]) -> Session:
    ws = await connect(job["url"], compression=None, ping_interval=None, max_size=2**24,
                       open_timeout=30)
    session = Session(ws, job["frames_per_second"])
    reply = await session.ask({"type": "login", "app_key": job["app_key"],
                               "token": job["token"]})
    if reply["type"] != "login_ok":
        raise RuntimeError(f"no login_ok: {reply}")
    return session


async def conversation_list(session: Session, limit: int) -> dict[str, Held]:
    """Every conversation the user has, by paging until next_cursor is null."""
    held: dict[str, Held] = {}
    cursor = None
    for _ in range(10_000):
        page = await session.ask({"type": "conversations", "limit": limit,
                                  **({"cursor": cursor} if cursor else {})})
        for entry in page["conversations"]:
            held[entry["conversation_id"]] = Held(entry["last_seq"])
        cursor = page["next_cursor"]
        if cursor is None:
            return held
    raise RuntimeError("conversation list did not end")


async def sync_all(session: Session, held: dict[str, Held], limit: int, window: int) -> None:
    """Sync every conversation to its last seq, with up to `window` requests in flight.

    The server answers one connection's requests in order, so replies come back in the
    order the requests went out; a page that says has_more queues the next one."""
    todo = deque(cid for cid, h in held.items() if h.last_seq > 0)
    in_flight: deque[str] = deque()
    for _ in range(1_000_000):
        while todo and len(in_flight) < window:
            cid = todo.popleft()
            await session.send({"type": "sync", "conversation_id": cid,
                                "after_seq": held[cid].next_after(), "limit": limit})
            in_flight.append(cid)
        if not in_flight:
            return
        page = await session.reply()
        cid = in_flight.popleft()
        if page.get("conversation_id") != cid:
            raise RuntimeError(f"reply for {page.get('conversation_id')}, expected {cid}")
        session.pages += 1
        held[cid].take(page["messages"])
        if page["has_more"]:
            todo.appendleft(cid)
    raise RuntimeError("sync did not end")


def check(held: dict[str, Held], expected_total: int) -> dict[str, int]:
    """Lost, duplicated and out-of-order messages: each conversation must hold seqs
    1..last_seq once each, in order, and all of them together what the job sent."""
    duplicated = out_of_order = missing = unique = 0
    for h in held.values():
        distinct = set(h.seqs)
        unique += len(distinct)
        duplicated += len(h.seqs) - len(distinct)
        missing += len(set(range(1, h.last_seq + 1)) - distinct)
        out_of_order += _descents(h.seqs) + _descents(h.counters)
    return {"received": unique, "lost": max(missing, expected_total - unique),
            "duplicated": duplicated, "out_of_order": out_of_order}


def _descents(values: list[int]) -> int:
    return sum(1 for a, b in itertools.pairwise(values) if b <= a)


async def catch_up(job: dict[str, Any]) -> dict[str, Any]:
    started = time.perf_counter()
    session = await log_in(job)
    logged_in = time.perf_counter()
    held = await conversation_list(session, job["conversations_limit"])
    listed = time.perf_counter()
    await sync_all(session, held, job["limit"], job["window"])
    done = time.perf_counter()
    await session.ws.close()
    return {"limit": job["limit"], "window": job["window"], "conversations": len(held),
            "pages": session.pages, "login_s": round(logged_in - started, 3),
            "list_s": round(listed - logged_in, 3), "sync_s": round(done - listed, 3),
            "total_s": round(done - started, 3), **check(held, job["expected_messages"])}


async def main() -> None:
    job = orjson.loads(sys.stdin.readline())
    result = await asyncio.wait_for(catch_up(job), job.get("timeout", 300))
    print(orjson.dumps(result).decode(), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
