"""Deliveries between nodes over Redis pub/sub.

Every node publishes each delivery on one channel and subscribes to it; a node hands
what it hears to its own connections and ignores its own echoes. Local connections get
a delivery at once, before Redis sees it, so a node keeps serving its own users while
Redis is away. docs/architecture.md says why pub/sub and not streams.

Publishing goes through a bounded queue drained by one task: a send never waits on
Redis, and a Redis that does not answer costs dropped pushes (counted, logged), never
a failed send. When a publish fails or the subscription breaks, the nodes tell their
clients to ``resync`` once Redis is back, since some pushes may not have arrived.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections import deque
from collections.abc import Callable
from typing import Any

import orjson
from redis.asyncio import Redis
from redis.exceptions import RedisError

from app.broker import Delivery, Subscriber
from app.observability import metrics

logger = logging.getLogger(__name__)

# Deliveries waiting for Redis. About a second of a busy node's traffic: more would
# only be stale pushes that clients heal by sync anyway. The oldest go first.
QUEUE_LIMIT = 10_000
# Deliveries sent in one pipelined round trip.
BATCH = 256
# Waits between attempts while Redis does not answer: quick at first, then calm.
BACKOFF_FIRST, BACKOFF_MAX = 0.05, 2.0
# How long close() waits for queued deliveries to go out; a draining node has the rest
# of its drain timeout to spend on the database and presence.
FLUSH_SECONDS = 1.0
# How long start() waits for the first subscription before going on without it.
SUBSCRIBE_WAIT_SECONDS = 2.0


def encode(node_id: str, delivery: Delivery) -> bytes:
    body: dict[str, Any] = {"n": node_id, "a": delivery.app_id, "u": delivery.user_ids,
                            "f": delivery.frame}
    if delivery.exclude_connection is not None:
        body["x"] = delivery.exclude_connection
    if delivery.close_code is not None:
        body["c"], body["r"] = delivery.close_code, delivery.close_reason
    if delivery.connections:
        body["k"] = delivery.connections
    if delivery.topic is not None:
        body["t"] = delivery.topic
    return orjson.dumps(body)


def decode(body: dict[str, Any]) -> Delivery:
    return Delivery(
        app_id=body["a"],
        user_ids=tuple(body["u"]),
        frame=body["f"],
        exclude_connection=body.get("x"),
        close_code=body.get("c"),
        close_reason=body.get("r", ""),
        connections=tuple(body.get("k", ())),
        topic=body.get("t"),
    )


class RedisBroker:
    """One node's end of the shared delivery channel."""

    def __init__(self, redis: Redis, prefix: str, node_id: str | None = None,
                 on_gap: Callable[[], None] | None = None) -> None:
        self.node_id = node_id or secrets.token_hex(6)
        self._redis = redis
        self._channel = f"{prefix}deliveries"
        self._on_gap = on_gap
        self._subscriber: Subscriber | None = None
        self._pending: deque[bytes] = deque()
        self._wakeup = asyncio.Event()
        self._idle = asyncio.Event()
        self._lost = False  # a publish failed; tell the others once Redis answers again
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self, subscriber: Subscriber) -> None:
        self._subscriber = subscriber
        subscribed = asyncio.Event()
        self._tasks = [
            asyncio.create_task(self._listen(subscribed), name="broker-listen"),
            asyncio.create_task(self._send_forever(), name="broker-send"),
        ]
        # A node that starts with Redis up should not miss what is published right after
        # it reports ready; one that starts without Redis starts anyway and catches up.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(subscribed.wait(), SUBSCRIBE_WAIT_SECONDS)

    async def publish(self, delivery: Delivery) -> None:
        if self._subscriber is None:
            return
        metrics.count_published(delivery.frame)
        self._subscriber(delivery)
        if len(self._pending) >= QUEUE_LIMIT:
            self._pending.popleft()
            metrics.BROKER_DROPPED.inc()
            self._lost = True
        self._pending.append(encode(self.node_id, delivery))
        self._idle.clear()
        self._wakeup.set()

    async def ping(self) -> None:
        await self._redis.ping()

    async def close(self) -> None:
        """Send what is queued (for a moment), then stop listening."""
        if self._tasks and not self._tasks[1].done():
            self._wakeup.set()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._idle.wait(), FLUSH_SECONDS)
        self._subscriber = None
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks = []

    # --- sending ---------------------------------------------------------------------

    async def _send_forever(self) -> None:
        backoff = BACKOFF_FIRST
        while True:
            if not self._pending:
                self._idle.set()
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            batch = [self._pending.popleft() for _ in range(min(BATCH, len(self._pending)))]
            if await self._send(batch):
                backoff = BACKOFF_FIRST
            else:
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, BACKOFF_MAX)

    async def _send(self, batch: list[bytes]) -> bool:
        was_lost = self._lost
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                if was_lost:
                    pipe.publish(self._channel, orjson.dumps({"n": self.node_id, "gap": 1}))
                for item in batch:
                    pipe.publish(self._channel, item)
                await pipe.execute()
        except (RedisError, OSError):
            metrics.BROKER_ERRORS.labels("publish").inc()
            metrics.BROKER_DROPPED.inc(len(batch))
            if not was_lost:
                logger.warning("broker publish failed; other nodes miss pushes until Redis "
                               "answers", extra={"node": self.node_id}, exc_info=True)
            self._lost = True
            return False
        if was_lost:
            logger.info("broker publishing again", extra={"node": self.node_id})
            self._lost = False
        return True

    # --- receiving -------------------------------------------------------------------

    async def _listen(self, subscribed: asyncio.Event) -> None:
        backoff, broken = BACKOFF_FIRST, False
        while True:
            pubsub = self._redis.pubsub()
            try:
                await pubsub.subscribe(self._channel)
                backoff = BACKOFF_FIRST
                while True:
                    message = await pubsub.get_message(timeout=1.0)
                    if message is None or message["type"] not in ("message", "subscribe"):
                        continue  # nothing yet, or a health-check pong
                    if message["type"] == "message":
                        self._receive(message["data"])
                    elif subscribed.is_set():
                        # The client resubscribed, by itself or here: what was published
                        # in between never reached this node.
                        logger.info("broker subscription restored", extra={"node": self.node_id})
                        broken = False
                        self._gap()
                    else:
                        subscribed.set()
            except (RedisError, OSError):
                metrics.BROKER_ERRORS.labels("subscribe").inc()
                if not broken:
                    logger.warning("broker subscription lost; retrying",
                                   extra={"node": self.node_id}, exc_info=True)
                broken = True
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, BACKOFF_MAX)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()

    def _receive(self, data: bytes) -> None:
        try:
            body = orjson.loads(data)
            if body["n"] == self.node_id:
                return
            if "gap" in body:
                self._gap()
                return
            delivery = decode(body)
        except (orjson.JSONDecodeError, KeyError, TypeError):
            metrics.BROKER_ERRORS.labels("decode").inc()
            logger.warning("broker message not understood", extra={"node": self.node_id})
            return
        if self._subscriber is not None:
            self._subscriber(delivery)

    def _gap(self) -> None:
        if self._on_gap is not None:
            self._on_gap()
