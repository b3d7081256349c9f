"""The peer baseline: what a team would build with python-socketio instead of Parley.

    python -m bench.socketio_relay --port 8766 [--redis redis://127.0.0.1:6379/0]

A Socket.IO server (python-socketio's ASGI app under uvicorn, per-message deflate off as
in Parley) with its Redis manager, so every message goes through Redis pub/sub the way it
would between several such processes. It does what the bare relay does and no more: the
`auth` of the connect names the user, and each user has a room; a `send` event is
answered (Socket.IO's ack) with `send_ok` and a per conversation seq, and the `message`
is emitted to the recipient's room. `ack` events are read and dropped. Nothing persists.
The suite starts it in its own process and stops it with SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import uuid
from typing import Any

import socketio
import uvicorn

# Each run publishes on a channel of its own: nothing else listening on the shared Redis
# hears the benchmark's traffic, and an earlier run's leftovers are not heard here.
CHANNEL_PREFIX = "parley-bench-socketio-"


class SocketIORelay:
    """Who each connection is, and the last seq of each conversation."""

    def __init__(self, server: socketio.AsyncServer) -> None:
        self.server = server
        self.users: dict[str, str] = {}
        self.seqs: dict[str, int] = {}
        server.on("connect", self.connect)
        server.on("disconnect", self.disconnect)
        server.on("send", self.send)

    async def connect(self, sid: str, environ: dict[str, Any], auth: Any) -> bool:
        user = auth.get("token") if isinstance(auth, dict) else None
        if not user:
            return False
        self.users[sid] = str(user)
        await self.server.enter_room(sid, str(user))
        return True

    async def disconnect(self, sid: str, *_: Any) -> None:
        self.users.pop(sid, None)

    async def send(self, sid: str, frame: dict[str, Any]) -> dict[str, Any]:
        sender, to = self.users[sid], str(frame.get("to"))
        conversation = "p2p:" + ":".join(sorted((sender, to)))
        seq = self.seqs.get(conversation, 0) + 1
        self.seqs[conversation] = seq
        await self.server.emit("message", {
            "conversation_id": conversation, "seq": seq, "from": sender, "to": to,
            "content": frame.get("content"), "client_msg_id": frame.get("client_msg_id")},
            room=to)
        return {"type": "send_ok", "id": frame.get("id"), "conversation_id": conversation,
                "seq": seq}


def build(redis_url: str, channel: str) -> socketio.ASGIApp:
    manager = socketio.AsyncRedisManager(redis_url, channel=channel)
    # Protocol pings are Socket.IO's own heartbeat (engine.io), on by default: clients of
    # this server would keep them, so the baseline keeps them too.
    server = socketio.AsyncServer(async_mode="asgi", client_manager=manager,
                                  cors_allowed_origins=[], transports=["websocket"])
    SocketIORelay(server)
    return socketio.ASGIApp(server)


async def main(port: int, redis_url: str, channel: str) -> None:
    config = uvicorn.Config(build(redis_url, channel), host="127.0.0.1", port=port,
                            ws_per_message_deflate=False, ws_ping_interval=None,
                            log_level="warning", access_log=False, lifespan="off",
                            timeout_graceful_shutdown=2)
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    for _ in range(200):  # up to 10 s for the socket to be bound
        if server.started or serving.done():
            break
        await asyncio.sleep(0.05)
    if not server.started:
        raise SystemExit("socketio relay did not start")
    print("ready", flush=True)
    await serving  # uvicorn stops on SIGTERM


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--channel", default=CHANNEL_PREFIX + uuid.uuid4().hex[:12])
    args = parser.parse_args()
    asyncio.run(main(args.port, args.redis, args.channel))
