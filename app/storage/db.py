"""The database handle: one async engine, read connections and serialised writes.

SQLite allows one writer at a time; two aiosqlite connections that both try to
upgrade a read transaction to a write one fail at once with SQLITE_BUSY rather than
wait. So on SQLite every write transaction goes through one process-wide lock and
reads run beside it (WAL). PostgreSQL needs no lock: row locks order the writers.

A database that cannot be reached turns into :class:`ServiceUnavailable`
(``database_unavailable``): the caller may retry, and the node stays up. The pool
checks each connection before use, so service resumes by itself once it answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import asyncpg
import orjson
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from app.errors import ServiceUnavailable
from app.observability import metrics

# A connection that takes longer than this to open, or to get from the pool, counts as
# a database that does not answer: a send fails fast with a retryable code instead of
# hanging the client for asyncpg's default minute.
CONNECT_TIMEOUT_SECONDS = 5
# Failures that mean "cannot reach the database", as opposed to a statement it refused.
_UNREACHABLE = (
    OSError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
)


def now_us() -> int:
    return time.time_ns() // 1000


def _json_dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


class Database:
    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = make_url(url)
        self.is_sqlite = self.url.get_backend_name() == "sqlite"
        kwargs: dict[str, Any] = {
            "echo": echo,
            "json_serializer": _json_dumps,
            "json_deserializer": orjson.loads,
            # A failing statement's values (password hashes, message text) must not
            # reach the log through the exception's text.
            "hide_parameters": True,
        }
        if not self.is_sqlite:
            # Connections kept open: overflow connections are closed on return, so a
            # pool smaller than the usual concurrency opens (and TLS-negotiates) a new
            # connection for most transactions. py-spy showed that costing a quarter of
            # the send rate with 10 kept; 20 kept plus 10 overflow is the same ceiling.
            kwargs.update(pool_size=20, max_overflow=10, pool_pre_ping=True,
                          pool_timeout=CONNECT_TIMEOUT_SECONDS,
                          connect_args={"timeout": CONNECT_TIMEOUT_SECONDS})
        self.engine: AsyncEngine = create_async_engine(url, **kwargs)
        self._write_lock = asyncio.Lock() if self.is_sqlite else None
        if self.is_sqlite:
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)

    @contextlib.asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        """A transaction that commits on success and rolls back on any exception."""
        with _unreachable_as_unavailable():
            if self._write_lock is None:
                async with self.engine.begin() as conn:
                    yield conn
                return
            async with self._write_lock, self.engine.begin() as conn:
                yield conn

    @contextlib.asynccontextmanager
    async def driver(self) -> AsyncIterator[asyncpg.Connection]:
        """PostgreSQL only: the driver's own connection, in no transaction, for a single
        statement that is a transaction by itself (one round trip, no BEGIN or COMMIT)."""
        assert not self.is_sqlite
        with _unreachable_as_unavailable():
            async with self.engine.connect() as conn:
                raw = await conn.get_raw_connection()
                yield raw.driver_connection

    @contextlib.asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        with _unreachable_as_unavailable():
            async with self.engine.connect() as conn:
                yield conn

    async def ping(self) -> None:
        async with self.read() as conn:
            await conn.exec_driver_sql("SELECT 1")

    async def dispose(self) -> None:
        await self.engine.dispose()


def _is_unreachable(exc: BaseException) -> bool:
    """Whether an error, or one it was raised from, says the database is out of reach."""
    seen: BaseException | None = exc
    for _ in range(4):  # the driver's error sits at most a few links down the chain
        if seen is None:
            return False
        if isinstance(seen, _UNREACHABLE):
            return True
        if isinstance(seen, DBAPIError) and seen.connection_invalidated:
            return True
        seen = seen.__cause__ or seen.__context__
    return False


@contextlib.contextmanager
def _unreachable_as_unavailable() -> Iterator[None]:
    try:
        yield
    except ServiceUnavailable:
        raise
    except PoolTimeout as exc:
        # Every pooled connection is busy: overload, which a retry a little later
        # survives, not a fault of the request.
        metrics.DATABASE_ERRORS.inc()
        raise ServiceUnavailable("The server is busy; try again shortly.",
                                 code="database_busy") from exc
    except Exception as exc:
        if not _is_unreachable(exc):
            raise
        metrics.DATABASE_ERRORS.inc()
        raise ServiceUnavailable("The database does not answer; try again shortly.",
                                 code="database_unavailable") from exc


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    # FULL: a committed message survives a power cut, not only a process crash.
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()
