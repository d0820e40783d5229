"""The quarterly review (季点评, issue 15 item 3): quarters, the trend figures checked against hand-computed ones,
its text, .xlsx and chart, `报表 季` in chat, the scheduled review on a moved clock, and the CLI."""

from __future__ import annotations

import io
from datetime import date, datetime, timedelta

import pytest
from openpyxl import load_workbook
from PIL import Image as PILImage
from sqlmodel import select

from bot.content import load_texts
from bot.domain.periods import period_of, previous_period
from bot.domain.workdays import WorkCalendar
from bot.operations.agenda import is_quarter_review_day, ladder_of, occurrences
from bot.reports.quarter import quarter_report
from bot.reports.render import TREND_HEADER, TREND_SHEET, render_chart, render_xlsx
from bot.reports.text import report_text
from bot.runtime.app import build_bot
from bot.storage.db import session
from bot.storage.models import Alert, AuditLog, Confirmation, ConfirmMethod, Exemption, Push, ScheduledRun, Unit
from tests.bot_process import relaybot
from tests.conftest import ADMIN, OFFICE_ROOM, TZ

UNITS = ["城关镇", "东城街道", "西湖镇", "区教育局", "区卫健局", "金融行业"]  # the example roster's order
# Per push: the day its deadline falls on and each unit's part, in UNITS order: o on time, l late, m missed,
# x exempted (免转). 西湖镇 was exempted from every push of Q3: it has nothing to compare with.
Q3 = [(date(2026, 8, 10), "moxoxo"), (date(2026, 9, 10), "ooxomo")]
Q4 = [(date(2026, 10, 15), "omoolo"), (date(2026, 11, 16), "olmooo")]
# By hand, on-time shares:       Q3          Q4          change
#   城关镇                       1/2 = 50%   2/2 = 100%  +50.0
#   东城街道                     2/2         0/2 (m, l)  -100.0
#   西湖镇                       - (免转)    1/2 (o, m)  新
#   区教育局                     2/2         2/2         持平
#   区卫健局                     0/1 (x, m)  1/2 (l, o)  +50.0
#   金融行业                     2/2         2/2         持平
# District: Q3 7 of 9 received (two 免转 for 西湖镇, one for 区卫健局) = 77.8%; Q4 8 of 12 = 66.7%: down 11.1.
Q4_TEXT = [
    "📊 反诈预警转发季点评（2026年第4季度）",
    "推送 2 条，应转 12 次：按时 8，迟报 2，未转 2。",
    "全区按时率 66.7%，上季度 77.8%，下降 11.1 个百分点。",
    "红榜：城关镇、区教育局、金融行业",
    "进步最大：区卫健局（0.0%→50.0%，↑50.0）、城关镇（50.0%→100.0%，↑50.0）",
    "下滑最多：东城街道（100.0%→0.0%，↓100.0）",
    "上季度没有收到推送的单位 1 个，不作比较。",
    "问题较多：东城街道（按时率 0.0%，未转 1 次）、西湖镇（按时率 50.0%，未转 1 次）、区卫健局（按时率 50.0%，未转 0 次）",
    "排名规则：按时率高者在前，再比未转发少、迟报少、用时中位数短；各项相同的并列同名次，与第 3 名并列的一并上榜。",
]


