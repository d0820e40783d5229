"""Report figures for a day, a week or a month: per unit, per push, rankings and escalations."""

from __future__ import annotations

import dataclasses
import statistics
import threading
from collections import Counter, OrderedDict
from collections.abc import Iterable, Iterator, Mapping, Sequence, Set
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, TypedDict
from zoneinfo import ZoneInfo

from sqlalchemy import BigInteger, Row, String, case, cast, extract, type_coerce
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from bot.domain.escalation import REPORTED_LEVELS, Ladder, standings
from bot.domain.periods import period_of, previous_period  # noqa: F401 - callers import them from here
from bot.domain.reach import reach_by_unit
from bot.domain.relay import expected_unit_ids, push_targets
from bot.reports.figures import CorrectionRow, EvidenceRow, PushRow, Report, UnitRow
from bot.reports.ranking import draw_board, on_black_list, on_red_list, ranked_order
from bot.storage.models import Alert, Confirmation, ConfirmMethod, Correction, Push, PushState, Unit

KIND_NAMES = {"day": "日报", "week": "周通报", "month": "月通报", "quarter": "季点评"}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_UNITS = 1 << 20  # unit ids below this (a district has hundreds of units) pack with their push id into one integer
_MICROSECOND = timedelta(microseconds=1)


class _UnitFigures(TypedDict):
    """A unit's figures before it is ranked: UnitRow's fields but `rank`."""

    unit: str
    kind: str
    received: int
    relayed: int
    on_time: int
    late: int
    missed: int
    median_minutes: float | None
    level: str
    added: int
    exempted: int


@dataclasses.dataclass
class _Counted:
    """What a period's confirmations add up to, counting only each push's expected units."""

    by_push: dict[int, set[int]]  # push id -> the expected units that confirmed it
    added_by_push: dict[int, set[int]]  # push id -> those of them the office recorded (补登)
    # unit id -> (confirmations, late ones, median minutes from push to confirmation, 补登 among them)
    by_unit: dict[int, tuple[int, int, float | None, int]]


@dataclasses.dataclass(frozen=True)
class _PushRows:
    """One push's confirmations as a report reads them (every unit's, expected or not)."""

    revision: int  # push.revision when they were read
    pushed_at: datetime
    units: frozenset[int]  # the units that confirmed
    late: frozenset[int]  # those of them that were late
    added: frozenset[int]  # those the office recorded (补登)
    minutes: dict[int, float]  # unit -> minutes from the push to its confirmation (not for a 补登)
    evidence: list[tuple[int, str, str]]  # (unit id, verdict, reason) of those with a screenshot or a verdict


class ConfirmationCache:
    """Each push's confirmations, kept between report builds while the push's revision is unchanged.

    A month of a large district is 100 000 confirmations; reading them is most of a report's time. A database
    trigger counts every change to a push's confirmations in push.revision (migration 0007), so a push whose
    revision has not moved has the very rows read before. Exemptions, units and everything else are read anew
    each time (they are small). Bounded: the pushes least recently used go first.
    """

    def __init__(self, max_pushes: int = 3000) -> None:
        self._pushes: OrderedDict[int, _PushRows] = OrderedDict()
        self._max = max_pushes
        self._lock = threading.Lock()  # the console builds reports in worker threads
        self.read_pushes = 0  # how many pushes' rows were read from the database (for tests and benchmarks)

    def rows(self, session: Session, pushes: Sequence[tuple[int, datetime, int]]) -> dict[int, _PushRows]:
        """Per push id (id, created at, revision), its rows: kept ones where the push is unchanged."""
        with self._lock:
            return self._rows(session, pushes)

    def _rows(self, session: Session, pushes: Sequence[tuple[int, datetime, int]]) -> dict[int, _PushRows]:
        stale = [
            (push_id, created_at, revision)
            for push_id, created_at, revision in pushes
            if (kept := self._pushes.get(push_id)) is None or (kept.revision, kept.pushed_at) != (revision, created_at)
        ]
        for first in range(0, len(stale), 500):  # a bounded IN list
            self._read(session, stale[first : first + 500])
        found = {}
        for push_id, _, _ in pushes:
            found[push_id] = self._pushes[push_id]
            self._pushes.move_to_end(push_id)
        while len(self._pushes) > self._max:
            self._pushes.popitem(last=False)
        return found

    def _read(self, session: Session, pushes: Sequence[tuple[int, datetime, int]]) -> None:
        push_ids = [p[0] for p in pushes]
        pushed = {push_id: created_at for push_id, created_at, _ in pushes}
        units: dict[int, set[int]] = {p: set() for p in push_ids}
        late: dict[int, set[int]] = {p: set() for p in push_ids}
        added: dict[int, set[int]] = {p: set() for p in push_ids}
        minutes: dict[int, dict[int, float]] = {p: {} for p in push_ids}
        for push_id, unit_id, is_late, by_office, seconds in _confirmation_rows(session, pushed):
            units[push_id].add(unit_id)
            if is_late:
                late[push_id].add(unit_id)
            if by_office:
                added[push_id].add(unit_id)
            else:
                minutes[push_id][unit_id] = seconds / 60
        evidence: dict[int, list[tuple[int, str, str]]] = {p: [] for p in push_ids}
        for push_id, unit_id, verdict, reason in session.execute(
            sa_select(
                col(Confirmation.push_id),
                col(Confirmation.unit_id),
                col(Confirmation.verdict),
                col(Confirmation.verdict_reason),
            )
            .where(
                col(Confirmation.push_id).in_(push_ids),
                (col(Confirmation.evidence_file) != "") | (col(Confirmation.verdict) != ""),
                # Seen in a unit group (已核验 by observation): no screenshot to count.
                col(Confirmation.method) != ConfirmMethod.OBSERVED.value,
            )
            .order_by(col(Confirmation.push_id), col(Confirmation.id))
        ):
            evidence[push_id].append((unit_id, verdict, reason))
        for push_id, created_at, revision in pushes:
            self._pushes[push_id] = _PushRows(
                revision,
                created_at,
                frozenset(units[push_id]),
                frozenset(late[push_id]),
                frozenset(added[push_id]),
                minutes[push_id],
                evidence[push_id],
            )
        self.read_pushes += len(pushes)


