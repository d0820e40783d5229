"""Office commands about unit groups (the units' own groups, where the bot only looks for the forwarded alert)."""

from __future__ import annotations

from sqlmodel import select

from bot.chat.dispatch import CommandObject, Context
from bot.domain import reach
from bot.storage.models import Group, GroupKind, Priority, pk
from bot.transport.base import ChatKind, Incoming
from handlers.office_records import find_unit


def _room_named(ctx: Context, name: str) -> tuple[Group | None, str]:
    """The one room the bot knows by this name (or room id), and ""; else None and the answer."""
    rows = list(ctx.session.exec(select(Group).where((Group.name == name) | (Group.room_id == name))))
    if not rows:
        return None, ctx.t("reach_group.unknown_room", name=name)
    if len(rows) > 1:
        return None, ctx.t("reach_group.ambiguous_room", name=name, count=len(rows))
    return rows[0], ""


def on_unit_groups(msg: Incoming, ctx: Context, cmd: CommandObject) -> None:
    """单位群 (list) / 单位群 <群名> <单位> (set) / 移除单位群 <群名>."""
    if cmd.name == "移除单位群":
        _remove(msg, ctx, cmd.arg.strip())
    elif not cmd.arg.strip():
        _list(msg, ctx)
    else:
        _set(msg, ctx, cmd.arg.strip())


def _list(msg: Incoming, ctx: Context) -> None:
    groups = reach.unit_groups(ctx.session)
    ctx.audit(msg, "unit_group_list", f"{len(groups)} unit groups")
    if not groups:
        ctx.reply(msg, ctx.t("reach_group.list_none"))
        return
    lines = [ctx.t("reach_group.list_head", count=len(groups))]
    for group, unit in groups:
        unit_name = unit.name if unit is not None else ctx.t("reach_group.no_unit")
        lines.append(ctx.t("reach_group.list_line", name=group.name or group.room_id, unit=unit_name))
    ctx.reply(msg, "\n".join(lines))


def _set(msg: Incoming, ctx: Context, arg: str) -> None:
    room_name, _, unit_name = arg.rpartition(" ")
    if not room_name.strip() or not unit_name.strip():
        ctx.reply(msg, ctx.t("reach_group.usage"))
        return
    group, error = _room_named(ctx, room_name.strip())
    if group is None:
        ctx.reply(msg, error)
        return
    unit, error = find_unit(ctx, unit_name.strip())
    if unit is None:
        ctx.reply(msg, error)
        return
    if group.kind in (GroupKind.LIAISON.value, GroupKind.OFFICE.value):
        ctx.reply(msg, ctx.t("reach_group.served_room", name=group.name))
        return
    if group.kind == GroupKind.UNIT.value and group.unit_id == unit.id:
        ctx.reply(msg, ctx.t("reach_group.set_again", name=group.name, unit=unit.name))
        return
    reach.make_unit_group(ctx.session, room_id=group.room_id, name=group.name, unit_id=pk(unit))
    ctx.audit(msg, "unit_group", f"{group.room_id} {group.name}: {unit.name}")
    ctx.send(ChatKind.ROOM, group.room_id, ctx.t("reach_group.intro"), priority=Priority.BROADCAST)
    ctx.reply(msg, ctx.t("reach_group.set", name=group.name, unit=unit.name))


def _remove(msg: Incoming, ctx: Context, name: str) -> None:
    if not name:
        ctx.reply(msg, ctx.t("reach_group.remove_usage"))
        return
    group, error = _room_named(ctx, name)
    if group is None:
        ctx.reply(msg, error)
        return
    if group.kind != GroupKind.UNIT.value:
        ctx.reply(msg, ctx.t("reach_group.not_unit_group", name=group.name))
        return
    reach.remove_unit_group(ctx.session, group)
    ctx.audit(msg, "unit_group_remove", f"{group.room_id} {group.name}")
    ctx.reply(msg, ctx.t("reach_group.removed", name=group.name))
