"""Groups through the App Server's REST routes, and what each role may do over WS frames.

The personas: alice owns the group, bob and carol are admins where a test says so,
dave and erin are plain users who join or are added along the way.
"""

from __future__ import annotations

import hashlib
from typing import Any

from tests.support import ADMIN_TOKEN, Api, AppCreds, Client, Server

IMPORT_BATCH = 1000  # the most users one import call takes


def _md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


def _is(kind: str) -> Any:
    return lambda f: isinstance(f, dict) and f["type"] == kind


async def _login(api: Api, app: AppCreds, server: Server, user: str) -> Client:
    return await Client.login(server, app, await api.token(app, user))


async def _create(api: Api, app: AppCreds, owner: str, members: list[str],
                  **fields: Any) -> dict[str, Any]:
    r = await api.call(app, "POST", "/v1/groups",
                       json={"owner": owner, "name": "crew", "members": members, **fields})
    assert r.status_code == 201, r.text
    return dict(r.json())


async def _make_admin(api: Api, app: AppCreds, group_id: str, *users: str) -> None:
    for user in users:
        r = await api.call(app, "PUT", f"/v1/groups/{group_id}/members/{user}/role",
                           json={"role": "admin"})
        assert r.status_code == 204, r.text


async def _roles(api: Api, app: AppCreds, group_id: str) -> dict[str, str]:
    r = await api.call(app, "GET", f"/v1/groups/{group_id}/members")
    assert r.status_code == 200, r.text
    return {m["user_id_md5"]: m["role"] for m in r.json()["members"]}


def _statuses(reply: dict[str, Any]) -> list[str]:
    """Each user's outcome: its status, or its error code when it failed."""
    return [r["error"]["code"] if r["status"] == "error" else r["status"]
            for r in reply["results"]]


async def test_create_get_and_update_over_rest(api: Api, app: AppCreds) -> None:
    """A group made over REST reads back as made, and a PATCH changes only what it names."""
    alice, bob = await api.import_users(app, "alice", "bob")

    made = await _create(api, app, alice, [bob], group_id="team-1", join_policy="free",
                         notice="be kind", extra={"topic": "ops"})
    got = (await api.call(app, "GET", "/v1/groups/team-1")).json()
    changed = await api.call(app, "PATCH", "/v1/groups/team-1",
                             json={"name": "renamed", "join_policy": "invite"})

    assert made == got
    assert (got["group_id"], got["conversation_id"], got["owner"]) == ("team-1", "grp:team-1",
                                                                      alice)
    assert (got["name"], got["join_policy"], got["notice"], got["extra"]) == (
        "crew", "free", "be kind", {"topic": "ops"})
    assert (got["member_count"], got["dismissed"]) == (2, False)
    assert changed.status_code == 200, changed.text
    assert (changed.json()["name"], changed.json()["join_policy"]) == ("renamed", "invite")
    assert changed.json()["notice"] == "be kind"
    missing = await api.call(app, "GET", "/v1/groups/no-such-group")
    assert (missing.status_code, missing.json()["code"]) == (404, "group_not_found")


async def test_user_groups_and_member_list_over_rest(api: Api, app: AppCreds) -> None:
    """A user's group list carries their role, and the member list names every member's role."""
    alice, bob, carol = await api.import_users(app, "alice", "bob", "carol")
    first = await _create(api, app, alice, [bob])
    second = await _create(api, app, bob, [alice, carol])

    listed = (await api.call(app, "GET", f"/v1/users/{bob}/groups")).json()["groups"]
    roles = await _roles(api, app, second["group_id"])

    assert [(g["group_id"], g["my_role"]) for g in listed] == [
        (first["group_id"], "member"), (second["group_id"], "owner")]
    assert roles == {alice: "member", bob: "owner", carol: "member"}


async def test_dismiss_over_rest_ends_the_group(api: Api, app: AppCreds) -> None:
    """After DELETE the group reads as dismissed, leaves its members' lists and takes no posts."""
    alice, bob = await api.import_users(app, "alice", "bob")
    group = await _create(api, app, alice, [bob])
    gid = group["group_id"]

    gone = await api.call(app, "DELETE", f"/v1/groups/{gid}")

    assert gone.status_code == 204, gone.text
    assert (await api.call(app, "GET", f"/v1/groups/{gid}")).json()["dismissed"] is True
    assert (await api.call(app, "GET", f"/v1/users/{bob}/groups")).json()["groups"] == []
    post = await api.call(app, "POST", f"/v1/groups/{gid}/messages", json={
        "from_user_id_md5": alice, "content": {"type": "text", "text": "anyone?"}})
    assert post.json()["code"] == "group_dismissed", post.text


