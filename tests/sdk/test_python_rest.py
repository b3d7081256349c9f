"""The Python SDK's App Server client: real calls against Parley, and its retry policy
against scripted transports."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from parley_sdk import (
    ApiError,
    AppClient,
    AsyncAppClient,
    Retries,
    TransportError,
    user_id_md5,
)

from tests.support import AppCreds, Server

FAST = Retries(attempts=4, backoff_base=0.001, backoff_max=0.01)
EVER = {"start": "2000-01-01T00:00:00Z", "end": "2100-01-01T00:00:00Z"}


async def test_async_client_imports_sends_and_reads_the_chat_log(server: Server,
                                                                 app: AppCreds) -> None:
    """Users, a token, a message and the chat log work through the async client."""
    async with AsyncAppClient(server.base_url, app.key, app.secret) as parley:
        result = await parley.import_users(["ann", "ben"])
        ann, ben = (item["user_id_md5"] for item in result["results"])
        assert ann == user_id_md5("ann")
        assert (await parley.mint_token(ann))["token"]
        sent = await parley.send_message(ben, {"type": "text", "text": "hi"}, sender=ann)
        log = await parley.chat_log(sent["conversation_id"], **EVER)
    assert [m["content"]["text"] for m in log["messages"]] == ["hi"]


async def test_sync_client_raises_the_server_code(server: Server, app: AppCreds) -> None:
    """A refused call raises ApiError with the HTTP status and the server's stable code."""
    def calls() -> tuple[ApiError, ApiError]:
        with (AppClient(server.base_url, app.key, app.secret) as parley,
              AppClient(server.base_url, app.key, "as_wrong") as wrong):
            with pytest.raises(ApiError) as missing:
                parley.get_user("0" * 32)
            with pytest.raises(ApiError) as refused:
                wrong.list_users()
        return missing.value, refused.value

    missing, refused = await asyncio.to_thread(calls)
    assert (missing.status, missing.code) == (404, "user_not_found")
    assert (refused.status, refused.code) == (401, "bad_app_credentials")


def offline(transport: httpx.MockTransport) -> AppClient:
    return AppClient("http://parley.test", "ak", "as", retries=FAST, transport=transport)


def scripted(*answers: int | type[Exception]) -> tuple[httpx.MockTransport, list[str]]:
    """A transport that answers each request with the next status, or raises."""
    seen: list[str] = []
    queue = list(answers)

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request.method)
        answer = queue.pop(0)
        if isinstance(answer, int):
            body = {"code": "database_unavailable"} if answer == 503 else {"users": []}
            return httpx.Response(answer, json=body)
        raise answer("scripted", request=request)

    return httpx.MockTransport(handle), seen


def test_a_503_is_retried_until_it_passes() -> None:
    """Two 503 answers, then success: the caller sees only the success."""
    transport, seen = scripted(503, 503, 200)
    with offline(transport) as c:
        assert c.list_users() == {"users": []}
    assert len(seen) == 3


def test_the_last_503_is_raised_with_its_code() -> None:
    """When every try gets 503, the error carries the server's code."""
    transport, seen = scripted(503, 503, 503, 503)
    with offline(transport) as c, pytest.raises(ApiError) as caught:
        c.list_users()
    assert (caught.value.status, caught.value.code, len(seen)) == (503, "database_unavailable", 4)


def test_other_errors_are_not_retried() -> None:
    """A 4xx answer is final at once."""
    transport, seen = scripted(404)
    with offline(transport) as c, pytest.raises(ApiError):
        c.get_user("0" * 32)
    assert len(seen) == 1


def test_a_connect_failure_is_retried_even_for_a_post() -> None:
    """A request that never left is safe to repeat, whatever it does."""
    transport, seen = scripted(httpx.ConnectError, 201)
    with offline(transport) as c:
        c.create_group("a" * 32, "Team")
    assert len(seen) == 2


def test_a_broken_answer_is_not_retried_for_a_post_that_could_act_twice() -> None:
    """A group creation whose answer was lost is not repeated: it may have happened."""
    transport, seen = scripted(httpx.ReadError, 201)
    with offline(transport) as c, pytest.raises(TransportError) as caught:
        c.create_group("a" * 32, "Team")
    assert caught.value.code == "connection_failed" and len(seen) == 1


def test_a_broken_answer_is_retried_for_a_send_with_its_client_message_id() -> None:
    """A send always carries a client message ID, so repeating it stores it once."""
    bodies: list[bytes] = []

    def handle(request: httpx.Request) -> httpx.Response:
        bodies.append(request.content)
        if len(bodies) == 1:
            raise httpx.ReadError("cut", request=request)
        return httpx.Response(200, json={"seq": 1})

    transport = httpx.MockTransport(handle)
    with offline(transport) as c:
        c.send_message("b" * 32, {"type": "text", "text": "hi"})
    assert len(bodies) == 2 and bodies[0] == bodies[1]
