"""Responses and the error contract: every error is ``{"code", "message"[, "data"]}``."""

from __future__ import annotations

import logging
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse, Response

from app.errors import ParleyError

logger = logging.getLogger(__name__)


class ErrorBody(BaseModel):
    code: str = Field(description="Stable, machine-readable; docs/protocol.md lists them.")
    message: str
    data: dict[str, Any] | None = None


ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody} for status in (400, 401, 403, 404, 409, 413, 429, 503)
}


class OrjsonResponse(JSONResponse):
    """orjson, so stored message content (an orjson.Fragment) is spliced in unparsed."""

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def _error(status: int, code: str, message: str, data: dict[str, Any] | None = None) -> Response:
    body: dict[str, Any] = {"code": code, "message": message}
    if data:
        body["data"] = data
    return OrjsonResponse(body, status_code=status)


async def _parley_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, ParleyError)
    return _error(exc.http_status, exc.code, exc.message, exc.data)


async def _validation_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    if any(e.get("type") == "json_invalid" for e in errors):
        return _error(400, "invalid_json", "The request body is not valid JSON.")
    first = errors[0] if errors else {}
    where = ".".join(str(p) for p in first.get("loc", ()))
    fields = [
        {"loc": [str(p) for p in e.get("loc", ())], "msg": e.get("msg", "")} for e in errors
    ]
    return _error(400, "invalid_request", f"{where}: {first.get('msg', 'invalid')}",
                  {"errors": fields})


_HTTP_CODES = {404: "not_found", 405: "method_not_allowed", 413: "too_large"}


async def _http_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    return _error(exc.status_code, code, str(exc.detail))


async def _unexpected(request: Request, exc: Exception) -> Response:
    logger.exception("unhandled error", extra={"path": request.url.path})
    return _error(500, "internal_error", "Internal error.")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ParleyError, _parley_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
