"""全市 in the web console (issue 16): a city admin (`city_admin_ids`) pushes a library alert to every district and
sees each city push's progress per district. Shown only on a district's console (`district` set); the page reads
and writes through the city's own login (the districts' bots send what it queues, as for `推送 刷单 全市`)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from bot.operations.city import CityError, CityProgress, CityRepeat, city_progress, push_to_city, repeat_text
from bot.storage.db import make_engine
from bot.storage.districts import city_push_table

NAV = [("/city", "全市", "city")]  # added to the menu by create_app only on a district's console
SHOWN = 10  # the newest city pushes on the page


class CityPages:
    def __init__(self, console) -> None:
        self.c = console
        url = console.settings.city_database_url
        self.city = make_engine(url) if url else None

    def _newest(self, conn, texts) -> list[CityProgress]:
        from sqlalchemy import select

        numbers = conn.execute(select(city_push_table.c.id).order_by(city_push_table.c.id.desc()).limit(SHOWN))
        return [city_progress(conn, n, texts=texts) for n in numbers.scalars().all()]

    async def page(self, request: Request, who, form: dict[str, str]) -> Response:
        from starlette.concurrency import run_in_threadpool

        city = self.city
        if city is None:
            return self.c.refusal(200, self.c.texts.t("city.no_city_login"), who)

        def work() -> list[CityProgress]:
            with city.begin() as conn:
                return self._newest(conn, self.c.texts)

        rows = await run_in_threadpool(work)
        return self.c.page(
            "city_page.html",
            who=who,
            nav="city",
            rows=rows,
            cases=self.c_library().case_types(),
            tz=self.c.settings.tz,
            this_month=self.c.clock().astimezone(self.c.settings.tz).strftime("%Y-%m"),
            flash=self.c.take_flash(who),
        )

    def c_library(self):
        from bot.content import load_library

        return load_library()

    async def push(self, request: Request, who, form: dict[str, str]) -> Response:
        from starlette.concurrency import run_in_threadpool

        if not who.is_city:
            return self.c.refusal(403, self.c.texts.t("city.web_only_city_admins"), who)
        city = self.city
        if city is None:
            return self.c.refusal(409, self.c.texts.t("city.no_city_login"), who)
        # Exactly a type of the page's list: not the chat's loose reading (no 给, no time, no extra words here).
        case = form.get("case", "").strip()
        item = self.c_library().find(case) if case in self.c_library().case_types() else None
        if item is None:
            return self.c.refusal(
                400, self.c.texts.t("city.push_what", types="、".join(self.c_library().case_types())), who
            )

        def work() -> str:
            now = self.c.clock()
            try:
                with city.begin() as conn:
                    done = push_to_city(
                        conn,
                        item,
                        now=now,
                        actor_id=who.contact_id,
                        actor_name=f"{who.shown}（网页）",
                        settings=self.c.settings,
                        texts=self.c.texts,
                        again=form.get("again") == "1",
                    )
            except CityRepeat as repeat:
                return repeat_text(
                    self.c.texts, repeat, case=item.case_type, tz=self.c.settings.tz, how="city.again_web"
                )
            except CityError as exc:
                return str(exc)
            return self.c.texts.t("city.pushed", n=done.number, title=done.title, count=len(done.districts))

        self.c.flash(who, await run_in_threadpool(work))
        return RedirectResponse("/city", 303)

    async def report(self, request: Request, who, form: dict[str, str]) -> Response:
        """The city's 通报 of a month (?month=2026-11; last month without) as the .xlsx: anyone signed in on a
        district's console with the city's login set may read the city (a city admin, the district's people)."""
        from urllib.parse import quote

        from starlette.concurrency import run_in_threadpool
        from starlette.responses import Response as Plain

        from bot.domain.periods import parse_period, period_code, previous_period
        from bot.operations.city_report import city_month_report

        city = self.city
        if city is None:
            return self.c.refusal(409, self.c.texts.t("city.no_city_login"), who)
        today = self.c.clock().astimezone(self.c.settings.tz).date()
        wanted = request.query_params.get("month", "").strip()
        span = parse_period(wanted, today=today) if wanted else previous_period("month", today)
        if span is None or span[0] > today:
            return self.c.refusal(400, self.c.texts.t("city.report_usage"), who)

        def work() -> tuple[str, bytes | None]:
            with city.begin() as conn:
                return city_month_report(conn, span, now=self.c.clock(), texts=self.c.texts, settings=self.c.settings)

        try:
            text, data = await run_in_threadpool(work)
        except CityError as exc:
            return self.c.refusal(409, str(exc), who)
        if data is None:
            return self.c.refusal(404, text, who)
        name = f"全市通报_{period_code(*span)}.xlsx"
        return Plain(
            data,
            media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            headers={
                "Content-Disposition": f"attachment; filename=city.xlsx; filename*=UTF-8''{quote(name)}",
                "Cache-Control": "no-store",
            },
        )


def routes(console) -> list[BaseRoute]:
    pages = CityPages(console)
    g = console.guarded
    return [
        Route("/city", g(pages.page), methods=["GET"]),
        Route("/city/push", g(pages.push), methods=["POST"]),
        Route("/city/report.xlsx", g(pages.report), methods=["GET"]),
    ]
