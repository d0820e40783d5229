"""The relay loop's rules: pushes, confirmations, progress, reminders, acknowledgements."""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import bindparam, func
from sqlmodel import Session, col, select

from bot.domain.workdays import WorkCalendar
from bot.storage.models import (
    Alert,
    AuditLog,
    Confirmation,
    ConfirmMethod,
    Exemption,
    Group,
    GroupKind,
    Liaison,
    Miss,
    Push,
    PushState,
    PushTarget,
    Unit,
    UTCDateTime,
    pk,
)
from bot.storage.outbox import push_delivery


def audit(
    session: Session,
    *,
    now: datetime,
    actor_id: str,
    actor_name: str,
    action: str,
    detail: str = "",
    allowed: bool = True,
) -> None:
    """Write one audit row in the caller's transaction."""
    session.add(
        AuditLog(at=now, actor_id=actor_id, actor_name=actor_name, action=action, detail=detail[:2000], allowed=allowed)
    )


def groups_of_kind(session: Session, kind: GroupKind) -> list[Group]:
    """Served groups of one kind, in a stable order."""
    return list(session.exec(select(Group).where(Group.kind == kind.value).order_by(col(Group.id))))


def office_group(session: Session) -> Group | None:
    """The office group, if one is set."""
    return session.exec(select(Group).where(Group.kind == GroupKind.OFFICE.value)).first()


def active_units(session: Session) -> list[Unit]:
    """Units that are expected to relay, in roster order."""
    return list(session.exec(select(Unit).where(Unit.active == True).order_by(col(Unit.id))))  # noqa: E712


def active_unit_ids(session: Session) -> list[int]:
    """The ids of active_units, in the same order."""
    # A primary key read from the database is never None (the `is not None` is for the type checker).
    ids = session.exec(select(Unit.id).where(Unit.active == True).order_by(col(Unit.id)))  # noqa: E712
    return [unit_id for unit_id in ids if unit_id is not None]


def aimed_sql(push_id, unit_id):
    """SQL for "the push is aimed at the unit": it has no targets (every unit) or the unit is one of them; the
    arguments are columns or bind parameters. The targeted rule as every query writes it."""
    targeted = select(PushTarget.id).where(PushTarget.push_id == push_id).exists()
    one_of_them = select(PushTarget.id).where(PushTarget.push_id == push_id, PushTarget.unit_id == unit_id).exists()
    return ~targeted | one_of_them


def push_targets(session: Session, push_ids: Iterable[int]) -> dict[int, set[int]]:
    """Per targeted push among `push_ids` (推送 … 给 学校), the ids of the units it is aimed at. A push that is
    not in the answer is aimed at every unit."""
    ids = list(dict.fromkeys(push_ids))
    aimed: dict[int, set[int]] = defaultdict(set)
    for start in range(0, len(ids), 5000):  # bound the IN list (a year of pushes is a few thousand)
        chunk = ids[start : start + 5000]
        for push_id, unit_id in session.exec(
            select(PushTarget.push_id, PushTarget.unit_id).where(col(PushTarget.push_id).in_(chunk))
        ):
            aimed[push_id].add(unit_id)
    return dict(aimed)


def expected_unit_ids(
    session: Session, push_ids: Iterable[int], *, active: Sequence[int] | None = None
) -> dict[int, list[int]]:
    """Per push id, the ids of the units expected to relay that push: the active units it is aimed at (every one,
    or a targeted push's units) less those exempted from it (免转), in roster order. The one rule (expected_units
    gives the same as Unit rows; not_expected the same per unit); plain ids, for callers that count a month of
    pushes. `active`: the active units' ids in roster order, if the caller has read them."""
    ids = list(dict.fromkeys(push_ids))
    if not ids:
        return {}
    if active is None:
        active = active_unit_ids(session)
    exempted: dict[int, set[int]] = defaultdict(set)
    for push_id, unit_id in session.exec(
        select(Exemption.push_id, Exemption.unit_id).where(col(Exemption.push_id).in_(ids))
    ):
        exempted[push_id].add(unit_id)
    aimed = push_targets(session, ids)
    return {
        push_id: [u for u in active if u not in exempted[push_id] and (push_id not in aimed or u in aimed[push_id])]
        for push_id in ids
    }


def aimed_at(session: Session, push_id: int, unit_id: int) -> bool:
    """Is the push aimed at this unit (every push is, but a targeted one only at its units)?"""
    aimed = push_targets(session, [push_id]).get(push_id)
    return aimed is None or unit_id in aimed


