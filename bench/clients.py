"""Clients for the baselines that do not speak Parley's frames, for the load generator.

The load generator drives every server with Parley's JSON frames: it sends `send`, `ack`
and the one-byte heartbeat, and reads `send_ok`, `error` and `message` frames. Each class
here is an adapter with the same surface as a `websockets` client connection (`send`,
`close`, `close_code`, async iteration over incoming frames), so the schedule, the
counters and the latency measure stay one code for every server:

- `SocketIOConnection`: python-socketio's `AsyncClient`, WebSocket transport only. The
  user is the connect's `auth`; `send` is an event whose Socket.IO ack is the `send_ok`.
- `XmppConnection`: XMPP over WebSocket (RFC 7395) on a `websockets` connection, SASL
  PLAIN (loopback only), resource bind and initial presence; a `send` becomes a chat
  `<message>` whose `<body>` is the text, and a received `<message>` becomes a `message`
  frame. XMPP has no answer to a send, so no `send_ok` is counted; Parley's `ack` and the
  heartbeat have no XMPP counterpart here and are dropped (ejabberd pings the WebSocket
  itself).

The text stamped by the load generator (digits, colons and a dot) needs no XML escaping
beyond what `xml.sax.saxutils` does, and is found in a received stanza without a parser.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import re
from collections.abc import AsyncIterator
from typing import Any
from xml.sax.saxutils import escape, quoteattr, unescape

import orjson
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

WAIT = 30.0  # seconds a login step may take while hundreds of logins queue at the server


def _dump(frame: dict[str, Any]) -> str:
    return orjson.dumps(frame).decode()


class SocketIOConnection:
    """One Socket.IO client logged in as a user, seen as a stream of Parley frames."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.inbox: asyncio.Queue[str | None] = asyncio.Queue()
        self.close_code: int | None = None
        client.on("message", self._message)
        client.on("disconnect", self._disconnected)

    @classmethod
    async def login(cls, url: str, user: str, http: Any) -> SocketIOConnection:
        import socketio  # the bench extra; only this baseline needs it

        client = socketio.AsyncClient(reconnection=False, handle_sigint=False,
                                      http_session=http, request_timeout=WAIT)
        conn = cls(client)
        await client.connect(url, auth={"token": user}, transports=["websocket"],
                             wait_timeout=WAIT)
        return conn

    async def _message(self, message: dict[str, Any]) -> None:
        self.inbox.put_nowait(_dump({"type": "message", "message": message}))

    async def _disconnected(self, *_: Any) -> None:
        if self.close_code is None:
            self.close_code = 1006
        self.inbox.put_nowait(None)

    async def send(self, raw: str) -> None:
        if raw == "h":  # engine.io keeps its own heartbeat
            return
        frame = orjson.loads(raw)
        if frame["type"] == "send":
            await self.client.emit("send", frame, callback=self._send_ok)
        elif frame["type"] == "ack":
            await self.client.emit("ack", frame)

    def _send_ok(self, reply: dict[str, Any]) -> None:
        self.inbox.put_nowait(_dump(reply))

    async def close(self) -> None:
        self.close_code = self.close_code or 1000
        await self.client.disconnect()

    async def __aiter__(self) -> AsyncIterator[str]:
        while (frame := await self.inbox.get()) is not None:
            yield frame


class SocketIOSession:
    """The one aiohttp session all Socket.IO clients of a load generator share, as one
    per client would cost the load generator a connection pool each."""

    def __init__(self) -> None:
        import aiohttp

        self.http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0),
                                          cookie_jar=aiohttp.DummyCookieJar())

    async def aclose(self) -> None:
        await self.http.close()


FRAMING = "urn:ietf:params:xml:ns:xmpp-framing"
BODY = re.compile(r"<body>([^<]*)</body>")
FROM = re.compile(r"""\sfrom=(['"])([^'"]*)\1""")
MESSAGE_ERROR = re.compile(r"""^<message\b[^>]*\stype=(['"])error\1""")


