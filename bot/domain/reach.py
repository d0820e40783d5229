"""Reach, observed (issue 15 item 6): the units' own groups, where the bot only looks for the forwarded alert.

A unit group stores nothing of its chat: when a message there is the alert of a push the unit is expected to
relay, the unit's confirmation is recorded as 已核验 by observation and the group's member count is kept in a
ReachSighting. Everything else said there leaves no row.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func
from sqlmodel import Session, col, delete, select

from bot.domain.relay import LATE_WINDOW, unconfirmed_open_pushes
from bot.storage.models import (
    Alert,
    ChatNote,
    Confirmation,
    ConfirmMethod,
    EvidenceVerdict,
    Group,
    GroupKind,
    Liaison,
    Membership,
    Push,
    PushState,
    ReachSighting,
    Unit,
    pk,
)
from bot.textnorm import squeeze

OBSERVED_REASON = "在单位群中看到转发"
# A title shorter than this (after squeeze) is too common a phrase to prove that the alert was forwarded.
MIN_TITLE = 6
# An alert body shorter than this is compared whole, not looked for inside a longer message.
MIN_BODY = 12


@dataclass(frozen=True)
class Seen:
    """A message that carries these pushes' alerts, in one unit group."""

    text: str = ""
    link_url: str = ""
    link_title: str = ""


def unit_group_of(session: Session, room_id: str) -> Group | None:
    """The unit group with this room id, if the room is one."""
    return session.exec(select(Group).where(Group.room_id == room_id, Group.kind == GroupKind.UNIT.value)).first()


def unit_groups(session: Session) -> list[tuple[Group, Unit | None]]:
    """Every unit group with its unit (None while no unit was named), in the order they were made."""
    groups = list(session.exec(select(Group).where(Group.kind == GroupKind.UNIT.value).order_by(col(Group.id))))
    return [(g, session.get(Unit, g.unit_id) if g.unit_id is not None else None) for g in groups]


def inviting_liaison(session: Session, contact_id: str) -> Liaison | None:
    """The active, bound liaison of an active unit with this contact id (who may bring the bot into a unit group)."""
    if not contact_id:
        return None
    return session.exec(
        select(Liaison)
        .join(Unit, col(Unit.id) == Liaison.unit_id)
        .where(Liaison.contact_id == contact_id, Liaison.active == True, Unit.active == True)  # noqa: E712
        .order_by(col(Liaison.id))
    ).first()


def make_unit_group(session: Session, *, room_id: str, name: str, unit_id: int) -> Group:
    """Make the room a unit group of `unit_id`, and forget anything stored about its members and chat."""
    group = session.exec(select(Group).where(Group.room_id == room_id)).first() or Group(room_id=room_id)
    group.name = name or group.name
    group.kind, group.set_by, group.unit_id = GroupKind.UNIT.value, "admin", unit_id
    session.add(group)
    session.exec(delete(Membership).where(col(Membership.room_id) == room_id))
    session.exec(delete(ChatNote).where(col(ChatNote.room_id) == room_id))
    session.flush()
    return group


def remove_unit_group(session: Session, group: Group) -> None:
    """The room is no unit group any more (its sightings stay: they are the record of reach)."""
    group.kind, group.set_by, group.unit_id = GroupKind.NONE.value, "admin", None
    session.add(group)
    session.flush()


def _matches(alert: Alert, seen: Seen) -> bool:
    """Is `seen` this alert forwarded: the same link card, the same text, or the alert's title in it?"""
    if alert.link_url and seen.link_url and alert.link_url.strip() == seen.link_url.strip():
        return True
    said = squeeze(seen.text) + squeeze(seen.link_title)
    if not said:
        return False
    body = squeeze(alert.text)
    if body and (body == said or (len(body) >= MIN_BODY and body in said)):
        return True
    title = squeeze(alert.title)
    return len(title) >= MIN_TITLE and title in said


def _watched(session: Session, unit_id: int, *, now: datetime) -> list[Push]:
    """The pushes whose alert the unit's groups are watched for: those it is expected to relay and has not
    confirmed (relay's rule), and those it confirmed by word that are still open (to upgrade their evidence)."""
    unconfirmed = unconfirmed_open_pushes(session, unit_id, now=now)
    confirmed = session.exec(
        select(Push)
        .join(Confirmation, col(Confirmation.push_id) == Push.id)
        .where(
            Confirmation.unit_id == unit_id,
            (col(Push.state) == PushState.OPEN.value)
            | ((col(Push.state) == PushState.CLOSED.value) & (col(Push.deadline) > now - LATE_WINDOW)),
        )
    ).all()
    return sorted({pk(p): p for p in [*unconfirmed, *confirmed]}.values(), key=lambda p: -pk(p))


