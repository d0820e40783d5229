"""The short text of a relay report, and the lines of its 红榜 and 黑榜 (also written under the .xlsx's list)."""

from __future__ import annotations

from bot.content import Texts
from bot.reports.figures import QuarterTrend, Report, TrendRow, UnitRow
from bot.reports.ranking import BOARD_SIZE
from bot.storage.models import EvidenceVerdict

NAME_SEP = "、"


def report_text(texts: Texts, report: Report) -> str:
    """The short text posted with a report's files (or alone, when the period had no pushes)."""
    if not report.pushes:
        return texts.t("report.no_pushes", title=report.title)
    lines = [
        texts.t(
            "report.summary",
            title=report.title,
            pushes=len(report.pushes),
            expected=sum(u.received for u in report.units),
            on_time=sum(u.on_time for u in report.units),
            late=sum(u.late for u in report.units),
            missed=sum(u.missed for u in report.units),
        )
    ]
    if report.trend is not None:
        lines += quarter_lines(texts, report, report.trend)
    else:
        lines += board_lines(texts, report)
    for level, names in report.escalations.items():
        lines.append(texts.t("report.escalation", level=level, names=NAME_SEP.join(names)))
    if report.evidence:
        count = {v: sum(1 for e in report.evidence if e.verdict == v.value) for v in EvidenceVerdict}
        lines.append(
            texts.t(
                "report.evidence",
                total=len(report.evidence),
                verified=count[EvidenceVerdict.VERIFIED],
                doubtful=count[EvidenceVerdict.DOUBTFUL],
            )
        )
    reached = [u.reached for u in report.units if u.reached]
    if reached:
        lines.append(texts.t("reach_report.total", people=sum(reached), units=len(reached)))
    added = sum(len(p.added_units) for p in report.pushes)
    exempted = sum(len(p.exempted_units) for p in report.pushes)
    if added or exempted:
        lines.append(texts.t("report.corrections", added=added, exempted=exempted))
    return "\n".join(lines)


def board_lines(texts: Texts, report: Report) -> list[str]:
    """The 红榜 line, the 黑榜 line and the rule they follow (for a report with pushes)."""
    units = {u.unit: u for u in report.units}
    return [
        _board_line(texts, report.red, report.red_named, units, red=True),
        _board_line(texts, report.black, report.black_named, units, red=False),
        rule_line(texts),
    ]


def rule_line(texts: Texts) -> str:
    """The ranking rule in one line, as bot/reports/ranking.py applies it."""
    return texts.t("rank.rule", size=BOARD_SIZE)


def _board_line(texts: Texts, names: list[str], named: int | None, units: dict[str, UnitRow], *, red: bool) -> str:
    t = texts.t
    if not names:
        return t("rank.red_none" if red else "rank.black_none")
    named = len(names) if named is None else named
    shown, counted = names[:named], names[named:]
    groups = _groups(shown, units)
    parts = [
        NAME_SEP.join(group) if len(group) == 1 else t("rank.tied", names=NAME_SEP.join(group), rank=rank)
        for rank, group in groups
    ]
    if counted:
        first = units.get(counted[0])
        rank = first.rank if first is not None else 0
        figures = _figures(texts, first, red=red)
        if not shown and len(counted) == len(units):
            parts.append(t("rank.all_tied", count=len(counted), figures=figures))
        else:
            key = "rank.counted" if shown else "rank.counted_alone"
            parts.append(t(key, count=len(counted), rank=rank, figures=figures))
    tie = bool(counted) or any(len(group) > 1 for _, group in groups)
    sep = t("rank.group_sep") if tie else NAME_SEP
    return t("rank.red" if red else "rank.black", names=sep.join(parts))


def _groups(names: list[str], units: dict[str, UnitRow]) -> list[tuple[int, list[str]]]:
    """`names` in runs of the same rank (a name missing from `units` stands alone)."""
    groups: list[tuple[int, list[str]]] = []
    for name in names:
        u = units.get(name)
        rank = u.rank if u is not None else 0
        if u is not None and groups and groups[-1][0] == rank:
            groups[-1][1].append(name)
        else:
            groups.append((rank, [name]))
    return groups


