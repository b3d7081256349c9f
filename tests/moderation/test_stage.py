"""The content-security stage end to end: a real server, real sockets, every backend."""

from __future__ import annotations

from typing import Any

from tests.support import Api, AppCreds, Client, Server


def _text(text: str) -> dict[str, str]:
    return {"type": "text", "text": text}


async def _people(api: Api, app: AppCreds, server: Server, *names: str
                  ) -> tuple[list[str], list[Client]]:
    users = await api.import_users(app, *names)
    return users, [await Client.login(server, app, await api.token(app, u)) for u in users]


async def _close(*clients: Client) -> None:
    for c in clients:
        await c.close()


async def _keywords(api: Api, app: AppCreds, *items: dict[str, str]) -> None:
    r = await api.call(app, "POST", "/v1/moderation/keywords", json={"keywords": list(items)})
    assert r.status_code == 200 and r.json()["failed"] == 0, r.text


async def _settings(api: Api, app: AppCreds, **changes: Any) -> None:
    r = await api.call(app, "PATCH", "/v1/moderation/settings", json=changes)
    assert r.status_code == 200, r.text


async def _log(api: Api, app: AppCreds, **filters: str) -> list[dict[str, Any]]:
    r = await api.call(app, "GET", "/v1/moderation/log", params=filters)
    assert r.status_code == 200, r.text
    return list(r.json()["entries"])


def _send(to: str, text: str) -> dict[str, Any]:
    return {"type": "send", "to": to, "content": _text(text)}


async def test_a_block_keyword_refuses_the_send_on_every_path(api: Api, app: AppCreds,
                                                              server: Server) -> None:
    """A blocked word refuses a WebSocket send, a REST send and a notice, naming only the
    category; nothing is delivered and each refusal is logged with the typed text."""
    await _keywords(api, app, {"word": "falun", "category": "politics", "action": "block"})
    (alice, bob), (a, b) = await _people(api, app, server, "alice", "bob")

    reply = await a.request(_send(bob, "join F.A.L.U.N today"))
    assert (reply["type"], reply["code"], reply["data"]) == (
        "error", "content_blocked", {"category": "politics"})
    assert "falun" not in reply["message"].lower()
    rest = await api.call(app, "POST", "/v1/messages", json={
        "from_user_id_md5": alice, "to_user_id_md5": bob,
        "content": _text("\N{FULLWIDTH LATIN SMALL LETTER F}alun")})
    assert (rest.status_code, rest.json()["code"]) == (403, "content_blocked")
    notice = await api.call(app, "POST", "/v1/notices",
                            json={"to_user_id_md5": bob, "content": _text("falun")})
    assert (notice.status_code, notice.json()["code"]) == (403, "content_blocked")

    assert (await a.request(_send(bob, "hello")))["type"] == "send_ok"
    (only,) = await b.messages(1)
    assert only["content"]["text"] == "hello" and only["seq"] == 1
    blocks = await _log(api, app, action="block")
    assert [e["excerpt"] for e in blocks] == ["falun", "\N{FULLWIDTH LATIN SMALL LETTER F}alun",
                                              "join F.A.L.U.N today"]
    assert {(e["rule"], e["category"], e["msg_id"], e["source"]) for e in blocks} == {
        ("falun", "politics", None, "keyword")}
    await _close(a, b)


async def test_a_mask_keyword_delivers_the_text_masked(api: Api, app: AppCreds,
                                                       server: Server) -> None:
    """The recipient gets each typed character of a masked word replaced, live and on sync."""
    await _keywords(api, app, {"word": "damn", "action": "mask"})
    (_, bob), (a, b) = await _people(api, app, server, "alice", "bob")

    ack = await a.request(_send(bob, "oh D a m n, it is \N{FULLWIDTH LATIN SMALL LETTER D}amn"))
    (live,) = await b.messages(1)
    synced = await b.request({"type": "sync", "conversation_id": ack["conversation_id"]})
    assert live["content"]["text"] == "oh *******, it is ****"
    assert synced["messages"][0]["content"] == live["content"]
    assert live["risk"] is None
    (entry,) = await _log(api, app, action="mask")
    assert (entry["msg_id"], entry["rule"], entry["status"]) == (ack["msg_id"], "damn", None)
    assert entry["excerpt"] == "oh D a m n, it is \N{FULLWIDTH LATIN SMALL LETTER D}amn"
    await _close(a, b)


async def test_a_review_keyword_flags_the_message_on_every_read_path(
    api: Api, app: AppCreds, server: Server
) -> None:
    """A flagged message arrives as sent, with its category as risk on the live push, on
    sync and in the chat log, and waits in the review queue."""
    await _keywords(api, app, {"word": "paypal", "category": "fraud", "action": "review"})
    (alice, bob), (a, b) = await _people(api, app, server, "alice", "bob")

    clean = await a.request(_send(bob, "hi"))
    ack = await a.request(_send(bob, "verify your P a y P a l now"))
    live = await b.messages(2)
    synced = (await b.request({"type": "sync", "conversation_id": ack["conversation_id"]})
              )["messages"]
    log = (await api.call(app, "GET", f"/v1/users/{bob}/messages", params={
        "from": "2000-01-01T00:00:00Z", "to": "2100-01-01T00:00:00Z"})).json()["messages"]
    for view in (live, synced, log):
        assert [(m["msg_id"], m["risk"]) for m in view] == [
            (clean["msg_id"], None), (ack["msg_id"], "fraud")]
    assert live[1]["content"]["text"] == "verify your P a y P a l now"
    (queued,) = await _log(api, app, status="open")
    assert (queued["msg_id"], queued["action"], queued["rule"], queued["sender"]) == (
        ack["msg_id"], "review", "paypal", alice)
    await _close(a, b)


