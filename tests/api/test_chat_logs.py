"""Server push over REST and the App Server's chat logs."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

from tests.support import Api, AppCreds, Client, Server

TEXT = {"type": "text", "text": "from the app server"}


async def test_send_on_behalf_uses_the_same_delivery_path(api: Api, app: AppCreds,
                                                          server: Server) -> None:
    """A REST send as a user is acked with a seq, pushed live, and idempotent by client_msg_id."""
    alice, bob = await api.import_users(app, "alice", "bob")
    b = await Client.login(server, app, await api.token(app, bob))
    body = {"from_user_id": "alice", "to_user_id_md5": bob, "content": TEXT,
            "client_msg_id": "srv-1"}
    first = (await api.call(app, "POST", "/v1/messages", json=body)).json()
    again = (await api.call(app, "POST", "/v1/messages", json=body)).json()
    (live,) = await b.messages(1)
    assert first["seq"] == 1 and again["duplicate"] is True and again["msg_id"] == first["msg_id"]
    assert live["from"] == alice and live["content"] == TEXT
    await b.close()


async def test_system_notice_reaches_user_and_their_conversation_list(
    api: Api, app: AppCreds, server: Server
) -> None:
    """A notice arrives with from=null in the user's sys: conversation and counts as unread."""
    (carol,) = await api.import_users(app, "carol")
    c = await Client.login(server, app, await api.token(app, carol))
    ack = (await api.call(app, "POST", "/v1/notices",
                          json={"to_user_id_md5": carol, "content": TEXT})).json()
    (live,) = await c.messages(1)
    assert ack["conversation_id"] == f"sys:{carol}"
    assert live["from"] is None and live["to"] == carol
    (conv,) = (await c.request({"type": "conversations"}))["conversations"]
    assert (conv["kind"], conv["unread"]) == ("system", 1)
    await c.close()


async def test_rest_send_to_unknown_user_and_bad_content(api: Api, app: AppCreds) -> None:
    """Unknown recipients, over-long text and bad content get stable codes over REST."""
    (alice,) = await api.import_users(app, "alice")
    nobody = hashlib.md5(b"nobody").hexdigest()
    cases = {
        "user_not_found": {"to_user_id_md5": nobody, "content": TEXT},
        "text_too_long": {"to_user_id_md5": alice,
                          "content": {"type": "text", "text": "x" * 5001}},
        "invalid_content": {"to_user_id_md5": alice, "content": {"type": "video"}},
    }
    for code, body in cases.items():
        r = await api.call(app, "POST", "/v1/messages", json={"from_user_id_md5": alice, **body})
        assert r.json()["code"] == code, (code, r.text)


async def test_chat_log_ranges_are_half_open_and_in_utc(api: Api, app: AppCreds) -> None:
    """from is included and to excluded; any offset is accepted; times come back in UTC."""
    alice, bob = await api.import_users(app, "alice", "bob")
    acks = [
        (await api.call(app, "POST", "/v1/messages", json={
            "from_user_id_md5": alice, "to_user_id_md5": bob,
            "content": {"type": "text", "text": str(i)}})).json()
        for i in range(3)
    ]
    conv = acks[0]["conversation_id"]
    first = datetime.fromisoformat(acks[0]["created_at"])
    last = datetime.fromisoformat(acks[2]["created_at"])
    plus8 = timedelta(hours=8)

    def iso(t: datetime) -> str:
        return t.astimezone(UTC).astimezone(__import__("datetime").timezone(plus8)).isoformat()

    r = await api.call(app, "GET", f"/v1/conversations/{conv}/messages",
                       params={"from": iso(first), "to": iso(last)})
    got = r.json()["messages"]
    assert [m["seq"] for m in got] == [1, 2]
    assert all(m["created_at"].endswith("Z") for m in got)
    r = await api.call(app, "GET", f"/v1/users/{bob}/messages",
                       params={"from": iso(first), "to": iso(last + timedelta(microseconds=1))})
    assert [m["seq"] for m in r.json()["messages"]] == [1, 2, 3]


async def test_chat_log_needs_offsets_and_an_ordered_range(api: Api, app: AppCreds) -> None:
    """A time without an offset, or to <= from, is refused with a code."""
    (alice,) = await api.import_users(app, "alice")
    naive = await api.call(app, "GET", f"/v1/users/{alice}/messages",
                           params={"from": "2026-01-01T00:00:00", "to": "2026-01-02T00:00:00Z"})
    backwards = await api.call(app, "GET", f"/v1/users/{alice}/messages",
                               params={"from": "2026-01-02T00:00:00Z",
                                       "to": "2026-01-01T00:00:00Z"})
    assert naive.json()["code"] == "invalid_time"
    assert backwards.json()["code"] == "invalid_time_range"


async def test_cursor_is_stable_when_many_messages_share_a_timestamp(
    api: Api, app: AppCreds, server: Server
) -> None:
    """Messages stored with the same microsecond page out each exactly once, in one order."""
    alice, bob = await api.import_users(app, "alice", "bob")
    ack = (await api.call(app, "POST", "/v1/messages", json={
        "from_user_id_md5": alice, "to_user_id_md5": bob, "content": TEXT})).json()
    conv = ack["conversation_id"]
    app_id = await server.db.execute("SELECT id FROM apps WHERE key = $1", app.key)
    same_us = 1_767_225_600_000_000  # 2026-01-01T00:00:00Z
    for seq in range(2, 12):
        await server.db.execute(
            "INSERT INTO messages (msg_id, app_id, conversation_id, seq, sender_id, "
            "client_msg_id, content, created_at_us) VALUES ($1, $2, $3, $4, $5, NULL, $6, $7)",
            f"tie{seq:023d}", app_id[0][0], conv, seq, alice,
            '{"type":"text","text":"tie"}', same_us,
        )
    window = {"from": "2026-01-01T00:00:00Z", "to": "2026-01-01T00:00:00.000001Z"}
    seen: list[str] = []
    cursor = None
    while True:
        params = {**window, "limit": 3, **({"cursor": cursor} if cursor else {})}
        page = (await api.call(app, "GET", f"/v1/conversations/{conv}/messages",
                               params=params)).json()
        seen += [m["msg_id"] for m in page["messages"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [f"tie{seq:023d}" for seq in range(2, 12)]
    bad = await api.call(app, "GET", f"/v1/conversations/{conv}/messages",
                         params={**window, "cursor": "garbage!"})
    assert bad.json()["code"] == "bad_cursor"
