"""One place for reading days and periods: what people type in chat (parse_day, parse_day_range) and what
statistics files and the 警情 command hold (parse_period, parse_day_or_none), with the report periods
(period_of, previous_period) they are built on.

Both the chat handlers and the domain (incident figures) read days here, so neither imports the other.
Year-less days are read relative to a `today` the caller passes: the configured time zone's today, from the
bot's clock (a host in another zone must not shift the year a 12月28日 belongs to).
"""

from __future__ import annotations

import contextlib
import re
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from bot.content import Texts
from bot.textnorm import clean

DEFAULT_TIMEZONE = "Asia/Shanghai"  # the Settings default; used only when a caller passes no `today`


class DeadlineError(ValueError):
    """The deadline (or day) text could not be understood."""


def local_today(tz: ZoneInfo | str = DEFAULT_TIMEZONE, now: datetime | None = None) -> date:
    """Today's date in `tz` (not the host's zone); `now` defaults to the real clock."""
    from bot.clock import real_clock

    zone = ZoneInfo(tz) if isinstance(tz, str) else tz
    return (now or real_clock()).astimezone(zone).date()


# --- Report periods ----------------------------------------------------------------------------------------


def period_of(kind: str, day: date) -> tuple[date, date]:
    """The day, the Monday-Sunday week, the calendar month or the quarter (Jan-Mar, Apr-Jun, ...) that contains
    `day`."""
    if kind == "day":
        return day, day
    if kind == "week":
        start = day - timedelta(days=day.weekday())
        return start, start + timedelta(days=6)
    if kind == "month":
        start = day.replace(day=1)
        nxt = (start + timedelta(days=32)).replace(day=1)
        return start, nxt - timedelta(days=1)
    if kind == "quarter":
        first = date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)
        after = date(first.year + 1, 1, 1) if first.month == 10 else date(first.year, first.month + 3, 1)
        return first, after - timedelta(days=1)
    raise ValueError(f"unknown report kind {kind!r}")


def previous_period(kind: str, day: date) -> tuple[date, date]:
    """The period before the one containing `day` (what Monday's, the 1st's and the quarter's reports cover)."""
    start, _ = period_of(kind, day)
    return period_of(kind, start - timedelta(days=1))


# --- Days people type in chat (请假, 工作日, 报表) --------------------------------------------------------------------------------------

_DAY_FORMS = [
    re.compile(r"^(?P<rel>前天|昨天|昨日|今天|今日|明天|明日|后天)$"),
    re.compile(r"^(?:(?P<y>\d{4})年)?(?P<mo>\d{1,2})月(?P<d>\d{1,2})[日号]?$"),
    re.compile(r"^(?:(?P<y>\d{4})[-/.])?(?P<mo>\d{1,2})[-/.](?P<d>\d{1,2})$"),
]
# 昨天 and 前天 for `relaybot report --date` (a report looks back); leave and the calendar may be set for them too.
_RELATIVE_DAYS = {"前天": -2, "昨天": -1, "昨日": -1, "今天": 0, "今日": 0, "明天": 1, "明日": 1, "后天": 2}
_CHAT_RANGE_SEP = re.compile(r"至|到|~|～|—|－")


def parse_day(text: str, *, today: date) -> date:
    """A day like 今天, 昨天, 11月30日, 2027-01-01 or 12/1 (this year, or next year if more than 180 days past)."""
    body = clean(text).replace(" ", "")
    for form in _DAY_FORMS:
        m = form.match(body)
        if not m:
            continue
        parts = m.groupdict()
        if parts.get("rel"):
            return today + timedelta(days=_RELATIVE_DAYS[parts["rel"]])
        year = int(parts["y"]) if parts.get("y") else today.year
        try:
            day = date(year, int(parts["mo"]), int(parts["d"]))
        except ValueError as exc:
            raise DeadlineError(str(exc)) from exc
        if not parts.get("y") and day < today - timedelta(days=180):
            day = day.replace(year=year + 1)
        return day
    raise DeadlineError("not a day")


def parse_day_range(text: str, *, today: date) -> tuple[date, date]:
    """One day, or two joined by 至/到/~ (also "11月30日-12月2日"); the end is not before the start."""
    body = clean(text).replace(" ", "")
    parts = _CHAT_RANGE_SEP.split(body)
    if len(parts) == 1 and body.count("-") == 1 and "月" in body:
        parts = body.split("-")
    if len(parts) == 1:
        day = parse_day(parts[0], today=today)
        return day, day
    if len(parts) != 2:
        raise DeadlineError("not a range")
    start, end = parse_day(parts[0], today=today), parse_day(parts[1], today=today)
    if end < start:
        raise DeadlineError("end before start")
    if (end - start).days > 366:
        raise DeadlineError("range too long")
    return start, end


_MAX_PERIOD_LEN = 64  # the longest period spelling, 2026年11月23日至2026年11月29日, has 23 characters
_WEEK = re.compile(r"(\d{4})(?:-?W(\d{1,2})|年第?(\d{1,2})周)")
_MONTH = re.compile(r"(\d{4})(?:[-/.](\d{1,2})|年(\d{1,2})月份?)")
_YMD = re.compile(r"(\d{4})[-/.年](\d{1,2})[-/.月](\d{1,2})日?")
_COMPACT = re.compile(r"(\d{4})(\d{2})(\d{2})")
_MD = re.compile(r"(\d{1,2})月(\d{1,2})日?")
_TIME_SUFFIX = re.compile(r"[ T]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?$")
_RANGE_SEP = re.compile(r"~|〜|—+|–|-|至|到")


