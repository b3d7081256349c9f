"""Content-security routes: the App Server's keyword and domain lists, settings, log and
review (HTTP Basic), and a client's report of a message (Bearer login token)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request, Response, status
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema

from app.api.deps import CallingApp, ClientSession, Ctx
from app.api.responses import ERRORS
from app.errors import InvalidRequest
from app.moderation import lists, review
from app.moderation.links import UnlistedAction
from app.moderation.policy import ModerationSettings
from app.moderation.rules import Action
from app.moderation.spam import FloodAction

router = APIRouter(prefix="/v1/moderation", tags=["moderation"], responses=ERRORS)
client_router = APIRouter(prefix="/v1/me", tags=["client"], responses=ERRORS)

BATCH_MAX = 1000
# A word list of a few hundred thousand lines fits; a file past this is refused
# before it is read into memory.
IMPORT_BYTES_MAX = 8 * 1024 * 1024
TEXT_BODY: dict[str, Any] = {"requestBody": {"required": True, "content": {
    "text/plain": {"schema": {"type": "string"}}}}}
TEXT_ANSWER: dict[int | str, dict[str, Any]] = {200: {"content": {"text/plain": {
    "schema": {"type": "string"}}}}}

Cursor = Annotated[str | None, Query(max_length=32, description="next_cursor of a page.")]
Limit = Annotated[int, Query(ge=1, le=1000)]
EntryId = Annotated[int, Path(ge=1)]
ListName = Literal["block", "allow"]


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class KeywordIn(BaseModel):
    word: str = Field(min_length=1, max_length=lists.WORD_MAX)
    category: str = Field(lists.DEFAULT_KEYWORD_CATEGORY, max_length=lists.CATEGORY_MAX)
    action: Action = "block"


class DomainIn(BaseModel):
    domain: str = Field(description="A host; *.host, a URL or a unicode host are taken too.")
    list: ListName = "block"
    category: str = Field(lists.DEFAULT_DOMAIN_CATEGORY, max_length=lists.CATEGORY_MAX)


def _array_of(item: type[BaseModel]) -> WithJsonSchema:
    return WithJsonSchema({"type": "array", "minItems": 1, "maxItems": BATCH_MAX,
                           "items": item.model_json_schema()})


# Items are checked one by one in the service, so that a bad one fails alone; the
# spec still shows what an item should be.
KeywordItems = Annotated[list[Any], Field(min_length=1, max_length=BATCH_MAX),
                         _array_of(KeywordIn)]
DomainItems = Annotated[list[Any], Field(min_length=1, max_length=BATCH_MAX),
                        _array_of(DomainIn)]


class KeywordBatch(Body):
    keywords: KeywordItems


class DomainBatch(Body):
    domains: DomainItems


class ItemError(BaseModel):
    index: int = Field(description="The item's place in the list, or the file's line number.")
    code: str
    message: str


class ListChange(BaseModel):
    created: int
    updated: int
    failed: int
    errors: list[ItemError] = Field(description="The first 100 failures.")


class KeywordOut(BaseModel):
    id: int
    word: str
    category: str
    action: Action
    created_at: str


class KeywordPage(BaseModel):
    keywords: list[KeywordOut]
    next_cursor: str | None


class DomainOut(BaseModel):
    id: int
    domain: str
    list: ListName
    category: str
    created_at: str


class DomainPage(BaseModel):
    domains: list[DomainOut]
    next_cursor: str | None


class Deleted(BaseModel):
    deleted: int


class SettingsPatch(Body):
    """The settings to change; a field given as null goes back to the node's default."""

    send_rate_per_second: float | None = None
    send_burst: int | None = None
    flood_window_seconds: float | None = None
    flood_conversations: int | None = None
    flood_strangers: int | None = None
    flood_similarity: float | None = None
    flood_new_user_seconds: float | None = None
    flood_action: FloodAction | None = None
    flood_penalty_seconds: float | None = None
    flood_slow_interval_seconds: float | None = None
    link_block_action: Action | None = None
    link_unlisted_action: UnlistedAction | None = None
    default_lookalikes: bool | None = None
    lookalikes: dict[str, str] | None = None


class LogEntry(BaseModel):
    id: int
    action: Literal["block", "mask", "review", "slow", "report"]
    source: Literal["keyword", "link", "flood", "qr", "report"]
    rule: str | None = Field(description="The keyword or domain that matched; for a flood, "
                             "same_text or strangers.")
    category: str | None
    msg_id: str | None = Field(description="Null for a refused message: it was not stored.")
    conversation_id: str | None
    sender: str | None
    reporter: str | None
    excerpt: str | None = Field(description="The text as the sender typed it.")
    note: str | None = Field(description="A report's reason.")
    status: Literal["open", "fine", "violation"] | None = Field(
        description="open while it awaits a reviewer; null when there is nothing to decide.")
    created_at: str
    decided_at: str | None


