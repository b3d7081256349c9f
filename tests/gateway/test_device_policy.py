"""Each app may choose its own device policy; the server's applies otherwise."""

from __future__ import annotations

from tests.support import ADMIN_TOKEN, Api, AppCreds, Client, Server


async def _login(server: Server, app: AppCreds, token: str, platform: str) -> Client:
    c = await Client.connect(server)
    reply = await c.request({"type": "login", "app_key": app.key, "token": token,
                             "platform": platform})
    assert reply["type"] == "login_ok", reply
    return c


async def test_one_per_platform_app_replaces_the_older_device(api: Api, server: Server
                                                                ) -> None:
    """In an app set to one_per_platform, a second iOS login closes the first with 4011;
    an Android device, and another app's users, are left alone."""
    strict, lax = await api.create_app("strict"), await api.create_app("lax")
    r = await api.http.patch(f"/admin/apps/{strict.key}", json={"device_policy":
                                                                  "one_per_platform"},
                             headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert r.json()["device_policy"] == "one_per_platform"
    (u,) = await api.import_users(strict, "u")
    (v,) = await api.import_users(lax, "v")

    old_phone = await _login(server, strict, await api.token(strict, u), "ios")
    tablet = await _login(server, strict, await api.token(strict, u), "android")
    new_phone = await _login(server, strict, await api.token(strict, u), "ios")
    assert await old_phone.wait_closed() == 4011
    lax_1 = await _login(server, lax, await api.token(lax, v), "ios")
    lax_2 = await _login(server, lax, await api.token(lax, v), "ios")
    for c in (tablet, new_phone, lax_1, lax_2):
        assert (await c.request({"type": "conversations"}))["type"] == "conversations_ok"
        await c.close()