def record(engine, pushes: list[tuple[date, str]]) -> None:
    """Pushes made at 09:00 with a deadline at 18:00 of their day, confirmed as the codes say. A unit's on-time
    confirmation comes 10 minutes later per place in the roster, so no two units tie on the median."""
    with session(engine) as s:
        units = {u.name: u.id for u in s.exec(select(Unit))}
        alert = Alert(case_type="刷单", title="刷单返利诈骗预警", created_at=local(2026, 7, 1, 8, 0))
        s.add(alert)
        s.flush()
        for day, codes in pushes:
            pushed = datetime(day.year, day.month, day.day, 9, 0, tzinfo=TZ)
            deadline = pushed.replace(hour=18)
            push = Push(alert_id=alert.id, created_at=pushed, created_by=ADMIN.contact_id, deadline=deadline)
            push.state = "closed"
            s.add(push)
            s.flush()
            for place, (name, code) in enumerate(zip(UNITS, codes, strict=True), start=1):
                if code == "x":
                    s.add(Exemption(push_id=push.id, unit_id=units[name], reason="本季不涉及", at=pushed))
                elif code in "ol":
                    at = pushed + timedelta(minutes=10 * place) if code == "o" else deadline + timedelta(hours=1)
                    s.add(
                        Confirmation(
                            push_id=push.id,
                            unit_id=units[name],
                            at=at,
                            method=ConfirmMethod.TEXT.value,
                            late=code == "l",
                            acked_at=at,  # acknowledged in its group long ago
                        )
                    )
        s.commit()


def local(*args):
    return datetime(*args, tzinfo=TZ)


# ---- quarters and the days they are reviewed -----------------------------------------------------------------


def test_quarters_and_the_quarter_before_across_a_year_end():
    assert period_of("quarter", date(2026, 1, 1)) == (date(2026, 1, 1), date(2026, 3, 31))
    assert period_of("quarter", date(2026, 3, 31)) == (date(2026, 1, 1), date(2026, 3, 31))
    assert period_of("quarter", date(2026, 5, 20)) == (date(2026, 4, 1), date(2026, 6, 30))
    assert period_of("quarter", date(2026, 9, 30)) == (date(2026, 7, 1), date(2026, 9, 30))
    assert period_of("quarter", date(2026, 12, 31)) == (date(2026, 10, 1), date(2026, 12, 31))
    assert period_of("quarter", date(2028, 2, 29)) == (date(2028, 1, 1), date(2028, 3, 31))
    # The review on the first working day of January covers October-December of the year before.
    assert previous_period("quarter", date(2027, 1, 4)) == (date(2026, 10, 1), date(2026, 12, 31))
    assert previous_period("quarter", date(2026, 4, 1)) == (date(2026, 1, 1), date(2026, 3, 31))
    assert previous_period("quarter", date(2026, 10, 8)) == (date(2026, 7, 1), date(2026, 9, 30))


def test_the_review_is_due_on_the_first_working_day_after_each_quarter(settings):
    calendar = WorkCalendar()
    # 2026-01-01 to 01-03 is the New Year holiday and Sunday 01-04 a make-up working day (State Council schedule).
    assert [d for d in (date(2026, 1, n) for n in range(1, 8)) if is_quarter_review_day(d, calendar)] == [
        date(2026, 1, 4)
    ]
    assert is_quarter_review_day(date(2026, 4, 1), calendar)  # a Wednesday
    assert not is_quarter_review_day(date(2026, 5, 1), calendar)  # a month that starts no quarter
    # National Day: 10-01..10-07 off, so Q3 is reviewed on Thursday 10-08, once.
    found = occurrences(
        since=local(2026, 9, 30, 12, 0), now=local(2026, 10, 12, 23, 0), settings=settings, calendar=calendar, tz=TZ
    )
    assert [o.due for o in found if o.job == "quarterly"] == [local(2026, 10, 8, 9, 0)]
    # chinese-calendar does not know 2027 yet: Friday 2027-01-01 counts as a working day until the office enters it
    # as 休息日 (the bot asks it to); then the review of Q4 2026 is on Monday 01-04.
    new_year = (local(2026, 12, 31, 12, 0), local(2027, 1, 6, 23, 0))
    unknown = occurrences(since=new_year[0], now=new_year[1], settings=settings, calendar=calendar, tz=TZ)
    assert [o.due for o in unknown if o.job == "quarterly"] == [local(2027, 1, 1, 9, 0)]
    entered = WorkCalendar(overrides={date(2027, 1, 1): False})
    known = occurrences(since=new_year[0], now=new_year[1], settings=settings, calendar=entered, tz=TZ)
    assert [o.due for o in known if o.job == "quarterly"] == [local(2027, 1, 4, 9, 0)]
    assert [o.due for o in known if o.job == "monthly"] == [local(2027, 1, 1, 9, 0)]  # the 1st, as always


