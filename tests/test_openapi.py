"""The committed OpenAPI spec is the one the code serves."""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from app.config import Settings
from app.main import create_app
from tests.support import Server

SPEC = Path(__file__).resolve().parents[1] / "openapi" / "openapi.json"


def _current() -> dict:
    return create_app(Settings()).openapi()


def test_committed_spec_is_current() -> None:
    """openapi/openapi.json equals the spec the app builds; run `parley openapi` to refresh."""
    assert json.loads(SPEC.read_text()) == json.loads(json.dumps(_current())), (
        "openapi/openapi.json is out of date: run `parley openapi`"
    )


def test_spec_is_valid_openapi() -> None:
    """The spec passes an OpenAPI validator, so every $ref resolves and client generators work."""
    from openapi_spec_validator import validate

    validate(json.loads(SPEC.read_text()))


def test_every_operation_has_a_summary_and_stable_id() -> None:
    """Each route has an operation ID for client generators and a one-line summary."""
    for path, ops in _current()["paths"].items():
        for method, op in ops.items():
            assert op.get("operationId"), f"{method} {path}"
            assert op.get("description") or op.get("summary"), f"{method} {path}"


async def test_served_spec_and_docs_pages_need_no_cdn(server: Server) -> None:
    """/openapi.json is served, and /docs and /redoc load their scripts from Parley itself."""
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        assert (await http.get("/openapi.json")).json()["info"]["title"] == "Parley"
        for page in ("/docs", "/redoc"):
            html = (await http.get(page)).text
            assert "cdn." not in html and "googleapis" not in html, page
            for ref in _local_refs(html):
                r = await http.get(ref)
                assert r.status_code == 200 and len(r.content) > 1000, ref


def _local_refs(html: str) -> list[str]:
    import re

    refs = re.findall(r'(?:src|href)="([^"]+\.(?:js|css))"', html)
    assert refs, "the page loads no script"
    assert all(ref.startswith("/") for ref in refs), refs
    return refs