def _figures(texts: Texts, u: UnitRow | None, *, red: bool) -> str:
    """What every unit of a counted tie shares (they tie, so their figures are equal)."""
    t = texts.t
    if red:
        if u is not None and u.median_minutes is not None:
            return t("rank.red_figures_median", median=f"{u.median_minutes:g}")
        return t("rank.red_figures")
    if u is None:
        return ""
    if u.missed and u.late:
        return t("rank.black_both", missed=u.missed, late=u.late)
    return t("rank.black_missed", missed=u.missed) if u.missed else t("rank.black_late", late=u.late)


# ---- the quarterly review (季点评) ---------------------------------------------------------------------------


def percent(rate: float | None) -> str:
    """A share as the reports show it: 85.0%, or — when there is none."""
    return "—" if rate is None else f"{rate:.1%}"


def quarter_lines(texts: Texts, report: Report, trend: QuarterTrend) -> list[str]:
    """The review's lines after the summary: the district's rate against last quarter, 红榜, 进步最大, 下滑最多,
    问题较多 (the quarter's 黑榜, with each unit's rate and misses) and the ranking rule. The lists are short;
    every unit's trend is in the .xlsx."""
    t = texts.t
    lines = []
    compared = trend.previous_rate is not None  # the quarter before had pushes someone was expected to relay
    if compared:
        points = _points(trend.rate, trend.previous_rate)
        change = (
            t("quarter.same")
            if points == 0
            else t("quarter.up" if points > 0 else "quarter.down", points=f"{abs(points):.1f}")
        )
        lines.append(
            t("quarter.overall", rate=percent(trend.rate), previous=percent(trend.previous_rate), change=change)
        )
    else:
        lines.append(t("quarter.overall_no_previous", rate=percent(trend.rate)))
    units = {u.unit: u for u in report.units}
    lines.append(_board_line(texts, report.red, report.red_named, units, red=True))
    if compared:
        rows = {r.unit: r for r in trend.rows}
        lines.append(_change_line(texts, trend.improved, trend.improved_named, rows, improved=True))
        lines.append(_change_line(texts, trend.fallen, trend.fallen_named, rows, improved=False))
        new = sum(1 for r in trend.rows if r.trend == "新")
        if new:
            lines.append(t("quarter.new_units", count=new))
    lines.append(_worst_line(texts, report))
    lines.append(rule_line(texts))
    return lines


def _points(rate: float | None, previous: float | None) -> float:
    return round(((rate or 0.0) - (previous or 0.0)) * 100, 1)


def _change_item(texts: Texts, r: TrendRow) -> dict[str, str]:
    change = r.change or 0.0
    return {
        "previous": percent(r.previous_rate),
        "rate": percent(r.rate),
        "arrow": "↑" if change > 0 else "↓",
        "points": f"{abs(change):.1f}",
    }


def _change_line(texts: Texts, names: list[str], named: int, rows: dict[str, TrendRow], *, improved: bool) -> str:
    t = texts.t
    if not names:
        return t("quarter.improved_none" if improved else "quarter.fallen_none")
    parts = [t("quarter.change_item", unit=n, **_change_item(texts, rows[n])) for n in names[:named]]
    counted = names[named:]
    if counted:
        item = _change_item(texts, rows[counted[0]])
        parts.append(t("quarter.counted", count=len(counted), arrow=item["arrow"], points=item["points"]))
    return t("quarter.improved" if improved else "quarter.fallen", items=NAME_SEP.join(parts))


def _worst_line(texts: Texts, report: Report) -> str:
    """问题较多: the quarter's 黑榜 (the ranking's worst, every tie with the last), each with its rate and misses."""
    t = texts.t
    if not report.black:
        return t("quarter.worst_none")
    units = {u.unit: u for u in report.units}
    named = len(report.black) if report.black_named is None else report.black_named
    parts = [
        t("quarter.worst_item", unit=n, rate=percent(units[n].on_time_rate), missed=units[n].missed)
        for n in report.black[:named]
    ]
    counted = report.black[named:]
    if counted:
        first = units[counted[0]]
        parts.append(
            t(
                "quarter.worst_counted",
                count=len(counted),
                rank=first.rank,
                rate=percent(first.on_time_rate),
                missed=first.missed,
            )
        )
    return t("quarter.worst", items=NAME_SEP.join(parts))