async def test_add_and_remove_report_an_outcome_per_user(api: Api, app: AppCreds) -> None:
    """Adding and removing answer for each user: added, already_member, user_not_found,
    removed, not_member."""
    alice, bob, dave, erin = await api.import_users(app, "alice", "bob", "dave", "erin")
    gid = (await _create(api, app, alice, [bob]))["group_id"]
    nobody = _md5("nobody")

    added = await api.call(app, "POST", f"/v1/groups/{gid}/members",
                           json={"users": [dave, bob, nobody]})
    removed = await api.call(app, "POST", f"/v1/groups/{gid}/members/remove",
                             json={"users": [dave, erin, nobody]})

    assert added.status_code == 200, added.text
    assert [r["user_id_md5"] for r in added.json()["results"]] == [dave, bob, nobody]
    assert _statuses(added.json()) == ["added", "already_member", "user_not_found"]
    assert _statuses(removed.json()) == ["removed", "not_member", "not_member"]
    assert set(await _roles(api, app, gid)) == {alice, bob}
    count = (await api.call(app, "GET", f"/v1/groups/{gid}")).json()["member_count"]
    assert count == 2


async def test_transfer_makes_the_old_owner_an_admin(api: Api, app: AppCreds) -> None:
    """Transferring ownership names the new owner and leaves the old one an admin."""
    alice, bob = await api.import_users(app, "alice", "bob")
    gid = (await _create(api, app, alice, [bob]))["group_id"]

    r = await api.call(app, "POST", f"/v1/groups/{gid}/owner", json={"user_id_md5": bob})

    assert r.status_code == 200, r.text
    assert r.json()["owner"] == bob
    assert await _roles(api, app, gid) == {alice: "admin", bob: "owner"}


async def test_set_role_promotes_and_demotes(api: Api, app: AppCreds) -> None:
    """The App Server makes a member an admin and back, and cannot make anyone owner this way."""
    alice, bob = await api.import_users(app, "alice", "bob")
    gid = (await _create(api, app, alice, [bob]))["group_id"]
    path = f"/v1/groups/{gid}/members/{bob}/role"

    await _make_admin(api, app, gid, bob)
    promoted = await _roles(api, app, gid)
    demoted = await api.call(app, "PUT", path, json={"role": "member"})
    as_owner = await api.call(app, "PUT", path, json={"role": "owner"})

    assert promoted[bob] == "admin"
    assert demoted.status_code == 204, demoted.text
    assert (await _roles(api, app, gid))[bob] == "member"
    assert as_owner.status_code == 400, as_owner.text


async def test_plain_member_cannot_remove_dismiss_or_update(
    api: Api, app: AppCreds, server: Server
) -> None:
    """A plain member's remove, dismiss and update frames are refused with not_allowed."""
    alice, bob, carol = await api.import_users(app, "alice", "bob", "carol")
    gid = (await _create(api, app, alice, [bob, carol]))["group_id"]
    b = await _login(api, app, server, bob)

    remove = await b.request({"type": "group_remove", "group_id": gid, "users": [carol]})
    dismiss = await b.request({"type": "group_dismiss", "group_id": gid})
    update = await b.request({"type": "group_update", "group_id": gid, "name": "mine now"})

    assert _statuses(remove) == ["not_allowed"]
    assert (dismiss["type"], dismiss["code"]) == ("error", "not_allowed")
    assert (update["type"], update["code"]) == ("error", "not_allowed")
    group = (await api.call(app, "GET", f"/v1/groups/{gid}")).json()
    assert (group["name"], group["dismissed"], group["member_count"]) == ("crew", False, 3)
    await b.close()


async def test_admin_removes_a_plain_member_but_not_the_owner_or_another_admin(
    api: Api, app: AppCreds, server: Server
) -> None:
    """An admin's remove takes out a plain member and refuses the owner and a fellow admin."""
    alice, bob, carol, dave = await api.import_users(app, "alice", "bob", "carol", "dave")
    gid = (await _create(api, app, alice, [bob, carol, dave]))["group_id"]
    await _make_admin(api, app, gid, bob, carol)
    b = await _login(api, app, server, bob)

    reply = await b.request({"type": "group_remove", "group_id": gid,
                             "users": [dave, alice, carol]})

    assert reply["type"] == "group_remove_ok", reply
    assert _statuses(reply) == ["removed", "not_allowed", "not_allowed"]
    assert set(await _roles(api, app, gid)) == {alice, bob, carol}
    await b.close()