def not_expected(session: Session, push_ids: Sequence[int], unit_ids: Sequence[int]) -> dict[int, set[int]]:
    """Per unit id, the pushes among `push_ids` it is NOT expected to relay: exempted from (免转), or a targeted
    push aimed at other units. expected_unit_ids's rule seen from the unit (records, 回访核查); activity aside."""
    ids = list(dict.fromkeys(push_ids))
    units = list(dict.fromkeys(unit_ids))
    out: dict[int, set[int]] = {u: set() for u in units}
    if not ids or not units:
        return out
    for push_id, unit_id in session.exec(
        select(Exemption.push_id, Exemption.unit_id).where(
            col(Exemption.push_id).in_(ids), col(Exemption.unit_id).in_(units)
        )
    ):
        out[unit_id].add(push_id)
    for push_id, aimed in push_targets(session, ids).items():
        for unit_id in units:
            if unit_id not in aimed:
                out[unit_id].add(push_id)
    return out


def expected_counts(session: Session, push_ids: Iterable[int]) -> dict[int, tuple[int, int]]:
    """Per push id, (units expected, of them confirmed): expected_unit_ids's rule counted in the database, for
    lists of many pushes (the console's 推送 list). Keep the two in step: tests compare them."""
    ids = list(dict.fromkeys(push_ids))
    if not ids:
        return {}
    active = session.exec(select(func.count()).select_from(Unit).where(Unit.active == True)).one()  # noqa: E712
    # A targeted push counts only the units it is aimed at.
    aimed_units = dict(
        session.exec(
            select(PushTarget.push_id, func.count())
            .join(Unit, col(Unit.id) == PushTarget.unit_id)
            .where(col(PushTarget.push_id).in_(ids), Unit.active == True)  # noqa: E712
            .group_by(col(PushTarget.push_id))
        ).all()
    )
    exempted = dict(
        session.exec(
            select(Exemption.push_id, func.count())
            .join(Unit, col(Unit.id) == Exemption.unit_id)
            .where(
                col(Exemption.push_id).in_(ids),
                Unit.active == True,  # noqa: E712
                aimed_sql(Exemption.push_id, Exemption.unit_id),
            )
            .group_by(col(Exemption.push_id))
        ).all()
    )
    confirmed = dict(
        session.exec(
            select(Confirmation.push_id, func.count())
            .join(Unit, col(Unit.id) == Confirmation.unit_id)
            .outerjoin(
                Exemption,
                (col(Exemption.push_id) == Confirmation.push_id) & (col(Exemption.unit_id) == Confirmation.unit_id),
            )
            .where(
                col(Confirmation.push_id).in_(ids),
                Unit.active == True,  # noqa: E712
                col(Exemption.id).is_(None),
                aimed_sql(Confirmation.push_id, Confirmation.unit_id),
            )
            .group_by(col(Confirmation.push_id))
        ).all()
    )
    targeted_ids = _targeted_ids(session, ids)
    return {
        p: (
            int(aimed_units.get(p, 0) if p in targeted_ids else active) - int(exempted.get(p, 0)),
            int(confirmed.get(p, 0)),
        )
        for p in ids
    }


def _targeted_ids(session: Session, push_ids: list[int]) -> set[int]:
    """The targeted pushes among `push_ids` (a targeted push's units may all have left the roster since)."""
    return set(session.exec(select(PushTarget.push_id).where(col(PushTarget.push_id).in_(push_ids)).distinct()))


def expected_units(session: Session, push_ids: Iterable[int]) -> dict[int, list[Unit]]:
    """Per push id, the units expected to relay that push: the active units less those exempted from it (免转),
    in roster order. Everything that counts, reminds, misses or ranks units for a push asks this (or
    expected_unit_ids, the same rule in plain ids)."""
    units = {pk(u): u for u in active_units(session)}
    expected = expected_unit_ids(session, push_ids, active=list(units))
    return {push_id: [units[u] for u in unit_ids] for push_id, unit_ids in expected.items()}


def default_deadline(
    now: datetime, *, tz: ZoneInfo, deadline_time: time, late_push_after: time, calendar: WorkCalendar
) -> datetime:
    """Today at `deadline_time`, or the next working day's when pushed late or on a day off."""
    local = now.astimezone(tz)
    day = local.date()
    if not calendar.is_working_day(day) or local.time() >= late_push_after or local.time() >= deadline_time:
        day = calendar.next_working_day(day)
    return datetime.combine(day, deadline_time, tzinfo=tz)


def create_push(session: Session, alert: Alert, *, now: datetime, by: str, deadline: datetime) -> Push:
    """A new open push of `alert`; the caller sends it to the groups."""
    if alert.id is None:
        session.add(alert)
        session.flush()
    push = Push(alert_id=pk(alert), created_at=now, created_by=by, deadline=deadline, state=PushState.OPEN.value)
    session.add(push)
    session.flush()
    return push


