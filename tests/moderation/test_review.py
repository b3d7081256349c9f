"""Reports and the review queue end to end: a client reports, the App Server rules."""

from __future__ import annotations

from typing import Any

from tests.support import Api, AppCreds, Client, Server

ALL_TIME = {"from": "2000-01-01T00:00:00Z", "to": "2100-01-01T00:00:00Z"}


def _send(to: str, text: str) -> dict[str, Any]:
    return {"type": "send", "to": to, "content": {"type": "text", "text": text}}


async def _open(api: Api, app: AppCreds) -> list[dict[str, Any]]:
    r = await api.call(app, "GET", "/v1/moderation/log", params={"status": "open"})
    return list(r.json()["entries"])


async def test_a_report_by_frame_or_rest_joins_the_review_queue_once(
    api: Api, app: AppCreds, server: Server
) -> None:
    """A recipient's report frame and REST report make one open entry with the reason and
    the text; someone outside the conversation cannot report the message."""
    alice, bob, carol = await api.import_users(app, "alice", "bob", "carol")
    a = await Client.login(server, app, await api.token(app, alice))
    b_token = await api.token(app, bob)
    b = await Client.login(server, app, b_token)
    c = await Client.login(server, app, await api.token(app, carol))
    ack = await a.request(_send(bob, "send me your password"))

    by_frame = await b.request({"type": "report", "msg_id": ack["msg_id"], "reason": "phishing"})
    by_rest = await api.http.post(f"/v1/me/messages/{ack['msg_id']}/report",
                                  json={"reason": "phishing"},
                                  headers={"Authorization": f"Bearer {b_token}"})
    outsider = await c.request({"type": "report", "msg_id": ack["msg_id"]})
    assert by_frame["type"] == "report_ok" and by_frame["msg_id"] == ack["msg_id"]
    assert by_rest.status_code == 201 and by_rest.json()["report_id"] == by_frame["report_id"]
    assert (outsider["type"], outsider["code"]) == ("error", "message_not_found")
    (entry,) = await _open(api, app)
    assert (entry["id"], entry["action"], entry["reporter"], entry["sender"]) == (
        by_frame["report_id"], "report", bob, alice)
    assert (entry["note"], entry["excerpt"]) == ("phishing", "send me your password")
    for client in (a, b, c):
        await client.close()


async def test_a_violation_is_hidden_from_sync_lists_and_chat_logs(
    api: Api, app: AppCreds, server: Server
) -> None:
    """Ruling a flagged message a violation settles its entries and hides it from sync,
    the conversation list, the unread count and both chat logs; the messages around it
    stay."""
    r = await api.call(app, "POST", "/v1/moderation/keywords", json={"keywords": [
        {"word": "casino", "category": "gambling", "action": "review"}]})
    assert r.status_code == 200
    alice, bob = await api.import_users(app, "alice", "bob")
    a = await Client.login(server, app, await api.token(app, alice))
    b = await Client.login(server, app, await api.token(app, bob))
    kept = await a.request(_send(bob, "hi bob"))
    bad = await a.request(_send(bob, "best online casino, sign up"))
    conv = bad["conversation_id"]

    ruling = await api.call(app, "POST", f"/v1/moderation/messages/{bad['msg_id']}/review",
                            json={"verdict": "violation"})
    assert ruling.json() == {"msg_id": bad["msg_id"], "verdict": "violation", "settled": 1}
    synced = await b.request({"type": "sync", "conversation_id": conv})
    (listed,) = (await b.request({"type": "conversations"}))["conversations"]
    by_user = await api.call(app, "GET", f"/v1/users/{bob}/messages", params=ALL_TIME)
    by_conv = await api.call(app, "GET", f"/v1/conversations/{conv}/messages", params=ALL_TIME)
    for page in (synced["messages"], by_user.json()["messages"], by_conv.json()["messages"]):
        assert [m["msg_id"] for m in page] == [kept["msg_id"]]
    assert synced["last_seq"] == 2 and listed["last_message"] is None
    assert listed["unread"] == 1  # "hi bob" only: a hidden message is not unread
    assert await _open(api, app) == []
    await a.close()
    await b.close()


async def test_a_fine_verdict_clears_the_risk_flag(api: Api, app: AppCreds,
                                                   server: Server) -> None:
    """A flagged message ruled fine syncs without its risk, and its entry says fine."""
    await api.call(app, "POST", "/v1/moderation/keywords", json={"keywords": [
        {"word": "lottery", "category": "fraud", "action": "review"}]})
    alice, bob = await api.import_users(app, "alice", "bob")
    a = await Client.login(server, app, await api.token(app, alice))
    ack = await a.request(_send(bob, "the office lottery is on friday"))

    ruling = await api.call(app, "POST", f"/v1/moderation/messages/{ack['msg_id']}/review",
                            json={"verdict": "fine"})
    page = await api.call(app, "GET", f"/v1/users/{bob}/messages", params=ALL_TIME)
    log = await api.call(app, "GET", "/v1/moderation/log", params={"msg_id": ack["msg_id"]})
    assert ruling.json()["settled"] == 1
    assert [m["risk"] for m in page.json()["messages"]] == [None]
    (entry,) = log.json()["entries"]
    assert entry["status"] == "fine" and entry["decided_at"] is not None
    missing = await api.call(app, "POST", "/v1/moderation/messages/nope/review",
                             json={"verdict": "fine"})
    assert (missing.status_code, missing.json()["code"]) == (404, "message_not_found")
    await a.close()


async def test_the_log_pages_newest_first_and_filters(api: Api, app: AppCreds,
                                                      server: Server) -> None:
    """The log comes newest first in pages that neither skip nor repeat, filtered by action."""
    await api.call(app, "POST", "/v1/moderation/keywords", json={"keywords": [
        {"word": "spamword", "action": "mask"}]})
    alice, bob = await api.import_users(app, "alice", "bob")
    a = await Client.login(server, app, await api.token(app, alice))
    acks = [await a.request(_send(bob, f"spamword {i}")) for i in range(5)]

    seen: list[str] = []
    cursor = None
    while True:
        params = {"action": "mask", "limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await api.call(app, "GET", "/v1/moderation/log", params=params)).json()
        seen += [e["msg_id"] for e in page["entries"]]
        if (cursor := page["next_cursor"]) is None:
            break
    assert seen == [ack["msg_id"] for ack in reversed(acks)]
    assert (await api.call(app, "GET", "/v1/moderation/log",
                           params={"action": "block"})).json()["entries"] == []
    await a.close()
