"""Two nodes as one deployment: messages, sequences, presence and the device policy cross
from a client on one node to clients on the other."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from tests.support import Api, AppCreds, Client, Server, clients

# Messages each side sends at once: under the default per-user send burst (50), so that
# rate limiting does not refuse any.
BURST = 40


def _is(kind: str) -> Any:
    return lambda f: isinstance(f, dict) and f["type"] == kind


async def login(node: Server, app: AppCreds, token: str, platform: str = "other") -> Client:
    client = await Client.connect(node)
    reply = await client.request({"type": "login", "app_key": app.key, "token": token,
                                  "platform": platform})
    assert reply["type"] == "login_ok", reply
    return client


def text(body: str) -> dict[str, str]:
    return {"type": "text", "text": body}


async def test_one_to_one_messages_cross_nodes_both_ways_and_reach_every_device(
    api: Api, app: AppCreds, pair: tuple[Server, Server]
) -> None:
    """alice on node A and bob on node B hear each other; alice's laptop on B gets her own
    message too, and the phone that sent it gets only send_ok."""
    a, b = pair
    alice, bob = await api.import_users(app, "alice", "bob")
    async with clients(login(a, app, await api.token(app, alice), "ios"),
                       login(b, app, await api.token(app, alice), "desktop"),
                       login(b, app, await api.token(app, bob))) as (phone, laptop, bob_c):
        sent = await phone.request({"type": "send", "to": bob, "content": text("hi from A")})
        (got,) = await bob_c.messages(1)
        (mine,) = await laptop.messages(1)
        back = await bob_c.request({"type": "send", "to": alice, "content": text("hi from B")})
        (reply,) = await phone.messages(1)

        assert got["msg_id"] == mine["msg_id"] == sent["msg_id"]
        assert reply["msg_id"] == back["msg_id"] and reply["seq"] == sent["seq"] + 1
        assert not any(_is("message")(f) for f in phone.frames)


async def test_group_messages_reach_members_on_both_nodes(
    api: Api, app: AppCreds, pair: tuple[Server, Server]
) -> None:
    """A group message from a member on A reaches the members on A and on B once each."""
    a, b = pair
    alice, bob, carol = await api.import_users(app, "alice", "bob", "carol")
    async with clients(login(a, app, await api.token(app, alice)),
                       login(a, app, await api.token(app, bob)),
                       login(b, app, await api.token(app, carol))) as (al, bo, ca):
        made = await al.request({"type": "group_create", "group_id": "crew", "name": "Crew",
                                 "members": [bob, carol], "join_policy": "free"})
        assert made["type"] == "group_create_ok", made
        await bo.messages(1)
        await ca.messages(1)  # the group_created system message

        sent = await al.request({"type": "send", "group_id": "crew", "content": text("all")})
        (on_a,) = await bo.messages(1)
        (on_b,) = await ca.messages(1)
        await asyncio.sleep(0.2)  # room for a duplicate that must not come

        assert on_a["msg_id"] == on_b["msg_id"] == sent["msg_id"]
        assert not any(_is("message")(f) for f in [*bo.frames, *ca.frames])


async def _burst(client: Client, to: str, tag: str, count: int) -> list[int]:
    """Send count messages without waiting between them; return the seqs acked."""
    frames = [{"type": "send", "to": to, "content": text(f"{tag}{n}"),
               "client_msg_id": f"{tag}-{n}"} for n in range(count)]
    acks = await asyncio.gather(*(client.request(f) for f in frames))
    assert all(a["type"] == "send_ok" for a in acks), acks
    return [a["seq"] for a in acks]


async def test_concurrent_senders_on_two_nodes_get_one_gapless_sequence(
    api: Api, app: AppCreds, pair: tuple[Server, Server]
) -> None:
    """alice on A and bob on B each send 40 messages at once into their one conversation:
    the seqs are exactly 1..80, none twice, each side's in its own sending order."""
    a, b = pair
    alice, bob = await api.import_users(app, "alice", "bob")
    async with clients(login(a, app, await api.token(app, alice)),
                       login(b, app, await api.token(app, bob))) as (al, bo):
        from_a, from_b = await asyncio.gather(_burst(al, bob, "a", BURST),
                                              _burst(bo, alice, "b", BURST))
        synced = await bo.request({"type": "sync", "limit": 2 * BURST, "conversation_id":
                                   (await bo.messages(1))[0]["conversation_id"]})

    assert sorted(from_a + from_b) == list(range(1, 2 * BURST + 1))
    assert from_a == sorted(from_a) and from_b == sorted(from_b)
    assert [m["seq"] for m in synced["messages"]] == list(range(1, 2 * BURST + 1))


