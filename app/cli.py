"""The ``parley`` command: run the server, manage apps, migrate, export the spec."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson

from app.config import Settings, get_settings


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """How Parley must be served, whoever starts uvicorn."""
    return {
        "host": settings.host,
        "port": settings.port,
        # Per-message deflate holds ~300 KiB per connection; frames here are small.
        "ws_per_message_deflate": False,
        "ws_max_size": settings.max_frame_bytes,
        # Clients send Parley's one-byte heartbeat; protocol pings would double it.
        "ws_ping_interval": None,
        "log_config": None,
        "access_log": False,
        "lifespan": "on",
    }


def _serve(settings: Settings, _: argparse.Namespace) -> int:
    from app import serving
    from app.main import create_app
    from app.observability.logging import configure

    configure(settings.log_level, settings.log_format)
    serving.run(create_app(settings), settings, uvicorn_options(settings))
    return 0


def _migrate(settings: Settings, _: argparse.Namespace) -> int:
    from app.storage import migrate

    migrate.upgrade(settings.database_url)
    print("database is at the newest migration")
    return 0


def _with_context(settings: Settings, work: Callable[[Any], Awaitable[int]]) -> int:
    from app.broker import InProcessBroker
    from app.security import PasswordVault
    from app.services.committer import Committer
    from app.services.context import Context
    from app.storage import migrate
    from app.storage.db import Database

    migrate.upgrade(settings.database_url)

    async def run() -> int:
        db = Database(settings.database_url)
        try:
            return await work(Context(settings, db, InProcessBroker(), PasswordVault(settings),
                                      committer=Committer()))
        finally:
            await db.dispose()

    return asyncio.run(run())


def _apps_create(settings: Settings, args: argparse.Namespace) -> int:
    from app.services import apps

    async def work(ctx: Any) -> int:
        new = await apps.create(ctx, args.name)
        print(f"app_key:    {new.app.key}\napp_secret: {new.secret}")
        print("The secret is shown once; Parley keeps only its hash.", file=sys.stderr)
        return 0

    return _with_context(settings, work)


def _apps_list(settings: Settings, _: argparse.Namespace) -> int:
    from app.services import apps

    async def work(ctx: Any) -> int:
        for app in await apps.list_all(ctx):
            print(f"{app.key}\t{app.name}")
        return 0

    return _with_context(settings, work)


def _apps_rotate(settings: Settings, args: argparse.Namespace) -> int:
    from app.services import apps

    async def work(ctx: Any) -> int:
        new = await apps.rotate_secret(ctx, args.app_key)
        print(f"app_key:    {new.app.key}\napp_secret: {new.secret}")
        return 0

    return _with_context(settings, work)


def _openapi(settings: Settings, args: argparse.Namespace) -> int:
    from app.main import create_app

    spec = orjson.dumps(create_app(settings).openapi(), option=orjson.OPT_INDENT_2)
    Path(args.output).write_bytes(spec + b"\n")
    return 0


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="parley", description=__doc__)
    sub = top.add_subparsers(dest="command", required=True)
    sub.add_parser("serve", help="run the server").set_defaults(run=_serve)
    sub.add_parser("migrate", help="bring the schema up to date").set_defaults(run=_migrate)
    spec = sub.add_parser("openapi", help="write the OpenAPI spec")
    spec.add_argument("--output", default="openapi/openapi.json")
    spec.set_defaults(run=_openapi)

    apps = sub.add_parser("apps", help="manage apps").add_subparsers(dest="apps", required=True)
    create = apps.add_parser("create", help="create an app; prints its key and secret")
    create.add_argument("name")
    create.set_defaults(run=_apps_create)
    apps.add_parser("list", help="list apps").set_defaults(run=_apps_list)
    rotate = apps.add_parser("rotate-secret", help="replace an app's secret")
    rotate.add_argument("app_key")
    rotate.set_defaults(run=_apps_rotate)
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    settings = get_settings()
    if getattr(args, "host", None):
        settings.host = args.host
    return int(args.run(settings, args))


if __name__ == "__main__":
    raise SystemExit(main())
