"""User import beyond one shape of item: mixed batches, passwords on re-import, and a
server that keeps answering while a batch of passwords is hashed."""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
from typing import Any

from tests.support import Api, AppCreds, Client, Server

# Enough passwords that hashing them takes about a second, however many cores hash them.
PASSWORD_BATCH = min(1000, 60 * (os.cpu_count() or 1))


def md5(raw: str) -> str:
    return hashlib.md5(raw.encode()).hexdigest()


async def _user(api: Api, app: AppCreds, raw: str) -> dict[str, Any]:
    return dict((await api.call(app, "GET", f"/v1/users/{md5(raw)}")).json())


async def _password_login(server: Server, app: AppCreds, raw: str, password: str
                          ) -> dict[str, Any]:
    client = await Client.connect(server)
    try:
        return await client.request({"type": "login", "app_key": app.key,
                                     "user_id_md5": md5(raw), "password_md5": md5(password)})
    finally:
        await client.close()


async def test_a_mixed_batch_sets_only_what_each_item_gives(api: Api, app: AppCreds) -> None:
    """New and known users in one batch: each known one changes only the fields its item
    gives, a null clears one, and a repeated ID counts once with the later item winning."""
    await api.call(app, "POST", "/v1/users/import", json={"users": [
        {"user_id": "ann", "nickname": "Ann", "avatar_url": "https://a/ann", "extra": {"k": 1}},
        {"user_id": "ben", "nickname": "Ben", "avatar_url": "https://a/ben"}]})
    r = await api.call(app, "POST", "/v1/users/import", json={"users": [
        {"user_id": "ann", "nickname": "Annie", "extra": None},
        {"user_id": "ben", "avatar_url": "https://b/ben"},
        {"user_id": "cat", "nickname": "Cat"},
        {"user_id": "ben", "nickname": "Benny"}]})
    body = r.json()
    assert [x["status"] for x in body["results"]] == ["updated", "updated", "created", "updated"]
    assert (body["created"], body["updated"]) == (1, 3)

    ann, ben, cat = [await _user(api, app, u) for u in ("ann", "ben", "cat")]
    assert (ann["nickname"], ann["avatar_url"], ann["extra"]) == (
        "Annie", "https://a/ann", None)
    assert (ben["nickname"], ben["avatar_url"]) == ("Benny", "https://a/ben")
    assert (cat["nickname"], cat["avatar_url"], cat["has_password"]) == ("Cat", None, False)
    assert ann["created_at"] != ann["updated_at"]


async def test_reimport_replaces_a_password_or_keeps_it(api: Api, app: AppCreds,
                                                         server: Server) -> None:
    """A re-import with a password replaces the old one; one without leaves it as it was."""
    await api.import_users(app, "dot", password_md5=md5("first"))
    await api.import_users(app, "dot", password_md5=md5("second"))
    await api.import_users(app, "dot", nickname="Dot")
    assert (await _user(api, app, "dot"))["has_password"] is True
    assert (await _password_login(server, app, "dot", "second"))["type"] == "login_ok"
    refused = await _password_login(server, app, "dot", "first")
    assert (refused["type"], refused["code"]) == ("error", "bad_password")


async def test_the_server_answers_while_a_batch_of_passwords_is_hashed(
    api: Api, app: AppCreds, server: Server
) -> None:
    """Hashing an import's passwords leaves the event loop free: heartbeats are answered
    at once, and a password login is done long before the import."""
    await api.import_users(app, "eve", password_md5=md5("s3cret"))
    (watcher,) = await api.import_users(app, "watcher")
    client = await Client.login(server, app, await api.token(app, watcher))
    batch = [{"user_id": f"pw-{i}", "password_md5": md5(f"pw-{i}")}
             for i in range(PASSWORD_BATCH)]
    importing = asyncio.create_task(
        api.call(app, "POST", "/v1/users/import", json={"users": batch}))
    await asyncio.sleep(0.2)  # the batch is being hashed by now

    waits = []
    for _ in range(5):
        sent = time.perf_counter()
        await client.send_raw("h")
        await client.wait_for(lambda f: f == "h")
        waits.append(time.perf_counter() - sent)
    login = await _password_login(server, app, "eve", "s3cret")
    still_importing = not importing.done()

    r = await importing
    await client.close()
    assert r.status_code == 200 and r.json()["created"] == PASSWORD_BATCH
    assert login["type"] == "login_ok"
    assert still_importing, "the import ended before the login: make the batch bigger"
    assert max(waits) < 0.5, waits
