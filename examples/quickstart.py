"""Parley end to end: an App Server and two clients, one step at a time.

    python examples/quickstart.py --base-url http://127.0.0.1:8000 --admin-token TOKEN

Parley has two doors. Your App Server (your own backend) calls the REST API with its app
key and secret. Your users' clients connect to the WebSocket at /ws with a short-lived
login token that the App Server mints for them. This script plays the operator, the App
Server and two clients, Alice and Bob, and says in plain words what happens at each step.

It checks every answer against the documented behaviour and stops at the first one that
is off, naming the step, with exit status 1. So it doubles as a smoke test of a fresh
deployment. It needs only httpx and websockets.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import os
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, WebSocketException

# The App Server's own user IDs. Parley never stores them: it names each user by the MD5
# of this string, which the App Server can work out for itself at any time.
DEMO_USERS = ("alice", "bob")
# Long enough for a busy server, short enough that a lost frame fails the run quickly.
WAIT_SECONDS = 10.0
TOTAL_STEPS = 8

AppAuth = tuple[str, str]  # (app key, app secret), sent as HTTP Basic credentials


class StepFailed(Exception):
    """Parley did not answer as documented; the message says what was expected."""


class Progress:
    """Announces each step and remembers the current one, so that a failure can name it."""

    def __init__(self) -> None:
        self.number = 0
        self.title = "starting"

    def begin(self, title: str) -> None:
        self.number += 1
        self.title = title
        print(f"\nStep {self.number}/{TOTAL_STEPS}: {title}", flush=True)


@dataclass
class User:
    """One demo user as the App Server knows them."""

    name: str  # the App Server's own ID, e.g. "alice"
    user_id: str  # the MD5 ID that Parley names the user by
    token: str = ""  # a login token for the user's client


def say(line: str) -> None:
    print(f"    {line}", flush=True)


def check(condition: bool, problem: str) -> None:
    if not condition:
        raise StepFailed(problem)


def short(credential: str) -> str:
    """Enough of a secret or token to recognise it in a log, too little to use it."""
    return credential[:5] + "…"


def websocket_url(base_url: str) -> str:
    """The data plane lives next to the REST API: http://host/x becomes ws://host/x/ws."""
    parts = urlsplit(base_url)
    scheme = {"http": "ws", "https": "wss"}[parts.scheme]
    return urlunsplit((scheme, parts.netloc, parts.path.rstrip("/") + "/ws", "", ""))


# --- The App Server's side: REST ------------------------------------------------------


def json_body(response: httpx.Response, status: int) -> Any:
    """The body of an answer that must have the given HTTP status."""
    if response.status_code != status:
        raise StepFailed(
            f"{response.request.method} {response.request.url.path} answered "
            f"HTTP {response.status_code}, expected {status}: {error_text(response)}"
        )
    return response.json()


def error_text(response: httpx.Response) -> str:
    # Every Parley error is {"code", "message"}. Show only those two fields: an answer
    # that is not an error could carry a secret.
    try:
        body = response.json()
        return f"{body['code']}: {body['message']}"
    except (ValueError, KeyError, TypeError):
        return "(the body is not a Parley error)"


async def create_app(http: httpx.AsyncClient, admin_token: str) -> AppAuth:
    """The operator creates an app (a tenant) with the admin token."""
    response = await http.post(
        "/admin/apps",
        json={"name": "quickstart"},
        headers={"Authorization": f"Bearer {admin_token}"},
    )
    body = json_body(response, 201)
    say(f"app_key {body['app_key']}, app_secret {short(body['app_secret'])}")
    say("The secret appears in this answer only; Parley keeps just its hash.")
    return body["app_key"], body["app_secret"]


async def import_users(http: httpx.AsyncClient, app: AppAuth, names: tuple[str, ...]
                       ) -> list[User]:
    """The App Server sends its own user IDs; Parley answers with their MD5 IDs."""
    response = await http.post(
        "/v1/users/import", auth=app, json={"users": [{"user_id": name} for name in names]}
    )
    body = json_body(response, 200)
    check(body["failed"] == 0, f"{body['failed']} of the users failed to import")

    # Each result carries the index of its item, so match them up by that.
    results = sorted(body["results"], key=lambda result: result["index"])
    users = []
    for name, result in zip(names, results, strict=True):
        expected = hashlib.md5(name.encode()).hexdigest()
        check(result["user_id_md5"] == expected,
              f"{name!r} came back as {result['user_id_md5']}, not its MD5 {expected}")
        say(f"{name} is {expected} ({result['status']}), which is md5({name!r})")
        users.append(User(name, expected))
    return users


