"""通报 in the web console (issue 14): the day/week/month relay report and the quarterly review (季点评) on the page, its chart, its .xlsx.

The figures are the bot's own (bot/reports/build.py `build_report`, the same as `报表 月` and the 1st's report), the
text is the chat's (compose.report_text), the chart and the workbook are what the office group receives. The period
comes from the query string, checked strictly: a kind of day/week/month/quarter and a date, nothing else.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from datetime import date, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bot.chat import compose
from bot.domain.periods import period_of, previous_period
from bot.operations.agenda import ladder_of
from bot.reports.build import ConfirmationCache
from bot.reports.figures import Report
from bot.reports.quarter import build_period_report
from bot.reports.render import render_chart, render_xlsx

NAV = [("/reports", "通报", "reports")]
KINDS = {"day": "日", "week": "周", "month": "月", "quarter": "季"}
CACHE_SECONDS = 60.0  # the longest a shown report may lag behind a change no fingerprint sees (a screenshot's verdict)
CACHE_SIZE = 12


def fingerprint(session) -> tuple:
    """What changes when a report's figures may: new or removed confirmations, corrections, exemptions, pushes,
    withdrawals, units, screenshots, and every office action (audited: 截止, 撤回, 补登, … from chat or the web)."""
    from sqlalchemy import func
    from sqlmodel import col, select

    from bot.storage.models import AuditLog, Confirmation, Correction, Exemption, Push, PushState, Unit

    parts: list[Any] = [
        select(func.max(Confirmation.id)),
        select(func.count()).select_from(Confirmation),
        select(func.max(col(Confirmation.evidence_at))),
        select(func.max(Correction.id)),
        select(func.count()).select_from(Exemption),
        select(func.max(Push.id)),
        select(func.count()).select_from(Push).where(Push.state == PushState.WITHDRAWN.value),
        select(func.max(Unit.id)),
        select(func.count()).select_from(Unit).where(Unit.active == True),  # noqa: E712
        select(func.max(AuditLog.id)),
    ]
    return tuple(session.exec(select(*[p.scalar_subquery() for p in parts])).one())


class ReportCache:
    """The last few reports built, each kept while the database's fingerprint is unchanged and for at most
    CACHE_SECONDS: a month's report takes the database a few hundred milliseconds, looking at it again should not.
    The console's own changes clear it (Console.changed)."""

    def __init__(self) -> None:
        self._items: OrderedDict[tuple, tuple[tuple, float, Report]] = OrderedDict()

    def get(self, key: tuple, mark: tuple) -> Report | None:
        found = self._items.get(key)
        if found is None or found[0] != mark or time.monotonic() - found[1] > CACHE_SECONDS:
            return None
        self._items.move_to_end(key)
        return found[2]

    def put(self, key: tuple, mark: tuple, report: Report) -> None:
        self._items[key] = (mark, time.monotonic(), report)
        self._items.move_to_end(key)
        while len(self._items) > CACHE_SIZE:
            self._items.popitem(last=False)

    def clear(self) -> None:
        self._items.clear()


def _period(request: Request, today: date) -> tuple[str, date, date] | None:
    """(kind, start, end) from ?kind=&day=&prev=; None for anything else than what the page's links make."""
    kind = request.query_params.get("kind", "week")
    if kind not in KINDS:
        return None
    raw = request.query_params.get("day", "")
    try:
        day = date.fromisoformat(raw) if raw else today
    except ValueError:
        return None
    if not (date(2000, 1, 1) <= day <= date(2100, 1, 1)):
        return None
    start, end = previous_period(kind, day) if request.query_params.get("prev") == "1" else period_of(kind, day)
    return kind, start, end


def _content_disposition(name: str) -> str:
    from urllib.parse import quote

    return f"attachment; filename=report.xlsx; filename*=UTF-8''{quote(name)}"


def routes(console) -> list[Route]:
    cache = ReportCache()
    console.on_change(cache.clear)
    confirmations = ConfirmationCache()  # each push's confirmations while it is unchanged: a cold report is quick

    def build(kind: str, start: date, end: date) -> Callable[[Any], Report]:
        def work(s) -> Report:
            now: datetime = console.clock()
            key = (kind, start, end, now.astimezone(console.settings.tz).date())
            mark = fingerprint(s)
            report = cache.get(key, mark)
            if report is None:
                report = build_period_report(
                    s,
                    kind=kind,
                    start=start,
                    end=end,
                    now=now,
                    tz=console.settings.tz,
                    ladder=ladder_of(console.settings),
                    cache=confirmations,
                )
                cache.put(key, mark, report)
            return report

        return work

    async def period_or_refusal(request: Request, who):
        today = console.clock().astimezone(console.settings.tz).date()
        period = _period(request, today)
        if period is None:
            return None, console.refusal(400, console.texts.t("web_reports.bad_period"), who)
        return period, None

    async def page(request: Request, who, form) -> Response:
        period, refused = await period_or_refusal(request, who)
        if refused is not None:
            return refused
        kind, start, end = period
        report: Report = await console.db(build(kind, start, end))
        query = f"kind={kind}&day={start.isoformat()}"
        return console.page(
            "reports_page.html",
            who=who,
            nav="reports",
            report=report,
            kind=kind,
            kinds=KINDS,
            start=start,
            end=end,
            query=query,
            # The chat's report text under the page's title: totals, 红榜/黑榜 and their rule, escalations.
            lines=compose.report_text(console.texts, report).splitlines()[1 if report.pushes else 0 :],
            prev_day=previous_period(kind, start)[0].isoformat(),
            next_day=period_of(kind, end.fromordinal(end.toordinal() + 1))[0].isoformat(),
        )

    async def chart(request: Request, who, form) -> Response:
        period, refused = await period_or_refusal(request, who)
        if refused is not None:
            return refused
        report: Report = await console.db(build(*period))
        if not report.pushes:
            return console.refusal(404, console.texts.t("web_reports.nothing"), who)
        from starlette.concurrency import run_in_threadpool

        png = await run_in_threadpool(render_chart, report)
        return Response(png, media_type="image/png", headers={"Cache-Control": "no-store"})

    async def workbook(request: Request, who, form) -> Response:
        period, refused = await period_or_refusal(request, who)
        if refused is not None:
            return refused
        report: Report = await console.db(build(*period))
        if not report.pushes:
            return console.refusal(404, console.texts.t("web_reports.nothing"), who)
        from starlette.concurrency import run_in_threadpool

        data = await run_in_threadpool(render_xlsx, report, console.settings.tz, console.texts)
        return Response(
            data,
            media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            headers={"Content-Disposition": _content_disposition(f"{report.title}.xlsx"), "Cache-Control": "no-store"},
        )

    g = console.guarded
    return [
        Route("/reports", g(page), methods=["GET"]),
        Route("/reports/chart.png", g(chart), methods=["GET"]),
        Route("/reports/report.xlsx", g(workbook), methods=["GET"]),
    ]
