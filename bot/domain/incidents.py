"""Police incident figures (电诈警情数据) per town: import, ranking, the plan's escalation rule, renders.

The work plan (四(三)): the two towns with the most incidents in a period get a 提醒谈话; top two in two
consecutive periods, their leader in charge is summoned (约谈); three in a row, the head writes to the district
leading group (书面说明).

Each town is also compared with the same period last year (同比); at the plan's checkpoints (四(四)12: 6月30日 and
12月31日, configurable) the 通报 of the period containing one lists the towns that missed the decline target.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

from sqlmodel import Session, col, select

from bot.adapters import tables
from bot.content import AlertLibrary, Texts, load_texts
from bot.domain.periods import (  # noqa: F401 - parse_period and period_label: callers import them from here
    _previous,
    local_today,
    parse_day_or_none,
    parse_period,
    period_code,
    period_label,
    period_of,
    same_period_last_year,
)
from bot.domain.roster import cell_text
from bot.storage.models import IncidentStat, Unit, UnitKind
from bot.textnorm import clean, squeeze

MAX_ROWS = 20_000
MAX_BYTES = tables.MAX_BYTES
_HEADER_SEARCH = 10  # police exports put a title line or two above the header
_MAX_COUNT = 10_000_000
_MAX_LOOKBACK = 12  # previous periods examined for a streak; the rule itself needs two
_TOWN_LEN, _TYPE_LEN, _SOURCE_LEN = 100, 50, 200

LEVEL_WRITTEN = "书面说明"  # three periods in a row in the top two
LEVEL_TALK = "约谈"  # two in a row
LEVEL_REMIND = "提醒谈话"  # this period
LEVELS = (LEVEL_WRITTEN, LEVEL_TALK, LEVEL_REMIND)  # most serious first
# The plan (四(四)12): at 6月30日 and 12月31日 the towns whose 警情 missed the decline target explain in writing.
DEFAULT_CHECKPOINTS = ((6, 30), (12, 31))
_LEVEL_BY_STREAK = {1: LEVEL_REMIND, 2: LEVEL_TALK, 3: LEVEL_WRITTEN}
PUSH_COMMAND = "推送"

# Header spellings seen in clerks' and police sheets, after `clean` and whitespace removal.
_HEADERS = {
    "town": ("镇街", "镇(街)", "镇/街", "镇街道", "街镇"),
    "case_type": ("案件类型", "类型", "警情类型", "案件类别"),
    "count": ("警情数", "警情数(起)", "警情数量", "警情"),
    "period": ("周期", "统计周期"),
    "date": ("日期", "发案日期", "报警日期", "接警日期"),
}
_COLUMN_OF = {alias: key for key, aliases in _HEADERS.items() for alias in aliases}
_TOTAL_WORDS = {"合计", "总计", "小计", "全部"}

_COUNT_TEXT = re.compile(r"\d+(?:\.0+)?")
_FORMAT_LITERALS = re.compile(r'"[^"]*"|\\.|\[[^\]]*\]')


class StatsError(ValueError):
    """A statistics file that cannot be imported; the message names the row and column, in Chinese."""


@dataclass(frozen=True)
class StatRow:
    """One validated row of a statistics file."""

    line: int  # the row number the clerk sees in Excel (header is row 1)
    town: str
    period_start: date
    period_end: date  # inclusive
    case_type: str  # "" = 合计
    count: int

    @property
    def key(self) -> tuple[str, date, date, str]:
        """What the table is unique on: town, period, case type."""
        return self.town, self.period_start, self.period_end, self.case_type


@dataclass
class StatsImportReport:
    """What an import changed."""

    added: list[StatRow] = field(default_factory=list)
    updated: list[tuple[StatRow, int]] = field(default_factory=list)  # (row, previous count)
    unchanged: int = 0
    periods: list[tuple[date, date]] = field(default_factory=list)
    unknown_towns: list[str] = field(default_factory=list)  # not a 镇街 of the roster (likely a typo)
    # Every period of the file is older than the latest stored one (last year's figures, for 同比): the importer
    # stores them and posts no 通报 of an old period to the office group.
    backfill: bool = False

    def lines(self, texts: Texts | None = None, *, max_items: int = 10) -> list[str]:
        """A short Chinese summary: what was added and updated, the periods covered, suspicious town names."""
        t = (texts or load_texts()).t
        out = []
        if self.added:
            out.append(t("stats.import_added", count=len(self.added)))
        if self.updated:
            items = [
                t(
                    "stats.import_update_item",
                    town=r.town,
                    period=period_code(r.period_start, r.period_end),
                    case_type=_type_name(t, r.case_type),
                    old=old,
                    new=r.count,
                )
                for r, old in self.updated[:max_items]
            ]
            if len(self.updated) > max_items:
                items.append(t("stats.import_more", count=len(self.updated)))
            out.append(t("stats.import_updated", count=len(self.updated), items="；".join(items)))
        if out:
            if self.unchanged:
                out.append(t("stats.import_unchanged", count=self.unchanged))
        else:
            out.append(t("stats.import_nothing", count=self.unchanged))
        out.append(t("stats.import_periods", periods="、".join(period_code(s, e) for s, e in self.periods)))
        if self.unknown_towns:
            out.append(t("stats.import_unknown_towns", towns="、".join(self.unknown_towns)))
        if self.backfill:
            out.append(t("yoy_stats.backfill"))
        return out

    def period_to_post(self) -> tuple[date, date] | None:
        """The period whose 通报 the import posts: the newest of the file, unless the file only fills in the past."""
        return None if self.backfill or not self.periods else self.periods[-1]


@dataclass(frozen=True)
class TownStat:
    """One town's figures for the period. `rank` 1 has the most incidents; ties share a rank."""

    town: str
    rank: int
    total: int
    by_type: dict[str, int]  # case type -> count, most first
    unclassified: int  # total minus the typed counts (a 合计 row larger than its parts)
    previous_total: int | None  # None when the previous period is not stored or lacks this town
    streak: int  # consecutive periods up to this one in the top two (0 = not in the top two now)
    level: str  # "" or one of LEVELS
    # 同比: the same period last year; None when that period is not stored or lacks this town (never read as 0).
    last_year_total: int | None = None