class XmppConnection:
    """One XMPP session over WebSocket, bound and available, seen as Parley frames."""

    def __init__(self, ws: ClientConnection, jid: str) -> None:
        self.ws = ws
        self.jid = jid
        self.ids = itertools.count(1)

    @property
    def close_code(self) -> int | None:
        return self.ws.close_code

    @classmethod
    async def login(cls, url: str, domain: str, user: str) -> XmppConnection:
        ws = await connect(url, subprotocols=[Subprotocol("xmpp")], compression=None,
                           ping_interval=None, max_size=2**20, open_timeout=60)
        try:
            await cls._authenticate(ws, domain, user)
            jid = await cls._bind(ws, domain)
        except BaseException:
            await ws.close()
            raise
        await ws.send("<presence/>")
        return cls(ws, jid)

    @staticmethod
    async def _authenticate(ws: ClientConnection, domain: str, user: str) -> None:
        await _open_stream(ws, domain, "<mechanisms")
        # Bench accounts have the user name as password; PLAIN only ever crosses loopback.
        secret = base64.b64encode(f"\0{user}\0{user}".encode()).decode()
        await ws.send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>"
                      f"{secret}</auth>")
        reply = await _recv(ws)
        if not reply.startswith("<success"):
            raise RuntimeError(f"XMPP login refused: {reply[:200]}")

    @staticmethod
    async def _bind(ws: ClientConnection, domain: str) -> str:
        await _open_stream(ws, domain, "<bind")
        await ws.send("<iq type='set' id='bind'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
                      "<resource>bench</resource></bind></iq>")
        reply = await _recv(ws)
        found = re.search(r"<jid>([^<]+)</jid>", reply)
        if found is None:
            raise RuntimeError(f"XMPP bind failed: {reply[:200]}")
        return found.group(1)

    async def send(self, raw: str) -> None:
        if raw == "h":  # RFC 7395 has no whitespace keepalive; ejabberd pings the socket
            return
        frame = orjson.loads(raw)
        if frame["type"] != "send":  # an `ack`: XMPP has none to send the server
            return
        await self.ws.send(
            f"<message to={quoteattr(frame['to'])} type='chat' id='{next(self.ids)}'>"
            f"<body>{escape(frame['content']['text'])}</body></message>")

    async def close(self) -> None:
        with contextlib.suppress(ConnectionClosed):
            await self.ws.send(f"<close xmlns='{FRAMING}'/>")
        await self.ws.close()

    async def __aiter__(self) -> AsyncIterator[str]:
        with contextlib.suppress(ConnectionClosed):
            async for raw in self.ws:
                frame = _as_frame(str(raw))
                if frame is not None:
                    yield frame


def _as_frame(stanza: str) -> str | None:
    """A received stanza as the Parley frame the load generator counts, or None."""
    if not stanza.startswith("<message"):
        return None
    if MESSAGE_ERROR.match(stanza):
        return _dump({"type": "error", "code": "xmpp_message_error"})
    body = BODY.search(stanza)
    if body is None:  # a chat state or other body-less stanza
        return None
    sender = FROM.search(stanza)
    return _dump({"type": "message", "message": {
        "conversation_id": sender.group(2) if sender else "", "seq": 0,
        "content": {"type": "text", "text": unescape(body.group(1))}}})


async def _open_stream(ws: ClientConnection, domain: str, expect: str) -> None:
    """Open (or, after SASL, restart) the stream; wait for the features that hold
    `expect`."""
    await ws.send(f"<open xmlns='{FRAMING}' to={quoteattr(domain)} version='1.0'/>")
    for _ in range(3):
        reply = await _recv(ws)
        if expect in reply:
            return
    raise RuntimeError(f"XMPP stream features without {expect}")


async def _recv(ws: ClientConnection) -> str:
    return str(await asyncio.wait_for(ws.recv(), WAIT))


Connection = SocketIOConnection | XmppConnection
CONNECT_CHUNK = 100  # logins in flight at once, as for Parley
_socketio_session: SocketIOSession | None = None


async def login_all(protocol: str, url: str, app_key: str, tokens: list[str]
                    ) -> list[Connection]:
    """Log every token in over `protocol` ("socketio" or "xmpp"), a chunk at a time. For
    XMPP the app key is the XMPP domain, the token the user name."""
    out: list[Connection] = []
    for start in range(0, len(tokens), CONNECT_CHUNK):
        chunk = tokens[start:start + CONNECT_CHUNK]
        out += await asyncio.gather(*(_login(protocol, url, app_key, t) for t in chunk))
    return out


async def _login(protocol: str, url: str, app_key: str, token: str) -> Connection:
    global _socketio_session
    if protocol == "xmpp":
        return await XmppConnection.login(url, app_key, token)
    if protocol == "socketio":
        _socketio_session = _socketio_session or SocketIOSession()
        return await SocketIOConnection.login(url, token, _socketio_session.http)
    raise ValueError(f"unknown protocol {protocol!r}")


async def release() -> None:
    """Close what the clients shared, once every connection is closed."""
    global _socketio_session
    if _socketio_session is not None:
        await _socketio_session.aclose()
        _socketio_session = None
