"""A connection's session over time, on real servers: expiry, refresh, kick, password
login, deletion, heartbeat and login timeouts.

Timeouts are watched on a second server with short timings. It shares the database
with the main one, so an app, user or token made through `api` works on both.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support import Api, AppCreds, Client, Server, TestDatabase

# The shortest token mint allows; a session that runs out this fast keeps the test short.
SHORT_TTL = 1
QUICK = {
    "heartbeat_interval_seconds": 0.5,
    "heartbeat_timeout_seconds": 1,
    "login_timeout_seconds": 1,
    "reaper_tick_seconds": 0.1,
}


@pytest.fixture(scope="module")
def quick_server(database: TestDatabase, tmp_path_factory: pytest.TempPathFactory
                 ) -> Iterator[Server]:
    """A server that closes quiet connections after one second."""
    srv = Server.start(database, tmp_path_factory.mktemp("quick-server"), **QUICK)
    yield srv
    srv.stop()


def _is(kind: str) -> Any:
    return lambda f: isinstance(f, dict) and f["type"] == kind


def _md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


async def _me(api: Api, token: str) -> int:
    r = await api.http.get("/v1/me", headers={"Authorization": f"Bearer {token}"})
    return r.status_code


async def _talks(sender: Client, to: str, receiver: Client | None = None) -> dict[str, Any]:
    """Send a text and check it lands; the receiver's copy, or the ack when none listens."""
    ack = await sender.request({"type": "send", "to": to,
                                "content": {"type": "text", "text": "still here"}})
    assert ack["type"] == "send_ok", ack
    if receiver is not None:
        (msg,) = await receiver.messages(1)
        assert msg["msg_id"] == ack["msg_id"]
        return msg
    return ack


async def test_session_not_refreshed_closes_with_4003_when_the_token_expires(
    api: Api, app: AppCreds, server: Server
) -> None:
    """A connection whose token runs out gets a token_expired error, then close 4003."""
    (alice,) = await api.import_users(app, "alice")
    client = await Client.login(server, app, await api.token(app, alice, ttl=SHORT_TTL))

    assert await client.wait_closed() == 4003
    assert (await client.wait_for(_is("error")))["code"] == "token_expired"
    assert client.close_reason == "token_expired"


async def test_refresh_keeps_the_connection_open_past_the_first_tokens_expiry(
    api: Api, app: AppCreds, server: Server
) -> None:
    """A refresh with a new token moves the session's end, so the reaper leaves it open."""
    alice, bob = await api.import_users(app, "alice", "bob")
    client = await Client.connect(server)
    login = await client.request({"type": "login", "app_key": app.key,
                                  "token": await api.token(app, alice, ttl=SHORT_TTL)})

    refresh = await client.request({"type": "refresh", "token": await api.token(app, alice)})
    await asyncio.sleep(SHORT_TTL + 0.5)

    assert refresh["type"] == "refresh_ok"
    assert refresh["expires_at"] > login["expires_at"]
    assert not client.closed
    await _talks(client, bob)
    await client.close()


@pytest.mark.parametrize("whose", ["other-user", "garbage"])
async def test_refresh_with_a_bad_token_is_an_error_and_the_session_goes_on(
    api: Api, app: AppCreds, server: Server, whose: str
) -> None:
    """A refresh with someone else's or a made-up token gets an error frame and closes nothing."""
    alice, bob = await api.import_users(app, "alice", "bob")
    client = await Client.login(server, app, await api.token(app, alice))
    listener = await Client.login(server, app, await api.token(app, bob))
    token = await api.token(app, bob) if whose == "other-user" else "lt_not-a-token"

    reply = await client.request({"type": "refresh", "token": token})

    assert reply["type"] == "error" and reply["code"] == "token_invalid"
    msg = await _talks(client, bob, listener)
    assert msg["from"] == alice  # still alice's session, not bob's
    await client.close()
    await listener.close()


