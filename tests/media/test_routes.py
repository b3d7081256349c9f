"""Uploading and fetching media over REST, and sending it in messages, end to end."""

from __future__ import annotations

from typing import Any

import httpx

from tests.media.images import plain_png
from tests.support import Api, AppCreds, Client, Server

PDF = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def upload(api: Api, token: str, data: bytes, **params: str) -> httpx.Response:
    return await api.http.post("/v1/me/media", content=data, params=params,
                               headers={**_bearer(token), "content-type": "image/png"})


async def uploaded(api: Api, token: str, data: bytes, **params: str) -> dict[str, Any]:
    r = await upload(api, token, data, **params)
    assert r.status_code == 201, r.text
    return dict(r.json())


async def _people(api: Api, app: AppCreds, *names: str) -> tuple[list[str], list[str]]:
    users = await api.import_users(app, *names)
    return users, [await api.token(app, u) for u in users]


async def test_an_upload_is_described_by_what_its_bytes_are(api: Api, app: AppCreds) -> None:
    """A PNG comes back as an image with size, digest and dimensions; a PDF sent as
    image/png is a file of type application/pdf, named as asked."""
    _, (token,) = await _people(api, app, "alice")
    image = await uploaded(api, token, plain_png())
    assert (image["kind"], image["content_type"], image["width"], image["height"]) == (
        "image", "image/png", 64, 48)
    assert image["size"] == len(plain_png()) and len(image["sha256"]) == 64
    doc = await uploaded(api, token, PDF, name="terms.pdf")
    assert (doc["kind"], doc["content_type"], doc["name"]) == (
        "file", "application/pdf", "terms.pdf")


async def test_uploads_over_the_limit_or_of_other_types_are_refused(api: Api, app: AppCreds,
                                                                    server: Server) -> None:
    """Too large a body is 413 media_too_large; HTML labelled as a PNG, and a broken PNG,
    are 415 media_type_not_allowed; no token is 401."""
    _, (token,) = await _people(api, app, "alice")
    limit = 10 * 1024 * 1024
    big = await upload(api, token, b"\x89PNG\r\n\x1a\n" + b"\x00" * limit)
    assert (big.status_code, big.json()["code"], big.json()["data"]) == (
        413, "media_too_large", {"limit": limit})
    html = await upload(api, token, b"<html><script>alert(1)</script></html>")
    assert (html.status_code, html.json()["code"]) == (415, "media_type_not_allowed")
    broken = await upload(api, token, b"\x89PNG\r\n\x1a\n" + b"\x00" * 64)
    assert (broken.status_code, broken.json()["code"]) == (415, "media_type_not_allowed")
    anonymous = await api.http.post("/v1/me/media", content=plain_png())
    assert anonymous.status_code == 401


async def test_an_image_message_is_fetchable_by_its_recipient_but_not_a_stranger(
        api: Api, app: AppCreds, server: Server) -> None:
    """The recipient gets the image message described and can fetch the bytes; another
    user of the app, and another app's server, get 404; the App Server gets the bytes."""
    (_, bob, _), (ta, tb, tc) = await _people(api, app, "alice", "bob", "carol")
    image = await uploaded(api, ta, plain_png())
    a = await Client.login(server, app, ta)
    b = await Client.login(server, app, tb)
    try:
        reply = await a.request({"type": "send", "to": bob, "content": {
            "type": "image", "media_id": image["media_id"], "text": "our logo"}})
        assert reply["type"] == "send_ok", reply
        (message,) = await b.messages(1)
    finally:
        await a.close()
        await b.close()
    assert message["content"] == {"type": "image", "media_id": image["media_id"],
                                  "text": "our logo", "content_type": "image/png",
                                  "size": image["size"], "width": 64, "height": 48}

    path = f"/v1/me/media/{image['media_id']}"
    got = await api.http.get(path, headers=_bearer(tb))
    assert got.status_code == 200 and got.content == plain_png()
    assert got.headers["content-type"] == "image/png"
    assert got.headers["x-content-type-options"] == "nosniff"
    assert (await api.http.get(path, headers=_bearer(ta))).status_code == 200
    stranger = await api.http.get(path, headers=_bearer(tc))
    assert (stranger.status_code, stranger.json()["code"]) == (404, "media_not_found")

    server_path = f"/v1/media/{image['media_id']}"
    assert (await api.call(app, "GET", server_path)).content == plain_png()
    other = await api.create_app("other")
    assert (await api.call(other, "GET", server_path)).status_code == 404


async def test_a_file_message_carries_its_name_and_a_user_cannot_send_anothers_upload(
        api: Api, app: AppCreds) -> None:
    """A REST send of a file names it from the upload; sending media another user
    uploaded, or an image ID as a file, is media_not_found."""
    (alice, bob), (ta, tb) = await _people(api, app, "alice", "bob")
    doc = await uploaded(api, ta, PDF, name="terms.pdf")

    def send(sender: str, to: str, content: dict[str, Any]) -> Any:
        return api.call(app, "POST", "/v1/messages", json={
            "from_user_id_md5": sender, "to_user_id_md5": to, "content": content})

    sent = await send(alice, bob, {"type": "file", "media_id": doc["media_id"]})
    assert sent.status_code == 200, sent.text
    page = await api.http.get(f"/v1/me/conversations/{sent.json()['conversation_id']}/messages",
                              headers=_bearer(tb))
    (message,) = page.json()["messages"]
    assert message["content"] == {"type": "file", "media_id": doc["media_id"],
                                  "name": "terms.pdf", "content_type": "application/pdf",
                                  "size": len(PDF)}

    stolen = await send(bob, alice, {"type": "file", "media_id": doc["media_id"]})
    assert (stolen.status_code, stolen.json()["code"]) == (404, "media_not_found")
    image = await uploaded(api, ta, plain_png())
    wrong = await send(alice, bob, {"type": "file", "media_id": image["media_id"]})
    assert wrong.json()["code"] == "media_not_found"
    bad = await send(alice, bob, {"type": "image", "media_id": "../x"})
    assert bad.json()["code"] == "invalid_content"
