"""The city's report (全市通报) across its districts: per district the figures of its own report, the districts
ranked, the units that missed most across the city, and the .xlsx (a sheet 全市 with a chart, a sheet 未转发最多,
a sheet per district).

A district's figures are those of its own report (bot/reports/build.py: the same pushes, the same expected units,
the same counts), but read with one aggregate SQL statement per district instead of the district's 100 000
confirmations: build_report reads every row because it also lists every push, every screenshot and every
correction; the city needs only the per-unit counts. tests/reports/test_city_report.py checks that both agree.
The statement is PostgreSQL's (percentile_cont): a city is only ever on PostgreSQL.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from fractions import Fraction
from typing import Any
from zoneinfo import ZoneInfo

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.chart import BarChart, Reference
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter
from sqlalchemy import bindparam, text
from sqlalchemy.engine import Connection

from bot.content import Texts
from bot.domain.periods import period_label
from bot.reports.figures import UnitRow
from bot.reports.ranking import ranked_order
from bot.reports.render import MAX_COL_WIDTH, cell_text, shown_width
from bot.storage.districts import District, use_district
from bot.storage.models import ConfirmMethod, PushState, UTCDateTime

# Districts read side by side (the database server does the work: one statement per district, one core each).
READERS = 4
WORK_MEM = "32MB"
TOP_MISSED = 20  # units on the sheet 未转发最多 (and the first few of them in the text)
TEXT_DISTRICTS = 10  # districts named in the chat text; more are counted (the .xlsx lists them all)
TEXT_TOP_MISSED = 3

# Per active unit of the district on the path: what build_report counts, in one statement. A push of the period
# is one whose deadline falls in [lo, hi) and that was not withdrawn; a unit is expected to relay it when the push
# is aimed at it (no targets, or the unit among them) and it is not exempted (免转); only an expected unit's
# confirmation counts. `not_aimed`: the period's targeted pushes aimed at other units; `exempted`: the pushes aimed
# at the unit that it was exempted from; the median is of the minutes from push to confirmation, 补登 left out
# (date_part's float seconds, not extract's numeric: three times faster; the median is shown to 0.1 minute).
_UNIT_SQL = text(
    """
WITH p AS MATERIALIZED (
    SELECT id, created_at FROM push WHERE deadline >= :lo AND deadline < :hi AND state <> :withdrawn
), targeted AS MATERIALIZED (
    SELECT DISTINCT t.push_id FROM pushtarget t JOIN p ON p.id = t.push_id
), u AS (
    SELECT id, name, kind FROM unit WHERE active
), not_aimed AS (
    SELECT u.id AS unit_id, count(*) AS n FROM u CROSS JOIN targeted g
    WHERE NOT EXISTS (SELECT 1 FROM pushtarget t WHERE t.push_id = g.push_id AND t.unit_id = u.id)
    GROUP BY u.id
), ex AS (
    SELECT e.unit_id, count(*) AS n FROM exemption e JOIN p ON p.id = e.push_id
    WHERE NOT EXISTS (SELECT 1 FROM targeted g WHERE g.push_id = e.push_id)
       OR EXISTS (SELECT 1 FROM pushtarget t WHERE t.push_id = e.push_id AND t.unit_id = e.unit_id)
    GROUP BY e.unit_id
), c AS (
    SELECT c.unit_id,
           count(*) AS relayed,
           count(*) FILTER (WHERE c.late) AS late,
           count(*) FILTER (WHERE c.method = :office) AS added,
           percentile_cont(0.5) WITHIN GROUP (
               ORDER BY date_part('epoch', c.at - p.created_at) / 60
           ) FILTER (WHERE c.method <> :office) AS median_minutes
    FROM confirmation c JOIN p ON p.id = c.push_id
    WHERE (c.push_id, c.unit_id) NOT IN (SELECT e.push_id, e.unit_id FROM exemption e JOIN p ON p.id = e.push_id)
      AND (NOT EXISTS (SELECT 1 FROM targeted g WHERE g.push_id = c.push_id)
           OR EXISTS (SELECT 1 FROM pushtarget t WHERE t.push_id = c.push_id AND t.unit_id = c.unit_id))
    GROUP BY c.unit_id
)
SELECT (SELECT count(*) FROM p), u.name, u.kind, coalesce(na.n, 0), coalesce(ex.n, 0),
       coalesce(c.relayed, 0), coalesce(c.late, 0), coalesce(c.added, 0), c.median_minutes