def _confirmation_rows(session: Session, pushed: dict[int, datetime]) -> Iterator[tuple[int, int, bool, bool, float]]:
    """(push id, unit id, late, 补登, seconds from the push to it) of every confirmation of the pushes in
    `pushed` (push id -> created at).

    No ORM objects and no Row objects (100 000 of them cost more than the query): the four small numbers come packed
    into one integer straight from the driver's cursor. The seconds are what `(at - pushed).total_seconds()`
    gives, to the last bit: PostgreSQL counts the microseconds since 1970; SQLite keeps the text SQLAlchemy wrote
    ("2026-11-02 01:13:15.946004", UTC), which datetime.fromisoformat reads.
    """
    office = ConfirmMethod.OFFICE.value
    sqlite = session.get_bind().dialect.name == "sqlite"
    packed = (
        (col(Confirmation.push_id) * _UNITS + col(Confirmation.unit_id)) * 4
        + case((col(Confirmation.late), 2), else_=0)
        + case((col(Confirmation.method) == office, 1), else_=0)
    )
    at = (
        type_coerce(col(Confirmation.at), String)
        if sqlite
        else cast(extract("epoch", col(Confirmation.at)) * 1_000_000, BigInteger)
    )
    statement = sa_select(packed, at).where(col(Confirmation.push_id).in_(list(pushed)))
    compiled = statement.compile(dialect=session.get_bind().dialect, compile_kwargs={"literal_binds": True})
    cursor = session.connection().connection.cursor()
    try:
        cursor.execute(str(compiled))
        rows = cursor.fetchall()
    finally:
        cursor.close()
    if sqlite:
        start = {push_id: created_at.astimezone(UTC).replace(tzinfo=None) for push_id, created_at in pushed.items()}
        parse = datetime.fromisoformat
        for key, when in rows:
            push_id, unit_id = key // (4 * _UNITS), key // 4 % _UNITS
            yield push_id, unit_id, key & 2 > 0, key & 1 > 0, (parse(when) - start[push_id]).total_seconds()
    else:
        micros = {push_id: (created_at - _EPOCH) // _MICROSECOND for push_id, created_at in pushed.items()}
        for key, when in rows:
            push_id, unit_id = key // (4 * _UNITS), key // 4 % _UNITS
            yield push_id, unit_id, key & 2 > 0, key & 1 > 0, (when - micros[push_id]) / 1_000_000


def _count_confirmations(
    push_ids: list[int], rows: dict[int, _PushRows], active: Iterable[int], exempted_ids: Mapping[int, Set[int]]
) -> _Counted:
    """Each push's confirming units, and per unit its count, late count, median minutes and 补登 count.

    Only the confirmations of a push's expected units count (relay.expected_unit_ids: the active units less
    those exempted from the push, `exempted_ids`): not an inactive unit's, not an exempted one's. Set operations
    and Counters, not a Python step per confirmation, but for the minutes.
    """
    active = frozenset(active)
    by_push: dict[int, set[int]] = {}
    added_by_push: dict[int, set[int]] = {}
    relayed: Counter[int] = Counter()
    lates: Counter[int] = Counter()
    added: Counter[int] = Counter()
    minutes: dict[int, list[float]] = {}
    for push_id in push_ids:
        r = rows[push_id]
        counted = r.units & active
        if exempted_ids[push_id]:
            counted -= exempted_ids[push_id]
        by_push[push_id] = set(counted)
        relayed.update(counted)
        if r.late:
            lates.update(r.late & counted)
        here = r.added & counted if r.added else frozenset()
        added_by_push[push_id] = set(here)
        added.update(here)
        for unit_id, value in r.minutes.items():
            if unit_id in counted:
                if (mine := minutes.get(unit_id)) is None:
                    mine = minutes[unit_id] = []
                mine.append(value)
    by_unit = {
        unit_id: (
            n,
            lates[unit_id],
            statistics.median(minutes[unit_id]) if unit_id in minutes else None,
            added[unit_id],
        )
        for unit_id, n in relayed.items()
    }
    return _Counted(by_push, added_by_push, by_unit)


def _title(kind: str, start: date, end: date) -> str:
    span = f"{start.month}月{start.day}日" if start == end else f"{start.month}月{start.day}日—{end.month}月{end.day}日"
    if kind == "month":
        span = f"{start.year}年{start.month}月"
    if kind == "quarter":
        span = f"{start.year}年第{(start.month - 1) // 3 + 1}季度"
    return f"反诈预警转发{KIND_NAMES[kind]}（{span}）"


def build_report(
    session: Session,
    *,
    kind: str,
    start: date,
    end: date,
    now: datetime,
    tz: ZoneInfo,
    ladder: Ladder,
    cache: ConfirmationCache | None = None,
) -> Report:
    """Figures for the pushes whose deadline fell in [start, end] (local days), as known at `now`.

    Reads plain columns, not ORM objects: a month of a large district is 100 000 confirmations. `cache`: the
    confirmations read by earlier builds, kept by the caller (the web console) to read only what changed.
    """
    lo = datetime.combine(start, time(0), tzinfo=tz)
    hi = datetime.combine(end + timedelta(days=1), time(0), tzinfo=tz)
    pushes = session.execute(
        sa_select(col(Push.id), col(Push.created_at), col(Push.deadline), col(Alert.title), col(Push.revision))
        .outerjoin(Alert, col(Alert.id) == Push.alert_id)
        .where(col(Push.deadline) >= lo, col(Push.deadline) < hi, col(Push.state) != PushState.WITHDRAWN.value)
        .order_by(col(Push.id))
    ).all()
    push_ids = [p[0] for p in pushes]
    # The active units, in roster order. A primary key read from the database is never None (the `is not None`
    # is for the type checker).
    units = [
        (unit_id, name, unit_kind)
        for unit_id, name, unit_kind in session.exec(
            select(col(Unit.id), col(Unit.name), col(Unit.kind)).where(Unit.active == True).order_by(col(Unit.id))  # noqa: E712
        )
        if unit_id is not None
    ]
    unit_names = {unit_id: name for unit_id, name, _ in units}
    # Plain ids throughout, never ORM objects: a month is 300 units x 400 pushes.
    expected = expected_unit_ids(session, push_ids, active=list(unit_names))
    expected_ids = {push_id: set(unit_ids) for push_id, unit_ids in expected.items()}
    # Per push, the active units not expected to relay it: exempted (免转) or, for a targeted push, not aimed at.
    exempted_ids = {push_id: unit_names.keys() - ids for push_id, ids in expected_ids.items()}
    # Of those, the units a targeted push was not aimed at: neither 免转 nor received, and a unit no push of the
    # period was aimed at is not in the report at all.
    aimed = push_targets(session, push_ids)
    not_aimed = {push_id: unit_names.keys() - units for push_id, units in aimed.items()}
    by_push: dict[int, set[int]] = {p: set() for p in push_ids}
    added_by_push: dict[int, set[int]] = {p: set() for p in push_ids}
    # unit id -> (confirmations, late ones, median minutes from push to confirmation, 补登 among them)
    by_unit: dict[int, tuple[int, int, float | None, int]] = {}
    evidence: list[EvidenceRow] = []
    correction_rows: Sequence[Row[*tuple[Any, ...]]] = []
    if push_ids:
        kept = (cache or ConfirmationCache()).rows(session, [(p[0], p[1], p[4]) for p in pushes])
        counted = _count_confirmations(push_ids, kept, unit_names, exempted_ids)
        by_push, added_by_push, by_unit = counted.by_push, counted.added_by_push, counted.by_unit
        evidence = [
            EvidenceRow(push_id, unit_names.get(unit_id, "?"), verdict, reason)
            for push_id in push_ids
            for unit_id, verdict, reason in kept[push_id].evidence
        ]
        correction_rows = session.execute(  # seven columns: SQLAlchemy's select (sqlmodel's is typed for four)
            sa_select(
                col(Correction.push_id),
                col(Unit.name),
                col(Correction.kind),
                col(Correction.reason),
                col(Correction.by_name),
                col(Correction.by_id),
                col(Correction.at),
            )
            .join(Unit, col(Unit.id) == Correction.unit_id)
            .where(col(Correction.push_id).in_(push_ids))
            .order_by(col(Correction.at), col(Correction.id))
        ).all()
    exempted_count = Counter(unit_id for ids in exempted_ids.values() for unit_id in ids)
    not_aimed_count = Counter(unit_id for ids in not_aimed.values() for unit_id in ids)
    levels = standings(session, as_of=now, tz=tz, ladder=ladder)
    reached = reach_by_unit(session, lo=lo, hi=hi) if push_ids else {}

    rows: list[_UnitFigures] = []
    unit_ids = {name: unit_id for unit_id, name, _ in units}
    for unit_id, name, unit_kind in units:
        relayed, late, median, added = by_unit.get(unit_id, (0, 0, None, 0))
        skipped = not_aimed_count[unit_id]
        if pushes and skipped == len(pushes):
            continue  # every push of the period was aimed at other units
        exempted = exempted_count[unit_id] - skipped
        received = len(pushes) - exempted - skipped
        rows.append(
            _UnitFigures(
                unit=name,
                kind=unit_kind,
                received=received,
                relayed=relayed,
                on_time=relayed - late,
                late=late,
                missed=received - relayed,
                median_minutes=round(median, 1) if median is not None else None,
                level=levels[unit_id].level if unit_id in levels else "",
                added=added,
                exempted=exempted,
            )
        )
    # Best first, ties sharing a rank, by the one rule of bot/reports/ranking.py.
    ranked = [
        dataclasses.replace(u, rank=rank, reached=reached.get(unit_ids[u.unit], 0))
        for rank, u in ranked_order([UnitRow(rank=0, **row) for row in rows])
    ]
    red = draw_board(ranked, eligible=on_red_list, worst_first=False)
    black = draw_board(ranked, eligible=on_black_list, worst_first=True)
    # In ranking order, like every list of the report: not the roster file's order.
    escalations = {level: [u.unit for u in ranked if u.level == level] for level in REPORTED_LEVELS}
    push_rows = []
    for push_id, created_at, deadline, title, _ in pushes:
        done = by_push[push_id]  # only expected units: the others' confirmations were left out above
        added_here = added_by_push[push_id]
        mine = expected[push_id]  # in roster order, as every list of units of a push
        exempted_here = exempted_ids[push_id] - not_aimed.get(push_id, set())
        push_rows.append(
            PushRow(
                n=push_id,
                title=title if title is not None else "",
                pushed_at=created_at,
                deadline=deadline,
                confirmed=len(done),  # the expected units that confirmed
                total=len(mine),
                missing_units=[unit_names[u] for u in mine if u not in done],
                added_units=[unit_names[u] for u in mine if u in added_here] if added_here else [],
                exempted_units=[unit_names[u] for u in unit_names if u in exempted_here] if exempted_here else [],
            )
        )
    corrections = [
        CorrectionRow(push_id, unit, kind, reason, by_name or by_id, at)
        for push_id, unit, kind, reason, by_name, by_id, at in correction_rows
    ]
    return Report(
        kind=kind,
        title=_title(kind, start, end),
        period_start=start,
        period_end=end,
        generated_at=now,
        units=ranked,
        pushes=push_rows,
        red=red.units,
        black=black.units,
        red_named=red.named,
        black_named=black.named,
        escalations={k: v for k, v in escalations.items() if v},
        evidence=evidence,
        corrections=corrections,
    )
