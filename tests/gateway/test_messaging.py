"""1:1 messaging over real WebSocket connections: send, ack, delivery, resend, sync."""

from __future__ import annotations

import asyncio

from tests.support import Api, AppCreds, Client, Server

TEXT = {"type": "text", "text": "hello"}


async def _pair(api: Api, app: AppCreds, server: Server) -> tuple[str, str, Client, Client]:
    alice, bob = await api.import_users(app, "alice", "bob")
    a = await Client.login(server, app, await api.token(app, alice))
    b = await Client.login(server, app, await api.token(app, bob))
    return alice, bob, a, b


async def test_send_is_acked_and_delivered_to_recipient_and_senders_other_devices(
    api: Api, app: AppCreds, server: Server
) -> None:
    """The sender's device gets an ack; the recipient and the sender's other device get it."""
    alice, bob, a1, b = await _pair(api, app, server)
    a2 = await Client.login(server, app, await api.token(app, alice))

    ack = await a1.request({"type": "send", "to": bob, "content": TEXT, "client_msg_id": "c1"})

    assert ack["type"] == "send_ok"
    assert ack["seq"] == 1 and not ack["duplicate"]
    assert ack["conversation_id"] == f"p2p:{min(alice, bob)}:{max(alice, bob)}"
    assert ack["created_at"].endswith("Z")
    for device in (b, a2):
        (msg,) = await device.messages(1)
        assert msg["msg_id"] == ack["msg_id"]
        assert (msg["from"], msg["to"], msg["content"]) == (alice, bob, TEXT)
        assert msg["seq"] == 1 and msg["client_msg_id"] == "c1"
    assert not [f for f in a1.frames if isinstance(f, dict) and f["type"] == "message"]
    for c in (a1, a2, b):
        await c.close()


async def test_sequence_grows_by_one_without_gaps_both_ways(
    api: Api, app: AppCreds, server: Server
) -> None:
    """Messages in both directions share one conversation sequence 1, 2, 3, ..."""
    alice, bob, a, b = await _pair(api, app, server)
    seqs = []
    for i in range(6):
        sender, to = (a, bob) if i % 2 == 0 else (b, alice)
        ack = await sender.request({"type": "send", "to": to,
                                    "content": {"type": "text", "text": f"m{i}"}})
        seqs.append(ack["seq"])
    assert seqs == [1, 2, 3, 4, 5, 6]
    await a.close()
    await b.close()


async def test_resend_after_lost_ack_returns_same_ack_and_one_message(
    api: Api, app: AppCreds, server: Server
) -> None:
    """A resend with the same client_msg_id is acked again and stored once."""
    alice, bob, a, b = await _pair(api, app, server)
    frame = {"type": "send", "to": bob, "content": TEXT, "client_msg_id": "same-id"}
    first = await a.request(frame)
    await a.close()  # the ack was "lost": the client reconnects and resends
    a = await Client.login(server, app, await api.token(app, alice))
    second = await a.request(frame)

    assert second["duplicate"] is True
    assert {k: second[k] for k in ("msg_id", "seq", "created_at")} == {
        k: first[k] for k in ("msg_id", "seq", "created_at")
    }
    page = await b.request({"type": "sync", "conversation_id": first["conversation_id"]})
    assert [m["msg_id"] for m in page["messages"]] == [first["msg_id"]]
    assert len(await b.messages(1)) == 1
    await asyncio.sleep(0.2)
    assert not [f for f in b.frames if isinstance(f, dict) and f["type"] == "message"]
    await a.close()
    await b.close()


async def test_offline_user_syncs_everything_in_pages_in_order(
    api: Api, app: AppCreds, server: Server
) -> None:
    """Messages sent while a user is offline come back by sync, paged, in seq order."""
    alice, bob = await api.import_users(app, "alice", "bob")
    a = await Client.login(server, app, await api.token(app, alice))
    acks = [
        await a.request({"type": "send", "to": bob, "content": {"type": "text", "text": f"{i}"}})
        for i in range(25)
    ]
    b = await Client.login(server, app, await api.token(app, bob))
    conv = acks[0]["conversation_id"]

    got, after, pages = [], 0, 0
    while True:
        page = await b.request({"type": "sync", "conversation_id": conv, "after_seq": after,
                                "limit": 10})
        got += page["messages"]
        pages += 1
        if not page["has_more"]:
            break
        after = page["messages"][-1]["seq"]
    assert pages == 3
    assert [m["seq"] for m in got] == list(range(1, 26))
    assert [m["content"]["text"] for m in got] == [str(i) for i in range(25)]
    assert page["last_seq"] == 25
    await a.close()
    await b.close()


async def test_sync_past_the_last_seq_is_an_error(api: Api, app: AppCreds, server: Server) -> None:
    """Asking from a seq the conversation has not reached is seq_out_of_range."""
    _, bob, a, b = await _pair(api, app, server)
    ack = await a.request({"type": "send", "to": bob, "content": TEXT})
    reply = await b.request({"type": "sync", "conversation_id": ack["conversation_id"],
                             "after_seq": 5})
    assert reply["type"] == "error" and reply["code"] == "seq_out_of_range"
    assert reply["data"]["last_seq"] == 1
    at_end = await b.request({"type": "sync", "conversation_id": ack["conversation_id"],
                              "after_seq": 1})
    assert at_end["messages"] == [] and at_end["has_more"] is False
    await a.close()
    await b.close()


