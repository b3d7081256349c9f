"""Server push to many users at once, and broadcasts to a whole app."""

from __future__ import annotations

import asyncio
import hashlib

from tests.support import Api, AppCreds, Client, Server

NOTICE = {"type": "text", "text": "maintenance at noon"}


async def test_push_reaches_each_user_and_fails_bad_items_alone(
    api: Api, app: AppCreds, server: Server
) -> None:
    """Known users get the notice (live or by sync); an unknown one fails by itself."""
    online, offline = await api.import_users(app, "on", "off")
    c = await Client.login(server, app, await api.token(app, online))
    nobody = hashlib.md5(b"nobody").hexdigest()
    r = await api.call(app, "POST", "/v1/push", json={
        "to_user_ids_md5": [online, offline, nobody, "not-an-md5"], "content": NOTICE})
    body = r.json()
    assert (body["sent"], body["failed"]) == (2, 2)
    by_user = {x["user_id_md5"]: x for x in body["results"]}
    assert by_user[nobody]["error"]["code"] == "user_not_found"
    assert any(x["error"] and x["error"]["code"] == "invalid_user_id" for x in body["results"])
    (live,) = await c.messages(1)
    assert live["from"] is None and live["content"] == NOTICE
    later = await Client.login(server, app, await api.token(app, offline))
    page = await later.request({"type": "sync", "conversation_id": f"sys:{offline}"})
    assert [m["content"] for m in page["messages"]] == [NOTICE]
    for x in (c, later):
        await x.close()


async def test_push_takes_at_most_a_thousand(api: Api, app: AppCreds) -> None:
    """1,001 recipients are refused as a whole with a code."""
    r = await api.call(app, "POST", "/v1/push", json={
        "to_user_ids": [f"u{i}" for i in range(1001)], "content": NOTICE})
    assert (r.status_code, r.json()["code"]) == (400, "invalid_request")


async def test_broadcast_reaches_every_user_once(api: Api, app: AppCreds, server: Server
                                                 ) -> None:
    """A broadcast to 250 users finishes in the background and each has it exactly once."""
    users = await api.import_users(app, *[f"b{i}" for i in range(250)])
    c = await Client.login(server, app, await api.token(app, users[7]))
    r = await api.call(app, "POST", "/v1/broadcasts", json={"content": NOTICE})
    assert r.status_code == 202 and r.json()["status"] == "running"
    bid = r.json()["broadcast_id"]
    for _ in range(100):
        state = (await api.call(app, "GET", f"/v1/broadcasts/{bid}")).json()
        if state["status"] == "done":
            break
        await asyncio.sleep(0.1)
    assert state == {**state, "status": "done", "sent": 250}
    (live,) = await c.messages(1)
    assert live["content"] == NOTICE and live["client_msg_id"] == f"broadcast:{bid}"
    for user in (users[0], users[-1]):
        log = await api.call(app, "GET", f"/v1/users/{user}/messages",
                             params={"from": "2000-01-01T00:00:00Z",
                                     "to": "2100-01-01T00:00:00Z"})
        assert [m["content"] for m in log.json()["messages"]] == [NOTICE]
    await c.close()
