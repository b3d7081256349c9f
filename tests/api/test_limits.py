"""Hostile REST input: oversized bodies, text that cannot be stored, forged cursors."""

from __future__ import annotations

import asyncio
import base64
import contextlib

from tests.support import ADMIN_TOKEN, Api, AppCreds, Server


async def _raw(server: Server, request: bytes, body_chunks: int = 0) -> tuple[bytes, bool]:
    """Send a request by hand, reading the answer while the body still streams; return the
    answer and whether the whole body went out before the server hung up."""
    host, port = server.base_url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    answer = asyncio.create_task(_read_answer(reader))
    writer.write(request)
    chunk = b"a" * (64 * 1024)
    sent = 0
    try:
        for _ in range(body_chunks):
            if answer.done():
                break
            writer.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
            await writer.drain()
            sent += 1
    except ConnectionError:
        pass
    head = await asyncio.wait_for(answer, 10)
    writer.close()
    return head, sent == body_chunks


async def _read_answer(reader: asyncio.StreamReader) -> bytes:
    got = b""
    with contextlib.suppress(ConnectionError):
        while b"}" not in got:
            more = await reader.read(4096)
            if not more:
                break
            got += more
    return got


async def test_a_declared_oversized_body_is_refused_before_auth(server: Server) -> None:
    """A Content-Length over the limit gets 413 body_too_large without reading the body."""
    head, _ = await _raw(server, b"POST /v1/users/import HTTP/1.1\r\nHost: x\r\n"
                              b"Content-Type: application/json\r\n"
                              b"Content-Length: 1000000000\r\n\r\n")
    assert b" 413 " in head.split(b"\r\n", 1)[0] and b"body_too_large" in head


async def test_a_streamed_oversized_body_is_cut_off(server: Server) -> None:
    """A chunked body is refused as soon as it passes the limit, not after it ends."""
    head, sent_all = await _raw(server, b"POST /admin/apps HTTP/1.1\r\nHost: x\r\n"
                                        b"Authorization: Bearer " + ADMIN_TOKEN.encode() +
                                        b"\r\nContent-Type: application/json\r\n"
                                        b"Transfer-Encoding: chunked\r\n\r\n",
                                body_chunks=1024)
    # The 413 is what the client should read; when the server's hang-up resets the
    # connection before the client reads it, the cut-off itself is the evidence.
    assert not sent_all
    assert head == b"" or (b" 413 " in head.split(b"\r\n", 1)[0] and b"body_too_large" in head)


async def test_text_that_cannot_be_stored_fails_alone(api: Api, app: AppCreds) -> None:
    """Lone surrogates and 65-bit numbers get codes; the good items of a batch still land."""
    r = await api.call(app, "POST", "/v1/users/import", content=(
        b'{"users":[{"user_id":"ok"},{"user_id":"\\ud800"},'
        b'{"user_id":"big","extra":{"n":184467440737095516160}}]}'),
        headers={"content-type": "application/json"})
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert [x["status"] for x in results] == ["created", "error", "error"]
    assert results[1]["error"]["code"] == "invalid_user_id"
    (user,) = await api.import_users(app, "sender")
    sent = await api.call(app, "POST", "/v1/messages", content=(
        b'{"from_user_id_md5":"' + user.encode() + b'","to_user_id":"ok",'
        b'"content":{"type":"text","text":"\\udc00"}}'),
        headers={"content-type": "application/json"})
    assert (sent.status_code, sent.json()["code"]) == (400, "invalid_content")


async def test_forged_cursors_get_bad_cursor(api: Api, app: AppCreds) -> None:
    """A cursor with a non-ASCII digit or a 30-digit time is refused, not a 500."""
    (user,) = await api.import_users(app, "u")
    window = {"from": "2026-01-01T00:00:00Z", "to": "2100-01-01T00:00:00Z"}
    for raw in ("5|\u00b2", "9" * 30 + "|1", "1|" + "9" * 30):
        cursor = base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")
        r = await api.call(app, "GET", f"/v1/users/{user}/messages",
                           params={**window, "cursor": cursor})
        assert (r.status_code, r.json()["code"]) == (400, "bad_cursor"), raw
