"""This process as one node of several: its broker, its presence, and its readiness.

With ``PARLEY_REDIS_URL`` set, deliveries and presence go through Redis and any number
of nodes can serve one deployment; without it both stay in this process. The app
factory builds a :class:`Node` at start-up and stops it at shut-down.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass, field

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff

from app.broker import Broker, InProcessBroker
from app.broker.redis import RedisBroker
from app.config import Settings
from app.errors import ServiceUnavailable
from app.gateway.hub import Hub
from app.gateway.presence import Tracker
from app.presence import LocalRegistry, Registry
from app.presence.redis import RedisRegistry

logger = logging.getLogger(__name__)

# A Redis call that takes longer than this counts as failed. Redis answers in well under
# a millisecond; a second means it is gone, and a send must not wait on it longer.
REDIS_TIMEOUT_SECONDS = 1.0
# An idle subscription is checked this often, so a silently dropped link is noticed.
REDIS_HEALTH_CHECK_SECONDS = 5
# One quick retry: enough to replace a pooled connection that died with a restarted
# Redis. The client's default (three, backing off for seconds) would stall logins.
REDIS_RETRIES = 1


@dataclass
class Node:
    id: str
    broker: Broker
    registry: Registry
    tracker: Tracker
    redis: Redis | None = None
    draining: bool = field(default=False)

    async def check_ready(self) -> None:
        """Raise unless this node should get new clients."""
        if self.draining:
            raise ServiceUnavailable("This node is draining.", code="draining")
        try:
            await self.broker.ping()
        except Exception as exc:
            raise ServiceUnavailable("The broker does not answer.",
                                     code="broker_unavailable") from exc

    async def stop(self) -> None:
        await self.tracker.stop()
        await self.broker.close()
        await self.registry.close()
        if self.redis is not None:
            await self.redis.aclose()


def connect_redis(url: str) -> Redis:
    return Redis.from_url(
        url,
        socket_timeout=REDIS_TIMEOUT_SECONDS,
        socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
        health_check_interval=REDIS_HEALTH_CHECK_SECONDS,
        retry=Retry(ExponentialBackoff(cap=0.1, base=0.02), REDIS_RETRIES),
    )


async def start(settings: Settings, hub: Hub) -> Node:
    """Join the deployment: subscribe the hub to the broker and start presence upkeep."""
    node_id = secrets.token_hex(6)
    redis: Redis | None = None
    broker: Broker
    registry: Registry
    if settings.redis_url:
        redis = connect_redis(settings.redis_url)
        broker = RedisBroker(redis, settings.redis_prefix, node_id, on_gap=hub.resync)
        registry = RedisRegistry(redis, settings.redis_prefix, settings.presence_ttl_seconds)
    else:
        broker = InProcessBroker()
        registry = LocalRegistry(settings.presence_ttl_seconds)
    await broker.start(hub.deliver)
    tracker = Tracker(hub, broker, registry, node_id, settings.presence_ttl_seconds,
                      one_per_platform=settings.device_policy == "one_per_platform")
    hub.presence = tracker
    tracker.start()
    logger.info("node started", extra={"node": node_id, "broker": type(broker).__name__})
    return Node(node_id, broker, registry, tracker, redis)
