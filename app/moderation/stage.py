"""The content-security stage of the send pipeline.

Every message passes :meth:`Moderator.check` before it is stored, whatever path it
came by (a client's send, the App Server's send as a user, a system notice):

1. Admission, for users' messages only (the App Server's notices are trusted): a
   running block penalty refuses the send (``spam_blocked``); otherwise it takes a
   token from the user's bucket or is refused (``rate_limited``). Both say in
   ``data.retry_after_ms`` when to try again.
2. Content: each text of the message (a text message's text; a custom message's
   text and every string in its data) is checked against the app's keywords and
   domain lists. A ``block`` hit refuses the message (``content_blocked`` or
   ``link_blocked``, naming the rule's category, never the word); ``mask`` hits are
   masked; a ``review`` hit flags the message with its category as ``risk``.
3. Flood detection, for users' messages only (see :mod:`app.moderation.spam`).

A refusal is logged at once; what a delivered message was found to hold rides on it
as findings and is logged in its own transaction by :func:`review.record_findings`.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from sqlalchemy import select

from app.errors import Forbidden, TooManyRequests
from app.moderation import review
from app.moderation.cache import PolicyCache
from app.moderation.policy import Inspection, Policy
from app.moderation.review import Finding
from app.moderation.spam import FloodReason, Key, SpamGuard, SpamLimits
from app.services.context import Context
from app.services.messages import SYSTEM_SENDER, Outgoing
from app.storage.db import now_us
from app.storage.models import conversations, users

logger = logging.getLogger(__name__)

SPAM = "spam"  # the category, and so the risk, of a message flagged by flood detection
# Users whose creation time a node remembers for the new-user rule; past it, it
# starts over. The time never changes, so forgetting costs one query per user.
JOINED_CACHE_MAX = 100_000


def rate_limited(seconds: float, reason: str) -> TooManyRequests:
    ms = math.ceil(seconds * 1000)
    return TooManyRequests(f"Too many messages; try again in {ms} ms.", code="rate_limited",
                           retry_after_ms=ms, reason=reason)


def spam_blocked(seconds: float, reason: str) -> TooManyRequests:
    ms = math.ceil(seconds * 1000)
    return TooManyRequests(f"Sending is blocked for spam; try again in {ms} ms.",
                           code="spam_blocked", retry_after_ms=ms, reason=reason)


def content_blocked(source: str, category: str) -> Forbidden:
    if source == "link":
        return Forbidden(f"The message links to a domain this app does not allow "
                         f"(category {category}).", code="link_blocked", category=category)
    return Forbidden(f"The message holds a term this app does not allow (category {category}).",
                     code="content_blocked", category=category)


def map_texts(content: dict[str, Any], change: Callable[[str], str]) -> dict[str, Any]:
    """A copy of message content with each checked text passed through ``change``."""
    out = dict(content)
    if isinstance(out.get("text"), str):
        out["text"] = change(out["text"])
    if out.get("type") == "custom" and "data" in out:
        out["data"] = _map_strings(out["data"], change)
    return out


def _map_strings(value: Any, change: Callable[[str], str]) -> Any:
    if isinstance(value, str):
        return change(value)
    if isinstance(value, list):
        return [_map_strings(v, change) for v in value]
    if isinstance(value, dict):
        return {k: _map_strings(v, change) for k, v in value.items()}
    return value


class Moderator:
    """The stage, with this node's rule cache and anti-spam state."""

    def __init__(self, cache_seconds: float, clock: Callable[[], float] = time.monotonic
                 ) -> None:
        self.policies = PolicyCache(cache_seconds, clock)
        self.spam = SpamGuard(clock)
        self._joined_us: dict[Key, int | None] = {}

    async def check(self, ctx: Context, outgoing: Outgoing) -> Outgoing:
        policy = await self.policies.get(ctx, outgoing.app_id)
        person = outgoing.sender != SYSTEM_SENDER
        if person:
            self._admit(outgoing, policy.limits)

        inspections: list[Inspection] = []

        def inspect(text: str) -> str:
            inspections.append(policy.inspect(text))
            return inspections[-1].masked()

        content = map_texts(outgoing.content, inspect)
        await self._refuse_blocked(ctx, outgoing, inspections)
        findings = [Finding("mask" if h.action == "mask" else "review", h.source, h.rule,
                            h.category, found.text)
                    for found in inspections for h in found.hits]
        if person and (flood := await self._flood(ctx, outgoing, policy, inspections)):
            findings.append(flood)

        if not findings:
            return outgoing
        risk = next((f.category for f in findings if f.action == "review"), outgoing.risk)
        masked = any(f.action == "mask" for f in findings)
        return replace(outgoing, content=content if masked else outgoing.content, risk=risk,
                       findings=(*outgoing.findings, *findings))

    def _admit(self, outgoing: Outgoing, limits: SpamLimits) -> None:
        key = (outgoing.app_id, outgoing.sender)
        penalty = self.spam.penalty(key)
        if penalty is not None and penalty.action == "block":
            raise spam_blocked(self.spam.retry_after(penalty), penalty.reason)
        wait = self.spam.wait(key, limits)
        if wait > 0:
            slowed = penalty is not None and penalty.action == "slow"
            raise rate_limited(wait, "flood" if slowed else "rate")

    async def _refuse_blocked(self, ctx: Context, outgoing: Outgoing,
                              inspections: list[Inspection]) -> None:
        for found in inspections:
            hit = found.first("block")
            if hit is None:
                continue
            await review.record_refusal(ctx, outgoing, "block", hit.source, hit.rule,
                                        hit.category, found.text)
            logger.debug("message blocked", extra={"app": outgoing.app_id,
                                                   "category": hit.category})
            raise content_blocked(hit.source, hit.category)

    async def _flood(self, ctx: Context, outgoing: Outgoing, policy: Policy,
                     inspections: list[Inspection]) -> Finding | None:
        """Watch for floods; a flagged message comes back as a finding, a refused one
        raises."""
        limits, key = policy.limits, (outgoing.app_id, outgoing.sender)
        folded = ("".join(found.folded() for found in inspections)
                  if limits.same_text_conversations else "")
        excerpt = inspections[0].text if inspections else None
        reason: FloodReason | None = None
        if folded and self.spam.same_text(
            key, outgoing.conversation_id, folded, limits
        ) >= limits.same_text_conversations:
            reason = "same_text"
        elif limits.strangers and await self._opens_to_stranger(ctx, outgoing, limits) and (
            self.spam.opened(key, outgoing.conversation_id, limits) >= limits.strangers
        ):
            reason = "strangers"

        if reason is None:
            running = self.spam.penalty(key)
            if running is not None and running.action == "review":
                return Finding("review", "flood", running.reason, SPAM, excerpt)
            return None
        penalty = self.spam.punish(key, reason, limits)
        logger.info("flood detected", extra={"app": outgoing.app_id, "user": outgoing.sender,
                                             "reason": reason, "action": penalty.action})
        if penalty.action == "review":
            return Finding("review", "flood", reason, SPAM, excerpt)
        await review.record_refusal(ctx, outgoing, penalty.action, "flood", reason, SPAM,
                                    excerpt)
        if penalty.action == "block":
            raise spam_blocked(limits.penalty_seconds, reason)
        raise rate_limited(limits.slow_interval_seconds, "flood")

    async def _opens_to_stranger(self, ctx: Context, outgoing: Outgoing,
                                 limits: SpamLimits) -> bool:
        """A new user's first message into a 1:1 conversation."""
        if not outgoing.conversation_id.startswith("p2p:"):
            return False
        joined = await self._joined_at(ctx, outgoing.app_id, outgoing.sender)
        if joined is None or now_us() - joined >= limits.new_user_seconds * 1_000_000:
            return False
        async with ctx.db.read() as conn:
            last_seq = await conn.scalar(select(conversations.c.last_seq).where(
                conversations.c.app_id == outgoing.app_id,
                conversations.c.id == outgoing.conversation_id))
        return not last_seq

    async def _joined_at(self, ctx: Context, app_id: int, user: str) -> int | None:
        key = (app_id, user)
        if key not in self._joined_us:
            if len(self._joined_us) >= JOINED_CACHE_MAX:
                self._joined_us.clear()
            async with ctx.db.read() as conn:
                self._joined_us[key] = await conn.scalar(select(users.c.created_at_us).where(
                    users.c.app_id == app_id, users.c.id == user))
        return self._joined_us[key]
