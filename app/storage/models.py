"""The schema. Alembic migrations create it; a test keeps the two in agreement.

Times are integer microseconds since the Unix epoch (UTC) in every table: both
databases store and compare them the same way, and a chat-log cursor can hold one
exactly. Users are named by their MD5 ID (32 lowercase hex digits) only.
"""

from __future__ import annotations

from typing import cast

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    true,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# Named constraints keep migrations identical on SQLite and PostgreSQL.
NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# SQLite only auto-increments a column declared exactly INTEGER PRIMARY KEY.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class App(Base):
    __tablename__ = "apps"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(128))
    secret_digest: Mapped[str] = mapped_column(String(64))
    created_at_us: Mapped[int] = mapped_column(BigInteger)
    # Null: PARLEY_GROUP_MEMBER_LIMIT applies.
    group_member_limit: Mapped[int | None] = mapped_column(Integer)
    # multi | one_per_platform; null: PARLEY_DEVICE_POLICY applies.
    device_policy: Mapped[str | None] = mapped_column(String(16))
    # The before-send hook: Parley asks this URL before accepting each message.
    before_send_url: Mapped[str | None] = mapped_column(String(2048))
    before_send_secret: Mapped[str | None] = mapped_column(String(64))
    before_send_timeout_ms: Mapped[int | None] = mapped_column(Integer)
    before_send_on_error: Mapped[str | None] = mapped_column(String(8))  # allow | reject


class User(Base):
    __tablename__ = "users"

    app_id: Mapped[int] = mapped_column(
        ForeignKey("apps.id", ondelete="CASCADE"), primary_key=True
    )
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    nickname: Mapped[str | None] = mapped_column(String(128))
    avatar_url: Mapped[str | None] = mapped_column(String(2048))
    extra: Mapped[dict | None] = mapped_column(JSON)
    password_hash: Mapped[str | None] = mapped_column(String(256))
    created_at_us: Mapped[int] = mapped_column(BigInteger)
    updated_at_us: Mapped[int] = mapped_column(BigInteger)


class LoginToken(Base):
    __tablename__ = "login_tokens"
    __table_args__ = (Index(None, "app_id", "user_id"),)

    digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    app_id: Mapped[int] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"))
    user_id: Mapped[str] = mapped_column(String(32))
    expires_at_us: Mapped[int] = mapped_column(BigInteger)
    created_at_us: Mapped[int] = mapped_column(BigInteger)


class Conversation(Base):
    __tablename__ = "conversations"
    __table_args__ = (Index(None, "app_id", "last_message_at_us"),)

    app_id: Mapped[int] = mapped_column(
        ForeignKey("apps.id", ondelete="CASCADE"), primary_key=True
    )
    id: Mapped[str] = mapped_column(String(80), primary_key=True)
    kind: Mapped[str] = mapped_column(String(8))
    last_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    last_message_at_us: Mapped[int] = mapped_column(BigInteger, default=0)


class ConversationMember(Base):
    """A user's place in a conversation. For a group, the row outlives membership: it
    keeps the seq range the user may see, (joined_seq, left_seq]."""

    __tablename__ = "conversation_members"
    __table_args__ = (Index(None, "app_id", "conversation_id"),)

    app_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    conversation_id: Mapped[str] = mapped_column(String(80), primary_key=True)
    # The peer of a 1:1 conversation; empty for a system or group conversation.
    peer_id: Mapped[str] = mapped_column(String(32), default="")
    read_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    delivered_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    role: Mapped[str] = mapped_column(String(8), default="member", server_default="member")
    joined_seq: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    # Null while a member; the seq of the removal or leave notice after.
    left_seq: Mapped[int | None] = mapped_column(BigInteger)
    muted_until_us: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")


