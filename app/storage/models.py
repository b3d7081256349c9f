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