@dataclass(frozen=True)
class TypeStat:
    """A case type's district-wide count for the period."""

    case_type: str
    count: int
    suggestion: str  # e.g. "推送 刷单返利" when the alert library knows the type, else ""


@dataclass(frozen=True)
class StatsReport:
    """The 通报 of one stored period: ranking, escalations under the plan's rule, top case types."""

    period_start: date
    period_end: date  # inclusive
    towns: list[TownStat]  # by rank, then town name
    case_types: list[TypeStat]  # district-wide, most first
    top_types: list[TypeStat]  # up to 3 of case_types
    suggestions: list[str]  # distinct 推送 commands for top_types
    escalations: dict[str, list[str]]  # every level of LEVELS (most serious first) -> towns, maybe empty
    total: int
    previous_period: tuple[date, date] | None  # the stored period just before, if any
    previous_total: int | None
    # Defaults keep 通报 pickled in the outbox before 同比 existed readable.
    last_year_period: tuple[date, date] | None = None  # the same period last year, when stored
    last_year_total: int | None = None
    checkpoint: Checkpoint | None = None  # set when the period contains one of the plan's checkpoints


@dataclass(frozen=True)
class Checkpoint:
    """The plan's decline target at a checkpoint the period contains (6月30日: the figure falls 环比 and 同比;
    the year's last day: the whole year's figure falls 同比). Towns without the figures to judge are never listed
    as missing it: they are named apart, and with no last-year figures at all the report says so."""

    day: date
    whole_year: bool  # the target is the year's total (months summed) against last year's
    missed: list[str]  # need a 书面说明
    unknown: list[str]  # cannot be judged: no last-year (or previous period) figure for the town
    no_last_year: bool  # none of last year's figures the target needs are stored
    missing_months: list[str] = field(default_factory=list)  # whole_year: months (2025-03) without month figures


# --- Reading -----------------------------------------------------------------------------------------------


def _error(key: str, **values: object) -> StatsError:
    return StatsError(load_texts().t(f"stats.{key}", **values))


