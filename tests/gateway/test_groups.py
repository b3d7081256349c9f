"""Group messaging over real connections: fan-out, visibility by membership, mutes,
mentions, dismissal, and the race between a send and a removal."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.support import Api, AppCreds, Client, Server


def text(t: str, **extra: Any) -> dict[str, Any]:
    return {"type": "text", "text": t, **extra}


async def _group(api: Api, app: AppCreds, owner: str, others: list[str], **opts: Any
                 ) -> dict[str, Any]:
    r = await api.call(app, "POST", "/v1/groups",
                       json={"owner": owner, "name": "team", "members": others, **opts})
    assert r.status_code == 201, r.text
    return dict(r.json())


async def _login(api: Api, app: AppCreds, server: Server, *users: str) -> list[Client]:
    return [await Client.login(server, app, await api.token(app, u)) for u in users]


def _is_msg(frame: Any) -> bool:
    return isinstance(frame, dict) and frame.get("type") == "message"


async def _texts(client: Client, conv: str) -> list[str]:
    """Every text message the client may sync in the conversation, in seq order."""
    page = await client.request({"type": "sync", "conversation_id": conv, "limit": 200})
    return [m["content"]["text"] for m in page["messages"] if m["content"]["type"] == "text"]


async def test_group_message_reaches_every_online_member_and_syncs_for_offline(
    api: Api, app: AppCreds, server: Server
) -> None:
    """One send is acked once, pushed to each online member, and synced by an offline one."""
    owner, a, b, offline = await api.import_users(app, "o", "a", "b", "off")
    group = await _group(api, app, owner, [a, b, offline])
    o, ca, cb = await _login(api, app, server, owner, a, b)

    ack = await ca.request({"type": "send", "group_id": group["group_id"],
                            "content": text("hello team")})
    assert ack["type"] == "send_ok" and ack["conversation_id"] == f"grp:{group['group_id']}"
    for c in (o, cb):
        (msg,) = [m for m in await c.messages(1) if m["content"]["type"] == "text"] or [None]
        assert msg is not None and msg["from"] == a and msg["to"] == group["group_id"]
    (late,) = await _login(api, app, server, offline)
    assert await _texts(late, group["conversation_id"]) == ["hello team"]
    (conv,) = (await late.request({"type": "conversations"}))["conversations"]
    assert conv["kind"] == "group" and conv["unread"] == 1 and conv["role"] == "member"
    for c in (o, ca, cb, late):
        await c.close()


async def test_new_member_sees_from_join_unless_history_is_visible(
    api: Api, app: AppCreds, server: Server
) -> None:
    """A member added later sees the join notice on, unless the group shows history."""
    owner, newcomer, reader = await api.import_users(app, "o", "new", "reader")
    closed = await _group(api, app, owner, [])
    open_ = await _group(api, app, owner, [], history_visible=True)
    for g in (closed, open_):
        await api.call(app, "POST", f"/v1/groups/{g['group_id']}/messages",
                       json={"from_user_id_md5": owner, "content": text("before")})
        await api.call(app, "POST", f"/v1/groups/{g['group_id']}/members",
                       json={"users": [newcomer, reader]})
        await api.call(app, "POST", f"/v1/groups/{g['group_id']}/messages",
                       json={"from_user_id_md5": owner, "content": text("after")})
    (c,) = await _login(api, app, server, newcomer)
    assert await _texts(c, closed["conversation_id"]) == ["after"]
    assert await _texts(c, open_["conversation_id"]) == ["before", "after"]
    page = await c.request({"type": "sync", "conversation_id": closed["conversation_id"]})
    assert page["messages"][0]["content"]["event"] == "members_added"
    listing = {x["conversation_id"]: x for x in
               (await c.request({"type": "conversations"}))["conversations"]}
    assert listing[closed["conversation_id"]]["unread"] == 1
    await c.close()


async def test_leave_and_rejoin_keeps_the_gap_hidden(api: Api, app: AppCreds, server: Server
                                                     ) -> None:
    """Messages sent while a user was away never reach them, live or by sync."""
    owner, user = await api.import_users(app, "o", "u")
    g = await _group(api, app, owner, [user], join_policy="free")
    gid, conv = g["group_id"], g["conversation_id"]
    (c,) = await _login(api, app, server, user)

    async def post(t: str) -> None:
        await api.call(app, "POST", f"/v1/groups/{gid}/messages",
                       json={"from_user_id_md5": owner, "content": text(t)})

    await post("one")
    left = await c.request({"type": "group_leave", "group_id": gid})
    assert left["type"] == "group_leave_ok"
    await post("while away")
    before = await c.request({"type": "sync", "conversation_id": conv})
    assert [m["content"].get("text") for m in before["messages"]][-2:] == ["one", None]
    assert before["messages"][-1]["content"]["event"] == "member_left"
    assert (await c.request({"type": "sync", "conversation_id": conv,
                             "after_seq": before["last_seq"] + 1}))["code"] == "seq_out_of_range"

    joined = await c.request({"type": "group_join", "group_id": gid})
    assert joined["status"] == "joined"
    await post("back")
    await asyncio.sleep(0.1)
    live = [f["message"]["content"].get("text") for f in c.frames if _is_msg(f)]
    assert "while away" not in live and "back" in live
    assert await _texts(c, conv) == ["back"]
    await c.close()


async def test_removal_racing_with_sends_is_exact(api: Api, app: AppCreds, server: Server
                                                  ) -> None:
    """Under concurrent sends, the removed member gets exactly the messages before the
    removal notice, and the others get every message."""
    owner, sender, victim, witness = await api.import_users(app, "o", "s", "v", "w")
    g = await _group(api, app, owner, [sender, victim, witness])
    gid, conv = g["group_id"], g["conversation_id"]
    cs, cv, cw = await _login(api, app, server, sender, victim, witness)

    async def burst() -> list[dict[str, Any]]:
        return [await cs.request({"type": "send", "group_id": gid, "client_msg_id": f"m{i}",
                                  "content": text(f"m{i}")}) for i in range(30)]

    sending = asyncio.create_task(burst())
    await cw.wait_for(lambda f: _is_msg(f) and f["message"]["content"].get("text") == "m4")
    removed = await api.call(app, "POST", f"/v1/groups/{gid}/members/remove",
                             json={"users": [victim]})
    acks = await sending
    assert removed.json()["results"][0]["status"] == "removed"
    await asyncio.sleep(0.3)

    history = (await cw.request({"type": "sync", "conversation_id": conv, "limit": 200}))
    notice = next(m for m in history["messages"]
                  if m["content"].get("event") == "members_removed")
    before = {a["seq"] for a in acks if a["seq"] < notice["seq"]}
    assert 5 <= len(before) < 30, "the removal did not land inside the burst"
    victim_live = {f["message"]["seq"] for f in cv.frames
                   if _is_msg(f) and f["message"]["content"]["type"] == "text"}
    assert victim_live == before
    victim_sync = await cv.request({"type": "sync", "conversation_id": conv, "limit": 200})
    assert victim_sync["last_seq"] == notice["seq"]
    assert {m["seq"] for m in victim_sync["messages"] if m["content"]["type"] == "text"} == before
    witness_seqs = {m["seq"] for m in history["messages"] if m["content"]["type"] == "text"}
    assert witness_seqs == {a["seq"] for a in acks}
    for c in (cs, cv, cw):
        await c.close()


async def test_muted_member_and_muted_group_get_clear_codes(api: Api, app: AppCreds,
                                                            server: Server) -> None:
    """A muted member gets `muted`; a muted group refuses members but not admins."""
    owner, admin, member = await api.import_users(app, "o", "adm", "mem")
    g = await _group(api, app, owner, [admin, member])
    gid = g["group_id"]
    await api.call(app, "PUT", f"/v1/groups/{gid}/members/{admin}/role", json={"role": "admin"})
    co, ca, cm = await _login(api, app, server, owner, admin, member)

    muted = await ca.request({"type": "group_mute_member", "group_id": gid,
                              "user_id_md5": member, "until_ms": 4_102_444_800_000})
    assert muted["type"] == "group_mute_member_ok"
    refused = await cm.request({"type": "send", "group_id": gid, "content": text("hi")})
    assert refused["code"] == "muted"
    await ca.request({"type": "group_mute_member", "group_id": gid, "user_id_md5": member,
                      "until_ms": 0})
    assert (await cm.request({"type": "send", "group_id": gid,
                              "content": text("hi")}))["type"] == "send_ok"

    await co.request({"type": "group_mute_all", "group_id": gid, "on": True})
    assert (await cm.request({"type": "send", "group_id": gid,
                              "content": text("x")}))["code"] == "group_muted"
    assert (await ca.request({"type": "send", "group_id": gid,
                              "content": text("admins may")}))["type"] == "send_ok"
    for c in (co, ca, cm):
        await c.close()


async def test_mentions_flag_the_conversation_until_read(api: Api, app: AppCreds,
                                                         server: Server) -> None:
    """@member flags only that member; @all needs an admin; reading clears the flag."""
    owner, a, b = await api.import_users(app, "o", "a", "b")
    g = await _group(api, app, owner, [a, b])
    gid, conv = g["group_id"], g["conversation_id"]
    co, ca, cb = await _login(api, app, server, owner, a, b)

    async def flag(c: Client) -> bool:
        listing = (await c.request({"type": "conversations"}))["conversations"]
        return bool(next(x for x in listing if x["conversation_id"] == conv)["mentioned"])

    ack = await ca.request({"type": "send", "group_id": gid,
                            "content": text("@b look", mentions=[b])})
    assert ack["type"] == "send_ok"
    assert await flag(cb) and not await flag(co)
    await cb.request({"type": "read", "conversation_id": conv, "seq": ack["seq"]})
    assert not await flag(cb)

    everyone = await ca.request({"type": "send", "group_id": gid,
                                 "content": text("@all", mentions=["all"])})
    assert everyone["code"] == "not_allowed"
    await co.request({"type": "send", "group_id": gid, "content": text("@all", mentions=["all"])})
    assert await flag(ca) and await flag(cb)
    outsider = "f" * 32
    bad = await co.request({"type": "send", "group_id": gid,
                            "content": text("x", mentions=[outsider])})
    assert bad["code"] == "invalid_mention"
    for c in (co, ca, cb):
        await c.close()


async def test_dismissed_group_keeps_history_and_refuses_sends(api: Api, app: AppCreds,
                                                               server: Server) -> None:
    """After dismissal nobody posts, members still sync what was said, and hear of it live."""
    owner, a = await api.import_users(app, "o", "a")
    g = await _group(api, app, owner, [a])
    gid, conv = g["group_id"], g["conversation_id"]
    co, ca = await _login(api, app, server, owner, a)
    await ca.request({"type": "send", "group_id": gid, "content": text("last words")})
    member_cannot = await ca.request({"type": "group_dismiss", "group_id": gid})
    assert member_cannot["code"] == "not_allowed"
    assert (await co.request({"type": "group_dismiss", "group_id": gid}))["type"] == \
        "group_dismiss_ok"
    notice = await ca.wait_for(lambda f: _is_msg(f) and
                               f["message"]["content"].get("event") == "group_dismissed")
    assert notice["message"]["from"] is None
    assert (await ca.request({"type": "send", "group_id": gid,
                              "content": text("x")}))["code"] == "group_dismissed"
    assert await _texts(ca, conv) == ["last words"]
    assert (await co.request({"type": "group_get", "group_id": gid}))["group"]["dismissed"]
    for c in (co, ca):
        await c.close()


async def test_a_non_member_cannot_post_or_read(api: Api, app: AppCreds, server: Server
                                                ) -> None:
    """Someone outside the group gets not_a_member on send and nothing on sync."""
    owner, outsider = await api.import_users(app, "o", "x")
    g = await _group(api, app, owner, [])
    (c,) = await _login(api, app, server, outsider)
    sent = await c.request({"type": "send", "group_id": g["group_id"], "content": text("hi")})
    assert sent["code"] == "not_a_member"
    peek = await c.request({"type": "sync", "conversation_id": g["conversation_id"]})
    assert peek["code"] == "conversation_not_found"
    await c.close()
