"""QR codes in image messages against the app's domain lists, end to end."""

from __future__ import annotations

from typing import Any

from tests.media.images import photo_with_qr, qr_png
from tests.media.test_routes import uploaded
from tests.support import Api, AppCreds, Client, Server


async def _lists(api: Api, app: AppCreds, **settings: Any) -> None:
    r = await api.call(app, "POST", "/v1/moderation/domains", json={"domains": [
        {"domain": "evil.example", "list": "block", "category": "phishing"}]})
    assert r.status_code == 200 and r.json()["failed"] == 0, r.text
    if settings:
        r = await api.call(app, "PATCH", "/v1/moderation/settings", json=settings)
        assert r.status_code == 200, r.text


async def _send_image(api: Api, app: AppCreds, server: Server, data: bytes
                      ) -> tuple[dict[str, Any], Client]:
    """Alice uploads the image and sends it to Bob; the reply, and Bob's client."""
    alice, bob = await api.import_users(app, "alice", "bob")
    image = await uploaded(api, await api.token(app, alice), data)
    a = await Client.login(server, app, await api.token(app, alice))
    b = await Client.login(server, app, await api.token(app, bob))
    try:
        reply = await a.request({"type": "send", "to": bob,
                                 "content": {"type": "image", "media_id": image["media_id"]}})
    finally:
        await a.close()
    return reply, b


async def test_a_qr_code_of_a_blocked_domain_blocks_the_image(api: Api, app: AppCreds,
                                                              server: Server) -> None:
    """The image is refused with qr_blocked naming the category, reaches nobody, and the
    refusal is logged with the decoded text."""
    await _lists(api, app)
    reply, b = await _send_image(api, app, server, qr_png("https://login.evil.example/x"))
    await b.close()
    assert (reply["type"], reply["code"], reply["data"]) == (
        "error", "qr_blocked", {"category": "phishing"})
    assert not [f for f in b.frames if isinstance(f, dict) and f["type"] == "message"]
    (entry,) = (await api.call(app, "GET", "/v1/moderation/log")).json()["entries"]
    assert (entry["action"], entry["source"], entry["rule"], entry["msg_id"]) == (
        "block", "qr", "evil.example", None)
    assert entry["excerpt"] == "https://login.evil.example/x"


async def test_a_qr_code_of_a_review_domain_flags_the_image(api: Api, app: AppCreds,
                                                            server: Server) -> None:
    """With blocked links set to review, the image is delivered with risk set and an
    open review names the QR code's domain."""
    await _lists(api, app, link_block_action="review")
    reply, b = await _send_image(api, app, server, photo_with_qr("evil.example/prize"))
    try:
        assert reply["type"] == "send_ok", reply
        (message,) = await b.messages(1)
    finally:
        await b.close()
    assert message["risk"] == "phishing"
    (entry,) = (await api.call(app, "GET", "/v1/moderation/log",
                               params={"status": "open"})).json()["entries"]
    assert (entry["source"], entry["rule"], entry["msg_id"]) == (
        "qr", "evil.example", message["msg_id"])


async def test_a_clean_qr_code_passes(api: Api, app: AppCreds, server: Server) -> None:
    """A QR code of an unlisted domain, with the block list in force, is delivered
    unflagged and logs nothing."""
    await _lists(api, app)
    reply, b = await _send_image(api, app, server, qr_png("https://docs.example.com/guide"))
    try:
        assert reply["type"] == "send_ok", reply
        (message,) = await b.messages(1)
    finally:
        await b.close()
    assert message["risk"] is None
    assert (await api.call(app, "GET", "/v1/moderation/log")).json()["entries"] == []
