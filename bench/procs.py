"""The processes a scenario starts besides Parley: the bare relay baseline and the load
generator, and the /proc readings taken of a server."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from tests.support import ROOT, free_port


@dataclass
class RelayServer:
    """`python -m bench.relay` on a loopback port."""

    ws_url: str
    process: subprocess.Popen[bytes]

    @classmethod
    def start(cls) -> RelayServer:
        port = free_port()
        process = subprocess.Popen([sys.executable, "-m", "bench.relay", "--port", str(port)],
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
    proc = await _spawn()
    assert proc.stdin is not None and proc.stdout is not None
    try:
        proc.stdin.write(orjson.dumps(job) + b"\n")
        await proc.stdin.drain()
        line = await asyncio.wait_for(proc.stdout.readline(), job["timeout"])
        if line.strip() != b"ready":
            raise RuntimeError("load generator did not log in")
        await asyncio.sleep(hold)
        rss = rss_kib(server_pid)
        proc.stdin.write(b"stop\n")
        await proc.stdin.drain()
        out = await asyncio.wait_for(proc.stdout.read(), 60)
        await proc.wait()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    return dict(orjson.loads(out.splitlines()[-1])), rss