def read_stats_file(path: Path, *, today: date | None = None) -> list[StatRow]:
    """Rows of a .csv or .xlsx statistics file; raises StatsError naming the row and column of the first problem."""
    if not path.is_file():
        raise _error("file_missing", path=path)
    try:
        tables.check_size(path.stat().st_size)
    except tables.TableError as exc:
        raise _table_error(exc) from None
    return read_stats_bytes(path.name, path.read_bytes(), today=today)


def read_stats_bytes(name: str, data: bytes, *, today: date | None = None) -> list[StatRow]:
    """Like read_stats_file, for a file received in a chat; `name` gives the type. Year-less dates use `today`."""
    try:
        # Enough non-blank rows to see the header, title lines above it, and one row over the cap.
        table = tables.read_table(name, data, max_filled=MAX_ROWS + _HEADER_SEARCH + 2, cell=_xlsx_value)
    except tables.TableError as exc:
        raise _table_error(exc) from None
    return parse_stats_table(table, today=today)


def _table_error(exc: tables.TableError) -> StatsError:
    values = dict(exc.values)
    if exc.key == "bad_suffix":
        values["suffix"] = values.get("suffix") or load_texts().t("stats.no_suffix")
    key = "xlsx_broken" if exc.key in ("xlsx_open", "xlsx_read") else exc.key
    return _error(key, **values)


_filled = tables.filled


def _xlsx_value(cell) -> object:
    value = cell.value
    # Excel turns a typed 2026-11 or 2026年11月 into the date 2026-11-01 shown without a day: keep it a month.
    if isinstance(value, datetime) and not _shows_day(getattr(cell, "number_format", "") or ""):
        return f"{value.year}-{value.month:02d}"
    return value


def _shows_day(number_format: str) -> bool:
    return "d" in _FORMAT_LITERALS.sub("", number_format).lower()


def _text(value: object) -> str:
    # NUL means nothing in a cell, and PostgreSQL cannot store it: an import would fail at the database.
    return clean(cell_text(value).replace("\x00", ""))


def _header_key(value: object) -> str:
    return re.sub(r"\s+", "", _text(value))


def parse_stats_table(table: Sequence[Sequence[object]], *, today: date | None = None) -> list[StatRow]:
    """Validate a header row plus data rows (cells as strings or Excel values); problems raise StatsError."""
    today = today or local_today()  # the configured zone's today, not the host's: callers pass it
    t = load_texts().t
    rows = [(line, list(raw)) for line, raw in enumerate(table, start=1) if any(_filled(v) for v in raw)]
    if not rows:
        raise _error("empty", columns=t("stats.columns"))
    header_line, header = next(
        (
            (line, raw)
            for line, raw in rows[:_HEADER_SEARCH]
            if any(_COLUMN_OF.get(_header_key(v)) == "town" for v in raw)
        ),
        rows[0],
    )
    pos: dict[str, int] = {}
    label: dict[str, str] = {}  # the header as the clerk wrote it, for messages
    for i, value in enumerate(header):
        key = _COLUMN_OF.get(_header_key(value))
        if key is None:
            continue
        if key in pos:
            raise _error("duplicate_column", line=header_line, column=_text(value))
        pos[key], label[key] = i, _text(value)
    for key, name in (("town", "镇街"), ("count", "警情数")):
        if key not in pos:
            raise _error("missing_column", line=header_line, column=name, columns=t("stats.columns"))
    if "period" in pos and "date" in pos:
        raise _error("both_periods", line=header_line)
    if "period" not in pos and "date" not in pos:
        raise _error("missing_period", line=header_line)
    by_date = "date" in pos

    data = [(line, raw) for line, raw in rows if line > header_line]
    if not data:
        raise _error("no_rows")
    if len(data) > MAX_ROWS:
        raise _error("too_many_rows", max=MAX_ROWS)

    out: list[StatRow] = []
    seen: dict[tuple[str, date, date, str], int] = {}
    for line, raw in data:

        def cell(key: str, raw: list[object] = raw) -> object:
            i = pos.get(key)
            return raw[i] if i is not None and i < len(raw) else None

        town = _text(cell("town"))
        if not town:
            raise _error("cell_empty", line=line, column=label["town"])
        if len(town) > _TOWN_LEN:
            raise _error("too_long", line=line, column=label["town"], max=_TOWN_LEN)
        if by_date:
            start, end = _week_of_cell(cell("date"), line, label["date"], today)
        else:
            start, end = _period_of_cell(cell("period"), line, label["period"], today)
        case_type = _text(cell("case_type"))
        if squeeze(case_type) in _TOTAL_WORDS:
            case_type = ""
        if len(case_type) > _TYPE_LEN:
            raise _error("too_long", line=line, column=label["case_type"], max=_TYPE_LEN)
        count = _count_of_cell(cell("count"), line, label["count"])
        row = StatRow(line, town, start, end, case_type, count)
        if row.key in seen:
            raise _error(
                "duplicate_by_date" if by_date else "duplicate",
                line=line,
                first=seen[row.key],
                town=town,
                period=period_code(start, end),
                case_type=_type_name(t, case_type),
            )
        seen[row.key] = line
        out.append(row)
    _check_totals(out)
    return out