# --- Periods of figures (statistics files, 警情 commands) -----------------------------------------------------------------------------------------------


def _is_week(start: date, end: date) -> bool:
    return start.weekday() == 0 and end == start + timedelta(days=6)


def _is_month(start: date, end: date) -> bool:
    return start.day == 1 and period_of("month", start) == (start, end)


def period_code(start: date, end: date) -> str:
    """A compact name for a period: 2026-W47, 2026-11, or 2026-11-23~2026-11-29."""
    if _is_week(start, end):
        year, week, _ = start.isocalendar()
        return f"{year}-W{week:02d}"
    if _is_month(start, end):
        return f"{start.year}-{start.month:02d}"
    return start.isoformat() if start == end else f"{start.isoformat()}~{end.isoformat()}"


def period_label(texts: Texts, start: date, end: date) -> str:
    """A period as people say it: 2026年第47周（11月23日—11月29日）, 2026年11月, or a span of days."""
    t = texts.t
    if _is_month(start, end):
        return t("stats.period_month", year=start.year, month=start.month)

    def day(d: date, with_year: bool) -> str:
        key = "stats.day_with_year" if with_year else "stats.day"
        return t(key, year=d.year, month=d.month, day=d.day)

    if _is_week(start, end):
        year, week, _ = start.isocalendar()
        span = t("stats.span", start=day(start, False), end=day(end, end.year != start.year))
        return t("stats.period_week", year=year, week=week, span=span)
    if start == end:
        return day(start, True)
    return t("stats.span", start=day(start, True), end=day(end, end.year != start.year))


def _previous(start: date, end: date) -> tuple[date, date]:
    # Months differ in length, so "the same length" means the previous calendar month for a month.
    if _is_month(start, end):
        return period_of("month", start - timedelta(days=1))
    days = (end - start).days + 1
    return start - timedelta(days=days), start - timedelta(days=1)


def same_period_last_year(start: date, end: date) -> tuple[date, date] | None:
    """The period a year before, for 同比: the same month, the same ISO week number, or the same days a year back
    (29 February becomes the 28th); None for a week 53 the year before lacks."""
    if _is_month(start, end):
        return period_of("month", start.replace(year=start.year - 1))
    if _is_week(start, end):
        year, week, _ = start.isocalendar()
        try:
            monday = date.fromisocalendar(year - 1, week, 1)
        except ValueError:
            return None
        return monday, monday + timedelta(days=6)

    def back(day: date) -> date:
        try:
            return day.replace(year=day.year - 1)
        except ValueError:
            return day.replace(year=day.year - 1, day=28)

    return back(start), back(end)


def _nearest(month: int, day: int, today: date) -> date | None:
    # A year-less 11月23日 means the one closest to today (around New Year that may be last or next year).
    candidates = []
    for year in (today.year - 1, today.year, today.year + 1):
        with contextlib.suppress(ValueError):  # no such day that year (29 February)
            candidates.append(date(year, month, day))
    return min(candidates, key=lambda d: abs((d - today).days), default=None)


def parse_day_or_none(text: str, today: date) -> date | None:
    """A day as police sheets write it (2026-11-23, 2026年11月23日, 20261123, 11月23日 nearest `today`); None if not."""
    s = re.sub(r"\s+", "", _TIME_SUFFIX.sub("", clean(text)))
    try:
        if m := _YMD.fullmatch(s) or _COMPACT.fullmatch(s):
            return date(int(m[1]), int(m[2]), int(m[3]))
    except ValueError:
        return None
    if m := _MD.fullmatch(s):
        return _nearest(int(m[1]), int(m[2]), today)
    return None


def parse_period(text: str, *, today: date | None = None) -> tuple[date, date] | None:
    """(first day, last day) of 2026-W47, 2026年第47周, 2026-11, 2026年11月 or a span of days; None if unreadable.

    Year-less days are read nearest `today`: pass the configured time zone's today (default: local_today())."""
    today = today or local_today()
    s = re.sub(r"\s+", "", clean(text)).upper()
    if len(s) > _MAX_PERIOD_LEN:  # trying every separator is quadratic: 10 000 dashes took a second
        return None
    if m := _WEEK.fullmatch(s):
        try:
            monday = date.fromisocalendar(int(m[1]), int(m[2] or m[3]), 1)
        except ValueError:
            return None
        return monday, monday + timedelta(days=6)
    if m := _MONTH.fullmatch(s):
        month = int(m[2] or m[3])
        return period_of("month", date(int(m[1]), month, 1)) if 1 <= month <= 12 else None
    # "2026-11-23-2026-11-29" has several dashes: the split is the one where both sides are dates.
    for sep in _RANGE_SEP.finditer(s):
        start = parse_day_or_none(s[: sep.start()], today)
        if start is None:
            continue
        right = s[sep.end() :]
        end = parse_day_or_none(right, start)
        if end is None and (m := re.fullmatch(r"(\d{1,2})日", right)):  # 11月23日-29日
            try:
                end = start.replace(day=int(m[1]))
            except ValueError:
                end = None
        if end is not None and start <= end and (end - start).days <= 366:
            return start, end
    return None
