"""The before-send hook: a send stage that asks the App Server about each message.

The App Server answers ``{"action": "allow"}``, ``{"action": "reject", "reason": "..."}``
or ``{"action": "replace", "content": {...}}``. No answer within the app's time limit,
or an answer that is not one of those, counts as an error, and the app's ``on_error``
decides: allow the message, or reject it with ``hook_unavailable``. The limit is at
most PARLEY_BEFORE_SEND_TIMEOUT_MAX_MS, well inside the client's 10 s ack deadline, so
a client never gives up on a message the server then accepts.

Apps without the hook pay one cached lookup and no request.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from typing import Any

import httpx
import orjson

from app.errors import Forbidden, ServiceUnavailable
from app.services import messages
from app.services.context import Context
from app.services.messages import Outgoing
from app.storage.db import now_us
from app.webhooks import safety, signing
from app.webhooks.outbox import BeforeSend, HookDirectory, event_body, new_event_id

EVENT_TYPE = "message.before_send"


class BeforeSendHook:
    def __init__(self, directory: HookDirectory, http: httpx.AsyncClient,
                 allow_private: bool, max_response_bytes: int) -> None:
        self._directory = directory
        self._http = http
        self._allow_private = allow_private
        self._max = max_response_bytes

    async def check(self, ctx: Context, outgoing: Outgoing) -> Outgoing:
        if not outgoing.hooks:
            return outgoing
        hooks = await self._directory.get(outgoing.app_id)
        if hooks.before_send is None:
            return outgoing
        try:
            # One deadline over everything: DNS, connecting, sending, reading.
            answer = await asyncio.wait_for(
                self._ask(hooks.before_send, hooks.app_key, outgoing),
                hooks.before_send.timeout_ms / 1000,
            )
        except TimeoutError:
            answer = None
        return _apply(ctx, hooks.before_send, outgoing, answer)

    async def _ask(self, hook: BeforeSend, app_key: str, outgoing: Outgoing
                   ) -> dict[str, Any] | None:
        event_id = new_event_id()
        data = {"from": outgoing.sender or None, "conversation_id": outgoing.conversation_id,
                "content": outgoing.content, "client_msg_id": outgoing.client_msg_id}
        body = event_body(event_id, EVENT_TYPE, app_key, data, now_us()).encode()
        deadline = hook.timeout_ms / 1000
        started = time.monotonic()
        try:
            await safety.check(hook.url, self._allow_private)
            reply = await self._http.post(
                hook.url, content=body, timeout=deadline,
                headers=signing.headers(hook.secret, body, event_id, EVENT_TYPE))
            if reply.status_code != 200 or len(reply.content) > self._max:
                return None
            answer = orjson.loads(reply.content)
        except Exception:  # any failure is "no answer"; the app's on_error decides
            return None
        if time.monotonic() - started > deadline:
            return None
        return answer if isinstance(answer, dict) else None


def _apply(ctx: Context, hook: BeforeSend, outgoing: Outgoing, answer: dict[str, Any] | None
           ) -> Outgoing:
    action = answer.get("action") if answer else None
    if action == "allow":
        return outgoing
    if action == "reject":
        reason = answer.get("reason") if answer else None
        raise Forbidden("The app refused this message.", code="rejected_by_app",
                        reason=str(reason)[:200] if reason is not None else None)
    if action == "replace" and answer is not None:
        try:
            content = messages.validate_content(ctx, answer.get("content"))
        except Exception:
            content = None
        if content is not None:
            return dataclasses.replace(outgoing, content=content)
    if hook.on_error == "allow":
        return outgoing
    raise ServiceUnavailable("The app's message check did not answer in time.",
                             code="hook_unavailable")
