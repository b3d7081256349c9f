"""Settings, read once from the environment (prefix ``PARLEY_``).

Every value that is a policy says why it has its default. The README lists them all.
"""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PARLEY_", extra="ignore")

    # SQLite in the working folder: a first run needs no other server.
    database_url: str = "sqlite+aiosqlite:///./parley.db"
    # Run Alembic's upgrade at start-up. Off when an operator migrates by hand.
    auto_migrate: bool = True
    # Unset means the admin API answers 403 to everyone.
    admin_token: SecretStr | None = None

    host: str = "127.0.0.1"
    port: int = 8000

    # One hour: long enough for a session, short enough that a leaked token ages out.
    token_ttl_seconds: int = Field(3600, ge=10)
    # Upper bound an App Server may ask for when it mints a token.
    token_ttl_max_seconds: int = Field(30 * 86400, ge=10)
    # A mobile radio wakes for every packet; 30 s keeps NAT bindings alive on common
    # carriers without draining batteries. The server closes after `timeout`.
    heartbeat_interval_seconds: float = Field(30.0, gt=0)
    heartbeat_timeout_seconds: float = Field(75.0, gt=0)
    # A connection that has not logged in by then is closed: sockets are not free.
    login_timeout_seconds: float = Field(10.0, gt=0)
    # How often the reaper walks the connections for idle or expired ones.
    reaper_tick_seconds: float = Field(1.0, gt=0)

    max_frame_bytes: int = Field(64 * 1024, ge=1024)
    # A chat client sends a few frames a second at most; 50 leaves room for bursts of
    # sync requests, while one flooding connection cannot take a core.
    max_frames_per_second: float = Field(50.0, gt=0)
    # Largest REST request body: a full import batch with profiles fits in 4 MiB.
    max_body_bytes: int = Field(4 * 1024 * 1024, ge=1024)
    max_text_chars: int = Field(5000, ge=1)
    # A custom payload's encoded size; keeps a message well inside one frame.
    max_custom_bytes: int = Field(16 * 1024, ge=64)
    # Frames waiting for a slow connection before it is closed (it heals by sync).
    outbound_queue_frames: int = Field(1024, ge=8)
    sync_page_max: int = Field(200, ge=1)
    import_batch_max: int = Field(1000, ge=1)
    # Members a group may hold unless created with its own limit. Larger limits work;
    # fan-out cost grows with the members online.
    group_member_limit: int = Field(2000, ge=2)
    # How long a sender may take back their own message.
    recall_window_seconds: int = Field(120, ge=0)

    # Content security (app.moderation). A node trusts its copy of an app's keyword and
    # domain lists this long before asking the database whether they changed: a change
    # reaches every node within about this plus one query.
    moderation_cache_seconds: float = Field(0.5, gt=0, le=60)
    # Per-user send rate, a token bucket each app may tune. A person types well under
    # one message a second; a burst of 50 lets a client flush the outbox it filled
    # while offline in one go.
    # The bounds match what an app may set (app.moderation.policy), so a server whose
    # defaults an app could not choose refuses to start rather than fail each send.
    send_rate_per_second: float = Field(5.0, gt=0, le=1000)
    send_burst: int = Field(50, ge=1, le=10000)
    # Flood detection: nearly the same text sent to this many conversations, or a new
    # user opening this many conversations, within the window. 0 turns a rule off.
    flood_window_seconds: float = Field(60.0, gt=0, le=86400)
    flood_conversations: int = Field(10, ge=0, le=64)
    flood_strangers: int = Field(10, ge=0, le=64)
    # How alike two texts must be to count as one (Jaccard of their 3-grams).
    flood_similarity: float = Field(0.8, gt=0, le=1)
    # A user created less than this long ago is new.
    flood_new_user_seconds: float = Field(86400.0, ge=0)
    # What a flood brings on: slow (one message per slow interval), block, or review
    # (delivered, flagged). Slow is the default because greetings to many friends at
    # once are a real thing; it delays them rather than losing them.
    flood_action: str = Field("slow", pattern="^(slow|block|review)$")
    flood_penalty_seconds: float = Field(300.0, gt=0, le=86400)
    flood_slow_interval_seconds: float = Field(10.0, gt=0, le=3600)

    # OWASP's argon2id baseline (m=19 MiB, t=2, p=1): about 20 ms a hash on one core here.
    # OWASP rates its other settings (46 MiB t=1, 12 MiB t=3, 9 MiB t=4, 7 MiB t=5) as
    # strong; the smaller ones cost the same time here, and 46 MiB costs two to four times
    # as much (glibc maps blocks over 32 MiB afresh for each hash). Of the settings that
    # take the least time, 19 MiB asks the most memory, which costs a GPU attacker most.
    # `python -m bench.user_import` times them all.
    argon2_time_cost: int = Field(2, ge=1)
    argon2_memory_kib: int = Field(19 * 1024, ge=8)
    argon2_parallelism: int = Field(1, ge=1)

    # Webhooks. Private addresses are refused unless allowed: see app/webhooks/safety.py.
    webhook_allow_private: bool = False
    webhook_timeout_seconds: float = Field(5.0, gt=0)
    webhook_poll_seconds: float = Field(0.2, gt=0)
    # First retry after about this long, doubling each time (with jitter), for a day.
    webhook_retry_base_seconds: float = Field(1.0, gt=0)
    webhook_retry_max_seconds: int = Field(86400, ge=1)
    webhook_concurrency_per_endpoint: int = Field(4, ge=1)
    webhook_disable_after_failures: int = Field(100, ge=1)
    webhook_max_response_bytes: int = Field(64 * 1024, ge=1024)
    webhook_cache_seconds: float = Field(1.0, ge=0)
    # The before-send hook must answer well inside the client's 10 s ack deadline.
    before_send_timeout_max_ms: int = Field(5000, ge=100)

    # Several nodes share deliveries and presence through Redis (redis://host:6379/0).
    # Unset keeps both inside this process: one node.
    redis_url: str | None = None
    # Starts every Redis key and channel, so deployments (and test runs) can share one
    # Redis without hearing each other.
    redis_prefix: str = "parley:"
    # A node refreshes its devices' presence three times in this; a node that dies
    # without a goodbye is forgotten within about 1.3 times it. Lower costs Redis writes.
    presence_ttl_seconds: float = Field(30.0, ge=0.3)
    # multi: a user may be logged in on any number of devices. one_per_platform: a new
    # login closes the user's older connections on the same platform, on every node.
    device_policy: str = Field("multi", pattern="^(multi|one_per_platform)$")
    # SIGTERM to exit: clients are sent elsewhere (4010), queues flushed, then exit.
    # Clients leave in milliseconds; the rest is room for a slow request in hand, and it
    # stays under the 15-30 s orchestrators wait before they SIGKILL.
    drain_timeout_seconds: float = Field(10.0, gt=0)

    # Broadcasts: users given the notice per second, per node, so a broadcast to a
    # million users takes about an hour and never starves live traffic.
    broadcast_rate_per_second: float = Field(300.0, gt=0)
    broadcast_batch: int = Field(100, ge=1)

    # Media uploads (app.media). Files live under this folder unless another store is
    # wired in; it must be shared by every node (a network mount, or an S3-compatible
    # store once one is written).
    media_dir: str = "./media"
    # 10 MiB takes a phone photo as the camera saved it, with room to spare, while
    # a full disk stays a matter of many uploads rather than a few.
    media_max_bytes: int = Field(10 * 1024 * 1024, ge=1024)
    # The types an upload may be, as sniffed from its bytes: the images every client can
    # show, and a few file types that are not run by opening them.
    media_types: str = ("image/png,image/jpeg,image/gif,image/webp,application/pdf,"
                        "application/zip,audio/mpeg,video/mp4")

    log_level: str = "INFO"
    log_format: str = Field("json", pattern="^(json|text)$")
    docs_enabled: bool = True
    # The H5 demo at /demo mints a token for any name anyone types: for trying Parley
    # out on a laptop, never on a server others can reach.
    demo_enabled: bool = False


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
