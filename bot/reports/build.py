"""Report figures for a day, a week or a month: per unit, per push, rankings and escalations."""

from __future__ import annotations

import dataclasses
import statistics
from collections import Counter
from collections.abc import Sequence
from datetime import date, datetime, time, timedelta
from typing import Any, TypedDict
from zoneinfo import ZoneInfo

from sqlalchemy import DateTime, Row, type_coerce
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from bot.domain.escalation import REPORTED_LEVELS, Ladder, standings
from bot.domain.periods import period_of, previous_period  # noqa: F401 - callers import them from here
from bot.domain.relay import expected_unit_ids
from bot.reports.figures import CorrectionRow, EvidenceRow, PushRow, Report, UnitRow
from bot.reports.ranking import draw_board, on_black_list, on_red_list, ranked_order
from bot.storage.models import Alert, Confirmation, ConfirmMethod, Correction, Push, PushState, Unit

KIND_NAMES = {"day": "日报", "week": "周通报", "month": "月通报", "quarter": "季点评"}
# A time column read as the driver returns it, without models.UTCDateTime's per-row Python conversion: only
# ever subtracted from another time read the same way (both naive UTC on SQLite, both aware on PostgreSQL).
_RAW_TIME = DateTime(timezone=True)


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


def _title(kind: str, start: date, end: date) -> str:
    span = f"{start.month}月{start.day}日" if start == end else f"{start.month}月{start.day}日—{end.month}月{end.day}日"
    if kind == "month":
        span = f"{start.year}年{start.month}月"
    if kind == "quarter":
        span = f"{start.year}年第{(start.month - 1) // 3 + 1}季度"
    return f"反诈预警转发{KIND_NAMES[kind]}（{span}）"


