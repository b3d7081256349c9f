"""One hostile connection harms nobody else: floods, huge numbers, slow readers, races."""

from __future__ import annotations

import asyncio

from app.gateway.endpoint import FrameBudget
from app.services.conversations import SYNC_PAGE_CHARS, _within_budget
from tests.support import Api, AppCreds, Client, Server


async def test_a_frame_flood_closes_only_the_flooder(api: Api, app: AppCreds, server: Server
                                                     ) -> None:
    """Hundreds of heartbeats at once close that connection with 4012; others go on."""
    a, b = await api.import_users(app, "a", "b")
    flooder = await Client.login(server, app, await api.token(app, a))
    calm = await Client.login(server, app, await api.token(app, b))
    for _ in range(400):
        if flooder.closed:
            break
        await flooder.send_raw("h")
    assert await flooder.wait_closed() == 4012
    reply = await calm.request({"type": "send", "to": a, "content": {"type": "text",
                                                                    "text": "still here"}})
    assert reply["type"] == "send_ok"
    await calm.close()


def test_frame_budget_refills_at_its_rate() -> None:
    """The bucket allows a burst of twice the rate, then one frame per 1/rate seconds."""
    budget = FrameBudget(10)
    assert all(budget.take(0.0) for _ in range(20))
    assert not budget.take(0.0)
    assert budget.take(0.1) and not budget.take(0.1)


async def test_numbers_past_64_bits_are_field_errors(api: Api, app: AppCreds, server: Server
                                                     ) -> None:
    """A seq or a mute time too large for the database is invalid_field, not a crash."""
    (a,) = await api.import_users(app, "a")
    c = await Client.login(server, app, await api.token(app, a))
    conv = f"p2p:{a}:{a}"
    # Written by hand: the test client's JSON encoder refuses such numbers itself.
    for i, frame in enumerate((
        f'{{"type":"recall","conversation_id":"{conv}","seq":{2**63}',
        f'{{"type":"receipts","conversation_id":"{conv}","seq":{2**70}',
        f'{{"type":"sync","conversation_id":"{conv}","after_seq":{2**64}',
        f'{{"type":"group_mute_member","group_id":"g","user_id_md5":"{a}","until_ms":{10**16}',
    )):
        await c.send_raw(frame + f',"id":"big{i}"}}')
        reply = await c.wait_for(lambda f, i=i: isinstance(f, dict) and f.get("id") == f"big{i}")
        assert reply["code"] == "invalid_field", frame
    await c.close()


def test_a_sync_page_is_bounded_by_size_as_well_as_count() -> None:
    """Long messages end a page early (keeping at least one), so no frame is megabytes."""

    class Row:
        def __init__(self, size: int) -> None:
            self.content = "x" * size

    big = [Row(30_000) for _ in range(200)]
    page = _within_budget(big)
    assert 1 <= len(page) < 200 and sum(len(r.content) for r in page) <= SYNC_PAGE_CHARS
    assert len(_within_budget([Row(SYNC_PAGE_CHARS * 2)])) == 1


async def test_concurrent_joins_respect_the_member_limit(api: Api, app: AppCreds,
                                                         server: Server) -> None:
    """Eight users racing into a free group of limit 3 leave exactly 3 members."""
    users = await api.import_users(app, *[f"u{i}" for i in range(9)])
    owner, racers = users[0], users[1:]
    r = await api.call(app, "POST", "/v1/groups", json={
        "owner": owner, "name": "tight", "members": [], "join_policy": "free",
        "member_limit": 3})
    gid = r.json()["group_id"]
    clients = [await Client.login(server, app, await api.token(app, u)) for u in racers]
    replies = await asyncio.gather(*[c.request({"type": "group_join", "group_id": gid})
                                     for c in clients])
    joined = [x for x in replies if x.get("status") == "joined"]
    assert len(joined) == 2, replies
    assert {x.get("code") for x in replies if x["type"] == "error"} == {"group_full"}
    group = (await api.call(app, "GET", f"/v1/groups/{gid}")).json()
    members = (await api.call(app, "GET", f"/v1/groups/{gid}/members")).json()["members"]
    assert group["member_count"] == len(members) == 3
    for c in clients:
        await c.close()


async def test_concurrent_leaves_write_one_notice(api: Api, app: AppCreds, server: Server
                                                  ) -> None:
    """Four leaves of one member at once: one member_left notice, the count drops by one."""
    owner, user = await api.import_users(app, "o", "u")
    gid = (await api.call(app, "POST", "/v1/groups", json={
        "owner": owner, "name": "g", "members": [user]})).json()["group_id"]
    devices = [await Client.login(server, app, await api.token(app, user)) for _ in range(4)]
    await asyncio.gather(*[d.request({"type": "group_leave", "group_id": gid})
                           for d in devices])
    history = await api.call(app, "GET", f"/v1/conversations/grp:{gid}/messages",
                             params={"from": "2000-01-01T00:00:00Z",
                                     "to": "2100-01-01T00:00:00Z"})
    events = [m["content"].get("event") for m in history.json()["messages"]]
    assert events.count("member_left") == 1
    assert (await api.call(app, "GET", f"/v1/groups/{gid}")).json()["member_count"] == 1
    for d in devices:
        await d.close()
