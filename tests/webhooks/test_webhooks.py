"""Webhooks end to end: a real Parley process, a real HTTP receiver on loopback."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

import httpx

from app.webhooks import signing
from tests.support import Api, AppCreds, Client, Server, TestDatabase
from tests.webhooks.conftest import FAST
from tests.webhooks.receiver import Receiver, Request, always


async def _endpoint(api: Api, app: AppCreds, url: str, types: list[str] | None = None) -> dict:
    r = await api.call(app, "POST", "/v1/webhooks",
                       json={"url": url, "event_types": types or ["*"]})
    assert r.status_code == 201, r.text
    return dict(r.json())


async def _send(api: Api, app: AppCreds, a: str, b: str, text: str = "hi", **extra: object
                ) -> httpx.Response:
    return await api.call(app, "POST", "/v1/messages", json={
        "from_user_id_md5": a, "to_user_id_md5": b,
        "content": {"type": "text", "text": text}, **extra})


def _verifies(secret: str, request: Request) -> bool:
    return signing.verify(secret, request.headers["parley-timestamp"], request.body,
                          request.headers["parley-signature"])


async def test_private_urls_are_refused_unless_the_operator_allows(api: Api, app: AppCreds
                                                                   ) -> None:
    """On a default server a loopback or link-local webhook URL is url_not_allowed."""
    for url in ("http://127.0.0.1:9/x", "http://169.254.169.254/latest", "http://[::1]/x",
                "http://10.0.0.1/x"):
        r = await api.call(app, "POST", "/v1/webhooks", json={"url": url})
        assert (r.status_code, r.json()["code"]) == (400, "url_not_allowed"), url
    bad = await api.call(app, "POST", "/v1/webhooks", json={"url": "ftp://example.org/x"})
    assert bad.json()["code"] == "invalid_url"


async def test_event_is_signed_and_a_tampered_body_fails(hapi: Api, receiver: Receiver) -> None:
    """message.sent arrives signed with the endpoint's secret; any change to it breaks that."""
    app = await hapi.create_app()
    ep = await _endpoint(hapi, app, receiver.url, ["message.sent"])
    a, b = await hapi.import_users(app, "a", "b")
    sent = (await _send(hapi, app, a, b, "signed")).json()

    (req,) = await receiver.wait_for(1, match=receiver.of_type("message.sent"))
    event = req.json()
    assert event["data"]["message"]["msg_id"] == sent["msg_id"]
    assert event["app_key"] == app.key and event["event_id"] == req.headers["parley-event-id"]
    assert _verifies(ep["secret"], req)
    tampered = Request(req.path, req.headers, req.body.replace(b"signed", b"forged"))
    assert not _verifies(ep["secret"], tampered)
    stale = dict(req.headers, **{"parley-timestamp": str(int(time.time()) - 3600)})
    assert not _verifies(ep["secret"], Request(req.path, stale, req.body))
    listed = (await hapi.call(app, "GET", "/v1/webhooks")).json()["webhooks"]
    assert "secret" not in listed[0]


async def test_failing_receiver_gets_the_event_once_more_after_it_recovers(
    hapi: Api, receiver: Receiver
) -> None:
    """Three 503s, then 200: four requests for one event, then no more."""
    calls = {"n": 0}

    def flaky(_: Request) -> tuple[int, bytes, float]:
        calls["n"] += 1
        return (503 if calls["n"] <= 3 else 200), b"", 0.0

    receiver.script = flaky
    app = await hapi.create_app()
    ep = await _endpoint(hapi, app, receiver.url, ["message.sent"])
    a, b = await hapi.import_users(app, "a", "b")
    await _send(hapi, app, a, b)
    got = await receiver.wait_for(4)
    await asyncio.sleep(0.5)
    assert len(receiver.requests) == 4
    assert len({r.headers["parley-event-id"] for r in got}) == 1
    log = (await hapi.call(app, "GET", f"/v1/webhooks/{ep['id']}/deliveries")).json()
    (delivery,) = log["deliveries"]
    assert delivery["status"] == "delivered" and delivery["attempts"] == 4, delivery
    assert [x["status_code"] for x in delivery["log"]] == [503, 503, 503, 200], delivery


async def test_client_errors_are_not_retried(hapi: Api, receiver: Receiver) -> None:
    """A 400 fails the delivery at once; a 429 is retried."""
    codes = iter([400, 429, 200])
    receiver.script = lambda _: (next(codes), b"", 0.0)
    app = await hapi.create_app()
    ep = await _endpoint(hapi, app, receiver.url, ["message.sent"])
    a, b = await hapi.import_users(app, "a", "b")
    await _send(hapi, app, a, b, "first")
    await receiver.wait_for(1)
    await _send(hapi, app, a, b, "second")
    await receiver.wait_for(3)
    await asyncio.sleep(0.3)
    log = (await hapi.call(app, "GET", f"/v1/webhooks/{ep['id']}/deliveries")).json()
    statuses = sorted((d["status"], d["attempts"]) for d in log["deliveries"])
    assert statuses == [("delivered", 2), ("failed", 1)], log


async def test_slow_receiver_does_not_slow_sending(hapi: Api, receiver: Receiver,
                                                   hook_server: Server) -> None:
    """With a receiver that never answers in time, sends are acked as fast as without."""
    receiver.script = always(200, b"", delay=5.0)
    app = await hapi.create_app()
    await _endpoint(hapi, app, receiver.url)
    a, b = await hapi.import_users(app, "a", "b")
    c = await Client.login(hook_server, app, await hapi.token(app, a))
    started = time.perf_counter()
    for i in range(20):
        ack = await c.request({"type": "send", "to": b, "content": {"type": "text",
                                                                   "text": str(i)}})
        assert ack["type"] == "send_ok"
    elapsed = time.perf_counter() - started
    await c.close()
    assert elapsed < 2.0, f"20 sends took {elapsed:.2f}s behind a hanging receiver"