async def mint_token(http: httpx.AsyncClient, app: AppAuth, user: User) -> None:
    """Clients never see the app secret: the App Server hands each one a login token."""
    response = await http.post(f"/v1/users/{user.user_id}/tokens", auth=app, json={})
    body = json_body(response, 201)
    check(body["user_id_md5"] == user.user_id, "the token was minted for someone else")
    user.token = body["token"]
    say(f"{user.name}: token {short(user.token)}, good until {body['expires_at']}")


async def chat_log(http: httpx.AsyncClient, app: AppAuth, conversation_id: str,
                   start: datetime, end: datetime) -> list[dict[str, Any]]:
    """Messages with start <= created_at < end, oldest first, following every page."""
    # Passing the times as params lets httpx percent-encode the "+" of an offset; typed
    # straight into a URL, a "+" would arrive as a space.
    params = {"from": start.isoformat(), "to": end.isoformat()}
    found: list[dict[str, Any]] = []
    while True:
        response = await http.get(
            f"/v1/conversations/{conversation_id}/messages", auth=app, params=params
        )
        page = json_body(response, 200)
        found += page["messages"]
        if page["next_cursor"] is None:
            return found
        params["cursor"] = page["next_cursor"]


# --- A user's client: the WebSocket -----------------------------------------------------


class Client:
    """One device of one user: requests get replies with the same id, events get pushed.

    Pushed frames (a new message, a read marker) can arrive while the client waits for
    a reply; they wait in the inbox until asked for.
    """

    def __init__(self, ws: ClientConnection, user: User) -> None:
        self.ws = ws
        self.user = user
        self.inbox: list[dict[str, Any]] = []
        self.requests_sent = 0

    async def request(self, frame: dict[str, Any], reply_type: str) -> dict[str, Any]:
        self.requests_sent += 1
        request_id = f"{self.user.name}-{self.requests_sent}"
        await self.ws.send(json.dumps({**frame, "id": request_id}))
        while True:
            reply = await self.receive()
            if reply.get("id") == request_id:
                break
            self.inbox.append(reply)

        if reply["type"] != reply_type:
            raise StepFailed(
                f"{self.user.name}'s {frame['type']!r} got {reply['type']!r}, "
                f"expected {reply_type!r}: {reply.get('code')}: {reply.get('message')}"
            )
        return reply

    async def send_text(self, to: User, text: str) -> dict[str, Any]:
        """Send a text message; the send_ok ack says it is stored, with its seq."""
        return await self.request(
            {
                "type": "send",
                "to": to.user_id,
                "content": {"type": "text", "text": text},
                # If the ack is lost, a resend with the same ID is stored only once.
                "client_msg_id": uuid.uuid4().hex,
            },
            "send_ok",
        )

    async def next_message(self) -> dict[str, Any]:
        """The next message pushed to this device."""
        for index, frame in enumerate(self.inbox):
            if frame["type"] == "message":
                return self.inbox.pop(index)["message"]
        while True:
            frame = await self.receive()
            if frame["type"] == "message":
                return frame["message"]
            self.inbox.append(frame)

    async def receive(self) -> dict[str, Any]:
        try:
            text = await asyncio.wait_for(self.ws.recv(), WAIT_SECONDS)
        except TimeoutError:
            raise StepFailed(f"{self.user.name} heard nothing for {WAIT_SECONDS} s") from None
        except ConnectionClosed as exc:
            raise StepFailed(f"Parley closed {self.user.name}'s connection: {exc}") from None
        frame: dict[str, Any] = json.loads(text)
        return frame


