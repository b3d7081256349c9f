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

    # OWASP's argon2id baseline (m=19 MiB, t=2, p=1): about 20 ms a hash on one core here.
    argon2_time_cost: int = Field(2, ge=1)
    argon2_memory_kib: int = Field(19 * 1024, ge=8)
    argon2_parallelism: int = Field(1, ge=1)

    log_level: str = "INFO"
    log_format: str = Field("json", pattern="^(json|text)$")
    docs_enabled: bool = True


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