def observe_forward(
    session: Session, *, group: Group, seen: Seen, now: datetime, message_id: str = ""
) -> list[ReachSighting]:
    """Record the pushes whose alert `seen` is, in unit group `group`: the unit's confirmation (new, as observed
    and 已核验, or an earlier one upgraded to 已核验) and one sighting per push and group (member count 0 until
    set_member_count). Returns the new sightings; nothing is written when there are none."""
    if group.kind != GroupKind.UNIT.value or group.unit_id is None:
        return []
    unit_id = group.unit_id
    pushes = _watched(session, unit_id, now=now)
    if not pushes:
        return []
    sighted = set(
        session.exec(
            select(ReachSighting.push_id).where(
                ReachSighting.room_id == group.room_id, col(ReachSighting.push_id).in_([pk(p) for p in pushes])
            )
        )
    )
    alerts = {pk(a): a for a in session.exec(select(Alert).where(col(Alert.id).in_({p.alert_id for p in pushes})))}
    found: list[ReachSighting] = []
    for push in pushes:
        if pk(push) in sighted or not _matches(alerts[push.alert_id], seen):
            continue
        _confirm_observed(session, push=push, unit_id=unit_id, room_id=group.room_id, now=now, message_id=message_id)
        sighting = ReachSighting(push_id=pk(push), unit_id=unit_id, room_id=group.room_id, member_count=0, at=now)
        session.add(sighting)
        found.append(sighting)
    session.flush()
    return found


def _confirm_observed(
    session: Session, *, push: Push, unit_id: int, room_id: str, now: datetime, message_id: str
) -> None:
    conf = session.exec(
        select(Confirmation).where(Confirmation.push_id == push.id, Confirmation.unit_id == unit_id)
    ).first()
    if conf is None:
        # acked_at is set: nobody is told in any group (the unit group hears nothing; the liaison said nothing).
        session.add(
            Confirmation(
                push_id=pk(push),
                unit_id=unit_id,
                at=now,
                method=ConfirmMethod.OBSERVED.value,
                room_id=room_id,
                evidence_message_id=message_id,
                late=now > push.deadline,
                acked_at=now,
                verdict=EvidenceVerdict.VERIFIED.value,
                verdict_reason=OBSERVED_REASON,
            )
        )
    elif conf.verdict != EvidenceVerdict.VERIFIED.value:
        # Confirmed by word (or with a screenshot not yet found good): seeing it forwarded is better evidence.
        conf.verdict, conf.verdict_reason = EvidenceVerdict.VERIFIED.value, OBSERVED_REASON
        session.add(conf)


def set_member_count(session: Session, sighting_ids: Iterable[int], count: int) -> None:
    """The member count read for new sightings (read from the chat after they were committed)."""
    for sighting in session.exec(select(ReachSighting).where(col(ReachSighting.id).in_(list(sighting_ids)))):
        sighting.member_count = count
        session.add(sighting)
    session.flush()


def reach_of_push(session: Session, push_id: int) -> tuple[int, int]:
    """(units, people) a push's alert was seen reaching in unit groups: `进度`'s line."""
    units, people = session.exec(
        select(
            func.count(func.distinct(ReachSighting.unit_id)), func.coalesce(func.sum(ReachSighting.member_count), 0)
        ).where(ReachSighting.push_id == push_id)
    ).one()
    return int(units), int(people)


def reach_by_unit(session: Session, *, lo: datetime, hi: datetime) -> dict[int, int]:
    """覆盖人数 per unit id for the pushes (not withdrawn) whose deadline is in [lo, hi), as a report counts them:
    the people in the unit's groups where one of their alerts was seen, each group once at its largest count.
    One query over the sightings, no ORM rows."""
    largest = (
        select(
            col(ReachSighting.unit_id).label("unit_id"),
            col(ReachSighting.room_id).label("room_id"),
            func.max(ReachSighting.member_count).label("people"),
        )
        .join(Push, col(Push.id) == ReachSighting.push_id)
        .where(col(Push.deadline) >= lo, col(Push.deadline) < hi, col(Push.state) != PushState.WITHDRAWN.value)
        .group_by(col(ReachSighting.unit_id), col(ReachSighting.room_id))
        .subquery()
    )
    rows = session.execute(select(largest.c.unit_id, func.sum(largest.c.people)).group_by(largest.c.unit_id)).all()
    return {unit_id: int(total or 0) for unit_id, total in rows}
