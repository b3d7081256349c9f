"""The media step of the send pipeline, after the content checks of app.moderation.

For a message that shows an image or a file it:

1. checks the sender may use the medium (``media_not_found`` otherwise);
2. writes what the medium is into the content, so receivers can lay it out before
   they fetch it;
3. puts each link the image's QR codes hold (decoded at upload) through the app's
   domain lists, as if it were typed. The app's ``link_block_action`` and
   ``link_unlisted_action`` apply: ``block`` refuses the message with ``qr_blocked``,
   naming the category; ``review`` and ``mask`` deliver it with ``risk`` set and open a
   review, since a picture cannot be masked.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

from app.errors import Forbidden
from app.media import service
from app.media.service import Medium
from app.moderation import review
from app.moderation.cache import PolicyCache
from app.moderation.links import check_links
from app.moderation.review import Finding
from app.moderation.rules import Hit
from app.services.context import Context
from app.services.messages import Outgoing

logger = logging.getLogger(__name__)


def qr_blocked(category: str) -> Forbidden:
    return Forbidden(f"A QR code in the image links to a domain this app does not allow "
                     f"(category {category}).", code="qr_blocked", category=category)


def described(content: dict[str, Any], medium: Medium) -> dict[str, Any]:
    """The content with the medium's stored facts in it."""
    out = {**content, "content_type": medium.content_type, "size": medium.size}
    if medium.kind == "image":
        out.update(width=medium.width, height=medium.height)
    elif "name" not in out and medium.name:
        out["name"] = medium.name
    return out


class MediaStage:
    def __init__(self, policies: PolicyCache) -> None:
        self.policies = policies

    async def check(self, ctx: Context, outgoing: Outgoing) -> Outgoing:
        media_id = service.shown_media_id(outgoing.content)
        if media_id is None:
            return outgoing
        medium = await service.access_send(ctx, outgoing.app_id, outgoing.sender, media_id)
        kind = outgoing.content["type"]
        if medium.kind != kind:
            raise service.media_not_found()
        content = described(outgoing.content, medium)
        if not medium.qr_texts:
            return replace(outgoing, content=content)

        found = await self._qr_hits(ctx, outgoing.app_id, medium)
        blocked = next(((text, hit) for text, hit in found if hit.action == "block"), None)
        if blocked is not None:
            text, hit = blocked
            await review.record_refusal(ctx, outgoing, "block", "qr", hit.rule, hit.category,
                                        text)
            logger.debug("image blocked for a QR code", extra={"app": outgoing.app_id,
                                                               "category": hit.category})
            raise qr_blocked(hit.category)
        findings = [Finding("review", "qr", hit.rule, hit.category, text) for text, hit in found]
        risk = outgoing.risk or (findings[0].category if findings else None)
        return replace(outgoing, content=content, risk=risk,
                       findings=(*outgoing.findings, *findings))

    async def _qr_hits(self, ctx: Context, app_id: int, medium: Medium
                       ) -> list[tuple[str, Hit]]:
        policy = await self.policies.get(ctx, app_id)
        settings = policy.settings
        return [(text, hit) for text in medium.qr_texts
                for hit in check_links(text, policy.domains, settings.link_block_action,
                                       settings.link_unlisted_action)]