async def test_events_queued_when_the_process_dies_are_delivered_after_restart(
    backend: str, tmp_path: Path
) -> None:
    """SIGKILL with events queued for a down receiver; after a restart they all arrive."""
    database = await TestDatabase.create(backend, tmp_path)
    receiver = await Receiver().start()
    port = receiver.port
    await receiver.stop()  # down until the restart
    # The dispatcher's first pass runs at start-up; the next would be a minute later, so
    # every event is still queued when the process dies.
    first = Server.start(database, tmp_path, **{**FAST, "webhook_poll_seconds": 60})
    api = Api(first)
    try:
        app = await api.create_app()
        await _endpoint(api, app, f"http://127.0.0.1:{port}/hook", ["message.sent"])
        a, b = await api.import_users(app, "a", "b")
        sent = [(await _send(api, app, a, b, f"m{i}")).json()["msg_id"] for i in range(5)]
    finally:
        await api.aclose()
        os.kill(first.process.pid, signal.SIGKILL)
        first.process.wait()

    back = await Receiver().start(port)
    second = Server.start(database, tmp_path, **FAST)
    try:
        got = await back.wait_for(5, timeout=15, match=back.of_type("message.sent"))
        ids = {r.json()["data"]["message"]["msg_id"] for r in got}
        assert ids == set(sent)
    finally:
        second.stop()
        await back.stop()
        await database.drop()


async def test_trigger_hooks_false_sends_no_event(hapi: Api, receiver: Receiver) -> None:
    """A REST send that opts out of hooks produces no event; the next one does."""
    app = await hapi.create_app()
    await _endpoint(hapi, app, receiver.url, ["message.sent"])
    a, b = await hapi.import_users(app, "a", "b")
    await _send(hapi, app, a, b, "quiet", trigger_hooks=False)
    await _send(hapi, app, a, b, "loud")
    (req,) = await receiver.wait_for(1)
    await asyncio.sleep(0.3)
    assert [r.json()["data"]["message"]["content"]["text"] for r in receiver.requests] == ["loud"]
    assert req.headers["parley-event-type"] == "message.sent"


async def test_user_and_group_events_name_users_by_md5(hapi: Api, receiver: Receiver,
                                                       hook_server: Server) -> None:
    """Import, connect, group creation and joins arrive as their own event types."""
    app = await hapi.create_app()
    await _endpoint(hapi, app, receiver.url)
    r = await hapi.call(app, "POST", "/v1/users/import",
                        json={"users": [{"user_id": "raw-alice"}, {"user_id": "raw-bob"}]})
    a, b = [x["user_id_md5"] for x in r.json()["results"]]
    c = await Client.login(hook_server, app, await hapi.token(app, a))
    await hapi.call(app, "POST", "/v1/groups", json={"owner": a, "name": "g", "members": [b]})
    await c.close()
    for kind in ("user.imported", "user.connected", "group.created", "user.disconnected"):
        await receiver.wait_for(1, match=receiver.of_type(kind))
    everything = b"".join(req.body for req in receiver.requests)
    assert b"raw-alice" not in everything and a.encode() in everything


async def test_endpoint_is_disabled_after_repeated_failures(hapi: Api, receiver: Receiver
                                                            ) -> None:
    """Five failures in a row disable the endpoint, with the reason; enabling resets it."""
    receiver.script = always(500)
    app = await hapi.create_app()
    ep = await _endpoint(hapi, app, receiver.url, ["message.sent"])
    a, b = await hapi.import_users(app, "a", "b")
    await _send(hapi, app, a, b)
    await receiver.wait_for(5)
    for _ in range(50):
        state = (await hapi.call(app, "GET", f"/v1/webhooks/{ep['id']}")).json()
        if not state["enabled"]:
            break
        await asyncio.sleep(0.1)
    assert state["enabled"] is False and "HTTP 500" in state["disabled_reason"]
    again = (await hapi.call(app, "PATCH", f"/v1/webhooks/{ep['id']}",
                             json={"enabled": True})).json()
    assert again["enabled"] and again["disabled_reason"] is None


async def test_redeliver_sends_an_event_again_and_ping_reports(hapi: Api, receiver: Receiver
                                                               ) -> None:
    """Re-delivery by event ID sends the same event again; a ping says how it went."""
    app = await hapi.create_app()
    ep = await _endpoint(hapi, app, receiver.url, ["message.sent"])
    a, b = await hapi.import_users(app, "a", "b")
    await _send(hapi, app, a, b)
    (first,) = await receiver.wait_for(1)
    event_id = first.headers["parley-event-id"]
    r = await hapi.call(app, "POST", "/v1/webhooks/redeliver", json={"event_id": event_id})
    assert r.json()["queued"] == 1
    twice = await receiver.wait_for(2)
    assert {x.headers["parley-event-id"] for x in twice} == {event_id}
    ping = (await hapi.call(app, "POST", f"/v1/webhooks/{ep['id']}/ping")).json()
    assert ping["ok"] is True and ping["status_code"] == 200
    missing = await hapi.call(app, "POST", "/v1/webhooks/redeliver", json={"event_id": "ev_x"})
    assert missing.json()["code"] == "event_not_found"
