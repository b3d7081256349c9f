"""Apps (tenants): the admin API, the CLI, and App Server authentication."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.support import ADMIN_TOKEN, Api, AppCreds, Server


async def test_admin_api_needs_the_admin_token(api: Api) -> None:
    """Creating an app without the admin token, or with a wrong one, is refused with a code."""
    missing = await api.http.post("/admin/apps", json={"name": "x"})
    wrong = await api.http.post("/admin/apps", json={"name": "x"},
                                headers={"Authorization": "Bearer nope"})
    assert missing.status_code == wrong.status_code == 401
    assert missing.json()["code"] == wrong.json()["code"] == "bad_admin_token"


async def test_created_app_secret_is_shown_once_and_works(api: Api) -> None:
    """The create answer holds the secret; later reads of the app never do."""
    app = await api.create_app("shop")
    got = await api.http.get(f"/admin/apps/{app.key}",
                             headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert got.json()["name"] == "shop" and "app_secret" not in got.json()
    assert (await api.call(app, "GET", "/v1/users")).status_code == 200


async def test_rotating_the_secret_stops_the_old_one_at_once(api: Api, app: AppCreds) -> None:
    """After rotation the old secret gets 401 bad_app_credentials and the new one works."""
    r = await api.http.post(f"/admin/apps/{app.key}/secret",
                            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    new = AppCreds(app.key, r.json()["app_secret"])
    old = await api.call(app, "GET", "/v1/users")
    assert old.status_code == 401 and old.json()["code"] == "bad_app_credentials"
    assert (await api.call(new, "GET", "/v1/users")).status_code == 200


async def test_app_server_calls_need_key_and_secret(api: Api, app: AppCreds) -> None:
    """No credentials, a wrong secret or an unknown key all get the same 401 code."""
    cases = [
        await api.http.get("/v1/users"),
        await api.http.get("/v1/users", auth=(app.key, "as_wrong")),
        await api.http.get("/v1/users", auth=("ak_unknown", app.secret)),
    ]
    assert [r.status_code for r in cases] == [401, 401, 401]
    assert {r.json()["code"] for r in cases} == {"bad_app_credentials"}


def test_cli_creates_an_app_that_the_server_accepts(server: Server) -> None:
    """`parley apps create NAME` prints a key and secret that authenticate over REST."""
    env = {**os.environ, "PARLEY_DATABASE_URL": server.db.url}
    out = subprocess.run([sys.executable, "-m", "app", "apps", "create", "from-cli"],
                         env=env, capture_output=True, text=True, check=True).stdout
    fields = dict(line.split(":", 1) for line in out.strip().splitlines())
    key, secret = fields["app_key"].strip(), fields["app_secret"].strip()
    import httpx

    r = httpx.get(server.base_url + "/v1/users", auth=(key, secret))
    assert r.status_code == 200, r.text
    listed = subprocess.run([sys.executable, "-m", "app", "apps", "list"], env=env,
                            capture_output=True, text=True, check=True).stdout
    assert key in listed
