"""Groups: create, change, membership, roles, mutes, join requests, dismissal.

Every change to a group is also a system message in the group's own sequence, written
in the same transaction, so every client learns of changes in order with the messages
around them. The conversation row lock (see messages.next_seq) orders a change against
concurrent sends.

``actor`` is the acting user's MD5 ID, or None for the App Server.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import and_, delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from app import ids
from app.broker import Delivery
from app.errors import Conflict, Forbidden, InvalidRequest, user_not_found
from app.services import membership
from app.services.context import Context
from app.services.membership import ADMIN, MEMBER, OWNER, Member, group_conversation_id
from app.services.messages import (
    SYSTEM_SENDER,
    Stored,
    insert_message,
    message_view,
    next_seq,
)
from app.storage.db import now_us
from app.storage.models import apps, conversations, groups, join_requests, members, users
from app.timefmt import iso_from_us
from app.webhooks import outbox

GROUP_ID_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")
JOIN_POLICIES = ("free", "approval", "invite")
# Group changes an App Server hears of as webhook events.
WEBHOOK_EVENTS = {
    "group_created": "group.created",
    "group_dismissed": "group.dismissed",
    "members_added": "group.member_joined",
    "member_left": "group.member_left",
    "members_removed": "group.member_removed",
}
EDITABLE = ("name", "avatar_url", "notice", "extra", "join_policy", "history_visible")


@dataclass(frozen=True, slots=True)
class Outcome:
    user_id_md5: str
    status: str  # added | already_member | removed | not_member | error
    error: dict[str, Any] | None = None


@dataclass(slots=True)
class _Notice:
    """A system message written in a transaction, published after it commits."""

    app_id: int
    recipients: tuple[str, ...]
    frame: dict[str, Any]


def group_view(row: Any, role: str | None = None) -> dict[str, Any]:
    view = {
        "group_id": row.id,
        "conversation_id": group_conversation_id(row.id),
        "name": row.name,
        "avatar_url": row.avatar_url,
        "notice": row.notice,
        "extra": row.extra,
        "owner": row.owner_id,
        "join_policy": row.join_policy,
        "history_visible": row.history_visible,
        "mute_all": row.mute_all,
        "member_count": row.member_count,
        "member_limit": row.member_limit,
        "dismissed": row.dismissed_at_us is not None,
        "created_at": iso_from_us(row.created_at_us),
        "updated_at": iso_from_us(row.updated_at_us),
    }
    if role is not None:
        view["my_role"] = role
    return view


async def _publish(ctx: Context, notice: _Notice | None) -> None:
    if notice is not None and notice.recipients:
        await ctx.broker.publish(Delivery(notice.app_id, notice.recipients, notice.frame))


async def _write_notice(
    ctx: Context, conn: AsyncConnection, app_id: int, group_id: str, event: dict[str, Any],
    now: int, also: tuple[str, ...] = (),
) -> tuple[int, _Notice]:
    """Append a system message for a change; it reaches current members and ``also``."""
    conversation_id = group_conversation_id(group_id)
    seq = await next_seq(conn, app_id, conversation_id, now)
    msg_id = ids.new_message_id()
    encoded = orjson.dumps({"type": "system", **event}).decode()
    await insert_message(conn, app_id, conversation_id, seq, msg_id, SYSTEM_SENDER, encoded,
                         now, countable=False)
    recipients = await membership.current_member_ids(conn, app_id, conversation_id)
    view = message_view(Stored(conversation_id, seq, msg_id, SYSTEM_SENDER, encoded, None, now))
    audience = tuple(dict.fromkeys([*recipients, *also]))
    hook_type = WEBHOOK_EVENTS.get(event["event"])
    if hook_type is not None:
        await outbox.emit(conn, ctx.hooks, app_id, hook_type,
                          {"group_id": group_id, **event}, now)
    return seq, _Notice(app_id, audience, {"type": "message", "message": view})


async def _existing_users(conn: AsyncConnection, app_id: int, wanted: list[str]) -> set[str]:
    if not wanted:
        return set()
    rows = await conn.execute(
        select(users.c.id).where(users.c.app_id == app_id, users.c.id.in_(wanted))
    )
    return {r.id for r in rows}


async def _actor(conn: AsyncConnection, app_id: int, group_id: str, actor: str | None
                 ) -> Member | None:
    if actor is None:
        return None
    return await membership.load_member(conn, app_id, group_conversation_id(group_id), actor)


def _live(group: Any) -> None:
    if group.dismissed_at_us is not None:
        raise Forbidden("The group was dismissed.", code="group_dismissed")


async def create(
    ctx: Context,
    app_id: int,
    actor: str | None,
    *,
    owner: str,
    name: str,
    initial_members: list[str],
    group_id: str | None = None,
    join_policy: str = "approval",
    history_visible: bool = False,
    avatar_url: str | None = None,
    notice: str | None = None,
    extra: dict[str, Any] | None = None,
    member_limit: int | None = None,
) -> dict[str, Any]:
    if actor is not None and actor != owner:
        raise Forbidden("A client can create a group only with itself as owner.",
                        code="not_allowed")
    group_id = group_id or ids.new_message_id()
    if not GROUP_ID_RE.fullmatch(group_id):
        raise InvalidRequest("group_id is 1 to 64 letters, digits, '_' or '-'.",
                             code="invalid_group_id")
    if join_policy not in JOIN_POLICIES:
        raise InvalidRequest("join_policy is free, approval or invite.", code="invalid_request")
    founders = list(dict.fromkeys([owner, *initial_members]))
    now = now_us()
    conversation_id = group_conversation_id(group_id)
    async with ctx.db.write() as conn:
        app_limit = await conn.scalar(select(apps.c.group_member_limit)
                                      .where(apps.c.id == app_id))
        limit = member_limit or app_limit or ctx.settings.group_member_limit
        if len(founders) > limit:
            raise InvalidRequest(f"A group holds at most {limit} members.", code="group_full")
        found = await _existing_users(conn, app_id, founders)
        missing = [u for u in founders if u not in found]
        if missing:
            raise InvalidRequest("Some members are not users of this app.",
                                 code="user_not_found", users=missing)
        taken = await conn.scalar(
            select(groups.c.id).where(groups.c.app_id == app_id, groups.c.id == group_id)
        )
        if taken is not None:
            raise Conflict("A group with this ID exists.", code="group_exists")
        await conn.execute(insert(groups).values(
            app_id=app_id, id=group_id, name=name, avatar_url=avatar_url, notice=notice,
            extra=extra, owner_id=owner, join_policy=join_policy,
            history_visible=history_visible, mute_all=False, member_count=len(founders),
            member_limit=limit, created_at_us=now, updated_at_us=now,
        ))
        await conn.execute(insert(conversations).values(
            app_id=app_id, id=conversation_id, kind="group", last_seq=0, last_message_at_us=now
        ))
        await conn.execute(insert(members), [
            {"app_id": app_id, "user_id": u, "conversation_id": conversation_id, "peer_id": "",
             "read_seq": 0, "delivered_seq": 0, "role": OWNER if u == owner else MEMBER,
             "joined_seq": 0, "left_seq": None, "muted_until_us": 0}
            for u in founders
        ])
        _, note = await _write_notice(ctx, conn, app_id, group_id, {
            "event": "group_created", "by": actor, "owner": owner, "users": founders}, now)
        row = await membership.load_group(conn, app_id, group_id)
    await _publish(ctx, note)
    return group_view(row, OWNER if actor == owner else None)


async def get(ctx: Context, app_id: int, actor: str | None, group_id: str) -> dict[str, Any]:
    async with ctx.db.read() as conn:
        row = await membership.load_group(conn, app_id, group_id)
        me = await _actor(conn, app_id, group_id, actor)
    if actor is not None and (me is None or not me.current):
        # Anyone may look up a group they could join; members also see their role.
        return group_view(row)
    return group_view(row, me.role if me else None)


async def update_info(
    ctx: Context, app_id: int, actor: str | None, group_id: str, fields: dict[str, Any]
) -> dict[str, Any]:
    changes = {k: v for k, v in fields.items() if k in EDITABLE}
    for required in ("name", "join_policy", "history_visible"):
        if required in changes and changes[required] is None:
            raise InvalidRequest(f"{required} cannot be null.", code="invalid_field")
    if "join_policy" in changes and changes["join_policy"] not in JOIN_POLICIES:
        raise InvalidRequest("join_policy is free, approval or invite.", code="invalid_field")
    if not changes:
        return await get(ctx, app_id, actor, group_id)
    now = now_us()
    async with ctx.db.write() as conn:
        group = await membership.load_group(conn, app_id, group_id, lock=True)
        _live(group)
        membership.access_manage(await _actor(conn, app_id, group_id, actor), actor is None)
        await conn.execute(update(groups).where(groups.c.app_id == app_id,
                                                groups.c.id == group_id)
                           .values(**changes, updated_at_us=now))
        _, note = await _write_notice(ctx, conn, app_id, group_id, {
            "event": "group_updated", "by": actor, "fields": sorted(changes)}, now)
        row = await membership.load_group(conn, app_id, group_id)
    await _publish(ctx, note)
    return group_view(row)


async def list_for_user(ctx: Context, app_id: int, user: str) -> list[dict[str, Any]]:
    async with ctx.db.read() as conn:
        rows = await conn.execute(
            select(groups, members.c.role)
            .join(members, and_(members.c.app_id == groups.c.app_id,
                                members.c.conversation_id == "grp:" + groups.c.id))
            .where(groups.c.app_id == app_id, members.c.user_id == user,
                   members.c.left_seq.is_(None))
            .order_by(groups.c.created_at_us)
        )
        return [group_view(r, r.role) for r in rows]


async def list_members(ctx: Context, app_id: int, actor: str | None, group_id: str
                       ) -> list[dict[str, Any]]:
    conversation_id = group_conversation_id(group_id)
    async with ctx.db.read() as conn:
        await membership.load_group(conn, app_id, group_id)
        me = await _actor(conn, app_id, group_id, actor)
        if actor is not None and (me is None or not me.current):
            raise Forbidden("Only members see the member list.", code="not_a_member")
        rows = await conn.execute(
            select(members).where(members.c.app_id == app_id,
                                  members.c.conversation_id == conversation_id,
                                  members.c.left_seq.is_(None))
            .order_by(members.c.user_id)
        )
        return [{"user_id_md5": r.user_id, "role": r.role,
                 "muted_until": iso_from_us(r.muted_until_us) if r.muted_until_us else None}
                for r in rows]


async def add_members(
    ctx: Context, app_id: int, actor: str | None, group_id: str, wanted: list[str],
    *, approved_by: str | None = None,
) -> list[Outcome]:
    now = now_us()
    conversation_id = group_conversation_id(group_id)
    async with ctx.db.write() as conn:
        group = await membership.load_group(conn, app_id, group_id, lock=True)
        _live(group)
        if approved_by is None:
            membership.access_add(group, await _actor(conn, app_id, group_id, actor),
                                  actor is None)
        found = await _existing_users(conn, app_id, wanted)
        known = await membership.load_members(conn, app_id, conversation_id, list(found))
        outcomes: dict[str, Outcome] = {}
        joining: list[tuple[str, Member | None]] = []
        room = group.member_limit - group.member_count
        for user in dict.fromkeys(wanted):
            if user not in found:
                outcomes[user] = Outcome(user, "error", user_not_found().to_dict())
                continue
            old = known.get(user)
            if old is not None and old.current:
                outcomes[user] = Outcome(user, "already_member")
            elif len(joining) >= room:
                outcomes[user] = Outcome(user, "error", {"code": "group_full",
                                         "message": f"The group holds {group.member_limit}."})
            else:
                joining.append((user, old))
        note = None
        if joining:
            event = {"event": "members_added", "by": approved_by or actor,
                     "users": [u for u, _ in joining]}
            seq, note = await _write_notice(ctx, conn, app_id, group_id, event, now)
            await _enter(conn, app_id, group, seq, joining)
            note = await _refresh_audience(conn, app_id, conversation_id, note)
            for user, _ in joining:
                outcomes[user] = Outcome(user, "added")
        await conn.execute(delete(join_requests).where(
            join_requests.c.app_id == app_id, join_requests.c.group_id == group_id,
            join_requests.c.user_id.in_([u for u, _ in joining] or [""])))
    await _publish(ctx, note)
    return [outcomes[u] for u in dict.fromkeys(wanted)]


async def _enter(conn: AsyncConnection, app_id: int, group: Any, seq: int,
                 joining: list[tuple[str, Member | None]]) -> None:
    """New members see from their join notice on, or all history if the group allows."""
    conversation_id = group_conversation_id(group.id)
    joined_seq = 0 if group.history_visible else seq - 1
    fresh = []
    for user, old in joining:
        # The read marker never moves back, not even across a leave and a rejoin.
        read_seq = max(old.read_seq if old else 0, seq - 1 if joined_seq else 0)
        values = {"role": MEMBER, "joined_seq": joined_seq, "left_seq": None,
                  "muted_until_us": 0, "read_seq": read_seq}
        if old is None:
            fresh.append({"app_id": app_id, "user_id": user, "conversation_id": conversation_id,
                          "peer_id": "", "delivered_seq": 0, **values})
        else:
            await conn.execute(update(members).where(
                members.c.app_id == app_id, members.c.conversation_id == conversation_id,
                members.c.user_id == user).values(**values))
    if fresh:
        await conn.execute(insert(members), fresh)
    await conn.execute(update(groups).where(groups.c.app_id == app_id, groups.c.id == group.id)
                       .values(member_count=groups.c.member_count + len(joining)))


async def _refresh_audience(conn: AsyncConnection, app_id: int, conversation_id: str,
                            note: _Notice) -> _Notice:
    """After joins, the notice also goes to the members who just joined."""
    current = await membership.current_member_ids(conn, app_id, conversation_id)
    note.recipients = tuple(dict.fromkeys([*note.recipients, *current]))
    return note


async def remove_members(
    ctx: Context, app_id: int, actor: str | None, group_id: str, targets: list[str]
) -> list[Outcome]:
    now = now_us()
    conversation_id = group_conversation_id(group_id)
    async with ctx.db.write() as conn:
        group = await membership.load_group(conn, app_id, group_id, lock=True)
        _live(group)
        me = await _actor(conn, app_id, group_id, actor)
        outcomes: dict[str, Outcome] = {}
        leaving: list[str] = []
        known = await membership.load_members(conn, app_id, conversation_id, targets)
        for user in dict.fromkeys(targets):
            target = known.get(user)
            if target is None or not target.current:
                outcomes[user] = Outcome(user, "not_member")
                continue
            try:
                membership.access_remove(me, target, actor is None)
            except Forbidden as exc:
                outcomes[user] = Outcome(user, "error", exc.to_dict())
                continue
            leaving.append(user)
        note = None
        if leaving:
            event = {"event": "members_removed", "by": actor, "users": leaving}
            note = await _leave(ctx, conn, app_id, group_id, leaving, event, now)
            for user in leaving:
                outcomes[user] = Outcome(user, "removed")
    await _publish(ctx, note)
    return [outcomes[u] for u in dict.fromkeys(targets)]


async def _leave(ctx: Context, conn: AsyncConnection, app_id: int, group_id: str,
                 leaving: list[str],
                 event: dict[str, Any], now: int) -> _Notice:
    """The leavers see the notice of their own leaving, and nothing after it."""
    seq, note = await _write_notice(ctx, conn, app_id, group_id, event, now)
    await conn.execute(update(members).where(
        members.c.app_id == app_id, members.c.conversation_id == group_conversation_id(group_id),
        members.c.user_id.in_(leaving)).values(left_seq=seq, role=MEMBER))
    await conn.execute(update(groups).where(groups.c.app_id == app_id, groups.c.id == group_id)
                       .values(member_count=groups.c.member_count - len(leaving)))
    return note


async def leave(ctx: Context, app_id: int, user: str, group_id: str) -> None:
    now = now_us()
    async with ctx.db.write() as conn:
        group = await membership.load_group(conn, app_id, group_id, lock=True)
        _live(group)
        me = await _actor(conn, app_id, group_id, user)
        if me is None or not me.current:
            raise Forbidden("You are not a member of this group.", code="not_a_member")
        if me.role == OWNER:
            raise Forbidden("The owner must transfer ownership before leaving.",
                            code="owner_cannot_leave")
        note = await _leave(ctx, conn, app_id, group_id, [user],
                            {"event": "member_left", "users": [user]}, now)
    await _publish(ctx, note)


async def join(ctx: Context, app_id: int, user: str, group_id: str, note_text: str | None
               ) -> str:
    """Join a free group at once; ask to join an approval group. Returns what happened."""
    async with ctx.db.read() as conn:
        group = await membership.load_group(conn, app_id, group_id)
        me = await _actor(conn, app_id, group_id, user)
    _live(group)
    if me is not None and me.current:
        return "already_member"
    if group.join_policy == "invite":
        raise Forbidden("This group is by invitation only.", code="invite_only")
    if group.join_policy == "free":
        (outcome,) = await add_members(ctx, app_id, None, group_id, [user], approved_by=user)
        if outcome.status == "error" and outcome.error:
            raise Forbidden(outcome.error["message"], code=outcome.error["code"])
        return "joined"
    async with ctx.db.write() as conn:
        await conn.execute(delete(join_requests).where(
            join_requests.c.app_id == app_id, join_requests.c.group_id == group_id,
            join_requests.c.user_id == user))
        await conn.execute(insert(join_requests).values(
            app_id=app_id, group_id=group_id, user_id=user, note=note_text,
            created_at_us=now_us()))
        admins = await conn.execute(select(members.c.user_id).where(
            members.c.app_id == app_id,
            members.c.conversation_id == group_conversation_id(group_id),
            members.c.left_seq.is_(None), members.c.role.in_([OWNER, ADMIN])))
        audience = tuple(r.user_id for r in admins)
    await ctx.broker.publish(Delivery(app_id, audience, {
        "type": "join_request", "group_id": group_id, "user_id_md5": user, "note": note_text}))
    return "requested"


async def list_requests(ctx: Context, app_id: int, actor: str | None, group_id: str
                        ) -> list[dict[str, Any]]:
    async with ctx.db.read() as conn:
        await membership.load_group(conn, app_id, group_id)
        membership.access_manage(await _actor(conn, app_id, group_id, actor), actor is None)
        rows = await conn.execute(select(join_requests).where(
            join_requests.c.app_id == app_id, join_requests.c.group_id == group_id)
            .order_by(join_requests.c.created_at_us))
        return [{"user_id_md5": r.user_id, "note": r.note,
                 "created_at": iso_from_us(r.created_at_us)} for r in rows]


async def decide_request(ctx: Context, app_id: int, actor: str | None, group_id: str,
                         user: str, approve: bool) -> str:
    """Approve (the user joins, the request is cleared) or reject a pending request.

    A request that cannot be approved now, say because the group is full, stays pending."""
    async with ctx.db.read() as conn:
        group = await membership.load_group(conn, app_id, group_id)
        _live(group)
        membership.access_manage(await _actor(conn, app_id, group_id, actor), actor is None)
        pending = await conn.scalar(select(join_requests.c.user_id).where(
            join_requests.c.app_id == app_id, join_requests.c.group_id == group_id,
            join_requests.c.user_id == user))
    if pending is None:
        raise InvalidRequest("No pending request from this user.", code="no_join_request")
    if approve:
        (outcome,) = await add_members(ctx, app_id, None, group_id, [user],
                                       approved_by=actor or user)
        if outcome.status == "error" and outcome.error:
            raise Forbidden(outcome.error["message"], code=outcome.error["code"])
        return outcome.status
    async with ctx.db.write() as conn:
        await conn.execute(delete(join_requests).where(
            join_requests.c.app_id == app_id, join_requests.c.group_id == group_id,
            join_requests.c.user_id == user))
    await ctx.broker.publish(Delivery(app_id, (user,), {
        "type": "join_rejected", "group_id": group_id}))
    return "rejected"


async def transfer(ctx: Context, app_id: int, actor: str | None, group_id: str,
                   new_owner: str) -> dict[str, Any]:
    now = now_us()
    conversation_id = group_conversation_id(group_id)
    async with ctx.db.write() as conn:
        group = await membership.load_group(conn, app_id, group_id, lock=True)
        _live(group)
        membership.access_owner(await _actor(conn, app_id, group_id, actor), actor is None)
        target = await membership.load_member(conn, app_id, conversation_id, new_owner)
        if target is None or not target.current:
            raise InvalidRequest("The new owner must be a member.", code="not_a_member")
        await _set_role(conn, app_id, conversation_id, group.owner_id, ADMIN)
        await _set_role(conn, app_id, conversation_id, new_owner, OWNER)
        await conn.execute(update(groups).where(groups.c.app_id == app_id,
                                                groups.c.id == group_id)
                           .values(owner_id=new_owner, updated_at_us=now))
        _, note = await _write_notice(ctx, conn, app_id, group_id, {
            "event": "owner_changed", "by": actor, "owner": new_owner}, now)
        row = await membership.load_group(conn, app_id, group_id)
    await _publish(ctx, note)
    return group_view(row)


async def _set_role(conn: AsyncConnection, app_id: int, conversation_id: str, user: str,
                    role: str) -> None:
    await conn.execute(update(members).where(
        members.c.app_id == app_id, members.c.conversation_id == conversation_id,
        members.c.user_id == user).values(role=role))


async def set_role(ctx: Context, app_id: int, actor: str | None, group_id: str, user: str,
                   role: str) -> None:
    if role not in (ADMIN, MEMBER):
        raise InvalidRequest("role is admin or member; use transfer for owner.",
                             code="invalid_request")
    now = now_us()
    conversation_id = group_conversation_id(group_id)
    async with ctx.db.write() as conn:
        group = await membership.load_group(conn, app_id, group_id, lock=True)
        _live(group)
        membership.access_owner(await _actor(conn, app_id, group_id, actor), actor is None)
        target = await membership.load_member(conn, app_id, conversation_id, user)
        if target is None or not target.current or target.role == OWNER:
            raise InvalidRequest("Roles change only for current members other than the owner.",
                                 code="not_a_member")
        await _set_role(conn, app_id, conversation_id, user, role)
        _, note = await _write_notice(ctx, conn, app_id, group_id, {
            "event": "role_changed", "by": actor, "users": [user], "role": role}, now)
    await _publish(ctx, note)


async def mute_member(ctx: Context, app_id: int, actor: str | None, group_id: str, user: str,
                      until_us: int) -> None:
    """Mute until a time (0 unmutes). Admins cannot mute the owner or each other."""
    now = now_us()
    conversation_id = group_conversation_id(group_id)
    async with ctx.db.write() as conn:
        group = await membership.load_group(conn, app_id, group_id, lock=True)
        _live(group)
        me = await _actor(conn, app_id, group_id, actor)
        target = await membership.load_member(conn, app_id, conversation_id, user)
        if target is None or not target.current:
            raise InvalidRequest("Only members can be muted.", code="not_a_member")
        membership.access_remove(me, target, actor is None)
        await conn.execute(update(members).where(
            members.c.app_id == app_id, members.c.conversation_id == conversation_id,
            members.c.user_id == user).values(muted_until_us=until_us))
        _, note = await _write_notice(ctx, conn, app_id, group_id, {
            "event": "member_muted", "by": actor, "users": [user],
            "until": iso_from_us(until_us) if until_us else None}, now)
    await _publish(ctx, note)


async def mute_all(ctx: Context, app_id: int, actor: str | None, group_id: str, on: bool
                   ) -> None:
    now = now_us()
    async with ctx.db.write() as conn:
        group = await membership.load_group(conn, app_id, group_id, lock=True)
        _live(group)
        membership.access_manage(await _actor(conn, app_id, group_id, actor), actor is None)
        await conn.execute(update(groups).where(groups.c.app_id == app_id,
                                                groups.c.id == group_id)
                           .values(mute_all=on, updated_at_us=now))
        _, note = await _write_notice(ctx, conn, app_id, group_id, {
            "event": "group_muted", "by": actor, "on": on}, now)
    await _publish(ctx, note)


async def dismiss(ctx: Context, app_id: int, actor: str | None, group_id: str) -> None:
    """End the group: members keep what they saw, nobody posts again."""
    now = now_us()
    async with ctx.db.write() as conn:
        group = await membership.load_group(conn, app_id, group_id, lock=True)
        _live(group)
        membership.access_owner(await _actor(conn, app_id, group_id, actor), actor is None)
        everyone = await membership.current_member_ids(conn, app_id,
                                                       group_conversation_id(group_id))
        note = await _leave(ctx, conn, app_id, group_id, everyone,
                            {"event": "group_dismissed", "by": actor}, now)
        note.recipients = tuple(everyone)
        await conn.execute(update(groups).where(groups.c.app_id == app_id,
                                                groups.c.id == group_id)
                           .values(dismissed_at_us=now, updated_at_us=now))
    await _publish(ctx, note)