FROM u
LEFT JOIN not_aimed na ON na.unit_id = u.id
LEFT JOIN ex ON ex.unit_id = u.id
LEFT JOIN c ON c.unit_id = u.id
ORDER BY u.id
"""
).bindparams(
    bindparam("lo", type_=UTCDateTime()),
    bindparam("hi", type_=UTCDateTime()),
)


@dataclass(frozen=True)
class DistrictFigures:
    """One district's figures for the period, as its own report counts them."""

    name: str
    pushes: int  # its pushes whose deadline fell in the period (not withdrawn)
    units: list[UnitRow]  # its units ranked as its own report ranks them (level and reach are not read)
    rank: int | None = None  # its place in the city (1 is best; None: it had no pushes)

    @property
    def expected(self) -> int:
        """Confirmations expected: (push, unit) pairs where the unit was expected to relay the push."""
        return sum(u.received for u in self.units)

    @property
    def relayed(self) -> int:
        return sum(u.relayed for u in self.units)

    @property
    def on_time(self) -> int:
        return sum(u.on_time for u in self.units)

    @property
    def late(self) -> int:
        return sum(u.late for u in self.units)

    @property
    def missed(self) -> int:
        return sum(u.missed for u in self.units)

    @property
    def relay_rate(self) -> float | None:
        """转发率: the share of expected confirmations that came (on time or late); None with nothing expected."""
        return self.relayed / self.expected if self.expected else None

    @property
    def on_time_rate(self) -> float | None:
        """按时率: the share of expected confirmations that came by the deadline."""
        return self.on_time / self.expected if self.expected else None


@dataclass(frozen=True)
class MissedUnit:
    """A unit among those that missed most across the city."""

    district: str
    unit: UnitRow


@dataclass(frozen=True)
class CityReport:
    title: str
    period_start: date
    period_end: date  # inclusive
    generated_at: datetime
    districts: list[DistrictFigures]  # ranked: best first, then those without pushes
    top_missed: list[MissedUnit] = field(default_factory=list)

    @property
    def pushes(self) -> int:
        return sum(d.pushes for d in self.districts)

    @property
    def expected(self) -> int:
        return sum(d.expected for d in self.districts)

    @property
    def relayed(self) -> int:
        return sum(d.relayed for d in self.districts)


def district_rank_key(d: DistrictFigures) -> tuple[Fraction, Fraction]:
    """Smaller is better: the highest 转发率, then the highest 按时率 (exact fractions). Equal keys share a rank."""
    return (-Fraction(d.relayed, d.expected), -Fraction(d.on_time, d.expected))


def rank_districts(figures: list[DistrictFigures]) -> list[DistrictFigures]:
    """Best first with shared ranks (1, 2, 2, 4), tied districts in the city's order (the order they were added);
    districts with nothing expected of them in the period come last, unranked, in the city's order."""
    ranked = sorted((d for d in figures if d.expected), key=district_rank_key)  # stable: the city's order in a tie
    out: list[DistrictFigures] = []
    for i, d in enumerate(ranked):
        tied = i and district_rank_key(d) == district_rank_key(ranked[i - 1])
        out.append(_with_rank(d, out[-1].rank if tied else i + 1))
    return out + [d for d in figures if not d.expected]


def _with_rank(d: DistrictFigures, rank: int | None) -> DistrictFigures:
    return DistrictFigures(d.name, d.pushes, d.units, rank)


def top_missed(figures: list[DistrictFigures], limit: int = TOP_MISSED) -> list[MissedUnit]:
    """The units with the most missed pushes across the city (at least one): most missed first, then most late,
    then the district's place in the city and the unit's name; the first `limit`."""
    order = {d.name: i for i, d in enumerate(figures)}
    rows = [MissedUnit(d.name, u) for d in figures for u in d.units if u.missed > 0]
    rows.sort(key=lambda m: (-m.unit.missed, -m.unit.late, order[m.district], m.unit.unit))
    return rows[:limit]


def district_units(conn: Connection, *, start: date, end: date, tz: ZoneInfo) -> tuple[int, list[UnitRow]]:
    """The period's push count and the units' figures (ranked) of the district on `conn`'s path."""
    lo = datetime.combine(start, time(0), tzinfo=tz)
    hi = datetime.combine(end + timedelta(days=1), time(0), tzinfo=tz)
    rows = conn.execute(
        _UNIT_SQL,
        {"lo": lo, "hi": hi, "withdrawn": PushState.WITHDRAWN.value, "office": ConfirmMethod.OFFICE.value},
    ).all()
    pushes = int(rows[0][0]) if rows else 0
    units = []
    for _, name, kind, not_aimed, exempted, relayed, late, added, median in rows:
        if pushes and not_aimed == pushes:
            continue  # every push of the period was aimed at other units: not in the district's report either
        received = pushes - not_aimed - exempted
        units.append(
            UnitRow(
                unit=name,
                kind=kind,
                received=received,
                relayed=relayed,
                on_time=relayed - late,
                late=late,
                missed=received - relayed,
                median_minutes=round(median, 1) if median is not None else None,
                level="",
                rank=0,
                added=added,
                exempted=exempted,
            )
        )
    ranked = [UnitRow(**{**u.__dict__, "rank": rank}) for rank, u in ranked_order(units)]
    return pushes, ranked