def _period_of_cell(value: object, line: int, column: str, today: date) -> tuple[date, date]:
    if not _filled(value):
        raise _error("cell_empty", line=line, column=column)
    if isinstance(value, datetime | date):
        day = value.date() if isinstance(value, datetime) else value
        raise _error("period_is_date", line=line, column=column, text=day.isoformat())
    text = _text(value)
    period = parse_period(text, today=today)
    if period is None:
        key = "period_is_date" if parse_day_or_none(text, today) else "bad_period"
        raise _error(key, line=line, column=column, text=text)
    return period


def _week_of_cell(value: object, line: int, column: str, today: date) -> tuple[date, date]:
    if not _filled(value):
        raise _error("cell_empty", line=line, column=column)
    if isinstance(value, datetime):
        day = value.date()
    elif isinstance(value, date):
        day = value
    else:
        parsed = parse_day_or_none(_text(value), today) if isinstance(value, str) else None
        if parsed is None:
            raise _error("bad_date", line=line, column=column, text=_text(value))
        day = parsed
    return period_of("week", day)


def _count_of_cell(value: object, line: int, column: str) -> int:
    if not _filled(value):
        raise _error("cell_empty", line=line, column=column)
    count: int | None = None
    if isinstance(value, bool):
        count = None  # TRUE/FALSE is a bool, which Python would otherwise count as 1/0
    elif isinstance(value, int):
        count = value
    elif isinstance(value, float) and value.is_integer():
        count = int(value)  # Excel stores every number as a float: 3.0
    elif isinstance(value, str) and _COUNT_TEXT.fullmatch(clean(value)):
        count = int(float(clean(value)))
    if count is None or not 0 <= count <= _MAX_COUNT:
        text = str(value).upper() if isinstance(value, bool) else _text(value)  # as Excel shows it: TRUE
        raise _error("bad_count", line=line, column=column, text=text)
    return count


def _check_totals(rows: list[StatRow]) -> None:
    # A 合计 row below the sum of its own town's types is a typing error the ranking would silently hide.
    totals: dict[tuple[str, date, date], StatRow] = {}
    parts: dict[tuple[str, date, date], list[StatRow]] = {}
    for row in rows:
        key = (row.town, row.period_start, row.period_end)
        if row.case_type:
            parts.setdefault(key, []).append(row)
        else:
            totals[key] = row
    for key, total in totals.items():
        typed = parts.get(key, [])
        if total.count < sum(r.count for r in typed):
            raise _error(
                "total_below_types",
                line=total.line,
                total=total.count,
                town=total.town,
                period=period_code(total.period_start, total.period_end),
                sum=sum(r.count for r in typed),
                lines="、".join(str(r.line) for r in typed),
            )


def _type_name(t, case_type: str) -> str:
    return case_type or t("stats.total_label")


# --- Import ------------------------------------------------------------------------------------------------