async def test_kick_closes_every_device_with_4004_and_revokes_the_token(
    api: Api, app: AppCreds, server: Server
) -> None:
    """A kick sends kicked then closes 4004 on each device; the token then fails everywhere."""
    alice, bob = await api.import_users(app, "alice", "bob")
    token = await api.token(app, alice)
    phone = await Client.login(server, app, token)
    laptop = await Client.login(server, app, await api.token(app, alice))
    bob_token = await api.token(app, bob)
    bystander = await Client.login(server, app, bob_token)

    r = await api.call(app, "POST", f"/v1/users/{alice}/kick", json={"reason": "banned"})

    assert r.status_code == 200 and r.json()["revoked_tokens"] == 2
    for device in (phone, laptop):
        assert await device.wait_closed() == 4004
        assert device.frames[-1] == {"type": "kicked", "reason": "banned"}
    retry = await Client.connect(server)
    refused = await retry.request({"type": "login", "app_key": app.key, "token": token})
    assert refused["code"] == "token_invalid" and await retry.wait_closed() == 4002
    assert await _me(api, token) == 401

    assert await _me(api, bob_token) == 200
    await _talks(bystander, alice)
    await bystander.close()


async def test_password_login_returns_a_token_that_logs_in_again(
    api: Api, app: AppCreds, server: Server
) -> None:
    """Login by MD5 ID and password digest answers login_ok with a token that works on its own."""
    (alice,) = await api.import_users(app, "alice", password_md5=_md5("s3cret"))
    first = await Client.connect(server)

    login = await first.request({"type": "login", "app_key": app.key,
                                 "user_id_md5": alice, "password_md5": _md5("s3cret")})
    second = await Client.login(server, app, login["token"])

    assert login["type"] == "login_ok" and login["user_id_md5"] == alice
    assert not second.closed
    await first.close()
    await second.close()


@pytest.mark.parametrize("stored", ["s3cret", None], ids=["wrong-password", "no-password"])
async def test_password_login_with_the_wrong_password_closes_with_4002(
    api: Api, app: AppCreds, server: Server, stored: str | None
) -> None:
    """A password that does not match, or a user without one, gets bad_password and close 4002."""
    fields = {"password_md5": _md5(stored)} if stored else {}
    (alice,) = await api.import_users(app, "alice", **fields)
    client = await Client.connect(server)

    reply = await client.request({"type": "login", "app_key": app.key,
                                  "user_id_md5": alice, "password_md5": _md5("guess")})

    assert reply["type"] == "error" and reply["code"] == "bad_password"
    assert "token" not in reply
    assert await client.wait_closed() == 4002


async def test_deleting_a_user_closes_their_connections_with_4006(
    api: Api, app: AppCreds, server: Server
) -> None:
    """DELETE of a user sends user_deleted and closes 4006; other users keep talking."""
    alice, bob, carol = await api.import_users(app, "alice", "bob", "carol")
    token = await api.token(app, alice)
    doomed = await Client.login(server, app, token)
    b = await Client.login(server, app, await api.token(app, bob))
    c = await Client.login(server, app, await api.token(app, carol))

    r = await api.call(app, "DELETE", f"/v1/users/{alice}")

    assert r.status_code == 204
    assert await doomed.wait_closed() == 4006
    assert (await doomed.wait_for(_is("error")))["code"] == "user_deleted"
    assert await _me(api, token) == 401
    await _talks(b, carol, c)
    await b.close()
    await c.close()


async def _beat(client: Client, every: float) -> None:
    while True:
        await client.send_raw("h")
        await asyncio.sleep(every)


async def test_quiet_connection_closes_with_4005_and_one_that_beats_stays_open(
    api: Api, app: AppCreds, quick_server: Server
) -> None:
    """Nothing heard for the timeout closes 4005; a client sending 'h' meanwhile is kept."""
    alice, bob = await api.import_users(app, "alice", "bob")
    quiet = await Client.login(quick_server, app, await api.token(app, alice))
    beating = await Client.login(quick_server, app, await api.token(app, bob))
    beater = asyncio.create_task(_beat(beating, QUICK["heartbeat_interval_seconds"] / 2))

    assert await quiet.wait_closed() == 4005
    assert (await quiet.wait_for(_is("error")))["code"] == "heartbeat_timeout"
    # Outlive the timeout by a few reaper passes before looking at the beating one.
    await asyncio.sleep(QUICK["heartbeat_timeout_seconds"] / 2)

    assert not beating.closed
    assert (await beating.request({"type": "conversations"}))["type"] == "conversations_ok"
    beater.cancel()
    await beating.close()


async def test_connection_that_never_logs_in_closes_with_4001(quick_server: Server) -> None:
    """A connection with no login frame within the login timeout gets login_timeout, close 4001."""
    client = await Client.connect(quick_server)

    assert await client.wait_closed() == 4001
    assert (await client.wait_for(_is("error")))["code"] == "login_timeout"
