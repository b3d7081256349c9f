"""Metrics: the delivery counters read frames safely, and /metrics serves them."""

from __future__ import annotations

import httpx
from prometheus_client import REGISTRY

from app.observability import metrics
from app.timefmt import iso_from_us
from tests.support import Server


def _value(name: str) -> float:
    return REGISTRY.get_sample_value(name) or 0.0


def test_a_pushed_message_is_counted_and_timed_from_its_creation() -> None:
    """A message frame pushed to two connections counts twice and times once."""
    delivered = _value("parley_messages_delivered_total")
    timed = _value("parley_delivery_latency_seconds_count")
    frame = {"type": "message", "message": {"created_at": iso_from_us(1_700_000_000_000_000)}}

    metrics.observe_delivery(frame, 2)

    assert _value("parley_messages_delivered_total") == delivered + 2
    assert _value("parley_delivery_latency_seconds_count") == timed + 1


def test_other_frames_and_odd_shapes_are_not_counted_and_do_not_raise() -> None:
    """Pushes that are not messages, or messages without a time, leave the histogram be."""
    timed = _value("parley_delivery_latency_seconds_count")

    metrics.observe_delivery({"type": "presence", "online": True}, 3)
    metrics.observe_delivery({"type": "message", "n": 1}, 1)
    metrics.observe_delivery({"type": "message", "message": {"created_at": None}}, 1)
    metrics.observe_delivery({"type": "message", "message": {}}, 0)

    assert _value("parley_delivery_latency_seconds_count") == timed


async def test_metrics_are_served_in_the_prometheus_text_format(server: Server) -> None:
    """GET /metrics answers text a Prometheus scraper reads, with Parley's metrics in it."""
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        r = await http.get("/metrics")

    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    for name in ("parley_connections", "parley_logins_total", "parley_broker_errors_total",
                 "parley_database_errors_total", "parley_sync_messages_bucket"):
        assert name in r.text, name
