"""The processes a scenario starts besides Parley: the bare relay baseline and the load
generator, and the /proc readings taken of a server."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from tests.support import ROOT, free_port


@dataclass
class RelayServer:
    """`python -m bench.relay` on a loopback port, or another relay module that takes
    `--port` and prints `ready` (`bench.socketio_relay`)."""

    ws_url: str
    process: subprocess.Popen[bytes]

    @classmethod
    def start(cls, module: str = "bench.relay") -> RelayServer:
        port = free_port()
        process = subprocess.Popen([sys.executable, "-m", module, "--port", str(port)],
                                   cwd=ROOT, stdout=subprocess.PIPE)
        assert process.stdout is not None
        if process.stdout.readline().strip() != b"ready":
            process.kill()
            raise RuntimeError("relay did not start")
        return cls(f"ws://127.0.0.1:{port}", process)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def rss_kib(pid: int, field: str = "VmRSS") -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


async def _spawn() -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.loadgen", cwd=ROOT, stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE, limit=2**24)


async def run_loadgen(job: dict[str, Any]) -> dict[str, Any]:
    """Run one load generator job to the end; its result."""
    proc = await _spawn()
    try:
        out, _ = await asyncio.wait_for(proc.communicate(orjson.dumps(job) + b"\n"),
                                        job.get("timeout", 600) + 30)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    if proc.returncode != 0:
        raise RuntimeError(f"load generator failed ({proc.returncode})")
    return dict(orjson.loads(out.splitlines()[-1]))


async def hold_idle(job: dict[str, Any], server_pid: int, hold: float
                    ) -> tuple[dict[str, Any], int]:
    """Log in every token from a load generator, read the server's RSS while the
    connections are held, then let them go; the generator's result and that RSS."""
    results, rss = await hold_idle_many([job], [server_pid], hold)
    return results[0], rss[server_pid]


async def hold_idle_many(jobs: list[dict[str, Any]], server_pids: list[int], hold: float
                         ) -> tuple[list[dict[str, Any]], dict[int, int]]:
    """`hold_idle` with a load generator for each job, all at once: once every one has
    logged in, wait `hold` seconds, read each server's RSS, then let all go."""
    procs = [await _spawn() for _ in jobs]
    try:
        for proc, job in zip(procs, jobs, strict=True):
            assert proc.stdin is not None
            proc.stdin.write(orjson.dumps(job) + b"\n")
            await proc.stdin.drain()
        await asyncio.wait_for(asyncio.gather(*(_ready(p) for p in procs)),
                               max(job["timeout"] for job in jobs))
        await asyncio.sleep(hold)
        rss = {pid: rss_kib(pid) for pid in server_pids}
        results = await asyncio.gather(*(_stop(p) for p in procs))
    finally:
        for proc in procs:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
    return list(results), rss


async def _ready(proc: asyncio.subprocess.Process) -> None:
    assert proc.stdout is not None
    if (await proc.stdout.readline()).strip() != b"ready":
        raise RuntimeError("load generator did not log in")


async def _stop(proc: asyncio.subprocess.Process) -> dict[str, Any]:
    """Tell an idle load generator to let go; its result, which it writes before closing
    its connections. It gets a minute to close them, then it is killed."""
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(b"stop\n")
    await proc.stdin.drain()
    line = await asyncio.wait_for(proc.stdout.readline(), 60)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(proc.wait(), 90)
    return dict(orjson.loads(line))
