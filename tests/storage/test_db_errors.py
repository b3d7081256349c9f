"""Database trouble reaches callers as retryable 503 codes, not internal errors."""

from __future__ import annotations

import pytest
from sqlalchemy.exc import TimeoutError as PoolTimeout

from app.errors import ServiceUnavailable
from app.storage.db import _unreachable_as_unavailable


def test_an_exhausted_pool_is_database_busy() -> None:
    """Waiting too long for a pooled connection is overload: 503 database_busy."""
    with pytest.raises(ServiceUnavailable) as caught, _unreachable_as_unavailable():
        raise PoolTimeout("QueuePool limit of size 10 overflow 20 reached")
    assert caught.value.code == "database_busy" and caught.value.http_status == 503


def test_other_errors_pass_through() -> None:
    """A statement the database refused is not dressed up as unavailability."""
    with pytest.raises(ValueError), _unreachable_as_unavailable():
        raise ValueError("not a connection problem")