# ---- the figures, the text, the files ----------------------------------------------------------------------------


def build_q4(engine, settings):
    with session(engine) as s:
        return quarter_report(
            s,
            start=date(2026, 10, 1),
            end=date(2026, 12, 31),
            now=local(2027, 1, 4, 9, 0),
            tz=TZ,
            ladder=ladder_of(settings),
        )


def test_each_units_trend_against_the_quarter_before(engine, roster, settings):
    record(engine, Q3 + Q4)
    report = build_q4(engine, settings)
    trend = report.trend
    assert trend is not None
    assert (trend.previous_start, trend.previous_end, trend.previous_pushes) == (date(2026, 7, 1), date(2026, 9, 30), 2)
    got = {
        r.unit: (r.rank, r.received, r.on_time, r.missed, r.previous_received, r.previous_on_time, r.change, r.trend)
        for r in trend.rows
    }
    assert got == {
        "城关镇": (1, 2, 2, 0, 2, 1, 50.0, "↑"),  # improved
        "区教育局": (2, 2, 2, 0, 2, 2, 0.0, "持平"),
        "金融行业": (3, 2, 2, 0, 2, 2, 0.0, "持平"),
        "区卫健局": (4, 2, 1, 0, 1, 0, 50.0, "↑"),  # exempted once in Q3: 0 of 1
        "西湖镇": (5, 2, 1, 1, 0, 0, None, "新"),  # new this quarter: nothing to compare
        "东城街道": (6, 2, 0, 1, 2, 2, -100.0, "↓"),  # fell
    }
    assert [r.unit for r in trend.rows] == [u.unit for u in report.units]  # in ranking order
    assert round(trend.rate * 100, 1) == 66.7 and round(trend.previous_rate * 100, 1) == 77.8
    # The same change shares a place; tied units in name order.
    assert trend.improved == ["区卫健局", "城关镇"] and trend.improved_named == 2
    assert trend.fallen == ["东城街道"]
    assert report.black == ["东城街道", "西湖镇", "区卫健局"]  # 问题较多: the ranking's worst


def test_the_review_text_fits_a_phone(engine, roster, settings):
    record(engine, Q3 + Q4)
    text = report_text(load_texts(), build_q4(engine, settings))
    assert text.splitlines()[: len(Q4_TEXT)] == Q4_TEXT
    assert len(text.splitlines()) <= len(Q4_TEXT) + 4  # escalation lines at most, never a line per unit


def test_a_quarter_after_one_without_pushes_is_not_compared(engine, roster, settings):
    record(engine, Q4)
    text = report_text(load_texts(), build_q4(engine, settings)).splitlines()
    assert text[2] == "全区按时率 66.7%；上季度没有到期的推送，不作比较。"
    assert not [line for line in text if line.startswith(("进步最大", "下滑"))]
    assert text[4].startswith("问题较多：东城街道")


def test_a_long_tie_among_the_most_improved_is_counted_not_named():
    from bot.reports.figures import Report, UnitRow
    from bot.reports.quarter import compare
    from bot.reports.text import quarter_lines

    def rep(on_time: dict[str, int]) -> Report:
        units = [UnitRow(n, "镇街", 4, k, k, 0, 4 - k, 5.0, "", rank=1) for n, k in on_time.items()]
        return Report("quarter", "t", date(2026, 10, 1), date(2026, 12, 31), local(2027, 1, 4), units, [])

    names = [f"单位{i:02d}" for i in range(10)]
    trend = compare(rep(dict.fromkeys(names, 4)), rep({n: (3 if i < 9 else 0) for i, n in enumerate(names)}))
    # 单位09 rose 100 points; nine units rose 25 points each: too many to name after it, so they are counted.
    assert trend.improved == ["单位09", *names[:9]] and trend.improved_named == 1
    improved = next(line for line in quarter_lines(load_texts(), rep({}), trend) if line.startswith("进步最大"))
    assert improved == "进步最大：单位09（0.0%→100.0%，↑100.0）、另有 9 个单位同样↑25.0，见表格“季度趋势”"