def import_stats(session: Session, rows: list[StatRow], *, now: datetime, source: str) -> StatsImportReport:
    """Store the rows, replacing figures of the same town, period and case type; the caller commits."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    report = StatsImportReport()
    source = source[:_SOURCE_LEN]
    starts = sorted({r.period_start for r in rows})
    existing: dict[tuple[str, date, date, str], IncidentStat] = {}
    for i in range(0, len(starts), 500):  # stays under SQLite's bound-parameter limit
        stmt = select(IncidentStat).where(col(IncidentStat.period_start).in_(starts[i : i + 500]))
        existing.update({(s.town, s.period_start, s.period_end, s.case_type): s for s in session.exec(stmt)})
    for row in rows:
        stat = existing.get(row.key)
        if stat is None:
            stat = IncidentStat(
                town=row.town,
                period_start=row.period_start,
                period_end=row.period_end,
                case_type=row.case_type,
                count=row.count,
                imported_at=now,
                source=source,
            )
            existing[row.key] = stat
            report.added.append(row)
        else:
            if stat.count != row.count:
                report.updated.append((row, stat.count))
            else:
                report.unchanged += 1
            stat.count, stat.imported_at, stat.source = row.count, now, source
        session.add(stat)
    session.flush()
    report.periods = sorted({(r.period_start, r.period_end) for r in rows})
    if report.periods:
        newest = max(report.periods, key=lambda p: (p[1], -p[0].toordinal()))
        report.periods.remove(newest)
        report.periods.append(newest)  # last: the one the 通报 is about, as latest_period picks it
        report.backfill = latest_period(session) != newest
    town_stmt = select(Unit.name).where(Unit.kind == UnitKind.TOWN.value, Unit.active == True)  # noqa: E712
    towns = set(session.exec(town_stmt))
    if towns:  # without a roster there is nothing to check the names against
        report.unknown_towns = sorted({r.town for r in rows} - towns)
    return report


def latest_period(session: Session) -> tuple[date, date] | None:
    """The stored period that ends last (the shorter one when a week and a month end the same day)."""
    stmt = (
        select(col(IncidentStat.period_start), col(IncidentStat.period_end))
        .order_by(col(IncidentStat.period_end).desc(), col(IncidentStat.period_start).desc())
        .limit(1)
    )
    found = session.exec(stmt).first()
    return (found[0], found[1]) if found else None


# --- Report ------------------------------------------------------------------------------------------------


@dataclass
class _Figures:
    total: int
    by_type: dict[str, int]


def _figures(session: Session, start: date, end: date) -> dict[str, _Figures]:
    stated: dict[str, int] = {}
    by_type: dict[str, dict[str, int]] = {}
    stmt = select(IncidentStat).where(IncidentStat.period_start == start, IncidentStat.period_end == end)
    for s in session.exec(stmt):
        by_type.setdefault(s.town, {})
        if s.case_type:
            by_type[s.town][s.case_type] = s.count
        else:
            stated[s.town] = s.count
    # Each key is replaced on its own, so a 合计 from an earlier file can be older than re-imported types:
    # the larger figure is the one known to have happened.
    return {town: _Figures(max(stated.get(town, 0), sum(types.values())), types) for town, types in by_type.items()}


def _ranks(totals: dict[str, int]) -> dict[str, int]:
    return {town: 1 + sum(1 for other in totals.values() if other > total) for town, total in totals.items()}


def _top_two(totals: dict[str, int]) -> set[str]:
    # A town without incidents is never "in the top two", even in a district where most have none.
    return {town for town, rank in _ranks(totals).items() if rank <= 2 and totals[town] > 0}


def _stored(session: Session, start: date, end: date) -> bool:
    stmt = select(IncidentStat.id).where(IncidentStat.period_start == start, IncidentStat.period_end == end)
    return session.exec(stmt.limit(1)).first() is not None


def build_stats_report(
    session: Session,
    *,
    period_start: date,
    period_end: date,
    library: AlertLibrary,
    checkpoints: Sequence[tuple[int, int]] = DEFAULT_CHECKPOINTS,
) -> StatsReport:
    """Ranking, escalations, top case types, 同比 and the plan's checkpoint (if the period contains one) for the
    stored period [period_start, period_end]."""
    current = _figures(session, period_start, period_end)
    last_year_period = same_period_last_year(period_start, period_end)
    last_year = None
    if last_year_period is not None and _stored(session, *last_year_period):
        last_year = _figures(session, *last_year_period)
    else:
        last_year_period = None
    # Walk back through stored periods of the same kind while each ends the day before the next starts.
    chain: list[dict[str, _Figures]] = []
    start, end = period_start, period_end
    previous_period = None
    for _ in range(_MAX_LOOKBACK):
        start, end = _previous(start, end)
        if not _stored(session, start, end):
            break
        previous_period = previous_period or (start, end)
        chain.append(_figures(session, start, end))
    earlier_tops = [_top_two({t: f.total for t, f in figs.items()}) for figs in chain]

    totals = {town: f.total for town, f in current.items()}
    ranks = _ranks(totals)
    top_now = _top_two(totals)
    towns = []
    for town in sorted(current, key=lambda t: (ranks[t], t)):
        streak = 0
        if town in top_now:
            streak = 1
            for tops in earlier_tops:
                if town not in tops:
                    break
                streak += 1
        figs = current[town]
        before = chain[0].get(town) if chain else None
        towns.append(
            TownStat(
                town=town,
                rank=ranks[town],
                total=figs.total,
                by_type=dict(sorted(figs.by_type.items(), key=lambda kv: (-kv[1], kv[0]))),
                unclassified=figs.total - sum(figs.by_type.values()),
                previous_total=before.total if before else None,
                streak=streak,
                level=_LEVEL_BY_STREAK.get(min(streak, 3), ""),
                last_year_total=last_year[town].total if last_year and town in last_year else None,
            )
        )

    per_type: dict[str, int] = {}
    for figs in current.values():
        for case_type, count in figs.by_type.items():
            per_type[case_type] = per_type.get(case_type, 0) + count
    case_types = []
    for case_type, count in sorted(per_type.items(), key=lambda kv: (-kv[1], kv[0])):
        alert = library.find(case_type)
        case_types.append(TypeStat(case_type, count, f"{PUSH_COMMAND} {alert.case_type}" if alert else ""))
    top_types = [c for c in case_types if c.count > 0][:3]
    day = checkpoint_in(period_start, period_end, checkpoints)
    checkpoint = None
    if day is not None:
        checkpoint = _year_checkpoint(session, day) if _is_year_end(day) else _period_checkpoint(day, towns, last_year)
    return StatsReport(
        period_start=period_start,
        period_end=period_end,
        towns=towns,
        case_types=case_types,
        top_types=top_types,
        suggestions=list(dict.fromkeys(c.suggestion for c in top_types if c.suggestion)),
        escalations={level: [t.town for t in towns if t.level == level] for level in LEVELS},
        total=sum(totals.values()),
        previous_period=previous_period,
        previous_total=sum(f.total for f in chain[0].values()) if chain else None,
        last_year_period=last_year_period,
        last_year_total=sum(f.total for f in last_year.values()) if last_year is not None else None,
        checkpoint=checkpoint,
    )


# --- 同比 and the checkpoints ---------------------------------------------------------------------------------


def checkpoint_in(start: date, end: date, checkpoints: Sequence[tuple[int, int]]) -> date | None:
    """The last checkpoint day (month, day) inside [start, end], or None."""
    found = []
    for year in range(start.year, end.year + 1):
        for month, day in checkpoints:
            with contextlib.suppress(ValueError):  # 02-29 in a common year
                candidate = date(year, month, day)
                if start <= candidate <= end:
                    found.append(candidate)
    return max(found, default=None)


def _is_year_end(day: date) -> bool:
    return (day.month, day.day) == (12, 31)


def _fell(now: int, before: int | None) -> bool | None:
    """Did the figure meet the decline target? None: no figure to compare with. A town at 0 has nothing left to
    fall by and is never asked to explain; from 0 last time, any incident is a rise."""
    if now == 0:
        return True
    if before is None:
        return None
    return now < before


def _period_checkpoint(day: date, towns: list[TownStat], last_year: dict[str, _Figures] | None) -> Checkpoint:
    # 6月30日: "发案数环比、同比下降". Without the 同比 figure a town is never listed as missing the target.
    if last_year is None:
        return Checkpoint(day, whole_year=False, missed=[], unknown=[], no_last_year=True)
    missed, unknown = [], []
    for town in towns:
        yoy, mom = _fell(town.total, town.last_year_total), _fell(town.total, town.previous_total)
        if yoy is None:
            unknown.append(town.town)
        elif yoy is False or mom is False:
            missed.append(town.town)
        elif mom is None:
            unknown.append(town.town)
    return Checkpoint(day, whole_year=False, missed=missed, unknown=unknown, no_last_year=False)


def _year_totals(session: Session, year: int) -> tuple[dict[str, int], list[str]]:
    """Each town's total over the year's stored month figures, and the months (2025-03) that have none."""
    totals: dict[str, int] = {}
    missing = []
    for month in range(1, 13):
        start, end = period_of("month", date(year, month, 1))
        if not _stored(session, start, end):
            missing.append(f"{year}-{month:02d}")
            continue
        for town, figs in _figures(session, start, end).items():
            totals[town] = totals.get(town, 0) + figs.total
    return totals, missing


def _year_checkpoint(session: Session, day: date) -> Checkpoint:
    # 12月31日: "全年电信网络诈骗警情数、案件数同比下降": this year's months summed against last year's.
    this_year, missing_now = _year_totals(session, day.year)
    last_year, missing_before = _year_totals(session, day.year - 1)
    if not last_year and len(missing_before) == 12:
        return Checkpoint(day, whole_year=True, missed=[], unknown=[], no_last_year=True)
    if missing_now or missing_before:
        missing = missing_before + missing_now
        return Checkpoint(day, whole_year=True, missed=[], unknown=[], no_last_year=False, missing_months=missing)
    missed, unknown = [], []
    for town in sorted(this_year, key=lambda t: (-this_year[t], t)):
        fell = _fell(this_year[town], last_year.get(town))
        if fell is None:
            unknown.append(town)
        elif not fell:
            missed.append(town)
    return Checkpoint(day, whole_year=True, missed=missed, unknown=unknown, no_last_year=False)


def mom_text(texts: Texts, now: int, before: int | None) -> str:
    """环比 as shown beside a figure: +2, -1, 持平, or 无上期数据."""
    if before is None:
        return texts.t("yoy_stats.no_previous")
    return texts.t("yoy_stats.same") if now == before else f"{now - before:+d}"


def yoy_ratio(now: int, last: int | None) -> float | None:
    """同比 as a fraction (-0.25 = down a quarter); None when last year's figure is missing or 0 (no percentage)."""
    return None if not last else (now - last) / last


