"""Reports checked against figures computed by hand: scheduled weekly report, 报表 on demand, the CLI."""

from __future__ import annotations

import io
from datetime import datetime

import pytest
from openpyxl import load_workbook
from PIL import Image as PILImage

from bot.operations.agenda import ladder_of
from bot.reports.build import build_report, period_of, previous_period
from bot.storage.db import session
from tests.bot_process import relaybot
from tests.conftest import ADMIN, LI, LIAISON_ROOM, OFFICE_ROOM, TZ, WANG, WU, ZHENG, ZHOU

# (who, minutes after 09:00 on the push day) per push; 西湖镇 confirms #1 at 19:00, after the deadline.
WEEK = [
    (datetime(2026, 11, 26, 9, 0, tzinfo=TZ), [(ZHENG, 10), (WANG, 30), (LI, 60), (ZHOU, 600)]),
    (datetime(2026, 11, 27, 9, 0, tzinfo=TZ), [(ZHENG, 5), (WANG, 20), (ZHOU, 40), (WU, 120)]),
]
EXPECTED_UNITS = [
    # rank, unit, received, relayed, on time, late, missed, median minutes, level
    (1, "金融行业", 2, 2, 2, 0, 0, 7.5, ""),
    (2, "城关镇", 2, 2, 2, 0, 0, 25.0, ""),
    (3, "西湖镇", 2, 2, 1, 1, 0, 320.0, ""),
    (4, "东城街道", 2, 1, 1, 0, 1, 60.0, "关注"),
    (5, "区卫健局", 2, 1, 1, 0, 1, 120.0, ""),
    (6, "区教育局", 2, 0, 0, 0, 2, None, "提醒"),
]


async def play_week(bot, transport, clock):
    from datetime import timedelta

    for start, confirmations in WEEK:
        clock.now = start
        await transport.say(ADMIN, "推送 刷单", room_id=OFFICE_ROOM)
        for who, minutes in confirmations:
            clock.now = start + timedelta(minutes=minutes)
            if clock.now > start.replace(hour=18):
                await bot.run_schedule()  # the deadline passes first
            await transport.say(who, "已转发", room_id=LIAISON_ROOM)
        clock.now = start.replace(hour=18, minute=31)
        await bot.run_schedule()
    await bot.send_pending()


async def test_week_figures_match_the_hand_computed_ones(bot, transport, clock, engine, settings):
    await play_week(bot, transport, clock)
    start, end = period_of("week", datetime(2026, 11, 28).date())
    with session(engine) as s:
        report = build_report(
            s,
            kind="week",
            start=start,
            end=end,
            now=datetime(2026, 11, 30, 9, 0, tzinfo=TZ),
            tz=TZ,
            ladder=ladder_of(settings),
        )
    got = [
        (u.rank, u.unit, u.received, u.relayed, u.on_time, u.late, u.missed, u.median_minutes, u.level)
        for u in report.units
    ]
    assert got == EXPECTED_UNITS
    assert report.red == ["金融行业", "城关镇"]
    assert report.black == ["区教育局", "区卫健局", "东城街道"]
    assert report.escalations == {"提醒": ["区教育局"]}
    assert [(p.n, p.confirmed, p.missing_units) for p in report.pushes] == [
        (1, 4, ["区教育局", "区卫健局"]),
        (2, 4, ["东城街道", "区教育局"]),
    ]


@pytest.mark.slow
async def test_monday_morning_weekly_report_reaches_the_office_with_xlsx_and_chart(bot, transport, clock):
    await play_week(bot, transport, clock)
    transport.sent.clear()
    clock.now = datetime(2026, 11, 30, 9, 0, tzinfo=TZ)
    await bot.run_schedule()
    await bot.send_pending()
    office = [o for o in transport.sent if o.chat_id == OFFICE_ROOM]
    text = next(o.text for o in office if o.text.startswith("📊"))
    assert text.splitlines()[:6] == [
        "📊 反诈预警转发周通报（11月23日—11月29日）",
        "推送 2 条，应转 12 次：按时 7，迟报 1，未转 4。",
        "红榜：金融行业、城关镇",
        "黑榜：区教育局、区卫健局、东城街道",
        "排名规则：按时率高者在前，再比未转发少、迟报少、用时中位数短；各项相同的并列同名次，与第 3 名并列的一并上榜。",
        "提醒：区教育局",
    ]
    xlsx = next(o.file for o in office if o.file is not None)
    assert xlsx.name == "反诈预警转发周通报（11月23日—11月29日）.xlsx"
    sheet = load_workbook(io.BytesIO(xlsx.data))["单位排名"]
    rows = [[c.value for c in row] for row in sheet.iter_rows(min_row=2)]
    assert [(r[0], r[1], r[3], r[5], r[6], r[7]) for r in rows] == [
        (e[0], e[1], e[2], e[4], e[5], e[6]) for e in EXPECTED_UNITS
    ]
    chart = next(o.image for o in office if o.image is not None)
    with PILImage.open(io.BytesIO(chart.data)) as img:
        assert img.format == "PNG" and img.size == (1200, 600)