class LogPage(BaseModel):
    entries: list[LogEntry]
    next_cursor: str | None


class ReviewRequest(Body):
    verdict: review.Verdict = Field(description="violation hides the message from sync, "
                                    "conversation lists and chat logs; fine clears its risk.")


class ReviewOut(BaseModel):
    msg_id: str
    verdict: review.Verdict
    settled: int = Field(description="Log entries this verdict closed.")


class ReportRequest(Body):
    reason: str = Field("", max_length=review.REASON_MAX)


class ReportOut(BaseModel):
    msg_id: str
    report_id: int


async def _text_body(request: Request) -> str:
    size, chunks = 0, []
    async for chunk in request.stream():
        size += len(chunk)
        if size > IMPORT_BYTES_MAX:
            raise InvalidRequest(f"An import is at most {IMPORT_BYTES_MAX} bytes.",
                                 code="import_too_large", limit=IMPORT_BYTES_MAX)
        chunks.append(chunk)
    try:
        return b"".join(chunks).decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidRequest("The file is not UTF-8 text.", code="invalid_encoding") from None


def _change(outcome: lists.Outcome) -> ListChange:
    return ListChange(created=outcome.created, updated=outcome.updated, failed=outcome.failed,
                      errors=[ItemError(**e) for e in outcome.errors])


# --- keywords -------------------------------------------------------------------------


@router.post("/keywords", operation_id="add_keywords")
async def add_keywords(ctx: Ctx, app: CallingApp, body: KeywordBatch) -> ListChange:
    """Add or change up to 1,000 keywords; a word already listed takes the new settings."""
    return _change(await lists.add_keywords(ctx, app.id, body.keywords))


@router.post("/keywords/import", operation_id="import_keywords", openapi_extra=TEXT_BODY)
async def import_keywords(
    ctx: Ctx,
    app: CallingApp,
    request: Request,
    category: Annotated[str | None, Query(max_length=lists.CATEGORY_MAX)] = None,
    action: Action | None = None,
) -> ListChange:
    """Import a text file: one keyword a line, or word<TAB>category<TAB>action."""
    text = await _text_body(request)
    return _change(await lists.import_keywords(ctx, app.id, text, category, action))


@router.get("/keywords", operation_id="list_keywords")
async def list_keywords(
    ctx: Ctx,
    app: CallingApp,
    category: Annotated[str | None, Query(max_length=lists.CATEGORY_MAX)] = None,
    action: Action | None = None,
    cursor: Cursor = None,
    limit: Limit = 100,
) -> KeywordPage:
    """List keywords in the order they were added, a page at a time."""
    items, next_cursor = await lists.list_keywords(ctx, app.id, category, action, cursor, limit)
    return KeywordPage(keywords=[KeywordOut(**k) for k in items], next_cursor=next_cursor)


@router.get("/keywords/export", operation_id="export_keywords",
            response_class=PlainTextResponse, responses=TEXT_ANSWER)
async def export_keywords(
    ctx: Ctx,
    app: CallingApp,
    category: Annotated[str | None, Query(max_length=lists.CATEGORY_MAX)] = None,
) -> PlainTextResponse:
    """Export keywords as the text file the import reads."""
    return PlainTextResponse(await lists.export_keywords(ctx, app.id, category))


@router.delete("/keywords/{keyword_id}", status_code=status.HTTP_204_NO_CONTENT,
               operation_id="delete_keyword")
