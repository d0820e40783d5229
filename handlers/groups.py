"""Making a room a liaison group or the office group, by an admin's message in it."""

from __future__ import annotations

from sqlmodel import select

from bot.chat.dispatch import CommandObject, Context, Router
from bot.chat.filters import from_admin, in_room
from bot.storage.models import Group, GroupKind
from bot.transport.base import Incoming

router = Router("groups")

_SETTINGS = {
    "设为联络员群": (GroupKind.LIAISON, True),
    "取消联络员群": (GroupKind.LIAISON, False),
    "设为办公群": (GroupKind.OFFICE, True),
    "取消办公群": (GroupKind.OFFICE, False),
}
SETTING_COMMANDS = tuple(_SETTINGS)


@router.command(*_SETTINGS, usage="groups", who=from_admin, where=in_room)
def on_group_setting(msg: Incoming, ctx: Context, cmd: CommandObject) -> None:
    """设为联络员群 / 设为办公群 and their undo, sent inside the room."""
    kind, enable = _SETTINGS[cmd.name]
    group = ctx.session.exec(select(Group).where(Group.room_id == msg.chat_id)).first()
    if group is None:
        group = Group(room_id=msg.chat_id, name=msg.chat_name)
    group.name = msg.chat_name or group.name
    label = ctx.t("groups.kind_liaison" if kind == GroupKind.LIAISON else "groups.kind_office")
    if enable:
        if kind == GroupKind.OFFICE:
            # There is one office group: the new one replaces the old.
            for old in ctx.session.exec(select(Group).where(Group.kind == GroupKind.OFFICE.value)):
                if old.room_id != msg.chat_id:
                    old.kind, old.set_by = GroupKind.NONE.value, "admin"
                    ctx.session.add(old)
        group.kind, group.set_by = kind.value, "admin"
        ctx.refresh_rooms.add(msg.chat_id)
        reply = ctx.t("groups.set_liaison" if kind == GroupKind.LIAISON else "groups.set_office", name=group.name)
    elif group.kind == kind.value:
        group.kind, group.set_by = GroupKind.NONE.value, "admin"
        reply = ctx.t("groups.unset_liaison" if kind == GroupKind.LIAISON else "groups.unset_office")
    else:
        reply = ctx.t("groups.not_set", kind=label)
    ctx.session.add(group)
    ctx.audit(msg, "group_setting", f"{msg.chat_id} {group.name}: {group.kind}")
    ctx.reply(msg, reply)