def move_deadline(session: Session, push: Push, *, deadline: datetime) -> None:
    """Give `push` a new deadline: it is open again, nobody has missed it yet, and each liaison's confirmation is
    late or not by the new deadline (a 补登 stays as the office recorded it)."""
    push.deadline = deadline
    push.state, push.closed_at = PushState.OPEN.value, None
    session.add(push)
    for miss in session.exec(select(Miss).where(Miss.push_id == push.id)):
        session.delete(miss)  # a moved deadline has not passed yet: no one has missed it
    for conf in session.exec(select(Confirmation).where(Confirmation.push_id == push.id)):
        if conf.method == ConfirmMethod.OFFICE.value:
            continue  # a 补登 is on time or late by the office's word, not by when it was recorded
        conf.late = conf.at > deadline
        session.add(conf)
    session.flush()


def withdraw_push(session: Session, push: Push) -> None:
    """Take `push` back: it no longer counts for anyone (no reminders, misses, ranks or confirmations)."""
    push.state = PushState.WITHDRAWN.value
    session.add(push)
    session.flush()


def earlier_push_of(session: Session, *, case_type: str, link_url: str, since: datetime) -> Push | None:
    """The newest push since `since`, not withdrawn, of the same library case type or the same link: pushing it
    again is most likely a slip (a withdrawn push does not count, it was taken back)."""
    earlier = earlier_pushes_of(session, case_type=case_type, link_url=link_url, since=since, limit=1)
    return earlier[0] if earlier else None


def earlier_pushes_of(
    session: Session, *, case_type: str, link_url: str, since: datetime, limit: int | None = None
) -> list[Push]:
    """The pushes since `since`, not withdrawn, of the same library case type or the same link, newest first."""
    same = [col(Alert.case_type) == case_type] if case_type else []
    same += [col(Alert.link_url) == link_url] if link_url else []
    if not same:
        return []
    condition = same[0] if len(same) == 1 else same[0] | same[1]
    stmt = (
        select(Push)
        .join(Alert, col(Alert.id) == Push.alert_id)
        .where(Push.created_at >= since, Push.state != PushState.WITHDRAWN.value, condition)
        .order_by(col(Push.id).desc())
    )
    return list(session.exec(stmt if limit is None else stmt.limit(limit)))


def latest_push(session: Session, *, include_withdrawn: bool = False) -> Push | None:
    """The most recent push."""
    stmt = select(Push).order_by(col(Push.id).desc()).limit(1)
    if not include_withdrawn:
        stmt = stmt.where(Push.state != PushState.WITHDRAWN.value)
    return session.exec(stmt).first()


# A push past its deadline still takes (late) confirmations for this long.
LATE_WINDOW = timedelta(days=7)


def unconfirmed_open_pushes(session: Session, unit_id: int, *, now: datetime, limit: int | None = None) -> list[Push]:
    """Pushes this unit has not confirmed, is not exempted from, and can still confirm (open, or closed within
    LATE_WINDOW), newest first; at most `limit` of them when given."""
    return list(session.exec(_unconfirmed_stmt(limit), params={"unit_id": unit_id, "since": now - LATE_WINDOW}))


@functools.cache
def _unconfirmed_stmt(limit: int | None):
    """The query of `unconfirmed_open_pushes`, built once (it runs for every confirmation)."""
    # NOT EXISTS rather than NOT IN (SELECT push_id ...): the same rows (push_id is never NULL), but it looks up
    # (push_id, unit_id) in the unique index for each candidate push instead of reading every confirmation the
    # unit ever made, which grows without end.
    done = (
        select(Confirmation.id)
        .where(Confirmation.push_id == Push.id, Confirmation.unit_id == bindparam("unit_id"))
        .exists()
    )
    exempted = (
        select(Exemption.id).where(Exemption.push_id == Push.id, Exemption.unit_id == bindparam("unit_id")).exists()
    )
    stmt = (
        select(Push)
        .where(
            (col(Push.state) == PushState.OPEN.value)
            | (
                (col(Push.state) == PushState.CLOSED.value)
                & (col(Push.deadline) > bindparam("since", type_=UTCDateTime()))
            ),
            ~done,
            ~exempted,
            aimed_sql(Push.id, bindparam("unit_id")),  # a targeted push is owed only by its units
        )
        .order_by(col(Push.id).desc())
    )
    return stmt if limit is None else stmt.limit(limit)


# Has the unit confirmed this push, been exempted from it (免转), or is the push aimed at other units? Either
# way a confirmation changes nothing.
_SETTLED = select(
    select(Confirmation.id)
    .where(Confirmation.push_id == bindparam("push_id"), Confirmation.unit_id == bindparam("unit_id"))
    .exists()
    | select(Exemption.id)
    .where(Exemption.push_id == bindparam("push_id"), Exemption.unit_id == bindparam("unit_id"))
    .exists()
    | ~aimed_sql(bindparam("push_id"), bindparam("unit_id"))
)


