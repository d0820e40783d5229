"""`relaybot report`: a relay report's text on the terminal and its .xlsx and chart in files.

The day after --date is read by the chat's own day parser (bot/domain/periods.parse_day), so every form the
office types in the group (2026-11-26, 11月26日, 11/26, 今天, 昨天 ...) works here too, and nothing else does.
"""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

from bot.config import Settings
from bot.content import Texts
from bot.domain.periods import DeadlineError, parse_day, period_of


class ReportDateError(ValueError):
    """--date names no day, or a period that has not begun; the message is the Chinese sentence to print."""


def report_day(text: str, *, kind: str, today: date, texts: Texts) -> date:
    """The day --date names (today when empty), as the chat reads days; ReportDateError if bad."""
    if not text.strip():
        return today
    try:
        day = parse_day(text, today=today)
    except DeadlineError:
        raise ReportDateError(texts.t("report_cli.bad_date", text=text)) from None
    if period_of(kind, day)[0] > today:
        # A year-less day more than half a year back is read as next year's, as in chat: say what it was read as.
        raise ReportDateError(
            texts.t(
                "report_cli.future",
                text=text,
                day=f"{day.year}年{day.month}月{day.day}日",
                example=f"{day.year - 1}-{day.month:02d}-{day.day:02d}",
            )
        )
    return day


def write_report(engine, *, kind: str, day: date, now: datetime, settings: Settings, out: Path, texts: Texts) -> str:
    """Build the report of the period containing `day`, write its .xlsx and chart (when it had pushes) and return
    what to print: the report's text and which files were written."""
    from bot.operations.agenda import ladder_of
    from bot.reports.quarter import build_period_report
    from bot.reports.text import report_text
    from bot.storage.db import session

    tz = settings.tz
    start, end = period_of(kind, day)
    with session(engine) as s:
        rep = build_period_report(s, kind=kind, start=start, end=end, now=now, tz=tz, ladder=ladder_of(settings))
    out = out if out.suffix.lower() == ".xlsx" else out.with_suffix(".xlsx")
    text = report_text(texts, rep)
    if not rep.pushes:  # the text says there is nothing to tabulate: no empty files
        return text + "\n" + texts.t("report_cli.not_written", out=out)
    from bot.reports.render import render_chart, render_xlsx

    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(render_xlsx(rep, tz, texts))
    chart = out.with_suffix(".png")
    chart.write_bytes(render_chart(rep))
    return text + "\n" + texts.t("report_cli.written", xlsx=out, png=chart)
