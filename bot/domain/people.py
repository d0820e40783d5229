"""Recognising liaisons: by contact id, else by an exact, unambiguous name seen in a served group."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import bindparam, or_
from sqlmodel import Session, col, select

from bot.storage.models import Group, GroupKind, Liaison, Membership, Notice, Unbinding, Unit
from bot.textnorm import clean
from bot.transport.base import Member


@dataclass(frozen=True)
class Ambiguity:
    """A name that matched more than one person; `key` makes the office notice one-time."""

    key: str  # "member:<contact id>" (one member, several roster people) or "liaison:<id>" (the reverse)
    who: str
    candidates: list[str]


@dataclass(frozen=True)
class Binding:
    """A member bound to a roster person by name (no 微信ID in the roster): the office is told (已认出) and can
    undo it (认错), since a stranger can take any group nickname."""

    contact_id: str
    name: str  # the roster name
    units: list[str]


@dataclass(frozen=True)
class Claim:
    """A member whose name matches a roster person already bound by name to someone else: two people claim one
    roster entry, and the office must decide (认错 undoes the binding); `key` makes the notice one-time."""

    key: str  # "claim:<contact id>:<liaison id>"
    who: str
    name: str
    unit: str


# What observing members has to tell the office.
Observed = Ambiguity | Binding | Claim


# A speaker's membership row is rewritten when their names change, or when its seen_at is this old; nothing
# reads seen_at more finely, and skipping the UPDATE saves a write on almost every message.
SEEN_REFRESH = timedelta(hours=1)


# Statements run for (almost) every message, built once: building one costs more than running it.
_LIAISONS_WITH_UNITS = (
    select(Liaison, Unit)
    .join(Unit, col(Unit.id) == col(Liaison.unit_id))
    .where(Liaison.contact_id == bindparam("contact_id"), Liaison.active == True)  # noqa: E712
    .order_by(col(Liaison.id))
)
_SPEAKER_ROW = select(Membership).where(
    Membership.room_id == bindparam("room_id"), Membership.contact_id == bindparam("contact_id")
)
_ON_ROSTER = select(Liaison.id).where(Liaison.contact_id == bindparam("contact_id")).limit(1)


def liaisons_with_units(session: Session, contact_id: str) -> list[tuple[Liaison, Unit]]:
    """Active roster entries bound to this contact id (one person may serve several units), each with its unit,
    in one query, in roster order."""
    return [(liaison, unit) for liaison, unit in session.exec(_LIAISONS_WITH_UNITS, params={"contact_id": contact_id})]


def _names(member_name: str, nickname: str) -> set[str]:
    return {n for n in (clean(member_name), clean(nickname)) if n}


def _served_room_ids(session: Session) -> list[str]:
    kinds = (GroupKind.LIAISON.value, GroupKind.OFFICE.value)
    return list(session.exec(select(Group.room_id).where(col(Group.kind).in_(kinds))))


def observe(
    session: Session, *, room_id: str, members: list[Member], now: datetime, complete: bool = False
) -> list[Observed]:
    """Remember who is in a room and bind unrecognised roster liaisons to them; returns new ambiguities.

    `complete` means `members` is the whole member list: anyone else has left the room.
    """
    if not complete and len(members) == 1:
        return _observe_speaker(session, room_id=room_id, member=members[0], now=now)
    existing = {m.contact_id: m for m in session.exec(select(Membership).where(Membership.room_id == room_id))}
    if complete:
        present = {m.contact_id for m in members}
        for contact_id, stale in list(existing.items()):
            if contact_id not in present:
                session.delete(stale)
                del existing[contact_id]
    for member in members:
        row = existing.get(member.contact_id)
        if row is None:
            row = Membership(room_id=room_id, contact_id=member.contact_id)
            existing[member.contact_id] = row
        row.name, row.group_nickname, row.seen_at = member.name, member.group_nickname, now
        session.add(row)
    session.flush()
    served = _served_room_ids(session)
    if room_id not in served:
        return []
    return _bind_by_name(session, members, served, now)


def _observe_speaker(session: Session, *, room_id: str, member: Member, now: datetime) -> list[Observed]:
    """`observe` for one person who spoke: the same outcome, with only their own row read.

    The row is written when it is new, when their names changed or when seen_at is older than SEEN_REFRESH.
    Binding by name is skipped for a contact id some roster entry already has: `_bind_by_name` passes over
    such a member anyway, so the result (no binding, no ambiguity) is the same without its queries.
    """
    row = session.exec(_SPEAKER_ROW, params={"room_id": room_id, "contact_id": member.contact_id}).first()
    if row is None:
        row = Membership(room_id=room_id, contact_id=member.contact_id)
    if (
        row.id is None
        or row.name != member.name
        or row.group_nickname != member.group_nickname
        or not timedelta(0) <= now - row.seen_at < SEEN_REFRESH
    ):
        row.name, row.group_nickname, row.seen_at = member.name, member.group_nickname, now
        session.add(row)
        session.flush()
    if session.exec(_ON_ROSTER, params={"contact_id": member.contact_id}).first() is not None:
        return []
    served = _served_room_ids(session)
    if room_id not in served:
        return []
    return _bind_by_name(session, [member], served, now)


def _bind_by_name(session: Session, members: list[Member], served: list[str], now: datetime) -> list[Observed]:
    named = list(
        session.exec(
            select(Liaison).where(
                Liaison.active == True,  # noqa: E712
                or_(col(Liaison.contact_id).is_(None), col(Liaison.bound_at).is_not(None)),
            )
        )
    )
    # Most members match no roster name at all: they cost no further query.
    any_roster_name = set().union(*(_names(li.wechat_name, li.group_nickname) for li in named))
    members = [m for m in members if _names(m.name, m.group_nickname) & any_roster_name]
    if not members:
        return []
    unbound = [li for li in named if li.contact_id is None]
    by_name = [li for li in named if li.contact_id is not None]  # bound by name earlier: a newcomer may claim them
    member_ids = [m.contact_id for m in members]
    refused: set[tuple[int | None, str]] = set(
        session.exec(
            select(Unbinding.liaison_id, Unbinding.contact_id).where(col(Unbinding.contact_id).in_(member_ids))
        ).all()
    )
    bound_ids = set(session.exec(select(Liaison.contact_id).where(col(Liaison.contact_id).is_not(None))))
    unit_names = {u.id: u.name for u in session.exec(select(Unit))}
    notes: list[Ambiguity | Claim] = []
    bindings: list[Observed] = []
    for member in members:
        if member.contact_id in bound_ids:
            continue
        seen = _names(member.name, member.group_nickname)
        matches = [
            li
            for li in unbound
            if li.contact_id is None
            and (li.id, member.contact_id) not in refused
            and _names(li.wechat_name, li.group_nickname) & seen
        ]
        if not matches:
            notes.extend(_claims(member, by_name, refused, seen, unit_names))
            continue
        # Several rows can be one person serving several units; different people sharing a name cannot be told apart.
        people = {(li.name, clean(li.wechat_name)) for li in matches}
        if len(people) > 1:
            notes.append(
                Ambiguity(
                    key=f"member:{member.contact_id}",
                    who=member.group_nickname or member.name,
                    candidates=[f"{unit_names.get(li.unit_id, '?')}-{li.name}" for li in matches],
                )
            )
            continue
        roster_names = set().union(*(_names(li.wechat_name, li.group_nickname) for li in matches))
        # A member the office said is not this person (认错) does not make the name ambiguous.
        not_them = {c for lid, c in _refusals_of(session, [li.id for li in matches])}
        others = [
            m
            for m in session.exec(select(Membership).where(col(Membership.room_id).in_(served)))
            if m.contact_id != member.contact_id
            and m.contact_id not in not_them
            and _names(m.name, m.group_nickname) & roster_names
        ]
        if others:
            first = matches[0]
            notes.append(
                Ambiguity(
                    key=f"liaison:{first.id}",
                    who=first.wechat_name or first.name,
                    candidates=[f"{unit_names.get(first.unit_id, '?')}"],
                )
            )
            continue
        for liaison in matches:
            liaison.contact_id, liaison.bound_at = member.contact_id, now
            session.add(liaison)
        bound_ids.add(member.contact_id)
        bindings.append(
            Binding(
                contact_id=member.contact_id,
                name=matches[0].name,
                units=[unit_names.get(li.unit_id, "?") for li in matches],
            )
        )
    told: list[Observed] = [n for n in notes if first_notice(session, kind="ambiguous", key=n.key, now=now)]
    return told + bindings


def _claims(
    member: Member,
    by_name: list[Liaison],
    refused: set[tuple[int | None, str]],
    seen: set[str],
    unit_names: dict[int | None, str],
) -> list[Claim]:
    """The roster people bound by name to someone else whose names this member also has."""
    return [
        Claim(
            key=f"claim:{member.contact_id}:{li.id}",
            who=member.group_nickname or member.name,
            name=li.name,
            unit=unit_names.get(li.unit_id, "?"),
        )
        for li in by_name
        if li.contact_id != member.contact_id
        and (li.id, member.contact_id) not in refused
        and _names(li.wechat_name, li.group_nickname) & seen
    ]


def _refusals_of(session: Session, liaison_ids: list[int | None]) -> list[tuple[int, str]]:
    return list(
        session.exec(
            select(Unbinding.liaison_id, Unbinding.contact_id).where(col(Unbinding.liaison_id).in_(liaison_ids))
        ).all()
    )


def claimed_by_another(session: Session, contact_id: str) -> bool:
    """Whether this contact was found to claim a roster person bound by name to someone else (the office was told)."""
    prefix = f"claim:{contact_id}:"
    found = session.exec(
        select(Notice.id).where(Notice.kind == "ambiguous", col(Notice.key).startswith(prefix, autoescape=True))
    ).first()
    return found is not None


def bound_by_name(session: Session, name: str) -> list[tuple[Liaison, Unit]]:
    """Active roster entries of this person (by roster name) that have a contact id, each with its unit."""
    rows = session.exec(
        select(Liaison, Unit)
        .join(Unit, col(Unit.id) == col(Liaison.unit_id))
        .where(Liaison.name == name, Liaison.active == True, col(Liaison.contact_id).is_not(None))  # noqa: E712
        .order_by(col(Liaison.id))
    )
    return [(li, unit) for li, unit in rows]


def unbind(
    session: Session, liaisons: list[Liaison], *, by_id: str, by_name: str, now: datetime
) -> dict[int, datetime | None]:
    """认错: take the contact id off these roster entries (bound by name) and remember that it must never be bound
    to them by name again; returns, per entry id, when the undone binding was made."""
    since: dict[int, datetime | None] = {}
    for liaison in liaisons:
        if liaison.id is None or liaison.contact_id is None:
            continue
        known = session.exec(
            select(Unbinding.id).where(Unbinding.liaison_id == liaison.id, Unbinding.contact_id == liaison.contact_id)
        ).first()
        if known is None:
            session.add(
                Unbinding(liaison_id=liaison.id, contact_id=liaison.contact_id, by_id=by_id, by_name=by_name, at=now)
            )
        since[liaison.id] = liaison.bound_at
        liaison.contact_id, liaison.bound_at = None, None
        session.add(liaison)
    session.flush()
    return since


def first_notice(session: Session, *, kind: str, key: str, now: datetime) -> bool:
    """True (and remembered) the first time a notice of this kind and key is given."""
    exists = session.exec(select(Notice.id).where(Notice.kind == kind, Notice.key == key)).first()
    if exists is not None:
        return False
    session.add(Notice(kind=kind, key=key[:300], at=now))
    session.flush()
    return True
