"""The city's report (全市通报) in one call, for the CLI (`relaybot city report`) and the city office's chat."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy.engine import Connection

from bot.config import Settings
from bot.content import Texts
from bot.operations.city import CityError
from bot.reports.city import CityReport, city_figures, city_text, render_city_xlsx
from bot.storage.districts import districts


def city_report(
    conn: Connection, period: tuple[date, date], *, now: datetime, texts: Texts, settings: Settings
) -> CityReport:
    """The figures of the city's report for `period` (first day, last day), in the caller's transaction on the
    city's connection. CityError (Chinese) when the database has no districts."""
    every = districts(conn)
    if not every:
        raise CityError(texts.t("cityreport.no_districts"))
    start, end = period
    return city_figures(conn, start=start, end=end, now=now, tz=settings.tz, texts=texts, every=every)


def city_month_report(
    conn: Connection, period: tuple[date, date], *, now: datetime, texts: Texts, settings: Settings
) -> tuple[str, bytes | None]:
    """The city's report for `period` (first day, last day; a month: bot.domain.periods.period_of("month", day)):
    its chat text and its .xlsx (None when no district had a push in the period: the text says so).
    CityError (Chinese) when the database has no districts."""
    report = city_report(conn, period, now=now, texts=texts, settings=settings)
    text = city_text(texts, report)
    return text, (render_city_xlsx(report) if report.pushes else None)
