"""Media routes: a client uploads with its login token; a client fetches what it may see;
the App Server fetches any medium of its app. Thin: the rules are in app.media.service."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel, Field
from starlette.responses import Response

from app.api.deps import CallingApp, ClientSession, Ctx
from app.api.responses import ERRORS, ErrorBody
from app.errors import PayloadTooLarge
from app.media import service
from app.media.service import Medium
from app.media.store import MediaStore

UPLOAD_PATH = "/v1/me/media"

router = APIRouter(tags=["media"], responses=ERRORS)

MediaId = Annotated[str, Path(description="The ID an upload returned (32 hex digits).",
                              pattern="^[0-9a-f]{32}$")]
_UPLOAD_BODY: dict[str, Any] = {"requestBody": {"required": True, "content": {
    "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}}
_BYTES: dict[int | str, dict[str, Any]] = {
    200: {"description": "The bytes, with the sniffed content type.",
          "content": {"application/octet-stream": {"schema": {"type": "string",
                                                                "format": "binary"}}}},
    415: {"model": ErrorBody},
}


class MediaOut(BaseModel):
    media_id: str = Field(description="Put it in image or file content to send it.")
    kind: str = Field(description="image or file")
    content_type: str = Field(description="As sniffed from the bytes.")
    size: int
    sha256: str
    name: str | None
    width: int | None = None
    height: int | None = None


def get_store(request: Request) -> MediaStore:
    store: MediaStore = request.app.state.media_store
    return store


Store = Annotated[MediaStore, Depends(get_store)]


async def _read_body(request: Request, limit: int) -> bytes:
    """The body, refused as soon as it passes the limit. The upload route reads its own
    body because its limit is not PARLEY_MAX_BODY_BYTES (see app.api.limits)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    chunks, seen = [], 0
    async for chunk in request.stream():
        seen += len(chunk)
        if seen > limit:
            raise _too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"The upload is over {limit} bytes.", code="media_too_large",
                           limit=limit)


def _serve(medium: Medium, data: bytes) -> Response:
    disposition = "inline" if medium.kind == "image" else "attachment"
    return Response(data, media_type=medium.content_type, headers={
        "Content-Disposition": disposition,
        # The bytes of an ID never change, but only some users may read them.
        "Cache-Control": "private, max-age=31536000, immutable",
        "ETag": f'"{medium.sha256}"',
        "X-Content-Type-Options": "nosniff",
        # Opened in a browser tab, a file runs nothing and loads nothing.
        "Content-Security-Policy": "default-src 'none'; sandbox",
    })


async def _bytes(store: MediaStore, medium: Medium) -> bytes:
    data = await store.get(medium.key)
    if data is None:
        raise service.media_not_found()
    return data


@router.post(UPLOAD_PATH, status_code=201, operation_id="upload_media",
             openapi_extra=_UPLOAD_BODY, responses={415: {"model": ErrorBody}})
async def upload_media(
    request: Request,
    ctx: Ctx,
    session: ClientSession,
    store: Store,
    name: Annotated[str | None, Query(max_length=service.NAME_MAX,
                                      description="A file name to show.")] = None,
) -> MediaOut:
    """Upload an image or a file as the raw request body; its type is read from its bytes."""
    data = await _read_body(request, ctx.settings.media_max_bytes)
    medium = await service.upload(ctx, store, session.app_id, session.user_id, data, name)
    return MediaOut(**medium.view())


@router.get(UPLOAD_PATH + "/{media_id}", operation_id="my_media", response_class=Response,
            responses=_BYTES)
async def my_media(ctx: Ctx, session: ClientSession, store: Store, media_id: MediaId
                   ) -> Response:
    """A medium the caller uploaded, or that a message they may see shows."""
    medium = await service.access_fetch(ctx, session.app_id, session.user_id, media_id)
    return _serve(medium, await _bytes(store, medium))


@router.get("/v1/media/{media_id}", operation_id="app_media", response_class=Response,
            responses=_BYTES)
async def app_media(ctx: Ctx, app: CallingApp, store: Store, media_id: MediaId) -> Response:
    """Any medium of the app, for the App Server."""
    medium = await service.load(ctx, app.id, media_id)
    if medium is None:
        raise service.media_not_found()
    return _serve(medium, await _bytes(store, medium))
