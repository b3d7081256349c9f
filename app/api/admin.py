"""Operator routes: apps (tenants) and their secrets. Bearer PARLEY_ADMIN_TOKEN."""

from __future__ import annotations

from fastapi import APIRouter, status

from app.api.deps import AdminAuth, Ctx
from app.api.responses import ERRORS
from app.api.schemas import AppCreate, AppCredentials, AppList, AppOut, AppSettings
from app.services import apps
from app.services.apps import AppRecord, NewCredentials
from app.timefmt import iso_from_us

router = APIRouter(prefix="/admin/apps", tags=["admin"], dependencies=[AdminAuth],
                   responses=ERRORS)


def _out(app: AppRecord) -> AppOut:
    return AppOut(app_key=app.key, name=app.name, created_at=iso_from_us(app.created_at_us),
                  group_member_limit=app.group_member_limit, device_policy=app.device_policy)


def _credentials(new: NewCredentials) -> AppCredentials:
    return AppCredentials(**_out(new.app).model_dump(), app_secret=new.secret)


@router.post("", status_code=status.HTTP_201_CREATED, operation_id="create_app")
async def create_app(ctx: Ctx, body: AppCreate) -> AppCredentials:
    """Create an app; its secret is shown in this answer only."""
    return _credentials(await apps.create(ctx, body.name))


@router.get("", operation_id="list_apps")
async def list_apps(ctx: Ctx) -> AppList:
    """List every app."""
    return AppList(apps=[_out(a) for a in await apps.list_all(ctx)])


@router.get("/{app_key}", operation_id="get_app")
async def get_app(ctx: Ctx, app_key: str) -> AppOut:
    """Get one app."""
    return _out(await apps.get(ctx, app_key))


@router.patch("/{app_key}", operation_id="configure_app")
async def configure_app(ctx: Ctx, app_key: str, body: AppSettings) -> AppOut:
    """Set the app's own policies; null returns one to the server default."""
    changes = {k: getattr(body, k) for k in body.model_fields_set}
    return _out(await apps.configure(ctx, app_key, changes))


@router.post("/{app_key}/secret", operation_id="rotate_app_secret")
async def rotate_secret(ctx: Ctx, app_key: str) -> AppCredentials:
    """Replace the app's secret; the old one stops working at once."""
    return _credentials(await apps.rotate_secret(ctx, app_key))
