"""Recall and read receipts over real connections, in 1:1 and group conversations.

The recall window running out is watched on a second server whose window is one
second. It shares the database with the main one, so an app, user or token made
through `api` works on both.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from tests.support import Api, AppCreds, Client, Server, TestDatabase

SECRET = "the launch code is 0451"
TOMBSTONE = {"type": "recalled"}
# The shortest window the setting takes in whole seconds, so the wait past it stays short.
SHORT_WINDOW = 1


@pytest.fixture(scope="module")
def short_server(database: TestDatabase, tmp_path_factory: pytest.TempPathFactory
                 ) -> Iterator[Server]:
    """A server on which senders may recall their messages for one second only."""
    srv = Server.start(database, tmp_path_factory.mktemp("short-recall"),
                       recall_window_seconds=SHORT_WINDOW, reaper_tick_seconds=0.2)
    yield srv
    srv.stop()


def _text(text: str) -> dict[str, Any]:
    return {"type": "text", "text": text}


def _recall_notice(msg_id: str) -> Any:
    """Matches the pushed system message that announces the recall of one message."""
    def match(frame: Any) -> bool:
        if not isinstance(frame, dict) or frame["type"] != "message":
            return False
        content = frame["message"]["content"]
        return content.get("event") == "recalled" and content.get("msg_id") == msg_id
    return match


def _leaks(body: Any) -> bool:
    return SECRET in orjson.dumps(body).decode()


async def _login(api: Api, app: AppCreds, server: Server, user: str) -> Client:
    return await Client.login(server, app, await api.token(app, user))


async def _group(api: Api, app: AppCreds, owner: str, members: list[str],
                 admins: tuple[str, ...] = ()) -> str:
    """A group made by the App Server, with some members made admins; returns its ID."""
    r = await api.call(app, "POST", "/v1/groups",
                       json={"owner": owner, "name": "crew", "members": members})
    assert r.status_code == 201, r.text
    group_id = str(r.json()["group_id"])
    for admin in admins:
        r = await api.call(app, "PUT", f"/v1/groups/{group_id}/members/{admin}/role",
                           json={"role": "admin"})
        assert r.status_code == 204, r.text
    return group_id


async def _post(api: Api, app: AppCreds, group_id: str, sender: str, text: str
                ) -> dict[str, Any]:
    """A group message sent through the App Server on a member's behalf; its ack."""
    r = await api.call(app, "POST", f"/v1/groups/{group_id}/messages",
                       json={"from_user_id_md5": sender, "content": _text(text)})
    assert r.status_code == 200, r.text
    return dict(r.json())


async def _recall(client: Client, ack: dict[str, Any]) -> dict[str, Any]:
    return await client.request({"type": "recall", "conversation_id": ack["conversation_id"],
                                 "seq": ack["seq"]})


async def _conversation(client: Client, conversation_id: str) -> dict[str, Any]:
    listing = await client.request({"type": "conversations"})
    (conv,) = [c for c in listing["conversations"] if c["conversation_id"] == conversation_id]
    return dict(conv)


async def test_sender_recalls_in_a_1to1_and_every_online_device_hears(
    api: Api, app: AppCreds, server: Server
) -> None:
    """A sender's recall gets recall_ok, and every online device, the sender's own too, is told."""
    alice, bob = await api.import_users(app, "alice", "bob")
    a1 = await _login(api, app, server, alice)
    a2 = await _login(api, app, server, alice)
    b = await _login(api, app, server, bob)
    ack = await a1.request({"type": "send", "to": bob, "content": _text(SECRET)})

    reply = await _recall(a1, ack)

    assert reply["type"] == "recall_ok", reply
    assert (reply["msg_id"], reply["seq"], reply["recalled"]) == (ack["msg_id"], 1, True)
    for device in (a1, a2, b):
        notice = (await device.wait_for(_recall_notice(ack["msg_id"])))["message"]
        assert notice["from"] is None and notice["seq"] == 2
        assert notice["content"]["seq"] == 1 and notice["content"]["by"] == alice
    for c in (a1, a2, b):
        await c.close()


