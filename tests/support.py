"""Test helpers: a real Parley process on a loopback port, and small clients for it."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import orjson
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

ROOT = Path(__file__).resolve().parents[1]
ADMIN_TOKEN = "test-admin-token"
PG_ADMIN_URL = os.environ.get("PARLEY_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
WAIT = 5.0  # seconds a test waits for a frame it expects before failing


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class TestDatabase:
    """A database made for one test run and dropped after it."""

    __test__ = False  # a helper, not a test class

    backend: str
    url: str
    _pg_name: str | None = None

    @classmethod
    async def create(cls, backend: str, folder: Path) -> TestDatabase:
        if backend == "sqlite":
            return cls(backend, f"sqlite+aiosqlite:///{folder / 'parley.db'}")
        name = f"parley_test_{uuid.uuid4().hex[:12]}"
        conn = await asyncpg.connect(PG_ADMIN_URL)
        try:
            await conn.execute(f'CREATE DATABASE "{name}" ENCODING \'UTF8\' TEMPLATE template0')
        finally:
            await conn.close()
        host_part = PG_ADMIN_URL.split("://", 1)[1].rsplit("/", 1)[0]
        return cls(backend, f"postgresql+asyncpg://{host_part}/{name}", name)

    async def drop(self) -> None:
        if self._pg_name is None:
            return
        conn = await asyncpg.connect(PG_ADMIN_URL)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{self._pg_name}" WITH (FORCE)')
        finally:
            await conn.close()

    async def execute(self, sql: str, *args: Any) -> list[Any]:
        """Run SQL straight against the database, for set-ups the API cannot make."""
        if self.backend == "sqlite":
            import aiosqlite

            path = self.url.split("///", 1)[1]
            async with aiosqlite.connect(path) as db:
                cur = await db.execute(sql.replace("$", "?") if "$" in sql else sql, args)
                rows = list(await cur.fetchall())
                await db.commit()
                return rows
        conn = await asyncpg.connect(self.url.replace("+asyncpg", ""))
        try:
            return list(await conn.fetch(sql, *args))
        finally:
            await conn.close()


@dataclass
class Server:
    """A `python -m app serve` process."""

    base_url: str
    ws_url: str
    db: TestDatabase
    log_path: Path
    process: subprocess.Popen[bytes]

    @classmethod
    def start(cls, db: TestDatabase, folder: Path, **settings: Any) -> Server:
        port = free_port()
        env = {
            **os.environ,
            "PARLEY_DATABASE_URL": db.url,
            "PARLEY_PORT": str(port),
            "PARLEY_ADMIN_TOKEN": ADMIN_TOKEN,
            "PARLEY_LOG_LEVEL": "DEBUG",
            **{f"PARLEY_{k.upper()}": str(v) for k, v in settings.items()},
        }
        log_path = folder / f"server-{port}.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "app", "serve"],
                cwd=folder,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        server = cls(f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port}/ws", db, log_path,
                     process)
        server._wait_ready()
        return server

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited:\n{self.log_path.read_text()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(self.base_url + "/readyz", timeout=1).status_code == 200:
                    return
            time.sleep(0.1)
        raise RuntimeError(f"server did not become ready:\n{self.log_path.read_text()}")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")


@dataclass
class AppCreds:
    key: str
    secret: str


class Api:
    """An App Server (or operator) talking to Parley over REST."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.http = httpx.AsyncClient(base_url=server.base_url, timeout=30)

    async def aclose(self) -> None:
        await self.http.aclose()

    async def create_app(self, name: str = "test-app") -> AppCreds:
        r = await self.http.post("/admin/apps", json={"name": name},
                                 headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
        assert r.status_code == 201, r.text
        body = r.json()
        return AppCreds(body["app_key"], body["app_secret"])

    async def call(self, app: AppCreds, method: str, path: str, **kw: Any) -> httpx.Response:
        return await self.http.request(method, path, auth=(app.key, app.secret), **kw)

    async def import_users(self, app: AppCreds, *raw_ids: str, **fields: Any) -> list[str]:
        r = await self.call(app, "POST", "/v1/users/import",
                            json={"users": [{"user_id": u, **fields} for u in raw_ids]})
        assert r.status_code == 200, r.text
        return [item["user_id_md5"] for item in r.json()["results"]]

    async def token(self, app: AppCreds, user: str, ttl: int | None = None) -> str:
        body = {"ttl_seconds": ttl} if ttl else {}
        r = await self.call(app, "POST", f"/v1/users/{user}/tokens", json=body)
        assert r.status_code == 201, r.text
        return str(r.json()["token"])


@dataclass
class Client:
    """A WebSocket client that files every frame it receives for the test to look at."""

    ws: ClientConnection
    frames: list[Any] = field(default_factory=list)
    _arrived: asyncio.Event = field(default_factory=asyncio.Event)
    _reader: asyncio.Task[None] | None = None
    _next_id: int = 0
    close_code: int | None = None
    close_reason: str | None = None

    @classmethod
    async def connect(cls, server: Server) -> Client:
        ws = await connect(server.ws_url, compression=None, max_size=2**22,
                           ping_interval=None)
        client = cls(ws)
        client._reader = asyncio.create_task(client._read())
        return client

    @classmethod
    async def login(cls, server: Server, app: AppCreds, token: str) -> Client:
        client = await cls.connect(server)
        reply = await client.request({"type": "login", "app_key": app.key, "token": token})
        assert reply["type"] == "login_ok", reply
        return client

    async def _read(self) -> None:
        try:
            async for raw in self.ws:
                self.frames.append(raw if raw == "h" else orjson.loads(raw))
                self._arrived.set()
        except ConnectionClosed:
            pass
        finally:
            rcvd = self.ws.protocol.close_rcvd
            self.close_code = rcvd.code if rcvd else 1006
            self.close_reason = rcvd.reason if rcvd else None
            self._arrived.set()

    async def send_raw(self, data: str | bytes) -> None:
        await self.ws.send(data)

    async def request(self, frame: dict[str, Any]) -> dict[str, Any]:
        self._next_id += 1
        rid = f"r{self._next_id}"
        await self.ws.send(orjson.dumps({**frame, "id": rid}).decode())
        return await self.wait_for(lambda f: isinstance(f, dict) and f.get("id") == rid)

    async def wait_for(self, match: Any, timeout: float = WAIT) -> Any:
        """The first frame that matches, taken out of the inbox."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            for i, frame in enumerate(self.frames):
                if match(frame):
                    return self.frames.pop(i)
            if self.closed:
                raise AssertionError(f"closed ({self.close_code}) before a match: {self.frames}")
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                raise AssertionError(f"no matching frame within {timeout}s: {self.frames}")
            self._arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), remaining)

    async def messages(self, count: int, timeout: float = WAIT) -> list[dict[str, Any]]:
        out = []
        for _ in range(count):
            frame = await self.wait_for(lambda f: isinstance(f, dict) and f["type"] == "message",
                                        timeout)
            out.append(frame["message"])
        return out

    @property
    def closed(self) -> bool:
        return self.close_code is not None

    async def wait_closed(self, timeout: float = WAIT) -> int:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self._reader), timeout)  # type: ignore[arg-type]
        assert self.close_code is not None, "connection did not close"
        return self.close_code

    async def close(self) -> None:
        await self.ws.close()
        if self._reader is not None:
            with contextlib.suppress(Exception):
                await self._reader


@contextlib.asynccontextmanager
async def clients(*coros: Any) -> AsyncIterator[list[Client]]:
    opened = [await c for c in coros]
    try:
        yield opened
    finally:
        for c in opened:
            await c.close()
