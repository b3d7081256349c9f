"""What the gateway does with frames it cannot use, on a real server.

A broken frame closes only the connection that sent it; a well-formed request the
server refuses gets an error frame and the connection goes on. Every closing case
also checks that a pair of bystanders of the same app, connected the whole time,
still talk.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.support import Api, AppCreds, Client, Server

MAX_FRAME_BYTES = 64 * 1024
MAX_TEXT_CHARS = 5000


@dataclass
class Bystanders:
    """Two users of the app under test, logged in before the bad client arrives."""

    sender: Client
    receiver: Client
    receiver_md5: str

    async def still_talk(self) -> None:
        ack = await self.sender.request(
            {"type": "send", "to": self.receiver_md5, "content": {"type": "text", "text": "ok?"}}
        )
        assert ack["type"] == "send_ok", ack
        (msg,) = await self.receiver.messages(1)
        assert msg["msg_id"] == ack["msg_id"]
        assert not self.sender.closed and not self.receiver.closed


@pytest.fixture
async def bystanders(api: Api, app: AppCreds, server: Server) -> AsyncIterator[Bystanders]:
    carol, dave = await api.import_users(app, "carol", "dave")
    sender = await Client.login(server, app, await api.token(app, carol))
    receiver = await Client.login(server, app, await api.token(app, dave))
    yield Bystanders(sender, receiver, dave)
    await sender.close()
    await receiver.close()


async def _logged_in(api: Api, app: AppCreds, server: Server) -> tuple[Client, str]:
    """A logged-in client for alice, and bob's MD5 ID to write to."""
    alice, bob = await api.import_users(app, "alice", "bob")
    return await Client.login(server, app, await api.token(app, alice)), bob


async def _error_then_close(client: Client) -> tuple[dict[str, Any], int]:
    error = await client.wait_for(lambda f: isinstance(f, dict) and f["type"] == "error")
    return error, await client.wait_closed()


async def _still_usable(client: Client, to: str) -> None:
    ack = await client.request({"type": "send", "to": to, "content": {"type": "text", "text": "x"}})
    assert ack["type"] == "send_ok", ack
    assert not client.closed


async def test_malformed_json_gets_an_error_frame_then_close_4000(
    api: Api, app: AppCreds, server: Server, bystanders: Bystanders
) -> None:
    """Text that is not JSON gets an invalid_json error frame, then close 4000."""
    client, _ = await _logged_in(api, app, server)
    await client.send_raw('{"type": "send", "to": ')

    error, code = await _error_then_close(client)

    assert error["code"] == "invalid_json"
    assert (code, client.close_reason) == (4000, "invalid_json")
    await bystanders.still_talk()


async def test_binary_frame_closes_with_4000(
    api: Api, app: AppCreds, server: Server, bystanders: Bystanders
) -> None:
    """A binary frame is refused with binary_frame and close 4000."""
    client, _ = await _logged_in(api, app, server)
    await client.send_raw(b'{"type": "conversations"}')

    error, code = await _error_then_close(client)

    assert error["code"] == "binary_frame"
    assert (code, client.close_reason) == (4000, "binary_frame")
    await bystanders.still_talk()


async def test_empty_text_frame_closes_with_4000(
    api: Api, app: AppCreds, server: Server, bystanders: Bystanders
) -> None:
    """An empty text frame is refused with empty_frame and close 4000."""
    client, _ = await _logged_in(api, app, server)
    await client.send_raw("")

    error, code = await _error_then_close(client)

    assert error["code"] == "empty_frame"
    assert code == 4000
    await bystanders.still_talk()


@pytest.mark.parametrize(
    "text",
    ['["login"]', '"login"', "42", "null", '{"id": "r1"}', '{"type": 7}'],
    ids=["array", "string", "number", "null", "no-type", "type-not-string"],
)
async def test_json_that_is_not_a_typed_object_closes_with_4000(
    api: Api, app: AppCreds, server: Server, bystanders: Bystanders, text: str
) -> None:
    """Valid JSON that is not an object with a string type is invalid_frame, close 4000."""
    client, _ = await _logged_in(api, app, server)
    await client.send_raw(text)

    error, code = await _error_then_close(client)

    assert error["code"] == "invalid_frame"
    assert code == 4000
    await bystanders.still_talk()