@contextlib.asynccontextmanager
async def logged_in(ws_url: str, app_key: str, user: User) -> AsyncIterator[Client]:
    """A connected, logged-in client; leaving the block disconnects it."""
    # Parley's frames are small, so per-message compression would cost memory for
    # nothing; and liveness is Parley's own one-byte heartbeat, not protocol pings.
    # (A long-lived client sends "h" every heartbeat.interval_ms; this one is brief.)
    async with connect(ws_url, compression=None, ping_interval=None) as ws:
        client = Client(ws, user)
        welcome = await client.request(
            {"type": "login", "app_key": app_key, "token": user.token}, "login_ok"
        )
        check(welcome["user_id_md5"] == user.user_id,
              f"{user.name} was logged in as {welcome['user_id_md5']}")
        say(f"{user.name} is logged in; heartbeat every "
            f"{welcome['heartbeat']['interval_ms']} ms")
        yield client


# --- The steps that need both sides ---------------------------------------------------


async def send_and_receive(sender: Client, recipient: Client, text: str) -> dict[str, Any]:
    """A message sent while both are online is acked to one and pushed to the other."""
    ack = await sender.send_text(recipient.user, text)
    message = await recipient.next_message()
    check(message["msg_id"] == ack["msg_id"],
          f"{recipient.user.name} got message {message['msg_id']}, not {ack['msg_id']}")
    check(message["from"] == sender.user.user_id and message["seq"] == ack["seq"],
          f"{recipient.user.name} got the message with the wrong sender or seq")
    check(message["content"] == {"type": "text", "text": text},
          f"{recipient.user.name} got different content from what was sent")
    say(f"{sender.user.name} -> {recipient.user.name}: {text!r} "
        f"(acked with seq {ack['seq']}, pushed to {recipient.user.name} at once)")
    return ack


async def catch_up(bob: Client, conversation_id: str, last_seq_held: int,
                   missed: list[dict[str, Any]]) -> None:
    """Bob back online: the unread count, then a sync from the last seq he holds."""
    listing = await bob.request({"type": "conversations"}, "conversations_ok")
    found = [c for c in listing["conversations"] if c["conversation_id"] == conversation_id]
    check(len(found) == 1, "the conversation is missing from Bob's conversation list")
    # Sending counts as reading up to there, so Bob's read marker sits at his own reply;
    # only the messages after it are unread.
    check(found[0]["unread"] == len(missed),
          f"the list shows {found[0]['unread']} unread, expected {len(missed)}")
    say(f"Bob's conversation list: {found[0]['unread']} unread, "
        f"last seq {found[0]['last_seq']}")

    page = await bob.request(
        {"type": "sync", "conversation_id": conversation_id, "after_seq": last_seq_held},
        "sync_ok",
    )
    got = [m["msg_id"] for m in page["messages"]]
    check(got == [ack["msg_id"] for ack in missed],
          f"sync after seq {last_seq_held} returned seqs "
          f"{[m['seq'] for m in page['messages']]}, expected {[a['seq'] for a in missed]}")
    check(not page["has_more"], "sync says there is more, but nothing else was sent")
    for message in page["messages"]:
        say(f"synced seq {message['seq']}: {message['content']['text']!r}")

    read = await bob.request(
        {"type": "read", "conversation_id": conversation_id, "seq": page["last_seq"]},
        "read_ok",
    )
    check(read["seq"] == page["last_seq"], f"the read marker moved to {read['seq']}")
    say(f"Bob marks the conversation read up to seq {read['seq']}")


async def check_chat_log(http: httpx.AsyncClient, app: AppAuth, conversation_id: str,
                         acks: list[dict[str, Any]]) -> None:
    """The App Server's view: every message of the conversation in a time range, in order."""
    # Use the server's own times from the acks, so clock skew here cannot matter, and
    # show them in this machine's time zone: any offset works, but one is required.
    first = datetime.fromisoformat(acks[0]["created_at"]).astimezone()
    last = datetime.fromisoformat(acks[-1]["created_at"]).astimezone()
    # "to" is excluded, so to take in the last message run one microsecond past it.
    end = last + timedelta(microseconds=1)
    say(f"from {first.isoformat()} (included) to {end.isoformat()} (excluded)")

    log = await chat_log(http, app, conversation_id, first, end)
    check([m["msg_id"] for m in log] == [ack["msg_id"] for ack in acks],
          f"the chat log has seqs {[m['seq'] for m in log]}, "
          f"expected {[ack['seq'] for ack in acks]}")
    for message in log:
        say(f"seq {message['seq']} at {message['created_at']}: {message['content']['text']!r}")

    # And the other half of "half-open": ending the range at the last message's own
    # time leaves that message out.
    without_last = await chat_log(http, app, conversation_id, first, last)
    check(len(without_last) == len(acks) - 1,
          f"a range ending at the last message's time returned {len(without_last)} messages, "
          f"expected {len(acks) - 1}")
    say(f"ending the range at the last message's own time gives {len(without_last)}: "
        "'to' is excluded, as documented")


