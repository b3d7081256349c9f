"""Debian's ejabberd as a benchmark baseline: a real IM server, started for one scenario.

`EjabberdServer.start(users)` makes a PostgreSQL database of its own (`bench_ejabberd_*`
on the tests' server), loads the package's `pg.sql` schema, writes the bench users
straight into its `users` table, writes a config from `ejabberd.yml.template` into a
temporary folder and runs ejabberd there in the foreground: `erl` with the package's
code, no Erlang distribution (so no node port and no epmd registration), one XMPP over
WebSocket listener on a loopback port. `stop()` ends it and drops the database and the
folder. The system's ejabberd service and its files are not touched.

`install.sh` beside this file installs the package; `missing()` says why the baseline
cannot run when it is not there.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from string import Template

import asyncpg

from bench.procs import rss_kib
from tests.support import PG_ADMIN_URL, free_port

HERE = Path(__file__).resolve().parent
ERLANG_LIBS = Path("/usr/lib/x86_64-linux-gnu")  # where Debian puts ejabberd's Erlang apps
SCHEMA = Path("/usr/share/ejabberd/sql/pg.sql")
DOMAIN = "bench.localhost"
START_SECONDS = 60.0  # a cold start on 2 busy cores takes about 5 s
SETTLE_SECONDS = 30  # the VM's memory settles about 12 s after the listener opens


def missing() -> str | None:
    """Why ejabberd cannot be run here, or None when it can."""
    if shutil.which("erl") is None:
        return "Erlang (erl) not installed; run bench/ejabberd/install.sh"
    if not list(ERLANG_LIBS.glob("ejabberd-*/ebin/ejabberd.app")) or not SCHEMA.exists():
        return "ejabberd not installed; run bench/ejabberd/install.sh"
    if not list(Path("/usr/lib/erlang/lib").glob("p1_pgsql-*/ebin")):
        return "ejabberd's PostgreSQL driver (erlang-p1-pgsql) not installed"
    return None


@dataclass
class EjabberdServer:
    """An ejabberd process, its folder and its database."""

    ws_url: str
    domain: str
    process: subprocess.Popen[bytes]
    folder: Path
    database: str

    @classmethod
    async def start(cls, users: list[str]) -> EjabberdServer:
        folder = Path(tempfile.mkdtemp(prefix="ejabberd-bench-"))
        database = f"bench_ejabberd_{uuid.uuid4().hex[:12]}"
        await _create_database(database, users)
        port = free_port()
        try:
            process = _launch(folder, _write_config(folder, database, port))
            server = cls(f"ws://127.0.0.1:{port}/ws", DOMAIN, process, folder, database)
            await server._wait_listening(port)
            await server._settle()
        except BaseException:
            await _drop_database(database)
            shutil.rmtree(folder, ignore_errors=True)
            raise
        return server

    async def _wait_listening(self, port: int) -> None:
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    return
            except OSError:
                await asyncio.sleep(0.2)
        self.process.kill()
        self.process.wait()
        raise RuntimeError(f"ejabberd did not start: {self.log_tail()}")

    async def _settle(self) -> None:
        """Wait until the VM's RSS holds still: it falls by about a fifth in the first ten
        seconds as start-up garbage is returned, which would hide what connections add."""
        last, steady = rss_kib(self.process.pid), 0
        for _ in range(SETTLE_SECONDS):
            await asyncio.sleep(1)
            now = rss_kib(self.process.pid)
            steady = steady + 1 if abs(now - last) < 256 else 0
            last = now
            if steady == 3:
                return

    def log_tail(self) -> str:
        logs = [self.folder / "ejabberd.log", self.folder / "console.log"]
        return " | ".join(p.read_text(errors="replace")[-600:] for p in logs if p.exists())

    async def stop(self) -> None:
        # The Erlang runtime takes SIGTERM as a clean stop (init:stop).
        self.process.send_signal(signal.SIGTERM)
        try:
            await asyncio.to_thread(self.process.wait, 20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        await _drop_database(self.database)
        shutil.rmtree(self.folder, ignore_errors=True)


def _write_config(folder: Path, database: str, port: int) -> Path:
    user = PG_ADMIN_URL.split("://", 1)[1].split("@", 1)[0].split(":", 1)[0]
    text = Template((HERE / "ejabberd.yml.template").read_text()).substitute(
        host=DOMAIN, database=database, db_user=user, port=port)
    path = folder / "ejabberd.yml"
    path.write_text(text)
    return path


def _launch(folder: Path, config: Path) -> subprocess.Popen[bytes]:
    (folder / "spool").mkdir()
    env = {
        **os.environ,
        "EJABBERD_CONFIG_PATH": str(config),
        "EJABBERD_LOG_PATH": str(folder / "ejabberd.log"),
        "ERL_LIBS": str(ERLANG_LIBS),
        "ERL_CRASH_DUMP": str(folder / "erl_crash.dump"),
        # As Debian's ejabberdctl sets it: the port (file descriptor) limit of the VM.
        "ERL_MAX_PORTS": "65000",
    }
    # erl execs the VM itself, so the pid is the server's for /proc readings. No -sname:
    # without distribution the node opens no port besides the listener.
    command = ["erl", "-noinput", "-noshell", "+K", "true", "+P", "1000000",
               "-mnesia", "dir", f'"{folder / "spool"}"', "-s", "ejabberd"]
    with (folder / "console.log").open("wb") as console:
        return subprocess.Popen(command, cwd=folder, env=env, stdout=console,
                                stderr=subprocess.STDOUT)


async def _create_database(name: str, users: list[str]) -> None:
    admin = await asyncpg.connect(PG_ADMIN_URL)
    try:
        await admin.execute(f'CREATE DATABASE "{name}" ENCODING \'UTF8\' TEMPLATE template0')
    finally:
        await admin.close()
    conn = await asyncpg.connect(_url_of(name))
    try:
        await conn.execute(await asyncio.to_thread(SCHEMA.read_text))
        # Bulk, as `ejabberdctl register` would take a node round trip per user.
        await conn.copy_records_to_table("users", records=[(u, u) for u in users],
                                         columns=["username", "password"])
    except BaseException:
        await conn.close()
        await _drop_database(name)
        raise
    await conn.close()


async def _drop_database(name: str) -> None:
    admin = await asyncpg.connect(PG_ADMIN_URL)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


def _url_of(database: str) -> str:
    return PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + database