def build_report(
    session: Session, *, kind: str, start: date, end: date, now: datetime, tz: ZoneInfo, ladder: Ladder
) -> Report:
    """Figures for the pushes whose deadline fell in [start, end] (local days), as known at `now`.

    Reads plain columns, not ORM objects: a month of a large district is 100 000 confirmations.
    """
    lo = datetime.combine(start, time(0), tzinfo=tz)
    hi = datetime.combine(end + timedelta(days=1), time(0), tzinfo=tz)
    # created_at twice: as an aware datetime for the report, and as the driver gives it (naive UTC on SQLite,
    # aware on PostgreSQL) for subtracting the confirmations' times read the same way below.
    # SQLAlchemy's select for more than four columns (sqlmodel's is typed for up to four), so session.execute,
    # which session.exec calls for it anyway.
    pushes = session.execute(
        sa_select(
            col(Push.id),
            col(Push.created_at),
            col(Push.deadline),
            col(Alert.title),
            type_coerce(col(Push.created_at), _RAW_TIME).label("created_raw"),
        )
        .outerjoin(Alert, col(Alert.id) == Push.alert_id)
        .where(col(Push.deadline) >= lo, col(Push.deadline) < hi, col(Push.state) != PushState.WITHDRAWN.value)
        .order_by(col(Push.id))
    ).all()
    push_ids = [p[0] for p in pushes]
    pushed_at = {p[0]: p[4] for p in pushes}
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
    # Per push, the active units exempted from it (免转): usually none.
    exempted_ids = {push_id: unit_names.keys() - ids for push_id, ids in expected_ids.items()}
    by_push: dict[int, set[int]] = {p: set() for p in push_ids}
    added_by_push: dict[int, set[int]] = {p: set() for p in push_ids}
    # unit id -> [confirmations, late ones, minutes from push to confirmation of each, 补登 among them]
    by_unit: dict[int, list] = {}
    evidence_rows: Sequence[tuple[int, int, str, str]] = []
    correction_rows: Sequence[Row[*tuple[Any, ...]]] = []
    if push_ids:
        # Through the session's connection (Core): plain rows, without the ORM's per-row bookkeeping.
        confs = session.connection().execute(
            sa_select(
                col(Confirmation.push_id),
                col(Confirmation.unit_id),
                type_coerce(col(Confirmation.at), _RAW_TIME),
                col(Confirmation.late),
                col(Confirmation.method),
            ).where(col(Confirmation.push_id).in_(push_ids))
        )
        office = ConfirmMethod.OFFICE.value
        for push_id, unit_id, at, is_late, method in confs.all():
            if unit_id not in expected_ids[push_id]:
                continue  # an inactive unit, or one exempted from the push: not counted either way
            by_push[push_id].add(unit_id)
            mine = by_unit.get(unit_id)
            if mine is None:
                mine = by_unit[unit_id] = [0, 0, [], 0]
            mine[0] += 1
            mine[1] += bool(is_late)
            if method == office:
                # The time the office recorded it is not the time the unit relayed: no part of the median.
                mine[3] += 1
                added_by_push[push_id].add(unit_id)
            else:
                mine[2].append((at - pushed_at[push_id]).total_seconds() / 60)
        evidence_rows = session.exec(
            select(
                col(Confirmation.push_id),
                col(Confirmation.unit_id),
                col(Confirmation.verdict),
                col(Confirmation.verdict_reason),
            )
            .where(
                col(Confirmation.push_id).in_(push_ids),
                (col(Confirmation.evidence_file) != "") | (col(Confirmation.verdict) != ""),
            )
            .order_by(col(Confirmation.push_id), col(Confirmation.id))
        ).all()
        correction_rows = session.execute(  # seven columns: SQLAlchemy's select, as for the pushes above
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
    levels = standings(session, as_of=now, tz=tz, ladder=ladder)

    rows: list[_UnitFigures] = []
    for unit_id, name, unit_kind in units:
        relayed, late, minutes, added = by_unit.get(unit_id, (0, 0, [], 0))
        exempted = exempted_count[unit_id]
        received = len(pushes) - exempted
        rows.append(
            _UnitFigures(
                unit=name,
                kind=unit_kind,
                received=received,
                relayed=relayed,
                on_time=relayed - late,
                late=late,
                missed=received - relayed,
                median_minutes=round(statistics.median(minutes), 1) if minutes else None,
                level=levels[unit_id].level if unit_id in levels else "",
                added=added,
                exempted=exempted,
            )
        )
    # Best first, ties sharing a rank, by the one rule of bot/reports/ranking.py.
    ranked = [dataclasses.replace(u, rank=rank) for rank, u in ranked_order([UnitRow(rank=0, **row) for row in rows])]
    red = draw_board(ranked, eligible=on_red_list, worst_first=False)
    black = draw_board(ranked, eligible=on_black_list, worst_first=True)
    # In ranking order, like every list of the report: not the roster file's order.
    escalations = {level: [u.unit for u in ranked if u.level == level] for level in REPORTED_LEVELS}
    push_rows = []
    for push_id, created_at, deadline, title, _ in pushes:
        done = by_push[push_id]  # only expected units: the others' confirmations were left out above
        added = added_by_push[push_id]
        mine = expected[push_id]  # in roster order, as every list of units of a push
        exempted_here = exempted_ids[push_id]
        push_rows.append(
            PushRow(
                n=push_id,
                title=title if title is not None else "",
                pushed_at=created_at,
                deadline=deadline,
                confirmed=len(done),  # the expected units that confirmed
                total=len(mine),
                missing_units=[unit_names[u] for u in mine if u not in done],
                added_units=[unit_names[u] for u in mine if u in added] if added else [],
                exempted_units=[unit_names[u] for u in unit_names if u in exempted_here] if exempted_here else [],
            )
        )
    evidence = [
        EvidenceRow(push_id, unit_names.get(unit_id, "?"), verdict, reason)
        for push_id, unit_id, verdict, reason in evidence_rows
    ]
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