async def test_unknown_frame_type_is_an_error_and_the_connection_goes_on(
    api: Api, app: AppCreds, server: Server
) -> None:
    """An unknown type gets an unknown_type error echoing the id, and nothing closes."""
    client, bob = await _logged_in(api, app, server)

    reply = await client.request({"type": "teleport", "to": bob})

    assert reply["type"] == "error" and reply["code"] == "unknown_type"
    await _still_usable(client, bob)
    await client.close()


@pytest.mark.parametrize(
    "frame",
    [
        {"type": "read", "conversation_id": "p2p:a:b", "seq": "5"},
        {"type": "send", "to": 5, "content": {"type": "text", "text": "hi"}},
        {"type": "sync", "conversation_id": "p2p:a:b", "after_seq": -1},
        {"type": "send", "content": {"type": "text", "text": "hi"}},
    ],
    ids=["seq-as-string", "to-as-number", "negative-seq", "missing-to"],
)
async def test_wrongly_typed_field_is_an_error_and_the_connection_goes_on(
    api: Api, app: AppCreds, server: Server, frame: dict[str, Any]
) -> None:
    """A field of the wrong type or range gets invalid_field, and nothing closes."""
    client, bob = await _logged_in(api, app, server)

    reply = await client.request(frame)

    assert reply["type"] == "error" and reply["code"] == "invalid_field", reply
    await _still_usable(client, bob)
    await client.close()


def _conversations_frame(size: int) -> str:
    """A conversations request of exactly `size` bytes, grown by a field the server ignores."""
    head = '{"type": "conversations", "pad": "'
    return head + "x" * (size - len(head) - 2) + '"}'


async def test_frame_at_the_limit_is_served_and_one_byte_over_closes_1009(
    api: Api, app: AppCreds, server: Server, bystanders: Bystanders
) -> None:
    """A 64 KiB frame gets its reply; a frame one byte bigger closes with 1009."""
    client, _ = await _logged_in(api, app, server)

    await client.send_raw(_conversations_frame(MAX_FRAME_BYTES))
    reply = await client.wait_for(lambda f: isinstance(f, dict))
    assert reply["type"] == "conversations_ok", reply

    await client.send_raw(_conversations_frame(MAX_FRAME_BYTES + 1))
    assert await client.wait_closed() == 1009
    await bystanders.still_talk()


async def test_text_over_the_limit_is_refused_over_websocket(
    api: Api, app: AppCreds, server: Server
) -> None:
    """5,001 characters get text_too_long and no close; 5,000 four-byte characters are sent."""
    client, bob = await _logged_in(api, app, server)

    too_long = await client.request(
        {"type": "send", "to": bob, "content": {"type": "text", "text": "x" * (MAX_TEXT_CHARS + 1)}}
    )
    at_limit = await client.request(
        {"type": "send", "to": bob, "content": {"type": "text", "text": "😀" * MAX_TEXT_CHARS}}
    )

    assert too_long["type"] == "error" and too_long["code"] == "text_too_long"
    assert too_long["data"]["limit"] == MAX_TEXT_CHARS
    assert at_limit["type"] == "send_ok" and at_limit["seq"] == 1
    await client.close()


async def test_text_over_the_limit_is_refused_over_rest(api: Api, app: AppCreds) -> None:
    """POST /v1/messages answers 400 text_too_long for 5,001 characters and sends 5,000."""
    alice, bob = await api.import_users(app, "alice", "bob")

    def body(length: int) -> dict[str, Any]:
        return {"from_user_id_md5": alice, "to_user_id_md5": bob,
                "content": {"type": "text", "text": "x" * length}}

    too_long = await api.call(app, "POST", "/v1/messages", json=body(MAX_TEXT_CHARS + 1))
    at_limit = await api.call(app, "POST", "/v1/messages", json=body(MAX_TEXT_CHARS))

    assert too_long.status_code == 400
    assert too_long.json()["code"] == "text_too_long"
    assert at_limit.status_code == 200, at_limit.text
    assert at_limit.json()["seq"] == 1