async def test_group_recall_reaches_online_devices_and_an_offline_member_by_sync(
    api: Api, app: AppCreds, server: Server
) -> None:
    """In a group, online devices hear of a recall live; a member offline then finds the
    tombstone at the original seq and the notice after it when syncing."""
    alice, bob, carol = await api.import_users(app, "alice", "bob", "carol")
    group_id = await _group(api, app, alice, [bob, carol])
    a1 = await _login(api, app, server, alice)
    a2 = await _login(api, app, server, alice)
    b = await _login(api, app, server, bob)
    ack = await b.request({"type": "send", "group_id": group_id, "content": _text(SECRET)})
    kept = await b.request({"type": "send", "group_id": group_id, "content": _text("stays")})

    reply = await _recall(b, ack)

    assert reply["type"] == "recall_ok", reply
    for device in (a1, a2, b):
        notice = (await device.wait_for(_recall_notice(ack["msg_id"])))["message"]
        assert notice["content"]["seq"] == ack["seq"]
    c = await _login(api, app, server, carol)
    page = await c.request({"type": "sync", "conversation_id": ack["conversation_id"]})
    by_seq = {m["seq"]: m for m in page["messages"]}
    assert by_seq[ack["seq"]]["content"] == TOMBSTONE
    assert by_seq[ack["seq"]]["msg_id"] == ack["msg_id"]
    assert by_seq[kept["seq"]]["content"] == _text("stays")
    notice = by_seq[page["last_seq"]]["content"]
    assert (notice["event"], notice["msg_id"], notice["seq"]) == ("recalled", ack["msg_id"],
                                                                  ack["seq"])
    assert not _leaks(page)
    for client in (a1, a2, b, c):
        await client.close()


async def test_recalled_content_is_gone_from_every_read_path(
    api: Api, app: AppCreds, server: Server
) -> None:
    """After a recall no sync, chat log, conversation list or client REST read returns the text."""
    alice, bob = await api.import_users(app, "alice", "bob")
    a = await _login(api, app, server, alice)
    ack = await a.request({"type": "send", "to": bob, "content": _text(SECRET)})
    assert (await _recall(a, ack))["type"] == "recall_ok"
    conv = ack["conversation_id"]
    bob_token = await api.token(app, bob)
    b = await Client.login(server, app, bob_token)
    bearer = {"Authorization": f"Bearer {bob_token}"}
    window = {"from": ack["created_at"],
              "to": (datetime.now(UTC) + timedelta(minutes=1)).isoformat()}

    synced = await b.request({"type": "sync", "conversation_id": conv})
    log = (await api.call(app, "GET", f"/v1/conversations/{conv}/messages",
                          params=window)).json()
    user_log = (await api.call(app, "GET", f"/v1/users/{bob}/messages", params=window)).json()
    listed = await _conversation(b, conv)
    rest_list = (await api.http.get("/v1/me/conversations", headers=bearer)).json()
    rest_sync = (await api.http.get(f"/v1/me/conversations/{conv}/messages",
                                    headers=bearer)).json()

    assert [m["seq"] for m in synced["messages"]] == [1, 2]
    assert synced["messages"][0]["content"] == TOMBSTONE
    assert [m["seq"] for m in log["messages"]] == [1, 2]
    assert log["messages"][0]["content"] == TOMBSTONE
    assert listed["last_message"]["content"]["event"] == "recalled"
    assert rest_sync["messages"][0]["content"] == TOMBSTONE
    for body in (synced, log, user_log, listed, rest_list, rest_sync):
        assert not _leaks(body), body
    await a.close()
    await b.close()


