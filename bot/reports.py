"""Report figures for a day, a week or a month: per unit, per push, rankings and escalations."""

from __future__ import annotations

import statistics
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlmodel import Session, col, select

from bot.escalation import REPORTED_LEVELS, Ladder, standings
from bot.models import Alert, Confirmation, Push, PushState
from bot.relay import active_units
from bot.report_data import EvidenceRow, PushRow, Report, UnitRow

KIND_NAMES = {"day": "日报", "week": "周通报", "month": "月通报"}
BOARD_SIZE = 3


def period_of(kind: str, day: date) -> tuple[date, date]:
    """The day, the Monday-Sunday week, or the calendar month that contains `day`."""
    if kind == "day":
        return day, day
    if kind == "week":
        start = day - timedelta(days=day.weekday())
        return start, start + timedelta(days=6)
    if kind == "month":
        start = day.replace(day=1)
        nxt = (start + timedelta(days=32)).replace(day=1)
        return start, nxt - timedelta(days=1)
    raise ValueError(f"unknown report kind {kind!r}")


def previous_period(kind: str, day: date) -> tuple[date, date]:
    """The period before the one containing `day` (what Monday's and the 1st's reports cover)."""
    start, _ = period_of(kind, day)
    return period_of(kind, start - timedelta(days=1))


def _title(kind: str, start: date, end: date) -> str:
    span = f"{start.month}月{start.day}日" if start == end else f"{start.month}月{start.day}日—{end.month}月{end.day}日"
    if kind == "month":
        span = f"{start.year}年{start.month}月"
    return f"反诈预警转发{KIND_NAMES[kind]}（{span}）"


def build_report(
    session: Session, *, kind: str, start: date, end: date, now: datetime, tz: ZoneInfo, ladder: Ladder
) -> Report:
    """Figures for the pushes whose deadline fell in [start, end] (local days), as known at `now`."""
    lo = datetime.combine(start, time(0), tzinfo=tz)
    hi = datetime.combine(end + timedelta(days=1), time(0), tzinfo=tz)
    pushes = list(
        session.exec(
            select(Push)
            .where(Push.deadline >= lo, Push.deadline < hi, Push.state != PushState.WITHDRAWN.value)
            .order_by(Push.id)
        )
    )
    push_ids = [p.id for p in pushes]
    confs = list(session.exec(select(Confirmation).where(col(Confirmation.push_id).in_(push_ids)))) if push_ids else []
    by_unit: dict[int, list[Confirmation]] = {}
    by_push: dict[int, set[int]] = {p: set() for p in push_ids}
    for conf in confs:
        by_unit.setdefault(conf.unit_id, []).append(conf)
        by_push[conf.push_id].add(conf.unit_id)
    pushed_at = {p.id: p.created_at for p in pushes}
    units = active_units(session)
    levels = standings(session, as_of=now, tz=tz, ladder=ladder)

    rows = []
    for unit in units:
        mine = by_unit.get(unit.id, [])
        late = sum(1 for c in mine if c.late)
        minutes = [(c.at - pushed_at[c.push_id]).total_seconds() / 60 for c in mine]
        rows.append(
            dict(
                unit=unit.name,
                kind=unit.kind,
                received=len(pushes),
                relayed=len(mine),
                on_time=len(mine) - late,
                late=late,
                missed=len(pushes) - len(mine),
                median_minutes=round(statistics.median(minutes), 1) if minutes else None,
                level=levels[unit.id].level if unit.id in levels else "",
            )
        )
    # Best first: most on time, fewest missed, fewest late, fastest; the roster order breaks ties.
    order = sorted(
        range(len(rows)),
        key=lambda i: (
            -rows[i]["on_time"],
            rows[i]["missed"],
            rows[i]["late"],
            rows[i]["median_minutes"] if rows[i]["median_minutes"] is not None else float("inf"),
            i,
        ),
    )
    ranked = [UnitRow(rank=r + 1, **rows[i]) for r, i in enumerate(order)]
    red = [u.unit for u in ranked if u.received and u.missed == 0 and u.late == 0][:BOARD_SIZE]
    black = [u.unit for u in reversed(ranked) if u.missed or u.late][:BOARD_SIZE]
    escalations = {
        level: [u.name for u in units if levels.get(u.id) and levels[u.id].level == level] for level in REPORTED_LEVELS
    }
    unit_names = {u.id: u.name for u in units}
    push_rows = []
    for push in pushes:
        alert = session.get(Alert, push.alert_id)
        done = by_push[push.id]
        push_rows.append(
            PushRow(
                n=push.id,
                title=alert.title if alert else "",
                pushed_at=push.created_at,
                deadline=push.deadline,
                confirmed=len([u for u in units if u.id in done]),
                total=len(units),
                missing_units=[unit_names[u.id] for u in units if u.id not in done],
            )
        )
    evidence = [
        EvidenceRow(c.push_id, unit_names.get(c.unit_id, "?"), c.verdict, c.verdict_reason)
        for c in sorted(confs, key=lambda c: (c.push_id, c.id))
        if c.evidence_file or c.verdict
    ]
    return Report(
        kind=kind,
        title=_title(kind, start, end),
        period_start=start,
        period_end=end,
        generated_at=now,
        units=ranked,
        pushes=push_rows,
        red=red,
        black=black,
        escalations={k: v for k, v in escalations.items() if v},
        evidence=evidence,
    )
