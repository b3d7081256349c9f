"""Presence on one node, through the public interfaces: the App Server's bulk query and the
clients' presence_subscribe frames (several nodes: tests/multinode)."""

from __future__ import annotations

import hashlib
from typing import Any

from tests.support import Api, AppCreds, Client, Server


def _is(kind: str) -> Any:
    return lambda f: isinstance(f, dict) and f["type"] == kind


async def _login(server: Server, app: AppCreds, token: str, platform: str) -> Client:
    client = await Client.connect(server)
    reply = await client.request({"type": "login", "app_key": app.key, "token": token,
                                  "platform": platform})
    assert reply["type"] == "login_ok", reply
    return client


async def test_query_answers_each_user_once_in_the_order_asked(
    api: Api, app: AppCreds, server: Server
) -> None:
    """The bulk query shows who is online with their devices' platforms; IDs in any case,
    repeats answered once, users never seen as offline."""
    alice, bob = await api.import_users(app, "alice", "bob")
    phone = await _login(server, app, await api.token(app, alice), "android")

    r = await api.call(app, "POST", "/v1/presence/query",
                       json={"users": [bob, alice.upper(), alice]})
    await phone.close()

    assert r.status_code == 200, r.text
    found = r.json()["presence"]
    assert [(p["user_id_md5"], p["online"]) for p in found] == [(bob, False), (alice, True)]
    assert [d["platform"] for d in found[1]["devices"]] == ["android"]


async def test_query_needs_the_apps_credentials_and_valid_ids(api: Api, app: AppCreds) -> None:
    """No credentials is 401; an ID that is not 32 hex digits is 400 invalid_user_id."""
    anonymous = await api.http.post("/v1/presence/query", json={"users": ["a" * 32]})
    bad = await api.call(app, "POST", "/v1/presence/query", json={"users": ["nope"]})

    assert anonymous.status_code == 401
    assert bad.status_code == 400 and bad.json()["code"] == "invalid_user_id"


async def test_subscribe_shows_the_state_now_then_pushes_changes_until_unsubscribed(
    api: Api, app: AppCreds, server: Server
) -> None:
    """presence_subscribe answers with the current state, each login and logout of the
    watched user is pushed, and after presence_unsubscribe nothing more comes."""
    alice, bob = await api.import_users(app, "alice", "bob")
    watcher = await _login(server, app, await api.token(app, alice), "web")

    now = await watcher.request({"type": "presence_subscribe", "users": [bob]})
    bob_c = await _login(server, app, await api.token(app, bob), "ios")
    online = await watcher.wait_for(_is("presence"))
    await bob_c.close()
    offline = await watcher.wait_for(_is("presence"))
    done = await watcher.request({"type": "presence_unsubscribe", "users": [bob]})
    again = await _login(server, app, await api.token(app, bob), "ios")
    await watcher.request({"type": "conversations"})  # any push would come before this

    assert now["presence"] == [{"user_id_md5": bob, "online": False, "devices": []}]
    assert online["online"] is True and online["devices"][0]["platform"] == "ios"
    assert offline["online"] is False
    assert done["type"] == "presence_unsubscribe_ok"
    assert not any(_is("presence")(f) for f in watcher.frames)
    await again.close()
    await watcher.close()


async def test_a_connection_watches_at_most_1000_users(
    api: Api, app: AppCreds, server: Server
) -> None:
    """Past 1000 watched users in all, presence_subscribe is refused with too_many_watched."""
    (alice,) = await api.import_users(app, "alice")
    client = await _login(server, app, await api.token(app, alice), "web")
    users = [hashlib.md5(str(n).encode()).hexdigest() for n in range(1001)]

    first = await client.request({"type": "presence_subscribe", "users": users[:1000]})
    over = await client.request({"type": "presence_subscribe", "users": users[1000:]})

    assert first["type"] == "presence_subscribe_ok" and len(first["presence"]) == 1000
    assert over["code"] == "too_many_watched" and over["data"] == {"limit": 1000}
    await client.close()