def record_confirmation(
    session: Session,
    *,
    push: Push,
    unit: Unit,
    liaison: Liaison,
    method: str,
    now: datetime,
    room_id: str,
    message_id: str,
    text: str = "",
    known_unconfirmed: bool = False,
) -> Confirmation | None:
    """Record that `unit` relayed `push`; None if it already had (a repeat changes nothing), is exempted from
    it (the office's 免转 stands until an admin takes it back with 撤销), or the push is aimed at other units.

    `known_unconfirmed`: the caller found `push` with `unconfirmed_open_pushes` for this unit in this unit of
    work, so the check for an earlier confirmation or an exemption would find none and is skipped.
    """
    if not known_unconfirmed and session.exec(_SETTLED, params={"push_id": push.id, "unit_id": unit.id}).first():
        return None
    conf = Confirmation(
        push_id=pk(push),
        unit_id=pk(unit),
        liaison_id=liaison.id,
        at=now,
        method=method,
        room_id=room_id,
        evidence_message_id=message_id,
        evidence_text=text[:500],
        late=now > push.deadline,
    )
    session.add(conf)
    session.flush()
    return conf


@dataclass(frozen=True)
class Progress:
    push: Push
    alert: Alert
    total: int  # the units expected to relay the push (exempted ones are not)
    confirmed: list[tuple[Unit, Confirmation]]
    missing: list[Unit]
    groups_sent: int = 0  # liaison groups that have the push so far
    groups_total: int = 0
    exempted: list[tuple[Unit, Exemption]] = field(default_factory=list)  # 免转, in roster order

    @property
    def late(self) -> int:
        return sum(1 for _, c in self.confirmed if c.late)

    @property
    def added(self) -> list[tuple[Unit, Confirmation]]:
        """The confirmations the office recorded on a unit's behalf (补登)."""
        return [(u, c) for u, c in self.confirmed if c.method == ConfirmMethod.OFFICE.value]


def progress(session: Session, push: Push) -> Progress:
    """Who of the units expected to relay `push` has confirmed it and who has not, and who is exempted."""
    push_id = pk(push)
    units = expected_units(session, [push_id])[push_id]
    confs = {c.unit_id: c for c in session.exec(select(Confirmation).where(Confirmation.push_id == push_id))}
    confirmed = [(u, confs[u.id]) for u in units if u.id in confs]
    missing = [u for u in units if u.id not in confs]
    exempted = [
        (u, e)
        for u, e in session.exec(
            select(Unit, Exemption)
            .join(Exemption, col(Exemption.unit_id) == Unit.id)
            .where(Exemption.push_id == push_id, Unit.active == True)  # noqa: E712
            .order_by(col(Unit.id))
        )
    ]
    alert = session.get_one(Alert, push.alert_id)
    sent, total = push_delivery(session, push_id)
    return Progress(push, alert, len(units), confirmed, missing, sent, total, exempted)


@dataclass(frozen=True)
class Ack:
    room_id: str
    push: Push
    units: list[str]
    late: bool
    done: int
    total: int


def due_acks(
    session: Session, *, now: datetime, quiet: timedelta, wait_rooms: frozenset[str] = frozenset()
) -> list[Ack]:
    """Acknowledgements owed for groups that have been quiet for `quiet` (not those in `wait_rooms`); marks them
    acknowledged."""
    owed = list(
        session.exec(select(Confirmation).where(col(Confirmation.acked_at).is_(None)).order_by(col(Confirmation.id)))
    )
    by_room: dict[str, list[Confirmation]] = defaultdict(list)
    for conf in owed:
        by_room[conf.room_id].append(conf)
    acks: list[Ack] = []
    for room_id, confs in by_room.items():
        if max(c.at for c in confs) > now - quiet or room_id in wait_rooms:
            continue  # people are still confirming here (wait for the quiet spell), or the room heard from us lately
        by_push: dict[tuple[int, bool], list[Confirmation]] = defaultdict(list)
        for conf in confs:
            by_push[(conf.push_id, conf.late)].append(conf)
            conf.acked_at = now
            session.add(conf)
        for (push_id, late), group in sorted(by_push.items()):
            push = session.get_one(Push, push_id)
            names = [session.get_one(Unit, c.unit_id).name for c in group]
            done = len(session.exec(select(Confirmation.id).where(Confirmation.push_id == push_id)).all())
            total = len(expected_units(session, [push_id])[push_id])  # per push: its exempted units do not count
            acks.append(Ack(room_id, push, names, late, done, total))
    return acks