async def test_recall_lowers_unread_and_clears_the_mention_flag(
    api: Api, app: AppCreds, server: Server
) -> None:
    """An unread message recalled stops counting, and recalling the mention clears `mentioned`."""
    alice, bob, carol = await api.import_users(app, "alice", "bob", "carol")
    group_id = await _group(api, app, alice, [bob, carol])
    b = await _login(api, app, server, bob)
    c = await _login(api, app, server, carol)
    plain = await c.request({"type": "send", "group_id": group_id, "content": _text("hi")})
    mention = await c.request({"type": "send", "group_id": group_id, "content": {
        "type": "text", "text": "look here", "mentions": [bob]}})
    conv = plain["conversation_id"]
    before = await _conversation(b, conv)
    assert (before["unread"], before["mentioned"]) == (2, True)

    assert (await _recall(c, mention))["type"] == "recall_ok"
    after_mention = await _conversation(b, conv)
    assert (await _recall(c, plain))["type"] == "recall_ok"
    after_both = await _conversation(b, conv)

    assert (after_mention["unread"], after_mention["mentioned"]) == (1, False)
    assert (after_both["unread"], after_both["mentioned"]) == (0, False)
    await b.close()
    await c.close()


async def test_recall_after_the_window_is_refused(
    api: Api, app: AppCreds, short_server: Server
) -> None:
    """With a one-second window a fresh message is recalled, and an older one gets
    recall_window_passed and keeps its content."""
    alice, bob = await api.import_users(app, "alice", "bob")
    a = await _login(api, app, short_server, alice)
    fresh = await a.request({"type": "send", "to": bob, "content": _text("oops")})
    assert (await _recall(a, fresh))["type"] == "recall_ok"
    old = await a.request({"type": "send", "to": bob, "content": _text(SECRET)})
    await asyncio.sleep(SHORT_WINDOW + 0.3)

    reply = await _recall(a, old)

    assert reply["type"] == "error" and reply["code"] == "recall_window_passed", reply
    page = await a.request({"type": "sync", "conversation_id": old["conversation_id"],
                            "after_seq": old["seq"] - 1})
    assert page["messages"][0]["content"] == _text(SECRET)
    await a.close()


async def test_app_server_recalls_anything_at_any_time(
    api: Api, app: AppCreds, short_server: Server
) -> None:
    """Over REST the App Server recalls a user's message past the window and a system
    notice, and the recipient is told of each."""
    alice, bob = await api.import_users(app, "alice", "bob")
    a = await _login(api, app, short_server, alice)
    b = await _login(api, app, short_server, bob)
    sent = await a.request({"type": "send", "to": bob, "content": _text(SECRET)})
    notice = (await api.call(app, "POST", "/v1/notices",
                             json={"to_user_id_md5": bob, "content": _text("sys")})).json()
    await asyncio.sleep(SHORT_WINDOW + 0.3)
    assert (await _recall(a, sent))["code"] == "recall_window_passed"

    remote = Api(short_server)
    try:
        for ack in (sent, notice):
            r = await remote.call(app, "POST", f"/v1/conversations/{ack['conversation_id']}"
                                  f"/messages/{ack['seq']}/recall")
            assert r.status_code == 200, r.text
            assert r.json()["recalled"] is True and r.json()["msg_id"] == ack["msg_id"]
            told = (await b.wait_for(_recall_notice(ack["msg_id"])))["message"]
            assert told["content"]["by"] is None
    finally:
        await remote.aclose()
    await a.close()
    await b.close()


async def test_the_other_side_of_a_1to1_cannot_recall(
    api: Api, app: AppCreds, server: Server
) -> None:
    """In a 1:1 only the sender recalls: the recipient gets not_allowed and the text stays."""
    alice, bob = await api.import_users(app, "alice", "bob")
    a = await _login(api, app, server, alice)
    b = await _login(api, app, server, bob)
    ack = await a.request({"type": "send", "to": bob, "content": _text(SECRET)})

    reply = await _recall(b, ack)

    assert reply["type"] == "error" and reply["code"] == "not_allowed", reply
    page = await b.request({"type": "sync", "conversation_id": ack["conversation_id"]})
    assert [m["content"] for m in page["messages"]] == [_text(SECRET)]
    await a.close()
    await b.close()