async def delete_keyword(ctx: Ctx, app: CallingApp, keyword_id: EntryId) -> Response:
    """Delete one keyword."""
    await lists.delete_keyword(ctx, app.id, keyword_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.delete("/keywords", operation_id="delete_keywords")
async def delete_keywords(
    ctx: Ctx,
    app: CallingApp,
    category: Annotated[str, Query(min_length=1, max_length=lists.CATEGORY_MAX)],
) -> Deleted:
    """Delete every keyword of a category."""
    return Deleted(deleted=await lists.delete_keywords(ctx, app.id, category))


# --- domains --------------------------------------------------------------------------


@router.post("/domains", operation_id="add_domains")
async def add_domains(ctx: Ctx, app: CallingApp, body: DomainBatch) -> ListChange:
    """Put up to 1,000 domains on the block or allow list; each covers its subdomains."""
    return _change(await lists.add_domains(ctx, app.id, body.domains))


@router.post("/domains/import", operation_id="import_domains", openapi_extra=TEXT_BODY)
async def import_domains(
    ctx: Ctx,
    app: CallingApp,
    request: Request,
    list_name: Annotated[ListName, Query(alias="list")] = "block",
    category: Annotated[str | None, Query(max_length=lists.CATEGORY_MAX)] = None,
) -> ListChange:
    """Import a text file onto one list: one domain a line, or domain<TAB>category."""
    text = await _text_body(request)
    return _change(await lists.import_domains(ctx, app.id, text, list_name, category))


@router.get("/domains", operation_id="list_domains")
async def list_domains(
    ctx: Ctx,
    app: CallingApp,
    list_name: Annotated[ListName | None, Query(alias="list")] = None,
    cursor: Cursor = None,
    limit: Limit = 100,
) -> DomainPage:
    """List domains in the order they were added, a page at a time."""
    items, next_cursor = await lists.list_domains(ctx, app.id, list_name, cursor, limit)
    return DomainPage(domains=[DomainOut(**d) for d in items], next_cursor=next_cursor)


@router.get("/domains/export", operation_id="export_domains",
            response_class=PlainTextResponse, responses=TEXT_ANSWER)
async def export_domains(
    ctx: Ctx, app: CallingApp, list_name: Annotated[ListName, Query(alias="list")] = "block"
) -> PlainTextResponse:
    """Export one list as the text file the import reads."""
    return PlainTextResponse(await lists.export_domains(ctx, app.id, list_name))


@router.delete("/domains/{domain_id}", status_code=status.HTTP_204_NO_CONTENT,
               operation_id="delete_domain")
async def delete_domain(ctx: Ctx, app: CallingApp, domain_id: EntryId) -> Response:
    """Take one domain off its list."""
    await lists.delete_domain(ctx, app.id, domain_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.delete("/domains", operation_id="delete_domains")
async def delete_domains(
    ctx: Ctx, app: CallingApp, list_name: Annotated[ListName, Query(alias="list")]
) -> Deleted:
    """Empty one list."""
    return Deleted(deleted=await lists.delete_domains(ctx, app.id, list_name))


# --- settings, log, review ------------------------------------------------------------


@router.get("/settings", operation_id="get_moderation_settings")
async def get_moderation_settings(ctx: Ctx, app: CallingApp) -> ModerationSettings:
    """The app's content-security settings as in force."""
    return await lists.get_settings(ctx, app.id)


@router.patch("/settings", operation_id="update_moderation_settings")
async def update_moderation_settings(ctx: Ctx, app: CallingApp, body: SettingsPatch
                                     ) -> ModerationSettings:
    """Change rate limits, flood rules, link actions or look-alikes."""
    return await lists.update_settings(ctx, app.id, body.model_dump(exclude_unset=True))


@router.get("/log", operation_id="moderation_log")
async def moderation_log(
    ctx: Ctx,
    app: CallingApp,
    action: Annotated[str | None, Query(max_length=8)] = None,
    source: Annotated[str | None, Query(max_length=16)] = None,
    entry_status: Annotated[str | None, Query(alias="status", max_length=12,
                                              description="open: the review queue.")] = None,
    msg_id: Annotated[str | None, Query(max_length=26)] = None,
    cursor: Cursor = None,
    limit: Limit = 100,
) -> LogPage:
    """Blocks, masks, flags, slow-downs and reports, newest first."""
    items, next_cursor = await review.entries(
        ctx, app.id, action=action, source=source, status=entry_status, msg_id=msg_id,
        cursor=cursor, limit=limit)
    return LogPage(entries=[LogEntry(**e) for e in items], next_cursor=next_cursor)


@router.post("/messages/{msg_id}/review", operation_id="review_message")
async def review_message(
    ctx: Ctx, app: CallingApp, msg_id: Annotated[str, Path(max_length=26)], body: ReviewRequest
) -> ReviewOut:
    """Rule on a flagged or reported message: fine, or a violation that hides it."""
    settled = await review.decide(ctx, app.id, msg_id, body.verdict)
    return ReviewOut(msg_id=msg_id, verdict=body.verdict, settled=settled)


@client_router.post("/messages/{msg_id}/report", status_code=status.HTTP_201_CREATED,
                    operation_id="report_message")
async def report_message(
    ctx: Ctx,
    session: ClientSession,
    msg_id: Annotated[str, Path(max_length=26)],
    body: ReportRequest,
) -> ReportOut:
    """Report a message the caller can see; it joins the app's review queue."""
    report_id = await review.report(ctx, session.app_id, session.user_id, msg_id, body.reason)
    return ReportOut(msg_id=msg_id, report_id=report_id)