async def test_domain_lists_block_subdomains_allow_exceptions_and_act_on_the_rest(
    api: Api, app: AppCreds, server: Server
) -> None:
    """A link to a blocked domain's subdomain is refused, an allowed subdomain passes, and
    with an unlisted action links to other domains are flagged."""
    r = await api.call(app, "POST", "/v1/moderation/domains", json={"domains": [
        {"domain": "evil.com", "list": "block", "category": "phishing"},
        {"domain": "docs.evil.com", "list": "allow"}]})
    assert r.json()["created"] == 2
    await _settings(api, app, link_unlisted_action="review")
    (_, bob), (a, b) = await _people(api, app, server, "alice", "bob")

    refused = await a.request(_send(bob, "log in at https://user@Login.EVIL.com:8443/x"))
    allowed = await a.request(_send(bob, "read docs.evil.com/page"))
    flagged = await a.request(_send(bob, "try other.net"))
    assert (refused["code"], refused["data"]) == ("link_blocked", {"category": "phishing"})
    got = await b.messages(2)
    assert [(m["msg_id"], m["risk"]) for m in got] == [
        (allowed["msg_id"], None), (flagged["msg_id"], "unlisted")]
    await _close(a, b)


async def test_sends_past_the_rate_limit_are_refused_with_the_time_to_retry(
    api: Api, app: AppCreds, server: Server
) -> None:
    """Past the app's burst a user's sends get rate_limited with retry_after_ms, over
    WebSocket and REST alike, while other users send on."""
    await _settings(api, app, send_burst=3, send_rate_per_second=0.5)
    (alice, bob), (a, b) = await _people(api, app, server, "alice", "bob")

    acks = [await a.request(_send(bob, f"m{i}")) for i in range(3)]
    refused = await a.request(_send(bob, "one too many"))
    rest = await api.call(app, "POST", "/v1/messages", json={
        "from_user_id_md5": alice, "to_user_id_md5": bob, "content": _text("and another")})
    assert [x["type"] for x in acks] == ["send_ok"] * 3
    assert refused["code"] == "rate_limited" and refused["data"]["reason"] == "rate"
    assert 0 < refused["data"]["retry_after_ms"] <= 2000
    assert (rest.status_code, rest.json()["code"]) == (429, "rate_limited")
    assert (await b.request(_send(alice, "bob is fine")))["type"] == "send_ok"
    await _close(a, b)


async def test_the_same_text_to_many_conversations_is_a_flood(api: Api, app: AppCreds,
                                                              server: Server) -> None:
    """Nearly the same text to the app's flood count of conversations blocks the sender
    for the penalty time with spam_blocked, and the log says why."""
    await _settings(api, app, flood_conversations=3, flood_action="block",
                    flood_penalty_seconds=60)
    users, clients = await _people(api, app, server, "spammer", "u1", "u2", "u3", "u4")
    spammer, rest = clients[0], users[1:]

    first = [await spammer.request(_send(u, f"Cheap watches at shop now, code {i}"))
             for i, u in enumerate(rest[:2])]
    third = await spammer.request(_send(rest[2], "CHEAP watches at shop now, code 9"))
    after = await spammer.request(_send(rest[3], "an unrelated hello"))
    assert [x["type"] for x in first] == ["send_ok", "send_ok"]
    assert (third["code"], third["data"]["reason"]) == ("spam_blocked", "same_text")
    assert 59_000 < third["data"]["retry_after_ms"] <= 60_000
    assert after["code"] == "spam_blocked"
    (entry,) = await _log(api, app, source="flood")
    assert (entry["action"], entry["rule"], entry["category"]) == ("block", "same_text", "spam")
    await _close(*clients)


async def test_a_new_user_messaging_many_strangers_is_flagged(api: Api, app: AppCreds,
                                                              server: Server) -> None:
    """A new user opening the app's stranger count of conversations has that message and
    the ones after it delivered flagged as spam, and queued for review."""
    await _settings(api, app, flood_strangers=3, flood_conversations=0, flood_action="review")
    users, clients = await _people(api, app, server, "newbie", "s1", "s2", "s3")
    newbie = clients[0]

    for i, stranger in enumerate(users[1:]):
        assert (await newbie.request(_send(stranger, f"hello number {i}")))["type"] == "send_ok"
    again = await newbie.request(_send(users[1], "still there?"))
    risks = [[m["risk"] for m in await c.messages(n)]
             for c, n in ((clients[1], 2), (clients[2], 1), (clients[3], 1))]
    assert risks == [[None, "spam"], [None], ["spam"]]
    queued = await _log(api, app, status="open")
    assert [(e["rule"], e["msg_id"]) for e in queued] == [("strangers", again["msg_id"]),
                                                          ("strangers", queued[1]["msg_id"])]
    await _close(*clients)
