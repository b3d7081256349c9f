"""Fan-out between the send pipeline and the connections that must hear of it.

Services publish a :class:`Delivery` after their transaction commits; every node's
gateway subscribes and hands it to the connections it holds. The default broker is
in-process (one node); :mod:`app.broker.redis` carries deliveries between nodes. Both
pass the contract tests in ``tests/broker/test_contract.py``.

Publishing never fails a send: a delivery that cannot reach another node is counted
and logged, and its recipients catch up by sync.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from app.observability import metrics


@dataclass(frozen=True, slots=True)
class Delivery:
    """One frame for every online device of some users of one app.

    ``frame`` is the frame as an object; each node encodes it once per codec, not
    once per connection. When
    ``close_code`` is set the delivery is an order to close those users'
    connections instead, with ``frame`` as the error frame sent first.
    ``connections``, when given, narrows it to those connections of the users.
    ``topic``, when set, addresses the connections that subscribed to it instead of
    ``user_ids`` (presence watchers).
    """

    app_id: int
    user_ids: tuple[str, ...]
    frame: dict[str, Any]
    exclude_connection: str | None = None
    close_code: int | None = None
    close_reason: str = ""
    connections: tuple[str, ...] = ()
    topic: str | None = None


Subscriber = Callable[[Delivery], None]


class Broker(Protocol):
    async def start(self, subscriber: Subscriber) -> None: ...

    async def publish(self, delivery: Delivery) -> None: ...

    async def close(self) -> None: ...

    async def ping(self) -> None:
        """Raise unless deliveries can reach the other nodes now (for /readyz)."""


class InProcessBroker:
    """Hands each delivery straight to this node's subscriber."""

    def __init__(self) -> None:
        self._subscriber: Subscriber | None = None

    async def start(self, subscriber: Subscriber) -> None:
        self._subscriber = subscriber

    async def publish(self, delivery: Delivery) -> None:
        if self._subscriber is not None:
            metrics.count_published(delivery.frame)
            self._subscriber(delivery)

    async def close(self) -> None:
        self._subscriber = None

    async def ping(self) -> None:
        return None
