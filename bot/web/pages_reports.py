"""通报 in the web console (issue 14): the day/week/month relay report on the page, its chart, its .xlsx.

The figures are the bot's own (bot/reports/build.py `build_report`, the same as `报表 月` and the 1st's report), the
text is the chat's (compose.report_text), the chart and the workbook are what the office group receives. The period
comes from the query string, checked strictly: a kind of day/week/month and a date, nothing else.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bot.chat import compose
from bot.domain.periods import period_of, previous_period
from bot.operations.agenda import ladder_of
from bot.reports.build import build_report
from bot.reports.figures import Report
from bot.reports.render import render_chart, render_xlsx

NAV = [("/reports", "通报", "reports")]
KINDS = {"day": "日", "week": "周", "month": "月"}


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
    def build(kind: str, start: date, end: date) -> Callable[[Any], Report]:
        def work(s) -> Report:
            now: datetime = console.clock()
            return build_report(
                s,
                kind=kind,
                start=start,
                end=end,
                now=now,
                tz=console.settings.tz,
                ladder=ladder_of(console.settings),
            )

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
