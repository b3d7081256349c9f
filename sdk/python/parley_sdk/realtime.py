"""A WebSocket client for bots and services that act as a user (asyncio).

It keeps the client's side of docs/protocol.md, "Delivery guarantees": it logs in with a
token, sends the heartbeat, reconnects with backoff and jitter, catches up after every
login (``conversations``, then ``sync`` from the last contiguous seq of each), repeats
unanswered sends with the same client message ID, drops duplicates by msg_id and seq, and
hands messages over in seq order per conversation through ``messages()``.

One task (``_run``) owns the connection: connect, log in, read until it closes, decide
from the close code whether and when to connect again. Everything else reacts to frames.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake

from parley_sdk.errors import ParleyError, RealtimeError, SessionEnded

logger = logging.getLogger(__name__)

# Close codes after which connecting again cannot help (docs/protocol.md, "Close codes").
FINAL_CLOSE_CODES = {1009: "frame_too_large", 4000: "bad_frame", 4002: "login_failed",
                     4004: "kicked", 4006: "user_deleted", 4011: "replaced"}
TOKEN_EXPIRED = 4003
# The protocol says to come back at once after these: another node is waiting.
AT_ONCE_CLOSE_CODES = {4005, 4010}
# A send that got one of these may be stored, or may pass later: repeat it, same ID.
RETRY_SEND_CODES = {"internal_error", "database_unavailable", "database_busy", "hook_unavailable"}
WAIT_SEND_CODES = {"rate_limited", "spam_blocked"}
ABNORMAL = 1006


@dataclass(frozen=True)
class Backoff:
    """Reconnect delays: uniform below initial * 2**attempt, capped (full jitter)."""

    initial: float = 0.5
    maximum: float = 30.0

    def delay(self, attempt: int) -> float:
        return random.uniform(0, min(self.maximum, self.initial * 2**attempt))


@dataclass
class _Conversation:
    id: str
    last_contiguous: int = 0
    pending: dict[int, dict[str, Any]] = field(default_factory=dict)
    recent_ids: OrderedDict[str, None] = field(default_factory=OrderedDict)
    sync_task: asyncio.Task[None] | None = None
    sync_again: bool = False

    def remember(self, msg_id: str) -> None:
        self.recent_ids[msg_id] = None
        if len(self.recent_ids) > 1000:  # seqs cover what falls out of this window
            self.recent_ids.popitem(last=False)


@dataclass
class _Send:
    frame: dict[str, Any]
    future: asyncio.Future[dict[str, Any]]
    task: asyncio.Task[None] | None = None


class BotClient:
    """Usage: ``async with BotClient(url, app_key, token) as bot:`` then ``bot.send(...)``
    and ``async for message in bot.messages():``."""

    def __init__(self, url: str, app_key: str, token: str, *,
                 get_token: Callable[[], Awaitable[str]] | None = None,
                 platform: str = "other", cursors: dict[str, int] | None = None,
                 backoff: Backoff | None = None, send_timeout: float = 10.0,
                 request_timeout: float = 15.0,
                 on_push: Callable[[dict[str, Any]], None] | None = None) -> None:
        self.url, self.app_key, self._token = url, app_key, token
        self._get_token = get_token
        self.platform = platform
        self.backoff = backoff or Backoff()
        # docs/protocol.md: wait at least 10 s for send_ok before counting a send as lost.
        self.send_timeout = send_timeout
        self.request_timeout = request_timeout
        self.on_push = on_push
        self.user: str | None = None
        self.logins = 0
        self.ended: SessionEnded | None = None
        self._conversations = {cid: _Conversation(cid, seq)
                               for cid, seq in (cursors or {}).items()}
        self._outbox: OrderedDict[str, _Send] = OrderedDict()
        self._inbox: asyncio.Queue[dict[str, Any] | SessionEnded] = asyncio.Queue()
        self._requests: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._next_id = 0
        self._ws: ClientConnection | None = None
        self._open = asyncio.Event()
        self._first_login: asyncio.Future[dict[str, Any]] | None = None
        self._runner: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[Any]] = set()
        self._dropped = False
        self._closing = False
        self._last_error: ParleyError | None = None

    # --- lifecycle ------------------------------------------------------------------------

    async def connect(self) -> dict[str, Any]:
        """Start, and wait for the first login_ok (SessionEnded if the login is refused)."""
        self._first_login = asyncio.get_running_loop().create_future()
        self._runner = asyncio.create_task(self._run())
        return await self._first_login

    async def close(self) -> None:
        """Stop for good. Unanswered sends fail with ``closed``."""
        self._closing = True
        if self._runner is not None:
            self._runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._runner
        self._end(SessionEnded("closed", 1000, "the client was closed"))

    async def __aenter__(self) -> BotClient:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def is_open(self) -> bool:
        return self._open.is_set()

    async def wait_open(self) -> None:
        """Until the client is logged in (at once if it is now)."""
        await self._open.wait()

    def drop_connection(self) -> None:
        """Abort the current connection as a network failure would (for tests, chaos)."""
        if self._ws is not None:
            self._dropped = True
            self._ws.transport.abort()

    async def _run(self) -> None:
        attempt = 0
        while True:
            code, reason = await self._connect_once()
            if self.is_open or code in AT_ONCE_CLOSE_CODES:
                attempt = 0
            self._open.clear()
            if code in FINAL_CLOSE_CODES or (code == TOKEN_EXPIRED and not self._get_token):
                name = FINAL_CLOSE_CODES.get(code, "token_expired")
                error = self._last_error.code if self._last_error else name
                self._end(SessionEnded(error, code, reason))
                return
            if code == TOKEN_EXPIRED and self._get_token:
                self._token = await self._get_token()
                continue
            delay = 0.0 if code in AT_ONCE_CLOSE_CODES else self.backoff.delay(attempt)
            attempt += 1
            logger.info("reconnecting", extra={"close_code": code, "delay": delay})
            await asyncio.sleep(delay)

    async def _connect_once(self) -> tuple[int, str]:
        try:
            ws = await connect(self.url, compression=None, ping_interval=None,
                               max_size=2**22, open_timeout=self.request_timeout)
        except (OSError, InvalidHandshake, TimeoutError) as exc:
            return ABNORMAL, repr(exc)
        self._ws, self._dropped, self._last_error = ws, False, None
        reader = asyncio.create_task(self._read(ws))
        helpers: list[asyncio.Task[Any]] = [asyncio.create_task(self._login(ws))]
        try:
            await reader
        finally:
            for task in helpers:
                task.cancel()
            self._ws = None
            self._fail_requests(ParleyError("connection_lost", "the connection closed"))
            if self._closing:
                await ws.close()
        received = ws.protocol.close_rcvd
        if self._dropped or received is None:
            return ABNORMAL, "connection lost"
        return received.code, received.reason

    async def _login(self, ws: ClientConnection) -> None:
        frame = {"type": "login", "app_key": self.app_key, "token": self._token,
                 "platform": self.platform}
        try:
            reply = await self._request(frame)
        except ParleyError as exc:
            self._last_error = exc
            return  # the server closes after a refused login; _run reads the close code
        self.user = reply["user_id_md5"]
        self.logins += 1
        self._open.set()
        if self._first_login is not None and not self._first_login.done():
            self._first_login.set_result(reply)
        heartbeat = reply["heartbeat"]
        self._spawn(self._heartbeat(ws, heartbeat["interval_ms"] / 1000,
                                    heartbeat["timeout_ms"] / 1000))
        for client_msg_id in list(self._outbox):
            self._transmit(client_msg_id)
        self._spawn(self.catch_up())

    async def _heartbeat(self, ws: ClientConnection, interval: float, silence: float) -> None:
        loop = asyncio.get_running_loop()
        while self._ws is ws:
            await asyncio.sleep(min(interval, silence) / 2)
            if loop.time() - self._last_heard > silence:
                self.drop_connection()  # no answer to our `h`: the connection is dead
                return
            if loop.time() - self._last_sent >= interval:
                await self._write("h")

    def _end(self, error: SessionEnded) -> None:
        if self.ended is not None:
            return
        self.ended = error
        for entry in self._outbox.values():
            if not entry.future.done():
                entry.future.set_exception(error)
        self._outbox.clear()
        for task in self._background:
            task.cancel()
        if self._first_login is not None and not self._first_login.done():
            self._first_login.set_exception(error)
        self._inbox.put_nowait(error)

    def _spawn(self, coro: Awaitable[Any]) -> None:
        task: asyncio.Task[Any] = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[Any]) -> None:
        self._background.discard(task)
        if not task.cancelled() and task.exception() is not None:
            # A catch-up cut short by a lost connection is redone after the next login.
            logger.debug("background task ended", exc_info=task.exception())

    # --- frames ---------------------------------------------------------------------------

    async def _write(self, text: str) -> None:
        if self._ws is None:
            raise ParleyError("connection_lost", "not connected")
        self._last_sent = asyncio.get_running_loop().time()
        try:
            await self._ws.send(text)
        except ConnectionClosed as exc:
            raise ParleyError("connection_lost", "the connection closed") from exc

    async def request(self, frame: dict[str, Any], reply_within: float | None = None
                      ) -> dict[str, Any]:
        """Any request of docs/protocol.md; RealtimeError carries the server's code."""
        return await self._request(frame, reply_within)

    async def _request(self, frame: dict[str, Any], reply_within: float | None = None
                       ) -> dict[str, Any]:
        self._next_id += 1
        rid = f"r{self._next_id}"
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._requests[rid] = future
        try:
            await self._write(json.dumps({**frame, "id": rid}))
            async with asyncio.timeout(reply_within or self.request_timeout):
                return await future
        except TimeoutError:
            raise ParleyError("timeout", f"no reply to {frame['type']}") from None
        finally:
            self._requests.pop(rid, None)

    def _fail_requests(self, error: ParleyError) -> None:
        for future in self._requests.values():
            if not future.done():
                future.set_exception(error)
        self._requests.clear()

    async def _read(self, ws: ClientConnection) -> None:
        self._last_heard = self._last_sent = asyncio.get_running_loop().time()
        with contextlib.suppress(ConnectionClosed):
            async for raw in ws:
                self._last_heard = asyncio.get_running_loop().time()
                if raw != "h":
                    self._frame(json.loads(raw))

    def _frame(self, frame: dict[str, Any]) -> None:
        future = self._requests.get(str(frame.get("id")))
        if future is not None:
            if future.done():
                return
            if frame["type"] == "error":
                future.set_exception(RealtimeError(frame["code"], frame.get("message", ""),
                                                   frame.get("data")))
            else:
                future.set_result(frame)
        elif frame["type"] == "message":
            self._accept(frame["message"])
        elif frame["type"] == "resync":
            self._spawn(self.catch_up())
        elif frame["type"] == "error" and "id" not in frame:
            self._last_error = RealtimeError(frame["code"], frame.get("message", ""),
                                             frame.get("data"))
        if frame["type"] != "message" and future is None and self.on_push is not None:
            self.on_push(frame)

    # --- sending --------------------------------------------------------------------------

    async def send(self, content: dict[str, Any], *, to: str | None = None,
                   group_id: str | None = None, client_msg_id: str | None = None
                   ) -> dict[str, Any]:
        """Send and wait until stored; repeated with the same ID across reconnects."""
        if self.ended is not None:
            raise self.ended
        cmid = client_msg_id or str(uuid.uuid4())
        frame: dict[str, Any] = {"type": "send", "content": content, "client_msg_id": cmid}
        frame.update({"group_id": group_id} if group_id is not None else {"to": to})
        entry = _Send(frame, asyncio.get_running_loop().create_future())
        self._outbox[cmid] = entry
        self._transmit(cmid)
        return await entry.future

    async def send_text(self, text: str, *, to: str | None = None,
                        group_id: str | None = None) -> dict[str, Any]:
        return await self.send({"type": "text", "text": text}, to=to, group_id=group_id)

    def outbox(self) -> list[str]:
        """Client message IDs of sends not answered yet."""
        return list(self._outbox)

    def _transmit(self, cmid: str, delay: float = 0.0) -> None:
        entry = self._outbox.get(cmid)
        if entry is None or not self.is_open:
            return  # sent again after the next login
        if entry.task is not None and not entry.task.done():
            entry.task.cancel()
        entry.task = asyncio.create_task(self._try_send(cmid, delay))

    async def _try_send(self, cmid: str, delay: float) -> None:
        await asyncio.sleep(delay)
        entry = self._outbox[cmid]
        try:
            reply = await self._request(entry.frame, self.send_timeout)
        except RealtimeError as exc:
            if exc.code in RETRY_SEND_CODES or exc.code in WAIT_SEND_CODES:
                wait = exc.data.get("retry_after_ms", 0) / 1000 or self.backoff.delay(1)
                self._spawn(self._retry_later(cmid, wait))
            else:
                self._outbox.pop(cmid, None)
                entry.future.set_exception(exc)
            return
        except ParleyError as exc:
            if exc.code == "timeout":
                self._spawn(self._retry_later(cmid, 0))
            return  # connection_lost: repeated after the next login
        self._answered(cmid, reply)

    async def _retry_later(self, cmid: str, delay: float) -> None:
        self._transmit(cmid, delay)

    def _answered(self, cmid: str, reply: dict[str, Any]) -> None:
        entry = self._outbox.pop(cmid, None)
        if entry is None or entry.future.done():
            return
        frame = entry.frame
        message = {"msg_id": reply["msg_id"], "conversation_id": reply["conversation_id"],
                   "seq": reply["seq"], "from": self.user,
                   "to": frame.get("to", frame.get("group_id")), "content": frame["content"],
                   "client_msg_id": cmid, "created_at": reply["created_at"], "risk": None}
        entry.future.set_result({**message, "duplicate": reply.get("duplicate", False)})
        self._accept(message, own=True)

    # --- ordered, de-duplicated delivery --------------------------------------------------

    async def messages(self) -> AsyncIterator[dict[str, Any]]:
        """Every message once, in seq order per conversation (own sends included).
        Ends by raising SessionEnded when the client stops for good."""
        while True:
            item = await self._inbox.get()
            if isinstance(item, SessionEnded):
                self._inbox.put_nowait(item)  # for any other reader
                raise item
            yield item

    def cursors(self) -> dict[str, int]:
        """The last contiguous seq of each conversation: keep it to resume from later."""
        return {c.id: c.last_contiguous for c in self._conversations.values()}

    async def catch_up(self) -> None:
        """Page through ``conversations`` and sync each one the client is behind in."""
        cursor: str | None = None
        behind = []
        while True:
            frame: dict[str, Any] = {"type": "conversations", "limit": 200}
            if cursor:
                frame["cursor"] = cursor
            page = await self._request(frame)
            for entry in page["conversations"]:
                conv = self._conversation(entry["conversation_id"])
                if entry["last_seq"] > conv.last_contiguous:
                    behind.append(conv)
            cursor = page["next_cursor"]
            if not cursor:
                break
        for conv in behind:
            self._sync(conv)
        await asyncio.gather(*(c.sync_task for c in behind if c.sync_task),
                             return_exceptions=True)

    def _conversation(self, cid: str) -> _Conversation:
        if cid not in self._conversations:
            self._conversations[cid] = _Conversation(cid)
        return self._conversations[cid]

    def _accept(self, message: dict[str, Any], own: bool = False) -> None:
        conv = self._conversation(message["conversation_id"])
        if message["seq"] <= conv.last_contiguous or message["msg_id"] in conv.recent_ids:
            return
        if not own or message["seq"] not in conv.pending:
            conv.pending[message["seq"]] = message
        self._drain(conv)
        if conv.pending:
            self._sync(conv)  # a gap before it: a sync page fills it in order

    def _drain(self, conv: _Conversation) -> None:
        while conv.last_contiguous + 1 in conv.pending:
            self._deliver(conv, conv.pending.pop(conv.last_contiguous + 1))

    def _deliver(self, conv: _Conversation, message: dict[str, Any]) -> None:
        conv.last_contiguous = message["seq"]
        conv.remember(message["msg_id"])
        self._inbox.put_nowait(message)

    def _sync(self, conv: _Conversation) -> None:
        if conv.sync_task is not None and not conv.sync_task.done():
            conv.sync_again = True
            return
        conv.sync_task = asyncio.create_task(self._sync_loop(conv))

    async def _sync_loop(self, conv: _Conversation) -> None:
        with contextlib.suppress(ParleyError):  # a lost connection: the next login resyncs
            while True:
                conv.sync_again = False
                while True:
                    page = await self._request({"type": "sync", "conversation_id": conv.id,
                                                "after_seq": conv.last_contiguous,
                                                "limit": 200})
                    self._apply_page(conv, page)
                    if not page["has_more"]:
                        break
                if not conv.sync_again and not conv.pending:
                    return

    def _apply_page(self, conv: _Conversation, page: dict[str, Any]) -> None:
        # A page may skip seqs (outside the user's window, hidden by reviewers); those
        # never come, so each message of the page counts as contiguous.
        for message in page["messages"]:
            seq = message["seq"]
            if seq <= conv.last_contiguous:
                continue
            for skipped in [s for s in conv.pending if s <= seq]:
                del conv.pending[skipped]
            if message["msg_id"] in conv.recent_ids:
                conv.last_contiguous = seq
            else:
                self._deliver(conv, message)
        if not page["messages"] and not page["has_more"]:
            conv.last_contiguous = max(conv.last_contiguous, page["last_seq"])
        self._drain(conv)
