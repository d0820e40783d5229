"""The quarterly review (季点评, the work plan's "月通报、季点评"): a quarter's relay report, as `build_report` makes
it, with every unit's trend against the quarter before and the lists drawn from it.

The rate compared is the on-time share (按时率) the ranking orders by (bot/reports/ranking.py). A unit is compared
only when it received pushes in both quarters; one without any last quarter is 新. 进步最大 and 下滑最多 follow the
ranking's list rule: the largest changes, every unit tied with the last of them, a tie too long to name counted.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import date, datetime
from typing import NamedTuple
from zoneinfo import ZoneInfo

from sqlmodel import Session

from bot.domain.escalation import Ladder
from bot.domain.periods import previous_period
from bot.reports.build import ConfirmationCache, build_report
from bot.reports.figures import QuarterTrend, Report, TrendRow
from bot.reports.ranking import draw_board


class _Placed(NamedTuple):
    unit: str
    rank: int


def build_period_report(
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
    """The report of a period: `build_report`'s, and for a quarter the review with its trend (`quarter_report`)."""
    if kind == "quarter":
        return quarter_report(session, start=start, end=end, now=now, tz=tz, ladder=ladder, cache=cache)
    return build_report(session, kind=kind, start=start, end=end, now=now, tz=tz, ladder=ladder, cache=cache)


def quarter_report(
    session: Session,
    *,
    start: date,
    end: date,
    now: datetime,
    tz: ZoneInfo,
    ladder: Ladder,
    cache: ConfirmationCache | None = None,
) -> Report:
    """The quarter [start, end] (a calendar quarter) with every unit's trend against the quarter before it."""
    current = build_report(session, kind="quarter", start=start, end=end, now=now, tz=tz, ladder=ladder, cache=cache)
    prev_start, prev_end = previous_period("quarter", start)
    previous = build_report(
        session, kind="quarter", start=prev_start, end=prev_end, now=now, tz=tz, ladder=ladder, cache=cache
    )
    return dataclasses.replace(current, trend=compare(current, previous))


def compare(current: Report, previous: Report) -> QuarterTrend:
    """Each unit of `current` against its figures in `previous` (matched by name: unit names are unique)."""
    before = {u.unit: u for u in previous.units}
    rows = []
    for u in current.units:
        p = before.get(u.unit)
        rows.append(
            TrendRow(
                unit=u.unit,
                kind=u.kind,
                rank=u.rank,
                received=u.received,
                on_time=u.on_time,
                missed=u.missed,
                previous_received=p.received if p else 0,
                previous_on_time=p.on_time if p else 0,
                previous_missed=p.missed if p else 0,
            )
        )
    improved = _board(rows, lambda change: change > 0, best_first=True)
    fallen = _board(rows, lambda change: change < 0, best_first=False)
    return QuarterTrend(
        previous_start=previous.period_start,
        previous_end=previous.period_end,
        previous_pushes=len(previous.pushes),
        rows=rows,
        improved=improved.units,
        improved_named=improved.named,
        fallen=fallen.units,
        fallen_named=fallen.named,
    )


def _board(rows: list[TrendRow], wanted: Callable[[float], bool], *, best_first: bool):
    """The units whose change is `wanted`, largest first (rises) or most negative first (falls), by the
    ranking's list rule; units with the same change (as shown, to 0.1 point) share a place, in name order."""
    changed = [(r.change, r.unit) for r in rows if r.change is not None and wanted(r.change)]
    changed.sort(key=lambda item: (-item[0] if best_first else item[0], item[1]))
    placed: list[_Placed] = []
    for i, (change, unit) in enumerate(changed):
        same = i and change == changed[i - 1][0]
        placed.append(_Placed(unit, placed[-1].rank if same else i + 1))
    return draw_board(placed, eligible=lambda _: True, worst_first=False)