async def test_presence_of_a_user_on_another_node_is_pushed_and_queryable(
    api: Api, app: AppCreds, pair: tuple[Server, Server]
) -> None:
    """A watcher on A hears bob come online on B with his platform and go offline when he
    leaves; the App Server's bulk query through A sees the same."""
    a, b = pair
    alice, bob, nobody = await api.import_users(app, "alice", "bob", "nobody")
    async with clients(login(a, app, await api.token(app, alice))) as (watcher,):
        now = await watcher.request({"type": "presence_subscribe", "users": [bob, nobody]})
        bob_c = await login(b, app, await api.token(app, bob), "web")
        online = await watcher.wait_for(_is("presence"))
        query = await api.call(app, "POST", "/v1/presence/query", json={"users": [bob, nobody]})
        await bob_c.close()
        offline = await watcher.wait_for(_is("presence"))

    assert [p["online"] for p in now["presence"]] == [False, False]
    assert online["user_id_md5"] == bob and online["online"] is True
    assert [d["platform"] for d in online["devices"]] == ["web"]
    assert query.status_code == 200
    assert [(p["user_id_md5"], p["online"]) for p in query.json()["presence"]] == [
        (bob, True), (nobody, False)]
    assert offline == {"type": "presence", "user_id_md5": bob, "online": False, "devices": []}


async def test_a_login_on_the_same_platform_replaces_the_older_one_on_the_other_node(
    api: Api, app: AppCreds, pair: tuple[Server, Server]
) -> None:
    """Under one_per_platform, an iOS login on B closes the iOS connection on A with 4011
    (after a `replaced` error); the user's web connection stays."""
    a, b = pair
    (alice,) = await api.import_users(app, "alice")
    old_phone = await login(a, app, await api.token(app, alice), "ios")
    web = await login(a, app, await api.token(app, alice), "web")
    new_phone = await login(b, app, await api.token(app, alice), "ios")

    assert await old_phone.wait_closed() == 4011
    assert old_phone.close_reason == "replaced"
    assert (await old_phone.wait_for(_is("error")))["code"] == "replaced"
    assert (await web.request({"type": "conversations"}))["type"] == "conversations_ok"
    assert (await new_phone.request({"type": "conversations"}))["type"] == "conversations_ok"
    await web.close()
    await new_phone.close()


async def test_metrics_count_connections_messages_and_delivery_latency(
    api: Api, app: AppCreds, pair: tuple[Server, Server]
) -> None:
    """/metrics on the receiving node shows its connections, the messages it pushed and
    their send-to-deliver latency."""
    a, b = pair
    alice, bob = await api.import_users(app, "alice", "bob")
    async with clients(login(a, app, await api.token(app, alice)),
                       login(b, app, await api.token(app, bob))) as (al, bo):
        await al.request({"type": "send", "to": bob, "content": text("counted")})
        await bo.messages(1)
        async with httpx.AsyncClient(base_url=b.base_url) as http:
            page = (await http.get("/metrics")).text

    values = {line.split(" ")[0]: float(line.split(" ")[1])
              for line in page.splitlines() if line and not line.startswith("#")}
    assert values["parley_connections"] >= 1
    assert values["parley_messages_delivered_total"] >= 1
    assert values["parley_delivery_latency_seconds_count"] >= 1
    assert values['parley_frames_in_total{type="login"}'] >= 1
    assert "parley_broker_errors_total" in page and "parley_database_errors_total" in page