class Group(Base):
    __tablename__ = "groups"

    app_id: Mapped[int] = mapped_column(
        ForeignKey("apps.id", ondelete="CASCADE"), primary_key=True
    )
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    avatar_url: Mapped[str | None] = mapped_column(String(2048))
    notice: Mapped[str | None] = mapped_column(Text)
    extra: Mapped[dict | None] = mapped_column(JSON)
    owner_id: Mapped[str] = mapped_column(String(32))
    join_policy: Mapped[str] = mapped_column(String(12))  # free | approval | invite
    history_visible: Mapped[bool] = mapped_column(Boolean, default=False)
    mute_all: Mapped[bool] = mapped_column(Boolean, default=False)
    member_count: Mapped[int] = mapped_column(Integer, default=0)
    member_limit: Mapped[int] = mapped_column(Integer)
    dismissed_at_us: Mapped[int | None] = mapped_column(BigInteger)
    created_at_us: Mapped[int] = mapped_column(BigInteger)
    updated_at_us: Mapped[int] = mapped_column(BigInteger)


class JoinRequest(Base):
    __tablename__ = "group_join_requests"

    app_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    group_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    note: Mapped[str | None] = mapped_column(String(256))
    created_at_us: Mapped[int] = mapped_column(BigInteger)


class Mention(Base):
    """Who a message mentions; user_id '*' for @all. Feeds the mention flag."""

    __tablename__ = "message_mentions"

    app_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    conversation_id: Mapped[str] = mapped_column(String(80), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    user_id: Mapped[str] = mapped_column(String(32), primary_key=True)


class Message(Base):
    __tablename__ = "messages"
    __table_args__ = (
        UniqueConstraint("app_id", "conversation_id", "seq"),
        # A resend is the same sender, conversation and client_msg_id.
        UniqueConstraint("app_id", "conversation_id", "sender_id", "client_msg_id"),
        Index(None, "app_id", "conversation_id", "created_at_us", "id"),
        Index(None, "app_id", "created_at_us", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    msg_id: Mapped[str] = mapped_column(String(26), unique=True)
    app_id: Mapped[int] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"))
    conversation_id: Mapped[str] = mapped_column(String(80))
    seq: Mapped[int] = mapped_column(BigInteger)
    # Empty for a system notice from the App Server.
    sender_id: Mapped[str] = mapped_column(String(32))
    client_msg_id: Mapped[str | None] = mapped_column(String(64))
    # The message content as the JSON text it is sent in; spliced into frames unparsed.
    content: Mapped[str] = mapped_column(Text)
    created_at_us: Mapped[int] = mapped_column(BigInteger)
    # Counts toward unread: a user's text or custom message not recalled. System
    # notices and tombstones do not.
    countable: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    recalled_at_us: Mapped[int | None] = mapped_column(BigInteger)
    # Content security (app.moderation): the category a rule flagged the message with,
    # shown to clients as a warning; and when a reviewer ruled it a violation, after
    # which reads leave it out.
    risk: Mapped[str | None] = mapped_column(String(64))
    hidden_at_us: Mapped[int | None] = mapped_column(BigInteger)


class ModerationSettings(Base):
    """An app's content-security settings, and the version every node compares its
    cached lists against. Any change to the app's keywords or domains bumps it."""

    __tablename__ = "moderation_settings"

    app_id: Mapped[int] = mapped_column(
        ForeignKey("apps.id", ondelete="CASCADE"), primary_key=True
    )
    version: Mapped[int] = mapped_column(BigInteger)
    # Only the settings the app changed; the rest follow the node's defaults.
    overrides: Mapped[dict] = mapped_column(JSON)
    updated_at_us: Mapped[int] = mapped_column(BigInteger)


class Keyword(Base):
    __tablename__ = "moderation_keywords"
    __table_args__ = (
        # Two spellings of one word (case, width, accents) are one keyword.
        UniqueConstraint("app_id", "key"),
        Index(None, "app_id", "category", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    app_id: Mapped[int] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"))
    word: Mapped[str] = mapped_column(String(100))
    key: Mapped[str] = mapped_column(String(200))
    category: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(8))  # block | mask | review
    created_at_us: Mapped[int] = mapped_column(BigInteger)


class DomainEntry(Base):
    __tablename__ = "moderation_domains"
    __table_args__ = (
        UniqueConstraint("app_id", "domain"),
        Index(None, "app_id", "list", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    app_id: Mapped[int] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"))
    domain: Mapped[str] = mapped_column(String(253))  # ASCII, punycode labels
    list: Mapped[str] = mapped_column(String(8))  # block | allow
    category: Mapped[str] = mapped_column(String(64))
    created_at_us: Mapped[int] = mapped_column(BigInteger)


class ModerationEvent(Base):
    """One entry of the moderation log: a block, mask, flag, slow-down or report."""

    __tablename__ = "moderation_log"
    __table_args__ = (
        Index(None, "app_id", "id"),
        Index(None, "app_id", "status", "id"),
        Index(None, "app_id", "msg_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    app_id: Mapped[int] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"))
    action: Mapped[str] = mapped_column(String(8))  # block | mask | review | slow | report
    source: Mapped[str] = mapped_column(String(16))  # keyword | link | flood | report
    rule: Mapped[str | None] = mapped_column(String(256))
    category: Mapped[str | None] = mapped_column(String(64))
    # Null for a refused message: it was never stored.
    msg_id: Mapped[str | None] = mapped_column(String(26))
    conversation_id: Mapped[str | None] = mapped_column(String(80))
    sender_id: Mapped[str | None] = mapped_column(String(32))
    reporter_id: Mapped[str | None] = mapped_column(String(32))
    # The text as typed, before any mask: the only copy of a refused message.
    excerpt: Mapped[str | None] = mapped_column(Text)
    note: Mapped[str | None] = mapped_column(String(200))
    # open | fine | violation for what awaits a reviewer; null when nothing does.
    status: Mapped[str | None] = mapped_column(String(12))
    created_at_us: Mapped[int] = mapped_column(BigInteger)
    decided_at_us: Mapped[int | None] = mapped_column(BigInteger)


class WebhookEndpoint(Base):
    """Where an app wants its events. The secret signs requests, so it is kept as is."""

    __tablename__ = "webhook_endpoints"
    __table_args__ = (Index(None, "app_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    app_id: Mapped[int] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"))
    url: Mapped[str] = mapped_column(String(2048))
    event_types: Mapped[list] = mapped_column(JSON)
    secret: Mapped[str] = mapped_column(String(64))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    disabled_reason: Mapped[str | None] = mapped_column(String(512))
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)
    created_at_us: Mapped[int] = mapped_column(BigInteger)
    updated_at_us: Mapped[int] = mapped_column(BigInteger)


class WebhookEvent(Base):
    """The outbox: written in the transaction that caused the event."""

    __tablename__ = "webhook_events"
    __table_args__ = (
        Index(None, "fanned_out", "id"),
        Index(None, "app_id", "created_at_us"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(32), unique=True)
    app_id: Mapped[int] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"))
    type: Mapped[str] = mapped_column(String(48))
    # The whole request body, as sent; spliced in unparsed.
    body: Mapped[str] = mapped_column(Text)
    # Set once a delivery row exists for each endpoint that wanted the event.
    fanned_out: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at_us: Mapped[int] = mapped_column(BigInteger)


class WebhookDelivery(Base):
    """One event to one endpoint. ``next_attempt_at_us`` doubles as a lease: a claim
    pushes it forward, so a node that dies mid-send leaves the delivery due again."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        Index(None, "status", "next_attempt_at_us"),
        Index(None, "endpoint_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    app_id: Mapped[int] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"))
    endpoint_id: Mapped[int] = mapped_column(
        ForeignKey("webhook_endpoints.id", ondelete="CASCADE")
    )
    event_row_id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"),
        ForeignKey("webhook_events.id", ondelete="CASCADE"),
    )
    status: Mapped[str] = mapped_column(String(12))  # pending | delivered | failed | dead
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at_us: Mapped[int] = mapped_column(BigInteger)
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(String(512))
    created_at_us: Mapped[int] = mapped_column(BigInteger)
    updated_at_us: Mapped[int] = mapped_column(BigInteger)


class WebhookAttempt(Base):
    __tablename__ = "webhook_attempts"
    __table_args__ = (Index(None, "delivery_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    delivery_id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"),
        ForeignKey("webhook_deliveries.id", ondelete="CASCADE"),
    )
    at_us: Mapped[int] = mapped_column(BigInteger)
    status_code: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(String(512))
    duration_ms: Mapped[int] = mapped_column(Integer)


class Broadcast(Base):
    """A system notice to every user of an app, sent a batch at a time. The cursor and
    lease let any node take over a broadcast whose node died."""

    __tablename__ = "broadcasts"
    __table_args__ = (Index(None, "status", "lease_until_us"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    app_id: Mapped[int] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"))
    content: Mapped[str] = mapped_column(Text)
    hooks: Mapped[bool] = mapped_column(Boolean, default=True)
    status: Mapped[str] = mapped_column(String(8))  # running | done
    # The last user (by MD5 ID) that has the notice; the next batch starts after it.
    cursor: Mapped[str] = mapped_column(String(32), default="")
    sent: Mapped[int] = mapped_column(Integer, default=0)
    lease_until_us: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at_us: Mapped[int] = mapped_column(BigInteger)
    updated_at_us: Mapped[int] = mapped_column(BigInteger)



class Media(Base):
    """An uploaded image or file (app.media). Its bytes are in the media store under
    ``<app_id>/<media_id>``; this row says whose it is and what it is."""

    __tablename__ = "media"
    __table_args__ = (Index(None, "app_id", "owner_id", "created_at_us"),)

    media_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    app_id: Mapped[int] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"))
    # The uploading user's MD5 ID.
    owner_id: Mapped[str] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(8))  # image | file
    content_type: Mapped[str] = mapped_column(String(64))  # as sniffed from the bytes
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    name: Mapped[str | None] = mapped_column(String(255))
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
    # For an image, the JSON list of texts its QR codes hold, decoded once at upload.
    qr_texts: Mapped[str | None] = mapped_column(Text)
    created_at_us: Mapped[int] = mapped_column(BigInteger)


class MediaRef(Base):
    """A stored message that shows a medium: whoever may see the message may fetch it."""

    __tablename__ = "media_refs"

    app_id: Mapped[int] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"),
                                        primary_key=True)
    media_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    msg_id: Mapped[str] = mapped_column(String(26), primary_key=True)

# Core tables for the hot paths, which use statements rather than ORM objects.
apps = cast(Table, App.__table__)
users = cast(Table, User.__table__)
login_tokens = cast(Table, LoginToken.__table__)
conversations = cast(Table, Conversation.__table__)
members = cast(Table, ConversationMember.__table__)
messages = cast(Table, Message.__table__)
groups = cast(Table, Group.__table__)
join_requests = cast(Table, JoinRequest.__table__)
mentions = cast(Table, Mention.__table__)
webhook_endpoints = cast(Table, WebhookEndpoint.__table__)
webhook_events = cast(Table, WebhookEvent.__table__)
webhook_deliveries = cast(Table, WebhookDelivery.__table__)
webhook_attempts = cast(Table, WebhookAttempt.__table__)
broadcasts = cast(Table, Broadcast.__table__)
moderation_settings = cast(Table, ModerationSettings.__table__)
keywords = cast(Table, Keyword.__table__)
domains = cast(Table, DomainEntry.__table__)
moderation_log = cast(Table, ModerationEvent.__table__)
media = cast(Table, Media.__table__)
media_refs = cast(Table, MediaRef.__table__)
