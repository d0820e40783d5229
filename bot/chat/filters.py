"""Small filters for routes."""

from __future__ import annotations

from bot.chat.dispatch import Context, Filter, command_filter
from bot.storage.models import GroupKind
from bot.transport.base import ChatKind, Incoming, MessageKind


def in_room(msg: Incoming, ctx: Context) -> bool:
    return msg.chat_kind == ChatKind.ROOM


def in_private(msg: Incoming, ctx: Context) -> bool:
    return msg.chat_kind == ChatKind.PRIVATE


def from_admin(msg: Incoming, ctx: Context) -> bool:
    return ctx.is_admin(msg.sender.contact_id)


def not_from_admin(msg: Incoming, ctx: Context) -> bool:
    return not ctx.is_admin(msg.sender.contact_id)


def room_kind(kind: GroupKind) -> Filter:
    def check(msg: Incoming, ctx: Context) -> bool:
        return msg.chat_kind == ChatKind.ROOM and ctx.group_kind(msg.chat_id) == kind

    return check


def office_place(msg: Incoming, ctx: Context) -> bool:
    """The office group or a private chat: where office commands are accepted."""
    return msg.chat_kind == ChatKind.PRIVATE or ctx.group_kind(msg.chat_id) == GroupKind.OFFICE


def kind(*kinds: MessageKind) -> Filter:
    def check(msg: Incoming, ctx: Context) -> bool:
        return msg.kind in kinds

    return check


# A command typed by someone (hands the parsed command on as `cmd`).
command = command_filter