async def test_only_the_owner_dismisses_and_sets_roles(
    api: Api, app: AppCreds, server: Server
) -> None:
    """An admin's set-role and dismiss frames are refused; the owner's succeed."""
    alice, bob, carol = await api.import_users(app, "alice", "bob", "carol")
    gid = (await _create(api, app, alice, [bob, carol]))["group_id"]
    await _make_admin(api, app, gid, bob)
    a = await _login(api, app, server, alice)
    b = await _login(api, app, server, bob)
    promote = {"type": "group_set_role", "group_id": gid, "user_id_md5": carol, "role": "admin"}

    by_admin = await b.request(promote)
    admin_dismiss = await b.request({"type": "group_dismiss", "group_id": gid})
    by_owner = await a.request(promote)
    roles = await _roles(api, app, gid)
    owner_dismiss = await a.request({"type": "group_dismiss", "group_id": gid})

    assert (by_admin["type"], by_admin["code"]) == ("error", "not_allowed")
    assert (admin_dismiss["type"], admin_dismiss["code"]) == ("error", "not_allowed")
    assert by_owner["type"] == "group_set_role_ok", by_owner
    assert roles[carol] == "admin"
    assert owner_dismiss["type"] == "group_dismiss_ok", owner_dismiss
    assert (await api.call(app, "GET", f"/v1/groups/{gid}")).json()["dismissed"] is True
    await a.close()
    await b.close()


async def test_owner_must_transfer_before_leaving(
    api: Api, app: AppCreds, server: Server
) -> None:
    """The owner's leave is owner_cannot_leave until ownership moves, then it goes through."""
    alice, bob = await api.import_users(app, "alice", "bob")
    gid = (await _create(api, app, alice, [bob]))["group_id"]
    a = await _login(api, app, server, alice)

    early = await a.request({"type": "group_leave", "group_id": gid})
    moved = await a.request({"type": "group_transfer", "group_id": gid, "user_id_md5": bob})
    late = await a.request({"type": "group_leave", "group_id": gid})

    assert (early["type"], early["code"]) == ("error", "owner_cannot_leave")
    assert moved["type"] == "group_transfer_ok" and moved["group"]["owner"] == bob, moved
    assert late["type"] == "group_leave_ok", late
    assert await _roles(api, app, gid) == {bob: "owner"}
    await a.close()


async def test_free_group_join_is_immediate_and_brings_later_messages(
    api: Api, app: AppCreds, server: Server
) -> None:
    """group_join on a free group answers joined; the joiner gets later messages, not earlier."""
    alice, dave = await api.import_users(app, "alice", "dave")
    gid = (await _create(api, app, alice, [], join_policy="free"))["group_id"]
    a = await _login(api, app, server, alice)
    d = await _login(api, app, server, dave)
    before = await a.request({"type": "send", "group_id": gid,
                              "content": {"type": "text", "text": "before"}})

    joined = await d.request({"type": "group_join", "group_id": gid})
    after = await a.request({"type": "send", "group_id": gid,
                             "content": {"type": "text", "text": "after"}})

    assert joined["status"] == "joined", joined
    live = await d.wait_for(lambda f: isinstance(f, dict) and f["type"] == "message"
                            and f["message"]["msg_id"] == after["msg_id"])
    assert live["message"]["content"]["text"] == "after"
    page = await d.request({"type": "sync", "conversation_id": f"grp:{gid}"})
    seen = [m["msg_id"] for m in page["messages"]]
    assert after["msg_id"] in seen and before["msg_id"] not in seen
    await a.close()
    await d.close()


async def test_approval_group_join_is_asked_of_the_owner(
    api: Api, app: AppCreds, server: Server
) -> None:
    """In an approval group a join is requested; the owner hears of it and approves one
    user into the group and rejects another, who is told."""
    alice, dave, erin = await api.import_users(app, "alice", "dave", "erin")
    gid = (await _create(api, app, alice, [], join_policy="approval"))["group_id"]
    a = await _login(api, app, server, alice)
    d = await _login(api, app, server, dave)
    e = await _login(api, app, server, erin)

    asked = await d.request({"type": "group_join", "group_id": gid, "note": "hi, it's dave"})
    pushed = await a.wait_for(_is("join_request"))
    pending = await a.request({"type": "group_requests", "group_id": gid})
    approved = await a.request({"type": "group_decide", "group_id": gid, "user_id_md5": dave,
                                "approve": True})
    await e.request({"type": "group_join", "group_id": gid})
    rejected = await a.request({"type": "group_decide", "group_id": gid, "user_id_md5": erin,
                                "approve": False})

    assert asked["status"] == "requested", asked
    assert (pushed["group_id"], pushed["user_id_md5"], pushed["note"]) == (gid, dave,
                                                                           "hi, it's dave")
    assert [r["user_id_md5"] for r in pending["requests"]] == [dave]
    assert approved["status"] == "added", approved
    assert rejected["status"] == "rejected", rejected
    assert (await e.wait_for(_is("join_rejected")))["group_id"] == gid
    assert await _roles(api, app, gid) == {alice: "owner", dave: "member"}
    for c in (a, d, e):
        await c.close()