def city_figures(
    conn: Connection,
    *,
    start: date,
    end: date,
    now: datetime,
    tz: ZoneInfo,
    texts: Texts,
    every: list[District],
    workers: int = READERS,
) -> CityReport:
    """The city's report for [start, end] over the districts `every`, read on the city's connection (the login
    user: each district under its own role and path). With `workers` > 1 the districts are read side by side, each
    on a connection of its own from `conn`'s engine (a district's figures are one statement, so one snapshot, either
    way); with 1, in the caller's transaction on `conn`."""
    figures = []
    if workers <= 1 or len(every) <= 1:
        # A district's month is 100 000 confirmations: sorted in memory, not on disk (for this transaction only).
        conn.execute(text(f"SET LOCAL work_mem = '{WORK_MEM}'"))
        for district in every:
            with use_district(conn, district):
                pushes, units = district_units(conn, start=start, end=end, tz=tz)
            figures.append(DistrictFigures(district.name, pushes, units))
    else:

        def read(district: District) -> DistrictFigures:
            with conn.engine.connect() as own, own.begin():
                own.execute(text(f"SET LOCAL work_mem = '{WORK_MEM}'"))
                with use_district(own, district):
                    pushes, units = district_units(own, start=start, end=end, tz=tz)
            return DistrictFigures(district.name, pushes, units)

        with ThreadPoolExecutor(max_workers=min(workers, len(every)), thread_name_prefix="city-report") as pool:
            figures = list(pool.map(read, every))
    ranked = rank_districts(figures)
    return CityReport(
        title=texts.t("cityreport.title", period=period_label(texts, start, end)),
        period_start=start,
        period_end=end,
        generated_at=now,
        districts=ranked,
        top_missed=top_missed(ranked),
    )


# --- The chat text -----------------------------------------------------------------------------------------------


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value:.1%}"


def city_text(texts: Texts, report: CityReport) -> str:
    """The short text: the city's totals, the districts ranked (at most TEXT_DISTRICTS lines and one counting
    the rest), the units that missed most, and the rule. 'No pushes' alone when the period had none."""
    t = texts.t
    if not report.pushes:
        return t("cityreport.no_pushes", title=report.title, districts=len(report.districts))
    d_all = report.districts
    lines = [
        t(
            "cityreport.summary",
            title=report.title,
            districts=len(d_all),
            pushes=report.pushes,
            expected=report.expected,
            on_time=sum(d.on_time for d in d_all),
            late=sum(d.late for d in d_all),
            missed=sum(d.missed for d in d_all),
            rate=_pct(report.relayed / report.expected if report.expected else None),
        )
    ]
    for d in d_all[:TEXT_DISTRICTS]:
        if d.rank is None:
            lines.append(t("cityreport.line_none", district=d.name))
        else:
            lines.append(t("cityreport.line", rank=d.rank, district=d.name, rate=_pct(d.relay_rate), missed=d.missed))
    if len(d_all) > TEXT_DISTRICTS:
        lines.append(t("cityreport.more", count=len(d_all) - TEXT_DISTRICTS))
    if report.top_missed:
        names = "、".join(
            t("cityreport.missed_unit", district=m.district, unit=m.unit.unit, missed=m.unit.missed)
            for m in report.top_missed[:TEXT_TOP_MISSED]
        )
        lines.append(t("cityreport.top_missed", names=names))
    lines.append(t("cityreport.rule"))
    return "\n".join(lines)


# --- The .xlsx ---------------------------------------------------------------------------------------------------

CITY_SHEET = "全市"
MISSED_SHEET = "未转发最多"
_SHEET_BAD = str.maketrans({c: "_" for c in "[]:*?/\\"})

CITY_HEADER = ["排名", "区", "单位数", "推送数", "应转发", "已转发", "按时", "迟报", "未转发", "转发率", "按时率"]
MISSED_HEADER = ["序号", "区", "单位", "类别", "未转发", "收到", "迟报", "按时率", "区内排名"]
UNIT_HEADER = [
    "排名",
    "单位",
    "类别",
    "收到",
    "已转发",
    "按时",
    "迟报",
    "未转发",
    "按时率",
    "转发用时中位数(分钟)",
    "其中补登",
    "免转",
]


def sheet_names(names: list[str]) -> dict[str, str]:
    """A sheet name per district: Excel's rules (31 characters, none of []:*?/\\, not empty, unique without
    regard to case) and not 全市 or 未转发最多."""
    taken = {CITY_SHEET.lower(), MISSED_SHEET.lower()}
    out = {}
    for name in names:
        base = ILLEGAL_CHARACTERS_RE.sub("", name).translate(_SHEET_BAD).strip("'")[:31] or "区"
        candidate, n = base, 2
        while candidate.lower() in taken:
            suffix = f"({n})"
            candidate, n = base[: 31 - len(suffix)] + suffix, n + 1
        taken.add(candidate.lower())
        out[name] = candidate
    return out


