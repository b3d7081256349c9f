"""One app can never see or change another app's users, messages, tokens or settings."""

from __future__ import annotations

from tests.support import Api, Client, Server

WIDE = {"from": "2000-01-01T00:00:00Z", "to": "2100-01-01T00:00:00Z"}


async def test_apps_are_isolated_on_every_path(api: Api, server: Server) -> None:
    """App B cannot read, change, message, token or kick app A's users, nor read A's logs."""
    a, b = await api.create_app("a"), await api.create_app("b")
    alice, bob = await api.import_users(a, "alice", "bob")
    (mallory,) = await api.import_users(b, "mallory")
    sent = await api.call(a, "POST", "/v1/messages", json={
        "from_user_id_md5": alice, "to_user_id_md5": bob,
        "content": {"type": "text", "text": "private"}})
    conv = sent.json()["conversation_id"]

    attempts = {
        "get": await api.call(b, "GET", f"/v1/users/{alice}"),
        "patch": await api.call(b, "PATCH", f"/v1/users/{alice}", json={"nickname": "pwned"}),
        "delete": await api.call(b, "DELETE", f"/v1/users/{alice}"),
        "token": await api.call(b, "POST", f"/v1/users/{alice}/tokens", json={}),
        "kick": await api.call(b, "POST", f"/v1/users/{alice}/kick", json={}),
        "send-as": await api.call(b, "POST", "/v1/messages", json={
            "from_user_id_md5": alice, "to_user_id_md5": bob,
            "content": {"type": "text", "text": "x"}}),
        "send-to": await api.call(b, "POST", "/v1/messages", json={
            "from_user_id_md5": mallory, "to_user_id_md5": alice,
            "content": {"type": "text", "text": "x"}}),
        "notice": await api.call(b, "POST", "/v1/notices", json={
            "to_user_id_md5": alice, "content": {"type": "text", "text": "x"}}),
    }
    for name, r in attempts.items():
        assert r.status_code == 404 and r.json()["code"] == "user_not_found", name

    user_log = await api.call(b, "GET", f"/v1/users/{alice}/messages", params=WIDE)
    conv_log = await api.call(b, "GET", f"/v1/conversations/{conv}/messages", params=WIDE)
    assert user_log.json()["messages"] == [] and conv_log.json()["messages"] == []
    assert (await api.call(b, "GET", "/v1/users")).json()["users"][0]["user_id_md5"] == mallory
    still = (await api.call(a, "GET", f"/v1/users/{alice}")).json()
    assert still["nickname"] is None


async def test_a_token_of_one_app_never_works_for_another(api: Api, server: Server) -> None:
    """A login token names its app: logging in under another app key is refused with 4002."""
    a, b = await api.create_app("a"), await api.create_app("b")
    (alice,) = await api.import_users(a, "same-id")
    await api.import_users(b, "same-id")
    token = await api.token(a, alice)
    c = await Client.connect(server)
    reply = await c.request({"type": "login", "app_key": b.key, "token": token})
    assert reply["code"] == "token_invalid"
    assert await c.wait_closed() == 4002


async def test_same_raw_id_in_two_apps_is_two_users(api: Api, server: Server) -> None:
    """A message to a user of app A never reaches the same-named user of app B."""
    a, b = await api.create_app("a"), await api.create_app("b")
    alice_a, bob_a = await api.import_users(a, "alice", "bob")
    (bob_b,) = await api.import_users(b, "bob")
    assert bob_a == bob_b  # the same MD5 ID, scoped by app
    listener_b = await Client.login(server, b, await api.token(b, bob_b))
    listener_a = await Client.login(server, a, await api.token(a, bob_a))
    await api.call(a, "POST", "/v1/messages", json={
        "from_user_id_md5": alice_a, "to_user_id_md5": bob_a,
        "content": {"type": "text", "text": "for app a"}})
    (got,) = await listener_a.messages(1)
    assert got["content"]["text"] == "for app a"
    listing = await listener_b.request({"type": "conversations"})
    assert listing["conversations"] == []
    assert not [f for f in listener_b.frames if isinstance(f, dict) and f["type"] == "message"]
    await listener_a.close()
    await listener_b.close()