async def test_daily_summary_after_the_deadline(bot, transport, clock):
    await play_week(bot, transport, clock)
    office = [o.text for o in transport.sent if o.chat_id == OFFICE_ROOM]
    daily = [t for t in office if t.startswith("📊 反诈预警转发日报")]
    assert [t.splitlines()[0] for t in daily] == ["📊 反诈预警转发日报（11月26日）", "📊 反诈预警转发日报（11月27日）"]
    assert daily[0].splitlines()[1] == "推送 1 条，应转 6 次：按时 3，迟报 0，未转 3。"  # 西湖镇 was not late yet


async def test_report_on_demand_in_the_office_group(bot, transport, clock):
    await play_week(bot, transport, clock)
    transport.sent.clear()
    clock.now = datetime(2026, 11, 30, 8, 0, tzinfo=TZ)
    await transport.say(ADMIN, "报表 上周", room_id=OFFICE_ROOM)
    await transport.say(ADMIN, "报表 季度", room_id=OFFICE_ROOM)
    await bot.send_pending()
    office = [o for o in transport.sent if o.chat_id == OFFICE_ROOM]
    assert office[0].text.startswith("📊 反诈预警转发周通报（11月23日—11月29日）")
    assert office[1].file is not None and office[2].image is not None
    assert office[3].text.startswith("用法：报表 日")


def test_periods():
    from datetime import date

    assert period_of("week", date(2026, 11, 26)) == (date(2026, 11, 23), date(2026, 11, 29))
    assert previous_period("week", date(2026, 11, 30)) == (date(2026, 11, 23), date(2026, 11, 29))
    assert previous_period("month", date(2026, 12, 1)) == (date(2026, 11, 1), date(2026, 11, 30))
    assert period_of("month", date(2026, 2, 10)) == (date(2026, 2, 1), date(2026, 2, 28))


@pytest.mark.slow
async def test_cli_report_writes_xlsx_and_png(bot, transport, clock, engine, tmp_path):
    await play_week(bot, transport, clock)
    out = tmp_path / "周报.xlsx"
    result = relaybot(
        "report", "--week", "--date", "2026-11-26", "--out", str(out), db_url=str(engine.url), cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert "推送 2 条，应转 12 次：按时 7，迟报 1，未转 4。" in result.stdout
    sheet = load_workbook(out)["推送明细"]
    assert sheet["A2"].value in (1, "#1")
    with PILImage.open(out.with_suffix(".png")) as img:
        assert img.size == (1200, 600)
    bad = relaybot("report", "--out", str(out), db_url=str(engine.url), cwd=tmp_path)
    assert bad.returncode == 2 and "--day、--week、--month 或 --quarter" in bad.stderr


async def test_monthly_report_on_the_first(bot, transport, clock):
    await play_week(bot, transport, clock)
    transport.sent.clear()
    clock.now = datetime(2026, 12, 1, 9, 0, tzinfo=TZ)
    await bot.run_schedule()
    await bot.send_pending()
    office = [o for o in transport.sent if o.chat_id == OFFICE_ROOM]
    monthly = next(o.text for o in office if o.text.startswith("📊 反诈预警转发月通报"))
    assert monthly.splitlines()[:2] == [
        "📊 反诈预警转发月通报（2026年11月）",
        "推送 2 条，应转 12 次：按时 7，迟报 1，未转 4。",
    ]
    assert any(o.file and o.file.name == "反诈预警转发月通报（2026年11月）.xlsx" for o in office)


@pytest.mark.slow
async def test_cli_units_lists_runs_and_levels(bot, transport, clock, engine, tmp_path):
    await play_week(bot, transport, clock)
    result = relaybot("units", db_url=str(engine.url), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "区教育局（区直单位）  连续未按时 2 次  等级：提醒" in result.stdout
    assert "城关镇（镇街）  连续未按时 0 次  等级：正常" in result.stdout
    one = relaybot("units", "教育", db_url=str(engine.url), cwd=tmp_path)
    assert one.returncode == 0 and "连续未按时：2 次；当前等级：提醒" in one.stdout
    unknown = relaybot("units", "火星", db_url=str(engine.url), cwd=tmp_path)
    assert unknown.returncode == 1 and "没有找到单位“火星”" in unknown.stdout


async def test_an_empty_day_report_says_so_and_sends_no_files(bot, transport, clock):
    # Issue 13: it used to end with "明细见下方表格和图表" and send an empty table and chart.
    await transport.say(ADMIN, "报表 日", room_id=OFFICE_ROOM)
    await bot.send_pending()
    office = [o for o in transport.sent if o.chat_id == OFFICE_ROOM]
    assert [o.text for o in office] == ["📊 反诈预警转发日报（11月26日）\n本期没有到期的推送，不附表格和图表。"]
    assert not [o for o in office if o.file is not None or o.image is not None]
