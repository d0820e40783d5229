"""The rooms the bot is in: configured group kinds, member lists, and recognising liaisons among members."""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import bindparam
from sqlmodel import Session, col, select

from bot.chat import compose
from bot.chat.compose import NAME_SEP
from bot.chat.dispatch import Context
from bot.domain.people import Ambiguity, Binding, Claim, Observed, first_notice, observe
from bot.runtime.units import UnitOfWork
from bot.storage.models import Group, GroupKind, Priority
from bot.transport.base import Member, RoomInfo, Transport

log = logging.getLogger(__name__)

# Run for every message from a room; built once (building a statement costs more than running it).
_GROUP_OF_ROOM = select(Group).where(Group.room_id == bindparam("room_id"))


class RoomBook:
    """Keeps the Group rows in step with the rooms, and observes who is in them."""

    def __init__(self, units: UnitOfWork, transport: Transport) -> None:
        self.units = units
        self.transport = transport

    def remember(self, s: Session, room_id: str, name: str, *, check: bool = True) -> Group:
        """The room's Group, created or renamed as needed; written (flushed) only when something changed.

        A room that is new or renamed to the name of a served group (or of a configured entry another room
        holds) makes the office hear of it (`check`); it is never promoted for its name.
        """
        group = s.exec(_GROUP_OF_ROOM, params={"room_id": room_id}).first()
        if group is None:
            group = Group(room_id=room_id, name=name)
        elif name and group.name != name:
            group.name = name
        else:
            return group
        s.add(group)
        s.flush()
        if check:
            self._warn_if_name_taken(s, [group], now=self.units.clock())
        return group

    def sync_configured(self, s: Session, rooms: list[RoomInfo], now: datetime | None = None) -> None:
        """Apply the configured liaison/office groups, unless an admin changed them in chat.

        An entry is a room id or a room name. A name is used only to find the entry's room the first time, and
        only when exactly one room has that name; from then on the entry means that room (Group.config_entry),
        whatever it is called, so renaming another room to the name promotes nothing.
        """
        now = now or self.units.clock()
        settings = self.units.settings
        entries: dict[str, GroupKind] = {}
        if settings.office_group:
            entries[settings.office_group] = GroupKind.OFFICE
        if settings.city_office_group:
            entries.setdefault(settings.city_office_group, GroupKind.CITY)
        for entry in settings.liaison_groups:
            entries.setdefault(entry, GroupKind.LIAISON)
        seen = [self.remember(s, room.room_id, room.name, check=False) for room in rooms]
        rows = list(s.exec(select(Group).order_by(col(Group.id))))
        by_room = {g.room_id: g for g in rows}
        holders = {g.config_entry: g for g in reversed(rows) if g.config_entry in entries}
        admin_office = any(g.kind == GroupKind.OFFICE.value and g.set_by == "admin" for g in rows)
        claimed: set[str] = set()
        ctx = self.units.context(s, now)
        for entry, kind in entries.items():
            group = by_room.get(entry) or holders.get(entry)
            if group is None:
                named = [
                    g for g in seen if g.name == entry and g.room_id not in claimed and g.config_entry not in entries
                ]
                if len(named) > 1:
                    ids = NAME_SEP.join(g.room_id for g in named)
                    log.warning(
                        "configured group %r: %d rooms have that name (%s); none is set", entry, len(named), ids
                    )
                    if first_notice(s, kind="config_name_ambiguous", key=f"{entry}:{ids}", now=now):
                        ctx.to_office(
                            self.units.texts.t("groups.config_ambiguous", name=entry, count=len(named), ids=ids),
                            priority=Priority.NOTICE,
                        )
                    continue
                group = named[0] if named else None
            if group is None or group.room_id in claimed:
                continue
            claimed.add(group.room_id)
            group.config_entry = entry
            s.add(group)
            if group.set_by == "admin" or (kind == GroupKind.OFFICE and admin_office):
                continue  # the admin's word in chat stands; there is one office group
            group.kind, group.set_by = kind.value, "config"
        for group in rows:
            if group.room_id in claimed:
                continue
            if group.config_entry:
                group.config_entry = ""  # the entry left the configuration, or now names another room by id
                s.add(group)
            if group.set_by == "config":
                group.kind, group.set_by = GroupKind.NONE.value, ""
                s.add(group)
        s.flush()
        self._warn_if_name_taken(s, seen, now=now)
        for group in seen:
            log.info(
                "room %s %r: %s%s", group.room_id, group.name, group.kind, f" ({group.set_by})" if group.set_by else ""
            )

    def _warn_if_name_taken(self, s: Session, groups: list[Group], *, now: datetime) -> None:
        """Tell the office (once per room and name) about unserved rooms named like a served group or like the
        room that holds a configured entry: such a room is not promoted, and the office should know it exists."""
        names = [g.name for g in groups if g.name and g.kind == GroupKind.NONE.value and not g.config_entry]
        if not names:
            return
        taken = {
            g.name: g
            for g in s.exec(select(Group).where(col(Group.name).in_(names)))
            if g.kind != GroupKind.NONE.value or g.config_entry
        }
        ctx = self.units.context(s, now)
        for group in groups:
            if group.name not in taken or group.kind != GroupKind.NONE.value or group.config_entry:
                continue
            log.warning("room %s is named %r like a served group: not promoted", group.room_id, group.name)
            if first_notice(s, kind="name_taken", key=f"{group.room_id}:{group.name}", now=now):
                ctx.to_office(
                    self.units.texts.t("groups.name_taken", room_id=group.room_id, name=group.name),
                    priority=Priority.NOTICE,
                )

    def report_people(self, ctx: Context, observed: list[Observed], room_name: str) -> None:
        """Tell the office what recognising members found: names that could be more than one person, a second
        person for a roster entry, and (in one message) everyone recognised by name."""
        texts = self.units.texts
        bindings = [o for o in observed if isinstance(o, Binding)]
        for note in observed:
            if isinstance(note, Ambiguity):
                ctx.to_office(compose.ambiguity_text(texts, note, room_name=room_name))
            elif isinstance(note, Claim):
                ctx.to_office(compose.claim_text(texts, note, room_name=room_name), priority=Priority.NOTICE)
        if bindings:
            ctx.to_office(compose.bindings_text(texts, bindings), priority=Priority.NOTICE)

    def observe(self, room: RoomInfo, members: list[Member], complete: bool = False) -> None:
        """One unit of work (run it through UnitOfWork.run): remember the room, recognise its members."""
        now = self.units.clock()
        with self.units.session() as s:
            group = self.remember(s, room.room_id, room.name)
            if group.kind == GroupKind.UNIT.value:  # a unit group's members are never recorded
                s.commit()
                return
            observed = observe(s, room_id=room.room_id, members=members, now=now, complete=complete)
            self.report_people(self.units.context(s, now), observed, room.name)
            s.commit()

    async def refresh_members(self, room_id: str) -> None:
        """Read the room's member list from the chat and observe all of them."""
        with self.units.session() as s:
            group = s.exec(select(Group).where(Group.room_id == room_id)).first()
            if group is not None and group.kind == GroupKind.UNIT.value:
                return  # a unit group's members are never read or recorded
        try:
            members = await self.transport.room_members(room_id)
        except Exception:
            log.exception("could not read the member list of %s", room_id)
            return
        with self.units.session() as s:
            group = s.exec(select(Group).where(Group.room_id == room_id)).first()
            name = group.name if group else ""
        await self.units.run(self.observe, RoomInfo(room_id, name), members, True)