# --- The tour -----------------------------------------------------------------------


async def tour(base_url: str, admin_token: str, progress: Progress) -> None:
    ws_url = websocket_url(base_url)
    async with httpx.AsyncClient(base_url=base_url, timeout=WAIT_SECONDS) as http:
        progress.begin("The operator creates an app through the admin API")
        app = await create_app(http, admin_token)
        app_key = app[0]  # clients name the app by its key; the secret stays with you

        progress.begin("The App Server imports two users by its own user IDs")
        alice, bob = await import_users(http, app, DEMO_USERS)

        progress.begin("The App Server mints a login token for each user")
        await mint_token(http, app, alice)
        await mint_token(http, app, bob)

        progress.begin(f"Both clients connect to {ws_url} and log in")
        async with logged_in(ws_url, app_key, alice) as alice_client:
            async with logged_in(ws_url, app_key, bob) as bob_client:
                progress.begin("Alice and Bob exchange messages while both are online")
                acks = [
                    await send_and_receive(alice_client, bob_client, "Hi Bob, this is Alice."),
                    await send_and_receive(bob_client, alice_client, "Hello Alice!"),
                ]
                conversation_id = acks[0]["conversation_id"]
                check(acks[1]["conversation_id"] == conversation_id,
                      "the two directions landed in different conversations")
                # A client remembers the highest seq it holds, to sync from it later.
                bob_last_seq = max(ack["seq"] for ack in acks)

            progress.begin("Bob disconnects; Alice sends him two messages while he is away")
            say("Bob's client is closed")
            missed = [
                await alice_client.send_text(bob, "Are you there?"),
                await alice_client.send_text(bob, "Call me when you are back."),
            ]
            for ack in missed:
                say(f"Alice's message is stored with seq {ack['seq']}, waiting for Bob")
            acks += missed

        progress.begin("Bob reconnects and catches up")
        async with logged_in(ws_url, app_key, bob) as bob_client:
            await catch_up(bob_client, conversation_id, bob_last_seq, missed)

        progress.begin("The App Server reads the chat log over REST")
        await check_chat_log(http, app, conversation_id, acks)


def fail(progress: Progress, reason: str) -> int:
    print(f"\nFAILED at step {progress.number}/{TOTAL_STEPS} ({progress.title}): {reason}",
          file=sys.stderr)
    return 1


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", default="http://127.0.0.1:8000",
                        help="where Parley's REST API answers (default: %(default)s)")
    parser.add_argument("--admin-token", default=os.environ.get("PARLEY_ADMIN_TOKEN"),
                        help="the server's PARLEY_ADMIN_TOKEN (default: from the environment)")
    args = parser.parse_args()
    if args.admin_token is None:
        parser.error("give --admin-token or set PARLEY_ADMIN_TOKEN")
    if urlsplit(args.base_url).scheme not in ("http", "https"):
        parser.error("--base-url must start with http:// or https://")
    return args


def main() -> int:
    args = parse_args()
    progress = Progress()
    try:
        asyncio.run(tour(args.base_url, args.admin_token, progress))
    except StepFailed as exc:
        return fail(progress, str(exc))
    except (httpx.HTTPError, OSError, WebSocketException) as exc:
        return fail(progress, f"could not talk to Parley: {exc!r}")
    except (KeyError, TypeError, ValueError) as exc:
        return fail(progress, f"an answer was not shaped as documented: {exc!r}")
    print("\nEvery step behaved as documented.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
