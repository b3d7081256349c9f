"""The limit baseline: a bare relay on the `websockets` library, no persistence, no checks.

    python -m bench.relay --port 8765

It speaks just enough of Parley's frames for the same load generator to drive it: `login`
(the token is taken as the user) gets `login_ok`; `send` gets `send_ok` with a per
conversation seq, and the `message` is pushed to every connection of the recipient.
`group_create` names a group's members (`group_create_ok`); a `send` with `group_id` is
pushed to every online member's connections but the sender's, with one `broadcast` call,
the library's way of writing a frame to many connections without waiting on any of them.
Heartbeats and `ack` are read and dropped. Compression is off, as in Parley. The suite
starts it in its own process and stops it with SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
from typing import Any

import orjson
from websockets.asyncio.server import ServerConnection, broadcast, serve
from websockets.exceptions import ConnectionClosed


class Relay:
    """Who is online, and the last seq of each conversation."""

    def __init__(self) -> None:
        self.online: dict[str, set[ServerConnection]] = {}
        self.seqs: dict[str, int] = {}
        self.groups: dict[str, set[str]] = {}

    async def handle(self, ws: ServerConnection) -> None:
        user: str | None = None
        try:
            async for raw in ws:
                if raw == "h":
                    continue
                frame = orjson.loads(raw)
                kind = frame.get("type")
                if kind == "login":
                    user = str(frame.get("token"))
                    self.online.setdefault(user, set()).add(ws)
                    await ws.send(_dump({"type": "login_ok", "id": frame.get("id"),
                                         "user_id_md5": user}))
                elif kind == "send" and user is not None and "group_id" in frame:
                    await self._send_group(ws, user, frame)
                elif kind == "send" and user is not None:
                    await self._send(ws, user, frame)
                elif kind == "group_create" and user is not None:
                    await self._create_group(ws, user, frame)
        except ConnectionClosed:
            pass
        finally:
            if user is not None:
                self.online.get(user, set()).discard(ws)

    async def _send(self, ws: ServerConnection, sender: str, frame: dict[str, Any]) -> None:
        to = str(frame.get("to"))
        conversation = "p2p:" + ":".join(sorted((sender, to)))
        seq = self.seqs.get(conversation, 0) + 1
        self.seqs[conversation] = seq
        await ws.send(_dump({"type": "send_ok", "id": frame.get("id"),
                             "conversation_id": conversation, "seq": seq}))
        push = _dump({"type": "message", "message": {
            "conversation_id": conversation, "seq": seq, "from": sender, "to": to,
            "content": frame.get("content"), "client_msg_id": frame.get("client_msg_id")}})
        for peer in list(self.online.get(to, ())):
            with contextlib.suppress(ConnectionClosed):
                await peer.send(push)

    async def _create_group(self, ws: ServerConnection, owner: str, frame: dict[str, Any]
                            ) -> None:
        group_id = str(frame.get("group_id"))
        self.groups[group_id] = {owner, *map(str, frame.get("members") or ())}
        await ws.send(_dump({"type": "group_create_ok", "id": frame.get("id"),
                             "group": {"group_id": group_id, "my_role": "owner"}}))

    async def _send_group(self, ws: ServerConnection, sender: str, frame: dict[str, Any]
                          ) -> None:
        group_id = str(frame.get("group_id"))
        conversation = "grp:" + group_id
        seq = self.seqs.get(conversation, 0) + 1
        self.seqs[conversation] = seq
        await ws.send(_dump({"type": "send_ok", "id": frame.get("id"),
                             "conversation_id": conversation, "seq": seq}))
        push = _dump({"type": "message", "message": {
            "conversation_id": conversation, "seq": seq, "from": sender, "group_id": group_id,
            "content": frame.get("content"), "client_msg_id": frame.get("client_msg_id")}})
        peers = [peer for member in self.groups.get(group_id, ())
                 for peer in self.online.get(member, ()) if peer is not ws]
        broadcast(peers, push)


def _dump(frame: dict[str, Any]) -> str:
    return orjson.dumps(frame).decode()


async def main(port: int) -> None:
    relay = Relay()
    stop = asyncio.get_running_loop().create_future()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set_result, None)
    async with serve(relay.handle, "127.0.0.1", port, compression=None, ping_interval=None,
                     max_size=2**16):
        print("ready", flush=True)
        await stop


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    asyncio.run(main(parser.parse_args().port))
