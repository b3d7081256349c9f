"""Request and response bodies of the control plane, as they appear in the OpenAPI spec."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema

from app.services.users import UserImportItem

ISO_TIME = "ISO 8601 in UTC, e.g. 2026-12-04T08:00:00.123456Z."
HOOKS_HELP = (
    "false: no webhook event and no before-send call for this message, so a receiver "
    "that answers an event by posting cannot start a loop."
)

TEXT_CONTENT = {
    "title": "TextContent",
    "type": "object",
    "required": ["type", "text"],
    "properties": {
        "type": {"const": "text"},
        "text": {"type": "string", "minLength": 1, "description": "At most max_text_chars."},
    },
}
CUSTOM_CONTENT = {
    "title": "CustomContent",
    "type": "object",
    "required": ["type", "custom_type"],
    "properties": {
        "type": {"const": "custom"},
        "custom_type": {"type": "string", "minLength": 1, "maxLength": 64},
        "data": {"description": "Any JSON the app defines."},
        "text": {"type": "string", "description": "Optional fallback text."},
    },
}
_MEDIA_ID = {"type": "string", "pattern": "^[0-9a-f]{32}$",
             "description": "What POST /v1/me/media returned."}
IMAGE_CONTENT = {
    "title": "ImageContent",
    "type": "object",
    "required": ["type", "media_id"],
    "properties": {
        "type": {"const": "image"},
        "media_id": _MEDIA_ID,
        "text": {"type": "string", "description": "Optional caption, as text content."},
    },
}
FILE_CONTENT = {
    "title": "FileContent",
    "type": "object",
    "required": ["type", "media_id"],
    "properties": {
        "type": {"const": "file"},
        "media_id": _MEDIA_ID,
        "name": {"type": "string", "minLength": 1, "maxLength": 255},
    },
}
Content = Annotated[
    dict[str, Any],
    WithJsonSchema({"oneOf": [TEXT_CONTENT, CUSTOM_CONTENT, IMAGE_CONTENT, FILE_CONTENT]}),
]


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AppCreate(Body):
    name: str = Field(min_length=1, max_length=128)


class AppOut(BaseModel):
    app_key: str
    name: str
    created_at: str = Field(description=ISO_TIME)
    group_member_limit: int | None = Field(
        None, description="Null: the server's PARLEY_GROUP_MEMBER_LIMIT applies."
    )
    device_policy: Literal["multi", "one_per_platform"] | None = Field(
        None, description="Null: the server's PARLEY_DEVICE_POLICY applies."
    )


class AppSettings(Body):
    """Only the fields given change; null returns one to the server's default."""

    group_member_limit: int | None = Field(None, ge=2, le=1_000_000)
    device_policy: Literal["multi", "one_per_platform"] | None = None


class AppCredentials(AppOut):
    app_secret: str = Field(description="Shown once. Parley keeps only its hash.")


class AppList(BaseModel):
    apps: list[AppOut]


class UserOut(BaseModel):
    user_id_md5: str
    nickname: str | None
    avatar_url: str | None
    extra: dict[str, Any] | None
    has_password: bool
    created_at: str
    updated_at: str


class UserPage(BaseModel):
    users: list[UserOut]
    next_cursor: str | None


class UserImportRequest(Body):
    users: Annotated[
        list[Any],
        Field(min_length=1, max_length=1000),
        # Items are validated one by one in the service, so the body takes any JSON
        # values; the spec still shows what an item should be.
        WithJsonSchema(
            {
                "type": "array",
                "minItems": 1,
                "maxItems": 1000,
                "items": UserImportItem.model_json_schema(),
            }
        ),
    ] = Field(description="Each item is checked alone; a bad one fails only itself.")


class ImportItemResult(BaseModel):
    index: int
    user_id_md5: str | None
    status: Literal["created", "updated", "error"]
    error: dict[str, Any] | None = None


class ImportResult(BaseModel):
    created: int
    updated: int
    failed: int
    results: list[ImportItemResult]


class TokenRequest(Body):
    ttl_seconds: int | None = Field(None, description="Defaults to PARLEY_TOKEN_TTL_SECONDS.")


class TokenOut(BaseModel):
    user_id_md5: str
    token: str
    expires_at: str


class KickRequest(Body):
    reason: str = Field("", max_length=200)


class KickOut(BaseModel):
    revoked_tokens: int


class SendRequest(Body):
    """A 1:1 message on behalf of a user. Name each user by raw ID or by MD5 ID."""

    from_user_id: str | None = None
    from_user_id_md5: str | None = None
    to_user_id: str | None = None
    to_user_id_md5: str | None = None
    content: Content
    client_msg_id: str | None = Field(None, min_length=1, max_length=64)
    trigger_hooks: bool = Field(True, description=HOOKS_HELP)


class NoticeRequest(Body):
    """A system notice to a user, in their system conversation."""

    to_user_id: str | None = None
    to_user_id_md5: str | None = None
    content: Content
    client_msg_id: str | None = Field(None, min_length=1, max_length=64)
    trigger_hooks: bool = Field(True, description=HOOKS_HELP)


class AckOut(BaseModel):
    msg_id: str
    conversation_id: str
    seq: int
    created_at: str
    duplicate: bool = Field(description="True when this client_msg_id was stored before.")


class MessageOut(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    msg_id: str
    conversation_id: str
    seq: int
    from_: str | None = Field(alias="from", description="Sender's MD5 ID; null for a notice.")
    to: str | None = Field(description="Recipient: a user, a group ID, or null for a 1:1 notice.")
    content: Content
    client_msg_id: str | None
    created_at: str
    risk: str | None = Field(None, description="The category a content rule flagged the "
                             "message with; a client may show it as a warning.")


class MessagePage(BaseModel):
    messages: list[MessageOut]
    next_cursor: str | None


class SyncPage(BaseModel):
    conversation_id: str
    messages: list[MessageOut]
    has_more: bool
    last_seq: int


class ConversationOut(BaseModel):
    conversation_id: str
    kind: Literal["p2p", "system"]
    peer: str | None
    last_seq: int
    read_seq: int
    delivered_seq: int
    unread: int
    updated_at: str
    last_message: MessageOut | None


class ConversationPage(BaseModel):
    conversations: list[ConversationOut]
    next_cursor: str | None


class ReadRequest(Body):
    seq: int = Field(ge=0)


class ReadOut(BaseModel):
    conversation_id: str
    seq: int


class MeOut(BaseModel):
    user_id_md5: str
    app_key: str
    expires_at: str
