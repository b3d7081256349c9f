"""Logs are one JSON object a line and never hold a secret, token, password or raw user ID."""

from __future__ import annotations

import asyncio
import hashlib

import orjson

from tests.support import Api, Client, Server


async def test_logs_hold_no_secrets_and_are_json(api: Api, server: Server) -> None:
    """After a whole flow, the server log contains none of the secrets that passed through it."""
    app = await api.create_app("log-check")
    raw_a, raw_b = "raw-user-sentinel-7f3a", "raw-user-sentinel-9c1d"
    password_md5 = hashlib.md5(b"hunter2-sentinel").hexdigest()
    r = await api.call(app, "POST", "/v1/users/import", json={"users": [
        {"user_id": raw_a, "password_md5": password_md5}, {"user_id": raw_b}]})
    alice, bob = [x["user_id_md5"] for x in r.json()["results"]]
    token = await api.token(app, alice)

    a = await Client.login(server, app, token)
    pw = await Client.connect(server)
    by_password = await pw.request({"type": "login", "app_key": app.key, "user_id_md5": alice,
                                    "password_md5": password_md5})
    await a.request({"type": "send", "to": bob, "content": {"type": "text", "text": "hi"}})
    bad = await Client.connect(server)
    await bad.request({"type": "login", "app_key": app.key, "token": token + "x"})
    await api.call(app, "POST", f"/v1/users/{alice}/kick", json={})
    await a.wait_closed()
    await pw.wait_closed()
    await asyncio.sleep(0.3)  # let the server flush its log lines

    log = server.log_text()
    secrets = {
        "app secret": app.secret,
        "token": token,
        "password token": by_password["token"],
        "password digest": password_md5,
        "raw user id": raw_a,
        "raw user id b": raw_b,
    }
    for name, value in secrets.items():
        assert value not in log, f"the {name} is in the server log"
    assert alice in log  # users do appear, by MD5 ID
    for line in log.splitlines():
        entry = orjson.loads(line)
        assert {"ts", "level", "logger", "msg"} <= entry.keys()