async def test_group_roles_decide_whose_messages_may_be_recalled(
    api: Api, app: AppCreds, server: Server
) -> None:
    """The owner recalls an admin's or a member's message; an admin a member's only;
    a plain member nobody else's."""
    owner, admin, other_admin, member = await api.import_users(
        app, "owner", "admin", "other-admin", "member")
    group_id = await _group(api, app, owner, [admin, other_admin, member],
                            admins=(admin, other_admin))
    by_owner = await _post(api, app, group_id, owner, "from the owner")
    by_admin = await _post(api, app, group_id, admin, "from an admin")
    by_other_admin = await _post(api, app, group_id, other_admin, "from another admin")
    by_member = await _post(api, app, group_id, member, "from a member")
    by_member_too = await _post(api, app, group_id, member, "again from a member")
    o = await _login(api, app, server, owner)
    a = await _login(api, app, server, admin)
    m = await _login(api, app, server, member)

    outcomes = {
        "admin recalls member": await _recall(a, by_member),
        "admin recalls owner": await _recall(a, by_owner),
        "admin recalls admin": await _recall(a, by_other_admin),
        "member recalls admin": await _recall(m, by_admin),
        "owner recalls admin": await _recall(o, by_admin),
        "owner recalls member": await _recall(o, by_member_too),
    }

    assert {k: r.get("code", r["type"]) for k, r in outcomes.items()} == {
        "admin recalls member": "recall_ok",
        "admin recalls owner": "not_allowed",
        "admin recalls admin": "not_allowed",
        "member recalls admin": "not_allowed",
        "owner recalls admin": "recall_ok",
        "owner recalls member": "recall_ok",
    }
    page = await o.request({"type": "sync", "conversation_id": by_owner["conversation_id"]})
    contents = {m["seq"]: m["content"] for m in page["messages"]}
    assert contents[by_owner["seq"]] == _text("from the owner")
    assert contents[by_other_admin["seq"]] == _text("from another admin")
    assert [contents[x["seq"]] for x in (by_admin, by_member, by_member_too)] == [TOMBSTONE] * 3
    for c in (o, a, m):
        await c.close()


async def test_recalling_twice_is_harmless(api: Api, app: AppCreds, server: Server) -> None:
    """A second recall, by the client or the App Server, is acked again and adds no notice."""
    alice, bob = await api.import_users(app, "alice", "bob")
    a = await _login(api, app, server, alice)
    ack = await a.request({"type": "send", "to": bob, "content": _text(SECRET)})
    path = f"/v1/conversations/{ack['conversation_id']}/messages/{ack['seq']}/recall"

    first = await _recall(a, ack)
    second = await _recall(a, ack)
    third = await api.call(app, "POST", path)

    assert first["type"] == second["type"] == "recall_ok", second
    assert third.status_code == 200 and third.json()["recalled"] is True, third.text
    page = await a.request({"type": "sync", "conversation_id": ack["conversation_id"]})
    assert page["last_seq"] == 2
    assert [m["content"].get("event") for m in page["messages"]] == [None, "recalled"]
    await a.close()


async def test_sender_sees_who_read_a_group_message(
    api: Api, app: AppCreds, server: Server
) -> None:
    """The sender's receipts list moves a member from unread to read after their `read`;
    anyone else asking gets not_allowed."""
    alice, bob, carol = await api.import_users(app, "alice", "bob", "carol")
    group_id = await _group(api, app, alice, [bob, carol])
    a = await _login(api, app, server, alice)
    b = await _login(api, app, server, bob)
    c = await _login(api, app, server, carol)
    ack = await a.request({"type": "send", "group_id": group_id, "content": _text("read me")})
    ask = {"type": "receipts", "conversation_id": ack["conversation_id"], "seq": ack["seq"]}

    before = await a.request(ask)
    read = await b.request({"type": "read", "conversation_id": ack["conversation_id"],
                            "seq": ack["seq"]})
    after = await a.request(ask)
    stranger = await c.request(ask)

    assert before["type"] == "receipts_ok", before
    assert (before["read"], before["unread"]) == ([], sorted([bob, carol]))
    assert read["type"] == "read_ok"
    assert (after["read"], after["unread"]) == ([bob], [carol])
    assert (after["read_count"], after["unread_count"]) == (1, 1)
    assert stranger["type"] == "error" and stranger["code"] == "not_allowed", stranger
    for client in (a, b, c):
        await client.close()
