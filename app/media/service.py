"""Uploading, describing and fetching media, and the rules for who may use a medium.

An upload is sniffed, held to the node's limits, scanned for QR codes when it is an
image, written to the store and then recorded; a row exists only for bytes that are
stored. A medium is the uploader's to send; once a stored message shows it, whoever
may see that message may fetch it (see :func:`access_fetch`).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import and_, exists, insert, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from app.errors import InvalidRequest, NotFound, PayloadTooLarge, UnsupportedMediaType
from app.media import qr
from app.media.sniff import kind_of, sniff
from app.media.store import MediaStore
from app.services.context import Context
from app.storage.db import now_us
from app.storage.models import media, media_refs, members, messages

logger = logging.getLogger(__name__)

NAME_MAX = 255
SYSTEM_SENDER = ""  # as in app.services.messages: the App Server's own notices


@dataclass(frozen=True, slots=True)
class Medium:
    """One medium's row, as the routes and the send stage use it."""

    media_id: str
    app_id: int
    owner_id: str
    kind: str
    content_type: str
    size: int
    sha256: str
    name: str | None
    width: int | None
    height: int | None
    qr_texts: tuple[str, ...]

    @property
    def key(self) -> str:
        return store_key(self.app_id, self.media_id)

    def view(self) -> dict[str, Any]:
        out: dict[str, Any] = {"media_id": self.media_id, "kind": self.kind,
                               "content_type": self.content_type, "size": self.size,
                               "sha256": self.sha256, "name": self.name}
        if self.kind == "image":
            out.update(width=self.width, height=self.height)
        return out


def store_key(app_id: int, media_id: str) -> str:
    return f"{app_id}/{media_id}"


def media_not_found() -> NotFound:
    return NotFound("No such medium for this user.", code="media_not_found")


def allowed_types(ctx: Context) -> frozenset[str]:
    return frozenset(t.strip() for t in ctx.settings.media_types.split(",") if t.strip())


def check_name(name: str | None) -> str | None:
    if name is None:
        return None
    if not 0 < len(name) <= NAME_MAX or any(ch in name for ch in "/\\\0\r\n"):
        raise InvalidRequest(f"name is 1 to {NAME_MAX} characters, with no slash or line "
                             "break.", code="invalid_field")
    return name


async def upload(ctx: Context, store: MediaStore, app_id: int, owner: str, data: bytes,
                 name: str | None) -> Medium:
    """Check, scan, store and record one upload."""
    limit = ctx.settings.media_max_bytes
    if len(data) > limit:
        raise PayloadTooLarge(f"The upload is over {limit} bytes.", code="media_too_large",
                              limit=limit)
    content_type = sniff(data)
    if content_type is None or content_type not in allowed_types(ctx):
        raise UnsupportedMediaType("The upload is not of a type this server accepts.",
                                   code="media_type_not_allowed")
    kind = kind_of(content_type)
    scanned = await _scan(data) if kind == "image" else None

    medium = Medium(secrets.token_hex(16), app_id, owner, kind, content_type, len(data),
                    hashlib.sha256(data).hexdigest(), check_name(name),
                    scanned.width if scanned else None, scanned.height if scanned else None,
                    scanned.qr_texts if scanned else ())
    await store.put(medium.key, data)
    async with ctx.db.write() as conn:
        await conn.execute(insert(media).values(
            media_id=medium.media_id, app_id=app_id, owner_id=owner, kind=kind,
            content_type=content_type, size=medium.size, sha256=medium.sha256,
            name=medium.name, width=medium.width, height=medium.height,
            qr_texts=orjson.dumps(list(medium.qr_texts)).decode() if scanned else None,
            created_at_us=now_us()))
    logger.debug("media stored", extra={"app": app_id, "kind": kind, "bytes": medium.size,
                                        "qr_codes": len(medium.qr_texts)})
    return medium


async def _scan(data: bytes) -> qr.Scan:
    try:
        return await asyncio.to_thread(qr.scan, data)
    except qr.NotAnImage as exc:
        raise UnsupportedMediaType(str(exc), code="media_type_not_allowed") from exc


def _medium(row: Any) -> Medium:
    texts = tuple(orjson.loads(row.qr_texts)) if row.qr_texts else ()
    return Medium(row.media_id, row.app_id, row.owner_id, row.kind, row.content_type,
                  row.size, row.sha256, row.name, row.width, row.height, texts)


async def load(ctx: Context, app_id: int, media_id: str) -> Medium | None:
    async with ctx.db.read() as conn:
        row = (await conn.execute(select(media).where(
            media.c.app_id == app_id, media.c.media_id == media_id))).first()
    return _medium(row) if row is not None else None


async def access_send(ctx: Context, app_id: int, sender: str, media_id: str) -> Medium:
    """The medium a message may show: one the sender uploaded, or any of the app's for
    the App Server's own notices."""
    medium = await load(ctx, app_id, media_id)
    if medium is None:
        raise media_not_found()
    if sender != SYSTEM_SENDER and medium.owner_id != sender:
        raise media_not_found()
    return medium


async def access_fetch(ctx: Context, app_id: int, user: str, media_id: str) -> Medium:
    """The medium, if the user uploaded it or may see a message that shows it; every
    other case looks like a medium that does not exist."""
    medium = await load(ctx, app_id, media_id)
    if medium is None:
        raise media_not_found()
    if medium.owner_id == user:
        return medium
    async with ctx.db.read() as conn:
        if not await _shown_to(conn, app_id, user, media_id):
            raise media_not_found()
    return medium


async def _shown_to(conn: AsyncConnection, app_id: int, user: str, media_id: str) -> bool:
    """Whether a message showing the medium lies in the user's window of its
    conversation, and is neither recalled nor hidden by a reviewer."""
    window = and_(
        members.c.app_id == messages.c.app_id,
        members.c.conversation_id == messages.c.conversation_id,
        members.c.user_id == user,
        messages.c.seq > members.c.joined_seq,
        or_(members.c.left_seq.is_(None), messages.c.seq <= members.c.left_seq),
    )
    query = select(exists(
        select(media_refs.c.msg_id)
        .join(messages, and_(messages.c.app_id == media_refs.c.app_id,
                             messages.c.msg_id == media_refs.c.msg_id))
        .join(members, window)
        .where(media_refs.c.app_id == app_id, media_refs.c.media_id == media_id,
               messages.c.recalled_at_us.is_(None), messages.c.hidden_at_us.is_(None))
    ))
    return bool(await conn.scalar(query))


def shown_media_id(content: dict[str, Any]) -> str | None:
    """The medium message content shows, if any."""
    if content.get("type") in ("image", "file"):
        media_id = content.get("media_id")
        return media_id if isinstance(media_id, str) else None
    return None


async def record_ref(ctx: Context, conn: AsyncConnection, outgoing: Any, msg_id: str) -> None:
    """The persist hook: a stored message that shows a medium lets its readers fetch it."""
    media_id = shown_media_id(outgoing.content)
    if media_id is not None:
        await conn.execute(insert(media_refs).values(app_id=outgoing.app_id,
                                                     media_id=media_id, msg_id=msg_id))