def test_the_workbook_has_the_trend_sheet_and_the_chart_compares_the_quarters(engine, roster, settings):
    record(engine, Q3 + Q4)
    report = build_q4(engine, settings)
    wb = load_workbook(io.BytesIO(render_xlsx(report, TZ)))
    assert wb.sheetnames[:2] == [TREND_SHEET, "单位排名"]
    sheet = wb[TREND_SHEET]
    assert [c.value for c in sheet[1]] == TREND_HEADER
    rows = {row[1]: row for row in sheet.iter_rows(min_row=2, values_only=True)}
    # 排名 单位 类别 本季收到 本季按时 本季未转发 本季按时率 上季收到 上季按时 上季未转发 上季按时率 变化 趋势
    assert rows["城关镇"] == (1, "城关镇", "镇街", 2, 2, 0, 1.0, 2, 1, 1, 0.5, 50.0, "↑")
    assert rows["东城街道"][10:] == (1.0, -100.0, "↓")
    assert rows["西湖镇"][7:] == (0, 0, 0, None, None, "新")
    assert sheet.cell(row=2, column=7).number_format == "0.0%" and sheet.cell(row=2, column=12).number_format == "0.0"
    png = render_chart(report)
    with PILImage.open(io.BytesIO(png)) as img:
        assert img.format == "PNG" and img.size == (1200, 600)
    # A plain month's chart is not the review's: the trend chart is only drawn for a report with a trend.
    from dataclasses import replace

    assert render_chart(replace(report, trend=None)) != png


def test_the_chart_stays_readable_with_many_units():
    from bot.reports.figures import Report, UnitRow
    from bot.reports.quarter import compare
    from bot.reports.render import MAX_CHART_UNITS

    units = [UnitRow(f"第{i:03d}单位", "镇街", 4, i % 5, i % 5, 0, 4 - i % 5, 5.0, "", rank=i + 1) for i in range(300)]
    now = Report(
        "quarter",
        "反诈预警转发季点评（2026年第4季度）",
        date(2026, 10, 1),
        date(2026, 12, 31),
        local(2027, 1, 4),
        units,
        [],
    )
    report = replace_trend(now, compare(now, now))
    with PILImage.open(io.BytesIO(render_chart(report))) as img:
        assert img.size == (1200, 130 + 70 + 36 * MAX_CHART_UNITS)


def replace_trend(report, trend):
    from dataclasses import replace

    return replace(report, trend=trend)


# ---- in chat, on the schedule, on the command line --------------------------------------------------------------


async def test_report_ji_in_the_office_group_posts_the_review_with_its_files(bot, transport, engine):
    record(engine, Q3 + Q4)  # the fixture's clock is 2026-11-26: Q4 so far
    await transport.say(ADMIN, "报表 季", room_id=OFFICE_ROOM)
    await transport.say(ADMIN, "报表 上季", room_id=OFFICE_ROOM)
    await bot.send_pending()
    office = [o for o in transport.sent if o.chat_id == OFFICE_ROOM]
    texts = [o.text for o in office if o.text]
    assert texts[0].splitlines()[: len(Q4_TEXT)] == Q4_TEXT
    xlsx = next(o.file for o in office if o.file is not None)
    assert xlsx.name == "反诈预警转发季点评（2026年第4季度）.xlsx"
    sheet = load_workbook(io.BytesIO(xlsx.data))[TREND_SHEET]
    assert [(r[1], r[11], r[12]) for r in sheet.iter_rows(min_row=2, values_only=True)][:1] == [("城关镇", 50.0, "↑")]
    assert any(o.image is not None for o in office)
    # 上季: Q3 against Q2, which had no pushes.
    q3 = next(t for t in texts if t.startswith("📊 反诈预警转发季点评（2026年第3季度）")).splitlines()
    assert q3[1:3] == [
        "推送 2 条，应转 9 次：按时 7，迟报 0，未转 2。",
        "全区按时率 77.8%；上季度没有到期的推送，不作比较。",
    ]
    with session(engine) as s:
        audits = [a.detail for a in s.exec(select(AuditLog).where(AuditLog.action == "report"))]
    assert audits == ["quarter 2026-10-01..2026-12-31", "quarter 2026-07-01..2026-09-30"]


