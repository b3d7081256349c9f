"""The before-send hook: the App Server allows, rejects or rewrites each message."""

from __future__ import annotations

import orjson
import pytest

from app.webhooks import signing
from tests.support import Api, AppCreds, Client, Server
from tests.webhooks.receiver import Receiver, always


def answer(body: dict, delay: float = 0.0) -> tuple[int, bytes, float]:
    return 200, orjson.dumps(body), delay


async def _setup(api: Api, server: Server, hook: Receiver, **config: object
                 ) -> tuple[AppCreds, dict, Client, Client, str]:
    app = await api.create_app()
    r = await api.call(app, "PUT", "/v1/before-send", json={"url": hook.url, **config})
    assert r.status_code == 200, r.text
    a, b = await api.import_users(app, "a", "b")
    ca = await Client.login(server, app, await api.token(app, a))
    cb = await Client.login(server, app, await api.token(app, b))
    return app, r.json(), ca, cb, b


async def _send(c: Client, to: str, text: str) -> dict:
    return await c.request({"type": "send", "to": to, "content": {"type": "text", "text": text}})


async def test_allow_lets_the_message_through_and_the_request_is_signed(
    hapi: Api, hook_server: Server, hook: Receiver
) -> None:
    """An allow answer delivers the message; Parley's request carries a valid signature."""
    hook.script = lambda _: answer({"action": "allow"})
    _, config, ca, cb, b = await _setup(hapi, hook_server, hook)
    assert (await _send(ca, b, "hello"))["type"] == "send_ok"
    assert len(await cb.messages(1)) == 1
    (req,) = hook.requests
    assert req.json()["type"] == "message.before_send"
    assert req.json()["data"]["content"]["text"] == "hello"
    assert signing.verify(config["secret"], req.headers["parley-timestamp"], req.body,
                          req.headers["parley-signature"])
    await ca.close()
    await cb.close()


async def test_reject_refuses_with_the_apps_reason(hapi: Api, hook_server: Server,
                                                   hook: Receiver) -> None:
    """A reject answer refuses the send with rejected_by_app and stores nothing."""
    hook.script = lambda _: answer({"action": "reject", "reason": "no links please"})
    _, _, ca, cb, b = await _setup(hapi, hook_server, hook)
    reply = await _send(ca, b, "spam")
    assert reply["code"] == "rejected_by_app" and reply["data"]["reason"] == "no links please"
    listing = await cb.request({"type": "conversations"})
    assert listing["conversations"] == []
    await ca.close()
    await cb.close()


async def test_replace_delivers_the_apps_content(hapi: Api, hook_server: Server,
                                                 hook: Receiver) -> None:
    """A replace answer's content is what is stored and delivered."""
    hook.script = lambda _: answer({"action": "replace",
                                    "content": {"type": "text", "text": "[edited]"}})
    _, _, ca, cb, b = await _setup(hapi, hook_server, hook)
    assert (await _send(ca, b, "original"))["type"] == "send_ok"
    (msg,) = await cb.messages(1)
    assert msg["content"] == {"type": "text", "text": "[edited]"}
    await ca.close()
    await cb.close()


@pytest.mark.parametrize(("policy", "expect"), [("allow", "send_ok"), ("reject", "error")])
async def test_timeout_follows_the_apps_policy(hapi: Api, hook_server: Server,
                                               hook: Receiver, policy: str, expect: str) -> None:
    """A hook slower than its time limit allows or rejects, as the app chose."""
    hook.script = always(200, b'{"action":"reject"}', delay=1.0)
    _, _, ca, cb, b = await _setup(hapi, hook_server, hook, timeout_ms=200, on_error=policy)
    reply = await _send(ca, b, "hi")
    assert reply["type"] == expect
    if expect == "error":
        assert reply["code"] == "hook_unavailable"
    else:
        assert (await cb.messages(1))[0]["content"]["text"] == "hi"
    await ca.close()
    await cb.close()


async def test_rest_send_without_hooks_skips_the_check(hapi: Api, hook_server: Server,
                                                       hook: Receiver) -> None:
    """trigger_hooks=false bypasses the before-send call too."""
    hook.script = lambda _: answer({"action": "reject"})
    app, _, ca, cb, b = await _setup(hapi, hook_server, hook)
    a = (await hapi.call(app, "GET", "/v1/users")).json()["users"]
    sender = next(u["user_id_md5"] for u in a if u["user_id_md5"] != b)
    r = await hapi.call(app, "POST", "/v1/messages", json={
        "from_user_id_md5": sender, "to_user_id_md5": b, "trigger_hooks": False,
        "content": {"type": "text", "text": "from the app"}})
    assert r.status_code == 200, r.text
    assert hook.requests == []
    await ca.close()
    await cb.close()


async def test_timeout_is_capped_below_the_client_deadline(hapi: Api, hook: Receiver) -> None:
    """A time limit above PARLEY_BEFORE_SEND_TIMEOUT_MAX_MS is refused."""
    app = await hapi.create_app()
    r = await hapi.call(app, "PUT", "/v1/before-send",
                        json={"url": hook.url, "timeout_ms": 60_000})
    assert (r.status_code, r.json()["code"]) == (400, "invalid_request")