async def test_reconnect_in_the_middle_of_a_burst_loses_and_doubles_nothing(
    api: Api, app: AppCreds, server: Server
) -> None:
    """A recipient that drops mid-burst and syncs from its last seq ends with every message once."""
    _, bob, a, b = await _pair(api, app, server)
    held: dict[str, dict] = {}

    async def burst() -> list[dict]:
        return [
            await a.request({"type": "send", "to": bob, "client_msg_id": f"b{i}",
                             "content": {"type": "text", "text": f"{i}"}})
            for i in range(40)
        ]

    sender = asyncio.create_task(burst())
    for m in await b.messages(10):
        held[m["msg_id"]] = m
    await b.close()
    await asyncio.sleep(0.05)
    b = await Client.login(server, app, await api.token(app, bob))
    acks = await sender
    conv = acks[0]["conversation_id"]
    last = max(m["seq"] for m in held.values())
    page = await b.request({"type": "sync", "conversation_id": conv, "after_seq": last,
                            "limit": 200})
    live = [f["message"] for f in b.frames if isinstance(f, dict) and f["type"] == "message"]
    for m in page["messages"] + live:
        held.setdefault(m["msg_id"], m)

    assert sorted(m["seq"] for m in held.values()) == list(range(1, 41))
    assert {m["msg_id"] for m in held.values()} == {ack["msg_id"] for ack in acks}
    await a.close()
    await b.close()


async def test_conversation_list_unread_and_read_marker_reach_other_devices(
    api: Api, app: AppCreds, server: Server
) -> None:
    """Unread counts fall when a device marks read, and the user's other devices hear of it."""
    alice, bob, a, b1 = await _pair(api, app, server)
    b2 = await Client.login(server, app, await api.token(app, bob))
    for i in range(3):
        await a.request({"type": "send", "to": bob, "content": {"type": "text", "text": f"{i}"}})

    listing = await b1.request({"type": "conversations"})
    (conv,) = listing["conversations"]
    assert (conv["unread"], conv["last_seq"], conv["peer"]) == (3, 3, alice)
    assert conv["last_message"]["content"]["text"] == "2"

    reply = await b1.request({"type": "read", "conversation_id": conv["conversation_id"],
                              "seq": 2})
    assert reply == {"type": "read_ok", "conversation_id": conv["conversation_id"], "seq": 2,
                     "id": reply["id"]}
    event = await b2.wait_for(lambda f: isinstance(f, dict) and f["type"] == "read")
    assert event["seq"] == 2
    (after,) = (await b2.request({"type": "conversations"}))["conversations"]
    assert after["unread"] == 1
    (sender_view,) = (await a.request({"type": "conversations"}))["conversations"]
    assert sender_view["unread"] == 0
    for c in (a, b1, b2):
        await c.close()


async def test_emoji_and_four_byte_text_round_trip(api: Api, app: AppCreds, server: Server
                                                   ) -> None:
    """4-byte UTF-8 text arrives and syncs byte for byte as sent."""
    _, bob, a, b = await _pair(api, app, server)
    text = "héllo 😀👍🏽 𝄞 中文 \U0001f9d1\u200d\U0001f4bb"
    ack = await a.request({"type": "send", "to": bob, "content": {"type": "text", "text": text}})
    (live,) = await b.messages(1)
    page = await b.request({"type": "sync", "conversation_id": ack["conversation_id"]})
    assert live["content"]["text"] == text
    assert page["messages"][0]["content"]["text"] == text
    await a.close()
    await b.close()


async def test_custom_payload_is_delivered_as_sent(api: Api, app: AppCreds, server: Server
                                                   ) -> None:
    """A custom content type carries the app's own JSON unchanged."""
    _, bob, a, b = await _pair(api, app, server)
    content = {"type": "custom", "custom_type": "order", "data": {"id": 7, "items": [1, 2]}}
    await a.request({"type": "send", "to": bob, "content": content})
    (msg,) = await b.messages(1)
    assert msg["content"] == content
    await a.close()
    await b.close()


async def test_heartbeat_is_one_byte_each_way(api: Api, app: AppCreds, server: Server) -> None:
    """The client sends 'h' and the server answers 'h'; login says the interval."""
    (alice,) = await api.import_users(app, "alice")
    c = await Client.connect(server)
    login = await c.request({"type": "login", "app_key": app.key,
                             "token": await api.token(app, alice)})
    assert login["heartbeat"]["interval_ms"] > 0
    assert login["heartbeat"]["timeout_ms"] > login["heartbeat"]["interval_ms"]
    await c.send_raw("h")
    assert await c.wait_for(lambda f: f == "h") == "h"
    await c.close()
