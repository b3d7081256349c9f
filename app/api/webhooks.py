"""App Server routes for webhooks: endpoints, test pings, the delivery log, re-delivery,
and the before-send hook."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request, Response, status
from pydantic import Field

from app.api.deps import CallingApp, Ctx
from app.api.responses import ERRORS
from app.api.schemas import Body
from app.services import webhooks
from app.storage.db import now_us
from app.timefmt import us_from_datetime
from app.webhooks.outbox import EVENT_TYPES, PING, event_body, new_event_id

router = APIRouter(prefix="/v1", tags=["webhooks"], responses=ERRORS)

EndpointId = Annotated[int, Path(ge=1)]
EVENT_HELP = "'*' for all, or some of: " + ", ".join(EVENT_TYPES)


class EndpointCreate(Body):
    url: str = Field(max_length=2048)
    event_types: list[str] = Field(default_factory=lambda: ["*"], description=EVENT_HELP)


class EndpointUpdate(Body):
    url: str | None = Field(None, max_length=2048)
    event_types: list[str] | None = Field(None, description=EVENT_HELP)
    enabled: bool | None = Field(None, description="true re-enables a disabled endpoint.")


class Redeliver(Body):
    event_id: str | None = Field(None, max_length=32)
    start: datetime | None = Field(None, alias="from")
    end: datetime | None = Field(None, alias="to")


class BeforeSendConfig(Body):
    url: str = Field(max_length=2048)
    timeout_ms: int = Field(2000, description="At most PARLEY_BEFORE_SEND_TIMEOUT_MAX_MS.")
    on_error: Literal["allow", "reject"] = Field(
        "reject", description="What a timeout or a bad answer means."
    )


@router.post("/webhooks", status_code=status.HTTP_201_CREATED, operation_id="create_webhook")
async def create(ctx: Ctx, app: CallingApp, body: EndpointCreate) -> dict[str, Any]:
    """Add an endpoint; its signing secret is in this answer only."""
    return await webhooks.create_endpoint(ctx, app.id, body.url, body.event_types)


@router.get("/webhooks", operation_id="list_webhooks")
async def list_all(ctx: Ctx, app: CallingApp) -> dict[str, Any]:
    """The app's endpoints, with why any was disabled."""
    return {"webhooks": await webhooks.list_endpoints(ctx, app.id)}


@router.get("/webhooks/{endpoint_id}", operation_id="get_webhook")
async def get(ctx: Ctx, app: CallingApp, endpoint_id: EndpointId) -> dict[str, Any]:
    """One endpoint."""
    return webhooks.endpoint_view(await webhooks.get_endpoint(ctx, app.id, endpoint_id))


@router.patch("/webhooks/{endpoint_id}", operation_id="update_webhook")
async def patch(ctx: Ctx, app: CallingApp, endpoint_id: EndpointId, body: EndpointUpdate
                ) -> dict[str, Any]:
    """Change the URL or event types, or enable and disable the endpoint."""
    return await webhooks.update_endpoint(ctx, app.id, endpoint_id, body.model_dump())


@router.delete("/webhooks/{endpoint_id}", status_code=status.HTTP_204_NO_CONTENT,
               operation_id="delete_webhook")
async def remove(ctx: Ctx, app: CallingApp, endpoint_id: EndpointId) -> Response:
    """Remove an endpoint and its delivery log."""
    await webhooks.delete_endpoint(ctx, app.id, endpoint_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/webhooks/{endpoint_id}/secret", operation_id="rotate_webhook_secret")
async def rotate(ctx: Ctx, app: CallingApp, endpoint_id: EndpointId) -> dict[str, Any]:
    """Replace the signing secret; requests are signed with the new one from now on."""
    return await webhooks.rotate_secret(ctx, app.id, endpoint_id)


@router.post("/webhooks/{endpoint_id}/ping", operation_id="ping_webhook")
async def ping(ctx: Ctx, app: CallingApp, endpoint_id: EndpointId, request: Request
               ) -> dict[str, Any]:
    """Send a signed test event now and say how the endpoint answered."""
    endpoint = await webhooks.get_endpoint(ctx, app.id, endpoint_id)
    event_id = new_event_id()
    body = event_body(event_id, PING, app.key, {"endpoint_id": endpoint_id}, now_us())
    result = await request.app.state.dispatcher.send(endpoint.url, endpoint.secret, event_id,
                                                     PING, body.encode())
    return {"event_id": event_id, "ok": result.ok, "status_code": result.status_code,
            "error": result.error, "duration_ms": result.duration_ms}


@router.get("/webhooks/{endpoint_id}/deliveries", operation_id="list_webhook_deliveries")
async def deliveries(
    ctx: Ctx, app: CallingApp, endpoint_id: EndpointId,
    status_: Annotated[Literal["pending", "delivered", "failed", "dead"] | None,
                       Query(alias="status")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> dict[str, Any]:
    """The newest deliveries to the endpoint, each with every attempt."""
    return {"deliveries": await webhooks.deliveries(ctx, app.id, endpoint_id, status_, limit)}


@router.post("/webhooks/redeliver", operation_id="redeliver_webhooks")
async def redeliver(ctx: Ctx, app: CallingApp, body: Redeliver) -> dict[str, int]:
    """Send an event, or every event of a time range [from, to), again."""
    start = us_from_datetime(body.start, "from") if body.start else None
    end = us_from_datetime(body.end, "to") if body.end else None
    queued = await webhooks.redeliver(ctx, app.id, event_id=body.event_id, start_us=start,
                                      end_us=end)
    return {"queued": queued}


@router.put("/before-send", operation_id="set_before_send")
async def set_before_send(ctx: Ctx, app: CallingApp, body: BeforeSendConfig) -> dict[str, Any]:
    """Ask this URL before accepting each message; the signing secret is shown once."""
    return await webhooks.set_before_send(ctx, app.id, body.url, body.timeout_ms, body.on_error)


@router.get("/before-send", operation_id="get_before_send")
async def get_before_send(ctx: Ctx, app: CallingApp) -> dict[str, Any]:
    """The before-send hook, or null."""
    return {"before_send": await webhooks.get_before_send(ctx, app.id)}


@router.delete("/before-send", status_code=status.HTTP_204_NO_CONTENT,
               operation_id="clear_before_send")
async def clear_before_send(ctx: Ctx, app: CallingApp) -> Response:
    """Stop asking before sends."""
    await webhooks.clear_before_send(ctx, app.id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
