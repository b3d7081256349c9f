"""User import with MD5 IDs, and the rest of a user's life over REST."""

from __future__ import annotations

import hashlib

from tests.support import Api, AppCreds, Client, Server


def md5(raw: str) -> str:
    return hashlib.md5(raw.encode()).hexdigest()


async def test_import_hashes_raw_ids_and_accepts_md5_in_any_case(api: Api, app: AppCreds) -> None:
    """A raw ID becomes its lowercase MD5; a given MD5 is lowercased; nothing else is kept."""
    r = await api.call(app, "POST", "/v1/users/import", json={"users": [
        {"user_id": "张三@example", "nickname": "Zhang"},
        {"user_id_md5": md5("bob").upper()},
    ]})
    results = r.json()["results"]
    assert [x["user_id_md5"] for x in results] == [md5("张三@example"), md5("bob")]
    assert [x["status"] for x in results] == ["created", "created"]
    user = (await api.call(app, "GET", f"/v1/users/{md5('张三@example')}")).json()
    assert user["nickname"] == "Zhang" and "user_id" not in user
    assert "张三@example" not in r.text


async def test_bad_items_fail_alone(api: Api, app: AppCreds) -> None:
    """Blank, padded and malformed IDs fail per item; the good items in the batch land."""
    items = [
        {"user_id": "ok-1"},
        {"user_id": " padded"},
        {"user_id": "padded "},
        {"user_id": ""},
        {"user_id_md5": "xyz"},
        {"user_id": "both", "user_id_md5": md5("both")},
        {"nickname": "no id"},
        {"user_id": 42},
        {"user_id": "ok-2", "password_md5": "not-a-digest"},
        "not an object",
        {"user_id": "ok-3", "extra": {"level": 3}},
    ]
    r = await api.call(app, "POST", "/v1/users/import", json={"users": items})
    assert r.status_code == 200
    body = r.json()
    statuses = [x["status"] for x in body["results"]]
    assert statuses == ["created"] + ["error"] * 9 + ["created"]
    assert (body["created"], body["failed"]) == (2, 9)
    codes = [x["error"]["code"] for x in body["results"] if x["error"]]
    assert codes[:4] == ["invalid_user_id"] * 4
    assert all(isinstance(x["error"]["message"], str) for x in body["results"] if x["error"])
    assert (await api.call(app, "GET", f"/v1/users/{md5(' padded')}")).status_code == 404


async def test_import_is_an_idempotent_upsert(api: Api, app: AppCreds) -> None:
    """Importing again updates given fields, keeps the others, and creates nothing new."""
    await api.call(app, "POST", "/v1/users/import", json={"users": [
        {"user_id": "u1", "nickname": "One", "extra": {"a": 1}}]})
    again = await api.call(app, "POST", "/v1/users/import", json={"users": [
        {"user_id": "u1", "nickname": "Uno"}]})
    assert again.json()["results"][0]["status"] == "updated"
    user = (await api.call(app, "GET", f"/v1/users/{md5('u1')}")).json()
    assert (user["nickname"], user["extra"]) == ("Uno", {"a": 1})
    listing = (await api.call(app, "GET", "/v1/users")).json()
    assert [u["user_id_md5"] for u in listing["users"]] == [md5("u1")]


async def test_import_takes_a_thousand_and_refuses_more(api: Api, app: AppCreds) -> None:
    """A batch of 1,000 is accepted in one call; 1,001 is refused as a whole."""
    ok = await api.call(app, "POST", "/v1/users/import",
                        json={"users": [{"user_id": f"bulk-{i}"} for i in range(1000)]})
    assert ok.status_code == 200 and ok.json()["created"] == 1000
    too_many = await api.call(app, "POST", "/v1/users/import",
                              json={"users": [{"user_id": f"x-{i}"} for i in range(1001)]})
    assert too_many.status_code == 400 and too_many.json()["code"] == "invalid_request"


async def test_list_pages_through_every_user_once(api: Api, app: AppCreds) -> None:
    """Paging with next_cursor visits every user exactly once."""
    made = set(await api.import_users(app, *[f"p{i}" for i in range(7)]))
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        page = (await api.call(app, "GET", "/v1/users", params=params)).json()
        seen += [u["user_id_md5"] for u in page["users"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == sorted(made) and len(seen) == 7


async def test_update_and_password_storage(api: Api, app: AppCreds, server: Server) -> None:
    """PATCH changes fields; a password is stored as a hash and works for login."""
    (user,) = await api.import_users(app, "carol")
    r = await api.call(app, "PATCH", f"/v1/users/{user}",
                       json={"nickname": "Carol", "password_md5": md5("s3cret")})
    assert r.json()["nickname"] == "Carol" and r.json()["has_password"] is True
    assert "password" not in {k for k in r.json() if k != "has_password"}
    rows = await server.db.execute(
        "SELECT u.password_hash FROM users u JOIN apps a ON a.id = u.app_id "
        "WHERE u.id = $1 AND a.key = $2", user, app.key)
    assert rows[0][0].startswith("$argon2id$")
    c = await Client.connect(server)
    ok = await c.request({"type": "login", "app_key": app.key, "user_id_md5": user,
                          "password_md5": md5("s3cret").upper()})
    assert ok["type"] == "login_ok" and ok["user_id_md5"] == user
    await c.close()


async def test_unknown_user_and_bad_md5_have_codes(api: Api, app: AppCreds) -> None:
    """A missing user is 404 user_not_found; a malformed MD5 in a path is 400 invalid_user_id."""
    missing = await api.call(app, "GET", f"/v1/users/{md5('nobody')}")
    bad = await api.call(app, "GET", "/v1/users/not-a-digest")
    assert (missing.status_code, missing.json()["code"]) == (404, "user_not_found")
    assert (bad.status_code, bad.json()["code"]) == (400, "invalid_user_id")


async def test_delete_revokes_tokens_and_closes_connections(api: Api, app: AppCreds,
                                                            server: Server) -> None:
    """Deleting a user closes their sockets with 4006 and their token stops working."""
    (user,) = await api.import_users(app, "dave")
    token = await api.token(app, user)
    c = await Client.login(server, app, token)
    assert (await api.call(app, "DELETE", f"/v1/users/{user}")).status_code == 204
    assert await c.wait_closed() == 4006
    me = await api.http.get("/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 401
    assert (await api.call(app, "GET", f"/v1/users/{user}")).status_code == 404


async def test_malformed_json_body_has_a_code(api: Api, app: AppCreds) -> None:
    """A body that is not JSON gets 400 invalid_json, not a stack trace."""
    r = await api.call(app, "POST", "/v1/users/import", content=b"{not json",
                       headers={"content-type": "application/json"})
    assert (r.status_code, r.json()["code"]) == (400, "invalid_json")