async def test_invite_group_refuses_joins_and_lets_only_admins_add(
    api: Api, app: AppCreds, server: Server
) -> None:
    """group_join on an invite group is invite_only; a plain member cannot add, an admin can."""
    alice, bob, carol, dave, erin = await api.import_users(
        app, "alice", "bob", "carol", "dave", "erin")
    gid = (await _create(api, app, alice, [bob, carol], join_policy="invite"))["group_id"]
    await _make_admin(api, app, gid, carol)
    b = await _login(api, app, server, bob)
    c = await _login(api, app, server, carol)
    d = await _login(api, app, server, dave)

    join = await d.request({"type": "group_join", "group_id": gid})
    by_member = await b.request({"type": "group_add", "group_id": gid, "users": [dave]})
    by_admin = await c.request({"type": "group_add", "group_id": gid, "users": [dave, erin]})

    assert (join["type"], join["code"]) == ("error", "invite_only")
    assert (by_member["type"], by_member["code"]) == ("error", "not_allowed")
    assert _statuses(by_admin) == ["added", "added"]
    assert set(await _roles(api, app, gid)) == {alice, bob, carol, dave, erin}
    for client in (b, c, d):
        await client.close()


async def test_app_member_limit_refuses_the_member_past_it(api: Api, app: AppCreds) -> None:
    """With the app's limit set to 3 by the operator, the 4th member is refused as group_full."""
    alice, bob, carol, dave = await api.import_users(app, "alice", "bob", "carol", "dave")
    configured = await api.http.patch(f"/admin/apps/{app.key}", json={"group_member_limit": 3},
                                      headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert configured.status_code == 200, configured.text
    assert configured.json()["group_member_limit"] == 3
    group = await _create(api, app, alice, [bob])

    added = await api.call(app, "POST", f"/v1/groups/{group['group_id']}/members",
                           json={"users": [carol, dave]})
    too_many = await api.call(app, "POST", "/v1/groups",
                              json={"owner": alice, "name": "big", "members": [bob, carol, dave]})

    assert group["member_limit"] == 3
    assert _statuses(added.json()) == ["added", "group_full"]
    assert too_many.json()["code"] == "group_full", too_many.text


async def test_a_group_of_2100_takes_a_message_and_a_member_syncs_it(
    api: Api, app: AppCreds, server: Server
) -> None:
    """A group made with member_limit 2500 holds 2,100 members, and a message to it is acked
    and found by a member's sync."""
    people: list[str] = []
    for start in range(0, 2100, IMPORT_BATCH):
        batch = [f"user-{i}" for i in range(start, min(start + IMPORT_BATCH, 2100))]
        people += await api.import_users(app, *batch)
    owner, last = people[0], people[-1]
    group = await _create(api, app, owner, people[1:1000], member_limit=2500)
    gid = group["group_id"]
    added = await api.call(app, "POST", f"/v1/groups/{gid}/members",
                           json={"users": people[1000:]})
    assert set(_statuses(added.json())) == {"added"}
    assert (await api.call(app, "GET", f"/v1/groups/{gid}")).json()["member_count"] == 2100
    o = await _login(api, app, server, owner)
    m = await _login(api, app, server, last)

    ack = await o.request({"type": "send", "group_id": gid,
                           "content": {"type": "text", "text": "hello, everyone"}})

    assert ack["type"] == "send_ok", ack
    live = await m.wait_for(lambda f: isinstance(f, dict) and f["type"] == "message"
                            and f["message"]["msg_id"] == ack["msg_id"])
    assert live["message"]["seq"] == ack["seq"]
    page = await m.request({"type": "sync", "conversation_id": ack["conversation_id"],
                            "after_seq": ack["seq"] - 1})
    assert [msg["msg_id"] for msg in page["messages"]] == [ack["msg_id"]]
    await o.close()
    await m.close()