async def test_report_with_a_wrong_word_explains_the_quarter_forms(bot, transport):
    await transport.say(ADMIN, "报表 下季", room_id=OFFICE_ROOM)
    await bot.send_pending()
    answer = [o.text for o in transport.sent if o.chat_id == OFFICE_ROOM]
    assert answer == [
        "用法：报表 日 / 报表 周 / 报表 月（本期至今），报表 上周 / 报表 上月；季点评：报表 季（本季至今）/ 报表 上季。"
    ]


async def test_the_review_reaches_the_office_on_the_first_working_day_once(bot, transport, clock, engine, settings):
    record(engine, Q3 + Q4)
    await transport.say(ADMIN, "休息日 2027-01-01", room_id=OFFICE_ROOM)  # chinese-calendar does not know 2027
    await bot.send_pending()

    def reviews():
        return [o for o in transport.sent if o.chat_id == OFFICE_ROOM and o.text.startswith("📊 反诈预警转发季点评")]

    clock.now = local(2027, 1, 1, 9, 0)
    await bot.run_schedule()
    await bot.send_pending()
    assert any(o.text.startswith("📊 反诈预警转发月通报（2026年12月）") for o in transport.sent if o.text)
    assert reviews() == []  # a holiday: not yet
    clock.now = local(2027, 1, 4, 8, 59)
    await bot.run_schedule()
    assert reviews() == []
    transport.sent.clear()
    clock.now = local(2027, 1, 4, 9, 0)
    await bot.run_schedule()
    await bot.send_pending()
    assert [o.text.splitlines()[: len(Q4_TEXT)] for o in reviews()] == [Q4_TEXT]
    office = [o for o in transport.sent if o.chat_id == OFFICE_ROOM]
    assert [o.file.name for o in office if o.file is not None] == ["反诈预警转发季点评（2026年第4季度）.xlsx"]
    assert [o.image.name for o in office if o.image is not None] == ["反诈预警转发季点评（2026年第4季度）.png"]
    # Restart-safe: the stored run is what stops a second review, in this bot and in a new one on the same database.
    clock.now = local(2027, 1, 4, 9, 30)
    await bot.run_schedule()
    again = build_bot(settings, transport, engine=engine, clock=clock, send_loop=False)
    await again.start()
    await again.run_schedule()
    await again.send_pending()
    await again.stop()
    assert len(reviews()) == 1
    with session(engine) as s:
        runs = s.exec(select(ScheduledRun).where(ScheduledRun.job == "quarterly")).all()
    assert [(r.due_at, r.state) for r in runs] == [(local(2027, 1, 4, 9, 0), "done")]


@pytest.mark.slow
def test_cli_quarter_writes_the_review_workbook(engine, roster, tmp_path):
    record(engine, Q3 + Q4)
    out = tmp_path / "季点评.xlsx"
    result = relaybot(
        "report", "--quarter", "--date", "2026-11-20", "--out", str(out), db_url=str(engine.url), cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[: len(Q4_TEXT)] == Q4_TEXT
    sheet = load_workbook(out)[TREND_SHEET]
    assert sheet["B2"].value == "城关镇" and sheet["L2"].value == 50.0 and sheet["M2"].value == "↑"
    assert sheet["K2"].value == 0.5 and sheet["K2"].number_format == "0.0%"
    with PILImage.open(out.with_suffix(".png")) as img:
        assert img.size == (1200, 600)