def render_city_xlsx(report: CityReport) -> bytes:
    """The city's report as an .xlsx: 全市 (the districts ranked and a bar chart of their 转发率), 未转发最多, and a
    sheet per district with its units ranked (the columns of the district report's 单位排名)."""
    wb = Workbook(write_only=True)  # streamed: a city is thousands of rows
    wb.properties.title = ILLEGAL_CHARACTERS_RE.sub("", report.title)
    wb.properties.subject = f"{report.period_start.isoformat()} — {report.period_end.isoformat()}"
    wb.properties.creator = "relaybot"
    city = _sheet(
        wb,
        CITY_SHEET,
        CITY_HEADER,
        (
            (
                d.rank,
                d.name,
                len(d.units),
                d.pushes,
                d.expected,
                d.relayed,
                d.on_time,
                d.late,
                d.missed,
                d.relay_rate,
                d.on_time_rate,
            )
            for d in report.districts
        ),
        {10: "0.0%", 11: "0.0%"},
    )
    _add_chart(city, report)
    _sheet(
        wb,
        MISSED_SHEET,
        MISSED_HEADER,
        (
            (
                i,
                m.district,
                m.unit.unit,
                m.unit.kind,
                m.unit.missed,
                m.unit.received,
                m.unit.late,
                m.unit.on_time_rate,
                m.unit.rank,
            )
            for i, m in enumerate(report.top_missed, start=1)
        ),
        {8: "0.0%"},
    )
    names = sheet_names([d.name for d in report.districts])
    for d in report.districts:
        _sheet(
            wb,
            names[d.name],
            UNIT_HEADER,
            (
                (
                    u.rank,
                    u.unit,
                    u.kind,
                    u.received,
                    u.relayed,
                    u.on_time,
                    u.late,
                    u.missed,
                    u.on_time_rate,
                    u.median_minutes,
                    u.added or None,
                    u.exempted or None,
                )
                for u in d.units
            ),
            {9: "0.0%", 10: "0.0"},
        )
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def _sheet(wb: Workbook, title: str, header: list[str], rows: Iterable[Sequence], formats: dict[int, str]):
    """One sheet as bot/reports/render.add_sheet makes it (bold frozen header, auto-filter, columns as wide as
    their text, blank cells blank, user text never a formula), streamed: the widths are measured first."""
    table: list[list[Any]] = [list(row) for row in rows]
    ws = wb.create_sheet(title)
    widths = [shown_width(h, None) for h in header]
    for row in table:
        for c, value in enumerate(row):
            if value is None or value == "":
                row[c] = None
                continue
            if isinstance(value, str):
                row[c] = value = cell_text(value)
            widths[c] = max(widths[c], shown_width(value, formats.get(c + 1)))
    for c, width in enumerate(widths, start=1):
        ws.column_dimensions[get_column_letter(c)].width = min(width + 2, MAX_COL_WIDTH)
    ws.freeze_panes = "A2"
    ws.auto_filter.ref = f"A1:{get_column_letter(len(header))}{len(table) + 1}"
    bold = Font(bold=True)
    head = []
    for h in header:
        cell = WriteOnlyCell(ws, cell_text(h))
        cell.font = bold
        head.append(cell)
    ws.append(head)
    styled = {}
    for c, number_format in formats.items():
        styled[c - 1] = number_format
    for row in table:
        if styled:
            for c, number_format in styled.items():
                if row[c] is not None:
                    cell = WriteOnlyCell(ws, row[c])
                    cell.number_format = number_format
                    row[c] = cell
        ws.append(row)
    return ws


def _add_chart(ws, report: CityReport) -> None:
    """A bar chart of 转发率 per ranked district, beside the table (Excel draws it; no image to render)."""
    n = sum(1 for d in report.districts if d.rank is not None)
    if not n:
        return
    chart = BarChart()
    chart.type = "bar"  # horizontal bars: district names read on a phone too
    chart.title = "各区转发率"
    chart.y_axis.title = "转发率"
    chart.y_axis.number_format = "0%"
    chart.y_axis.scaling.min = 0
    chart.y_axis.scaling.max = 1
    chart.x_axis.scaling.orientation = "maxMin"  # the best district on top, as in the table
    chart.legend = None
    chart.add_data(Reference(ws, min_col=10, min_row=1, max_row=n + 1), titles_from_data=True)
    chart.set_categories(Reference(ws, min_col=2, min_row=2, max_row=n + 1))
    chart.height = max(7.5, 0.8 * n + 2)
    chart.width = 16
    ws.add_chart(chart, f"{chr(ord('A') + len(CITY_HEADER) + 1)}2")
