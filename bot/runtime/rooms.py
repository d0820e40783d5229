"""The rooms the bot is in: configured group kinds, member lists, and recognising liaisons among members."""

from __future__ import annotations

import logging

from sqlalchemy import bindparam
from sqlmodel import Session, select

from bot.chat import compose
from bot.chat.dispatch import Context
from bot.domain.people import Ambiguity, observe
from bot.runtime.units import UnitOfWork
from bot.storage.models import Group, GroupKind
from bot.transport.base import Member, RoomInfo, Transport

log = logging.getLogger(__name__)

# Run for every message from a room; built once (building a statement costs more than running it).
_GROUP_OF_ROOM = select(Group).where(Group.room_id == bindparam("room_id"))


class RoomBook:
    """Keeps the Group rows in step with the rooms, and observes who is in them."""

    def __init__(self, units: UnitOfWork, transport: Transport) -> None:
        self.units = units
        self.transport = transport

    def remember(self, s: Session, room_id: str, name: str) -> Group:
        """The room's Group, created or renamed as needed; written (flushed) only when something changed."""
        group = s.exec(_GROUP_OF_ROOM, params={"room_id": room_id}).first()
        if group is None:
            group = Group(room_id=room_id, name=name)
        elif name and group.name != name:
            group.name = name
        else:
            return group
        s.add(group)
        s.flush()
        return group

    def sync_configured(self, s: Session, rooms: list[RoomInfo]) -> None:
        """Apply the configured liaison/office groups (by id or name), unless an admin changed them in chat."""
        settings = self.units.settings
        wanted_liaison = set(settings.liaison_groups)
        office = settings.office_group
        for room in rooms:
            group = self.remember(s, room.room_id, room.name)
            if group.set_by == "admin":
                continue
            if office and office in (room.room_id, room.name):
                group.kind, group.set_by = GroupKind.OFFICE.value, "config"
            elif wanted_liaison & {room.room_id, room.name}:
                group.kind, group.set_by = GroupKind.LIAISON.value, "config"
            elif group.set_by == "config":
                group.kind, group.set_by = GroupKind.NONE.value, ""
            s.add(group)

    def report_ambiguities(self, ctx: Context, ambiguities: list[Ambiguity], room_name: str) -> None:
        """Tell the office about members who could be more than one liaison."""
        for amb in ambiguities:
            ctx.to_office(compose.ambiguity_text(self.units.texts, amb, room_name=room_name))

    def observe(self, room: RoomInfo, members: list[Member], complete: bool = False) -> None:
        """One unit of work (run it through UnitOfWork.run): remember the room, recognise its members."""
        now = self.units.clock()
        with self.units.session() as s:
            self.remember(s, room.room_id, room.name)
            ambiguities = observe(s, room_id=room.room_id, members=members, now=now, complete=complete)
            self.report_ambiguities(self.units.context(s, now), ambiguities, room.name)
            s.commit()

    async def refresh_members(self, room_id: str) -> None:
        """Read the room's member list from the chat and observe all of them."""
        try:
            members = await self.transport.room_members(room_id)
        except Exception:
            log.exception("could not read the member list of %s", room_id)
            return
        with self.units.session() as s:
            group = s.exec(select(Group).where(Group.room_id == room_id)).first()
            name = group.name if group else ""
        await self.units.run(self.observe, RoomInfo(room_id, name), members, True)
