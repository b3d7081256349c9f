"""Times at the edges: integer microseconds inside, ISO 8601 in UTC outside."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from app.errors import InvalidRequest

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def iso_from_us(us: int) -> str:
    return (_EPOCH + timedelta(microseconds=us)).isoformat().replace("+00:00", "Z")


def us_from_datetime(value: datetime, field: str) -> int:
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidRequest(
            f"{field} needs an offset, e.g. 2026-01-31T08:00:00+08:00 or ...Z.",
            code="invalid_time",
        )
    delta = value - _EPOCH
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds
