"""Prometheus metrics of one node, served at ``/metrics``.

Each node exports its own numbers; Prometheus adds them up across nodes. Labels are
kept to small fixed sets (frame types, error codes, operations) so that no user, app or
connection ever becomes a time series.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest

CONTENT_TYPE = CONTENT_TYPE_LATEST

CONNECTIONS = Gauge("parley_connections", "WebSocket connections open on this node.")
LOGINS = Counter("parley_logins_total", "Successful data-plane logins.")
FRAMES_IN = Counter("parley_frames_in_total", "Frames received from clients, by type.",
                    ["type"])
FRAMES_OUT = Counter("parley_frames_out_total", "Frames written to client sockets.")
ERRORS_SENT = Counter("parley_error_frames_total", "Error frames sent to clients, by code.",
                      ["code"])
MESSAGES_PUBLISHED = Counter(
    "parley_messages_published_total",
    "Messages stored and handed to the broker on this node (system messages included).",
)
MESSAGES_DELIVERED = Counter(
    "parley_messages_delivered_total", "Message frames queued for a connection on this node."
)
# From the moment the send was accepted (the message's created_at) to the moment its
# frame is queued for the recipients on this node. Across hosts it includes clock skew.
DELIVERY_LATENCY = Histogram(
    "parley_delivery_latency_seconds",
    "Time from a message's acceptance to its push on this node.",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
SYNC_SIZE = Histogram(
    "parley_sync_messages", "Messages returned by one sync request.",
    buckets=(0, 1, 5, 10, 25, 50, 100, 200, 500, 1000),
)
BROKER_ERRORS = Counter(
    "parley_broker_errors_total",
    "Failed broker and presence operations, by operation.", ["op"],
)
BROKER_DROPPED = Counter(
    "parley_broker_dropped_total",
    "Deliveries not sent to other nodes because Redis did not take them.",
)
DATABASE_ERRORS = Counter(
    "parley_database_errors_total", "Database calls that failed because it was unreachable."
)
PRESENCE_EVENTS = Counter("parley_presence_events_total", "Presence changes announced.")


def render() -> bytes:
    return generate_latest()


def observe_delivery(frame: dict[str, Any], pushed: int) -> None:
    """Count a message frame this node pushed, and time it from the message's creation."""
    if frame.get("type") != "message" or not pushed:
        return
    MESSAGES_DELIVERED.inc(pushed)
    message = frame.get("message")
    created = message.get("created_at") if isinstance(message, dict) else None
    if isinstance(created, str):
        accepted = datetime.fromisoformat(created.replace("Z", "+00:00")).timestamp()
        DELIVERY_LATENCY.observe(max(0.0, time.time() - accepted))


def count_published(frame: dict[str, Any]) -> None:
    if frame.get("type") == "message":
        MESSAGES_PUBLISHED.inc()