async def test_request_before_login_closes_with_4001(
    api: Api, app: AppCreds, server: Server, bystanders: Bystanders
) -> None:
    """A send before login gets not_logged_in, then close 4001."""
    (bob,) = await api.import_users(app, "bob")
    client = await Client.connect(server)

    reply = await client.request({"type": "send", "to": bob,
                                  "content": {"type": "text", "text": "hi"}})

    assert reply["type"] == "error" and reply["code"] == "not_logged_in"
    assert await client.wait_closed() == 4001
    await bystanders.still_talk()


async def test_any_frame_but_login_before_login_closes_with_4001(server: Server) -> None:
    """An unknown or ill-typed frame before login closes with 4001 too, not a soft error."""
    for frame in ({"type": "no-such-frame"}, {"type": "sync", "after_seq": "x"}):
        client = await Client.connect(server)
        reply = await client.request(frame)
        assert reply["code"] == "not_logged_in"
        assert await client.wait_closed() == 4001


async def test_send_to_unknown_user_is_an_error_and_the_connection_goes_on(
    api: Api, app: AppCreds, server: Server
) -> None:
    """A send to an MD5 ID the app does not have gets user_not_found, and nothing closes."""
    client, bob = await _logged_in(api, app, server)

    reply = await client.request({"type": "send", "to": "0" * 32,
                                  "content": {"type": "text", "text": "anyone?"}})

    assert reply["type"] == "error" and reply["code"] == "user_not_found"
    await _still_usable(client, bob)
    await client.close()


async def test_bad_token_at_login_closes_with_4002(
    app: AppCreds, server: Server, bystanders: Bystanders
) -> None:
    """A token Parley never minted gets token_invalid, then close 4002."""
    client = await Client.connect(server)

    reply = await client.request({"type": "login", "app_key": app.key, "token": "lt_forged"})

    assert reply["type"] == "error" and reply["code"] == "token_invalid"
    assert await client.wait_closed() == 4002
    await bystanders.still_talk()


async def test_token_of_one_app_with_another_apps_key_closes_with_4002(
    api: Api, app: AppCreds, server: Server, bystanders: Bystanders
) -> None:
    """App A's token presented with app B's key is refused with close 4002."""
    other = await api.create_app("other")
    (alice,) = await api.import_users(app, "alice")
    token = await api.token(app, alice)
    client = await Client.connect(server)

    reply = await client.request({"type": "login", "app_key": other.key, "token": token})

    assert reply["type"] == "error" and reply["code"] == "token_invalid"
    assert await client.wait_closed() == 4002
    await bystanders.still_talk()


async def test_u0000_in_any_field_is_refused_and_harms_no_batch(
        api: Api, app: AppCreds, server: Server, bystanders: Bystanders) -> None:
    """PostgreSQL's text cannot hold U+0000: in an ack it once failed the batch it rode
    in, other users' sends included. Any frame with it is refused with invalid_field and
    the connection goes on; a text that only shows the escape, backslash and all, is fine."""
    client, bob = await _logged_in(api, app, server)
    for frame in ({"type": "ack", "conversation_id": "p2p:x\u0000y", "seq": 1},
                  {"type": "send", "to": bob, "client_msg_id": "a\u0000b",
                   "content": {"type": "text", "text": "hi"}},
                  {"type": "send", "to": bob, "content": {"type": "text", "text": "a\u0000"}},
                  {"type": "sync", "conversation_id": "sys:\u0000"}):
        reply = await client.request(frame)  # the reply to this request, by its id
        assert (reply["type"], reply["code"]) == ("error", "invalid_field")
    shown = await client.request({"type": "send", "to": bob,
                                  "content": {"type": "text", "text": "\\u0000 is NUL"}})
    assert shown["type"] == "send_ok"
    assert not client.closed
    await bystanders.still_talk()
    await client.close()


async def test_u0000_in_a_rest_body_is_refused(api: Api, app: AppCreds) -> None:
    (alice,) = await api.import_users(app, "alice")
    r = await api.call(app, "POST", "/v1/notices", json={
        "to_user_id_md5": alice, "client_msg_id": "x\u0000",
        "content": {"type": "text", "text": "hi"}})
    assert r.status_code == 400 and r.json()["code"] == "invalid_field"
