"""The App Server's REST client, in a synchronous and an asyncio flavour on httpx.

Both flavours share every endpoint method through ``_Endpoints``: a method only names the
route and its body, and the flavour's ``_call`` sends it, retries what is safe to retry,
and turns an error body into an exception with the server's code (see errors.py).

What is retried: a 503 (the database does not answer, or the node is draining), and a
connection failure. A request that may have reached the server (the connection broke
while waiting for the answer) is repeated only when repeating it cannot do a thing twice:
reads, PUT and DELETE, and sends, which always carry a client message ID.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import time
import uuid
from collections.abc import Awaitable, Iterable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar
from urllib.parse import quote

import httpx

from parley_sdk.errors import ApiError, RateLimited, TransportError

R = TypeVar("R")
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE"})
# The request never left: nothing can have happened on the server.
NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


def user_id_md5(user_id: str) -> str:
    """The MD5 ID Parley knows a user by: lowercase hex MD5 of the app's own user ID."""
    return hashlib.md5(user_id.encode()).hexdigest()


@dataclass(frozen=True)
class Retries:
    """How often and how patiently to retry. The defaults ride out a node restart (a few
    seconds) without holding a caller for long when Parley is really down."""

    attempts: int = 5
    backoff_base: float = 0.25
    backoff_max: float = 5.0

    def delay(self, attempt: int) -> float:
        # Full jitter: App Servers that failed together do not retry together.
        return random.uniform(0, min(self.backoff_max, self.backoff_base * 2**attempt))


@dataclass(frozen=True)
class _Call:
    method: str
    path: str
    json: Any = None
    params: dict[str, Any] | None = None
    idempotent: bool = False

    @property
    def safe_to_repeat(self) -> bool:
        return self.idempotent or self.method in IDEMPOTENT_METHODS


def _retryable(call: _Call, exc: httpx.TransportError) -> bool:
    return isinstance(exc, NOT_SENT) or call.safe_to_repeat


def _result(response: httpx.Response) -> Any:
    if response.is_success:
        return response.json() if response.content else None
    try:
        body = response.json()
        code, message, data = body["code"], body.get("message", ""), body.get("data")
    except (ValueError, KeyError, TypeError):
        code, message, data = "http_error", response.text[:200], None
    kind = RateLimited if response.status_code == 429 else ApiError
    raise kind(response.status_code, code, message, data)


def _path(*parts: str | int) -> str:
    return "/" + "/".join(quote(str(p), safe="") for p in parts)


def _users(users: Iterable[str | dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"user_id": u} if isinstance(u, str) else u for u in users]