def yoy_text(texts: Texts, now: int, last: int | None) -> str:
    """同比 as shown beside a figure: -25%, +10%, 持平, 去年同期0起, or 无去年数据 (never a made-up 0%)."""
    if last is None:
        return texts.t("yoy_stats.no_last_year")
    if now == last:
        return texts.t("yoy_stats.same")
    if last == 0:
        return texts.t("yoy_stats.from_zero")
    return f"{(now - last) / last:+.1%}".replace(".0%", "%")


def checkpoint_rule(texts: Texts, checkpoint: Checkpoint) -> str:
    """The checkpoint and its target, e.g. 6月30日节点（目标：发案数环比、同比下降）."""
    day = texts.t("yoy_stats.day", month=checkpoint.day.month, day=checkpoint.day.day)
    return texts.t("yoy_stats.rule_year" if checkpoint.whole_year else "yoy_stats.rule_period", day=day)


def checkpoint_lines(texts: Texts, checkpoint: Checkpoint | None) -> list[str]:
    """The 通报's lines for a checkpoint: who must explain in writing, who cannot be judged, or why nobody is listed."""
    if checkpoint is None:
        return []
    t = texts.t
    rule = checkpoint_rule(texts, checkpoint)
    if checkpoint.no_last_year:
        return [t("yoy_stats.no_last_year_data", rule=rule)]
    if checkpoint.missing_months:
        return [t("yoy_stats.missing_months", rule=rule, months="、".join(checkpoint.missing_months))]
    if checkpoint.missed:
        lines = [t("yoy_stats.missed", rule=rule, towns="、".join(checkpoint.missed))]
    else:
        lines = [t("yoy_stats.all_met", rule=rule)]
    if checkpoint.unknown:
        lines.append(t("yoy_stats.unknown", towns="、".join(checkpoint.unknown)))
    return lines