class _Endpoints(Generic[R]):
    """The App Server's calls. Each returns the decoded JSON answer (R is a plain value
    for the sync client, an awaitable of it for the async one)."""

    def _call(self, call: _Call) -> R:
        raise NotImplementedError

    def request(self, method: str, path: str, *, json: Any = None,
                params: dict[str, Any] | None = None) -> R:
        """Any route of openapi/openapi.json; retried only if safe (see module docstring)."""
        return self._call(_Call(method.upper(), path, json, params))

    # users
    def import_users(self, users: Iterable[str | dict[str, Any]]) -> R:
        """Create or update users: raw user IDs, or dicts with `user_id` and profile fields."""
        return self._call(_Call("POST", "/v1/users/import", {"users": _users(users)},
                                idempotent=True))

    def get_user(self, user: str) -> R:
        return self._call(_Call("GET", _path("v1", "users", user)))

    def list_users(self, cursor: str | None = None, limit: int = 100) -> R:
        params = {"limit": limit, **({"cursor": cursor} if cursor else {})}
        return self._call(_Call("GET", "/v1/users", params=params))

    def update_user(self, user: str, **fields: Any) -> R:
        return self._call(_Call("PATCH", _path("v1", "users", user), fields, idempotent=True))

    def delete_user(self, user: str) -> R:
        return self._call(_Call("DELETE", _path("v1", "users", user)))

    def mint_token(self, user: str, ttl_seconds: int | None = None) -> R:
        """A login token for one of the user's clients (a repeat only mints another)."""
        body = {"ttl_seconds": ttl_seconds} if ttl_seconds else {}
        return self._call(_Call("POST", _path("v1", "users", user, "tokens"), body,
                                idempotent=True))

    def kick(self, user: str, reason: str = "") -> R:
        return self._call(_Call("POST", _path("v1", "users", user, "kick"),
                                {"reason": reason}, idempotent=True))

    # messages
    def send_message(self, to: str, content: dict[str, Any], *, sender: str | None = None,
                     client_msg_id: str | None = None, trigger_hooks: bool = True) -> R:
        """A 1:1 message to `to` (MD5 ID), from `sender` (MD5 ID) or from the App Server."""
        body = {"to_user_id_md5": to, "from_user_id_md5": sender, "content": content,
                "client_msg_id": client_msg_id or str(uuid.uuid4()),
                "trigger_hooks": trigger_hooks}
        return self._call(_Call("POST", "/v1/messages", body, idempotent=True))

    def send_notice(self, to: str, content: dict[str, Any], *,
                    client_msg_id: str | None = None) -> R:
        body = {"to_user_id_md5": to, "content": content,
                "client_msg_id": client_msg_id or str(uuid.uuid4())}
        return self._call(_Call("POST", "/v1/notices", body, idempotent=True))

    def chat_log(self, conversation_id: str, start: str, end: str, *,
                 cursor: str | None = None, limit: int = 100) -> R:
        """One page of a conversation's messages stored in [start, end) (ISO 8601 times)."""
        params = {"from": start, "to": end, "limit": limit, **({"cursor": cursor} if cursor
                                                                else {})}
        return self._call(_Call("GET", _path("v1", "conversations", conversation_id,
                                             "messages"), params=params))

    def recall(self, conversation_id: str, seq: int) -> R:
        return self._call(_Call("POST", _path("v1", "conversations", conversation_id,
                                              "messages", seq, "recall"), idempotent=True))

    # groups
    def create_group(self, owner: str, name: str, members: Iterable[str] = (), *,
                     group_id: str | None = None, **fields: Any) -> R:
        body = {"owner": owner, "name": name, "members": list(members), **fields}
        if group_id is not None:
            body["group_id"] = group_id
        return self._call(_Call("POST", "/v1/groups", body))

    def get_group(self, group_id: str) -> R:
        return self._call(_Call("GET", _path("v1", "groups", group_id)))

    def add_group_members(self, group_id: str, users: Iterable[str]) -> R:
        return self._call(_Call("POST", _path("v1", "groups", group_id, "members"),
                                {"users": list(users)}))

    def remove_group_members(self, group_id: str, users: Iterable[str]) -> R:
        return self._call(_Call("POST", _path("v1", "groups", group_id, "members", "remove"),
                                {"users": list(users)}))

    def send_group_message(self, group_id: str, content: dict[str, Any], *,
                           sender: str | None = None, client_msg_id: str | None = None) -> R:
        body = {"from_user_id_md5": sender, "content": content,
                "client_msg_id": client_msg_id or str(uuid.uuid4())}
        return self._call(_Call("POST", _path("v1", "groups", group_id, "messages"), body,
                                idempotent=True))

    def dismiss_group(self, group_id: str) -> R:
        return self._call(_Call("DELETE", _path("v1", "groups", group_id)))


def _http_options(base_url: str, app_key: str, app_secret: str, timeout: float,
                  transport: Any) -> dict[str, Any]:
    options: dict[str, Any] = {"base_url": base_url, "auth": httpx.BasicAuth(app_key,
                                                                               app_secret),
                               "timeout": timeout,
                               "headers": {"User-Agent": "parley-sdk-python/0.1"}}
    if transport is not None:
        options["transport"] = transport
    return options


class AppClient(_Endpoints[Any]):
    """The App Server's client, blocking. Use as a context manager, or call close()."""

    def __init__(self, base_url: str, app_key: str, app_secret: str, *,
                 timeout: float = 10.0, retries: Retries | None = None,
                 transport: httpx.BaseTransport | None = None) -> None:
        self.retries = retries or Retries()
        self._http = httpx.Client(**_http_options(base_url, app_key, app_secret, timeout,
                                                  transport))

    def _call(self, call: _Call) -> Any:
        for attempt in range(self.retries.attempts):
            last = attempt == self.retries.attempts - 1
            try:
                response = self._http.request(call.method, call.path, json=call.json,
                                              params=call.params)
            except httpx.TransportError as exc:
                if last or not _retryable(call, exc):
                    raise TransportError("connection_failed", repr(exc)) from exc
            else:
                if response.status_code != 503 or last:
                    return _result(response)
            time.sleep(self.retries.delay(attempt))
        raise AssertionError("unreachable")

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> AppClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncAppClient(_Endpoints[Awaitable[Any]]):
    """The App Server's client for asyncio. Use with ``async with``, or call aclose()."""

    def __init__(self, base_url: str, app_key: str, app_secret: str, *,
                 timeout: float = 10.0, retries: Retries | None = None,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.retries = retries or Retries()
        self._http = httpx.AsyncClient(**_http_options(base_url, app_key, app_secret,
                                                       timeout, transport))

    async def _call(self, call: _Call) -> Any:
        for attempt in range(self.retries.attempts):
            last = attempt == self.retries.attempts - 1
            try:
                response = await self._http.request(call.method, call.path, json=call.json,
                                                    params=call.params)
            except httpx.TransportError as exc:
                if last or not _retryable(call, exc):
                    raise TransportError("connection_failed", repr(exc)) from exc
            else:
                if response.status_code != 503 or last:
                    return _result(response)
            await asyncio.sleep(self.retries.delay(attempt))
        raise AssertionError("unreachable")

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncAppClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
