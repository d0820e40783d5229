"""同比 beside 环比, last year's figures imported beside this year's, and the plan's 6月30日/12月31日 checkpoints."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime

import openpyxl
import pytest
from pydantic import ValidationError
from sqlmodel import select

from bot.chat.compose import stats_report_text
from bot.config import Settings
from bot.content import load_library, load_texts
from bot.domain.incidents import build_stats_report, import_stats, read_stats_bytes
from bot.domain.periods import period_of, same_period_last_year
from bot.reports.incident_render import render_stats_xlsx
from bot.storage.db import session
from bot.storage.models import IncidentStat

NOW = datetime(2026, 7, 1, 2, 0, tzinfo=UTC)
TODAY = date(2026, 7, 1)
HEADER = "镇街,周期,案件类型,警情数\n"
JUNE = period_of("month", date(2026, 6, 1))
MAY = period_of("month", date(2026, 5, 1))
DEC = period_of("month", date(2026, 12, 1))

LAST_JUNE = """城关镇,2025-06,,10
东城街道,2025-06,,4
西湖镇,2025-06,,0
南山镇,2025-06,,5
"""
THIS_YEAR = """城关镇,2026-05,,9
东城街道,2026-05,,2
西湖镇,2026-05,,1
南山镇,2026-05,,6
新区街道,2026-05,,3
城关镇,2026-06,,8
东城街道,2026-06,,3
西湖镇,2026-06,,2
南山镇,2026-06,,5
新区街道,2026-06,,1
北湖镇,2026-06,,0
"""
PERIOD_RULE = "6月30日节点（目标：发案数环比、同比下降）"


def store(engine, body, *, now=NOW, source="警情.csv"):
    rows = read_stats_bytes("警情.csv", (HEADER + body).encode(), today=TODAY)
    with session(engine) as s:
        report = import_stats(s, rows, now=now, source=source)
        s.commit()
    return report


def report_for(engine, period, **kw):
    with session(engine) as s:
        return build_stats_report(s, period_start=period[0], period_end=period[1], library=load_library(), **kw)


def by_town(report):
    return {t.town: t for t in report.towns}


# --- The period a year before ------------------------------------------------------------------------------


def test_same_period_last_year():
    assert same_period_last_year(*JUNE) == (date(2025, 6, 1), date(2025, 6, 30))
    feb = period_of("month", date(2024, 2, 1))
    assert same_period_last_year(*feb) == (date(2023, 2, 1), date(2023, 2, 28))
    w27 = (date.fromisocalendar(2026, 27, 1), date.fromisocalendar(2026, 27, 7))
    assert same_period_last_year(*w27) == (date(2025, 6, 30), date(2025, 7, 6))  # the same ISO week number
    assert same_period_last_year(date.fromisocalendar(2026, 53, 1), date.fromisocalendar(2026, 53, 7)) is None
    assert same_period_last_year(date(2024, 2, 29), date(2024, 3, 2)) == (date(2023, 2, 28), date(2023, 3, 2))


# --- 同比 in the figures and the text ------------------------------------------------------------------------


def test_each_town_is_compared_with_last_year_and_missing_figures_are_never_zero(engine):
    store(engine, LAST_JUNE)
    store(engine, THIS_YEAR)
    rep = report_for(engine, JUNE)
    towns = by_town(rep)
    assert rep.last_year_period == (date(2025, 6, 1), date(2025, 6, 30))
    assert (rep.total, rep.last_year_total) == (19, 19)
    assert towns["城关镇"].last_year_total == 10
    assert towns["西湖镇"].last_year_total == 0  # stored as 0: a real zero
    assert towns["新区街道"].last_year_total is None  # new this year: no figure, not 0
    lines = stats_report_text(load_texts(), rep).splitlines()
    assert lines[1:4] == ["全区警情 19 起（上期 21 起）", "同比：去年同期 19 起（持平）", "警情数排名："]
    assert "1. 城关镇 8 起（环比 -1，同比 -20%）" in lines
    assert "2. 南山镇 5 起（环比 -1，同比 持平）" in lines
    assert "3. 东城街道 3 起（环比 +1，同比 -25%）" in lines
    assert "4. 西湖镇 2 起（环比 +1，同比 去年同期0起）" in lines
    assert "5. 新区街道 1 起（环比 -2，同比 无去年数据）" in lines
    assert not any("0%" in line and "新区街道" in line for line in lines)


def test_without_last_years_figures_the_text_says_so_once(engine):
    store(engine, THIS_YEAR)
    rep = report_for(engine, JUNE)
    assert rep.last_year_period is None and rep.last_year_total is None
    assert all(t.last_year_total is None for t in rep.towns)
    lines = stats_report_text(load_texts(), rep).splitlines()
    assert "同比：无去年同期数据（把去年的警情表导入后即可比较）" in lines
    assert "1. 城关镇 8 起" in lines  # no per-town "无去年数据" repeated on every line


# --- Importing last year's figures ----------------------------------------------------------------------------


def test_last_years_file_is_stored_beside_this_year_and_a_reimport_replaces_it(engine):
    first = store(engine, THIS_YEAR)
    assert not first.backfill and first.period_to_post() == JUNE
    with session(engine) as s:
        this_year = sorted((r.town, r.period_start, r.count) for r in s.exec(select(IncidentStat)))
    back = store(engine, LAST_JUNE, source="去年.csv")
    assert back.backfill and back.period_to_post() is None  # no 通报 of June 2025 to the office group
    assert len(back.added) == 4
    assert "这些是往期数据（比已有的最新一期早），已保存用于同比，不另发通报。" in back.lines(load_texts())
    again = store(engine, LAST_JUNE.replace("城关镇,2025-06,,10", "城关镇,2025-06,,12"), source="去年.csv")
    assert (len(again.added), again.unchanged) == (0, 3)
    assert [(r.town, old, r.count) for r, old in again.updated] == [("城关镇", 10, 12)]
    with session(engine) as s:
        rows = s.exec(select(IncidentStat)).all()
    last_year = sorted((r.town, r.count) for r in rows if r.period_start.year == 2025)
    assert last_year == [("东城街道", 4), ("南山镇", 5), ("城关镇", 12), ("西湖镇", 0)]  # replaced, not doubled
    assert sorted((r.town, r.period_start, r.count) for r in rows if r.period_start.year == 2026) == this_year
    assert by_town(report_for(engine, JUNE))["城关镇"].last_year_total == 12
    later = store(engine, "城关镇,2026-07,,1\n")
    assert not later.backfill and later.period_to_post() == period_of("month", date(2026, 7, 1))


def test_a_file_of_both_years_posts_this_years_period(engine):
    report = store(engine, LAST_JUNE + THIS_YEAR)
    assert not report.backfill and report.period_to_post() == JUNE


# --- 6月30日 ---------------------------------------------------------------------------------------------------


def test_june_checkpoint_lists_who_missed_the_decline_and_who_cannot_be_judged(engine):
    store(engine, LAST_JUNE)
    store(engine, THIS_YEAR)
    cp = report_for(engine, JUNE).checkpoint
    assert cp is not None and cp.day == date(2026, 6, 30) and not cp.whole_year and not cp.no_last_year
    # 城关镇 fell both ways; 南山镇 level 同比; 东城街道 rose 环比; 西湖镇 rose from 0; 北湖镇 has none at all.
    assert cp.missed == ["南山镇", "东城街道", "西湖镇"]
    assert cp.unknown == ["新区街道"]  # new this year: never listed as missing a 同比 target
    lines = stats_report_text(load_texts(), report_for(engine, JUNE)).splitlines()
    assert f"📌 {PERIOD_RULE}未达到，需书面说明：南山镇、东城街道、西湖镇" in lines
    assert "缺少去年（或上期）数据，无法判断：新区街道" in lines
    assert report_for(engine, MAY).checkpoint is None


def test_june_checkpoint_without_last_years_figures_lists_nobody(engine):
    store(engine, THIS_YEAR)
    rep = report_for(engine, JUNE)
    assert rep.checkpoint is not None and rep.checkpoint.no_last_year
    assert rep.checkpoint.missed == [] and rep.checkpoint.unknown == []
    text = stats_report_text(load_texts(), rep)
    assert f"📌 {PERIOD_RULE}：没有去年的警情数据，无法判断，暂不列出需书面说明的镇街。请先导入去年的警情表。" in text
    assert "需书面说明：" not in text


def test_june_checkpoint_without_the_previous_period(engine):
    store(engine, LAST_JUNE)
    store(engine, "城关镇,2026-06,,8\n东城街道,2026-06,,5\n")
    cp = report_for(engine, JUNE).checkpoint
    assert cp.missed == ["东城街道"]  # rose 同比: missed, whatever 环比 would have said
    assert cp.unknown == ["城关镇"]  # fell 同比, but 环比 cannot be judged


def test_all_met(engine):
    store(engine, LAST_JUNE)
    store(engine, "城关镇,2026-05,,9\n城关镇,2026-06,,1\n")
    lines = stats_report_text(load_texts(), report_for(engine, JUNE)).splitlines()
    assert f"📌 {PERIOD_RULE}：各镇街均已达到，无需书面说明" in lines


def test_the_week_containing_the_checkpoint_and_configured_days(engine):
    w27 = (date(2026, 6, 29), date(2026, 7, 5))
    store(engine, "城关镇,2025-W27,,3\n城关镇,2026-W26,,1\n城关镇,2026-W27,,4\n")
    cp = report_for(engine, w27).checkpoint
    assert cp.day == date(2026, 6, 30) and cp.missed == ["城关镇"]
    assert report_for(engine, (date(2026, 6, 22), date(2026, 6, 28))).checkpoint is None
    assert report_for(engine, w27, checkpoints=((9, 30),)).checkpoint is None
    assert report_for(engine, w27, checkpoints=((7, 1), (9, 30))).checkpoint.day == date(2026, 7, 1)


# --- 12月31日: the whole year 同比 -------------------------------------------------------------------------------


def months(year, counts, *, skip=()):
    return "".join(f"{town},{year}-{m:02d},,{n}\n" for m in range(1, 13) if m not in skip for town, n in counts.items())


def test_year_end_compares_the_whole_year_and_says_which_months_are_missing(engine):
    store(engine, months(2025, {"城关镇": 3, "东城街道": 1}, skip=(3,)))
    store(engine, months(2026, {"城关镇": 2, "东城街道": 2}) + "新区街道,2026-12,,1\n")
    cp = report_for(engine, DEC).checkpoint
    assert cp.whole_year and cp.day == date(2026, 12, 31)
    assert cp.missing_months == ["2025-03"] and cp.missed == []
    text = stats_report_text(load_texts(), report_for(engine, DEC))
    assert "📌 12月31日节点（目标：全年警情数同比下降）：缺少 2025-03 的月度警情数据" in text
    store(engine, "城关镇,2025-03,,3\n东城街道,2025-03,,1\n")
    cp = report_for(engine, DEC).checkpoint
    # The whole year: 城关镇 24 < 36 met; 东城街道 24 > 12 missed; 新区街道 has no figure last year.
    assert (cp.missed, cp.unknown, cp.missing_months) == (["东城街道"], ["新区街道"], [])


def test_year_end_without_last_year(engine):
    store(engine, months(2026, {"城关镇": 2}))
    cp = report_for(engine, DEC).checkpoint
    assert cp.whole_year and cp.no_last_year and cp.missed == []


# --- The workbook ------------------------------------------------------------------------------------------------


def test_xlsx_has_yoy_columns_and_the_checkpoint_sheet(engine):
    store(engine, LAST_JUNE)
    store(engine, THIS_YEAR)
    wb = openpyxl.load_workbook(io.BytesIO(render_stats_xlsx(report_for(engine, JUNE))))
    assert wb.sheetnames == ["镇街排名", "案件类型", "处置名单", "节点书面说明"]
    rows = list(wb["镇街排名"].values)
    assert rows[0][:8] == ("排名", "镇街", "警情数", "上期", "较上期", "去年同期", "同比", "连续前两名(期)")
    shown = {r[1]: r[5:7] for r in rows[1:]}
    assert shown["城关镇"] == (10, pytest.approx(-0.2))
    assert shown["西湖镇"] == (0, "去年同期0起")
    assert shown["新区街道"] == (None, "无去年数据")
    assert wb["镇街排名"]["G2"].number_format == "+0.0%;-0.0%;0.0%"
    assert list(wb["节点书面说明"].values) == [
        ("节点", "镇街", "结论"),
        (PERIOD_RULE, "南山镇", "需书面说明"),
        (PERIOD_RULE, "东城街道", "需书面说明"),
        (PERIOD_RULE, "西湖镇", "需书面说明"),
        (PERIOD_RULE, "新区街道", "无法判断"),
    ]


def test_xlsx_checkpoint_sheet_without_last_year(engine):
    store(engine, THIS_YEAR)
    wb = openpyxl.load_workbook(io.BytesIO(render_stats_xlsx(report_for(engine, JUNE))))
    rows = list(wb["节点书面说明"].values)
    assert rows[1][:2] == (PERIOD_RULE, None) and "没有去年的警情数据" in rows[1][2]
    assert (
        "节点书面说明" not in openpyxl.load_workbook(io.BytesIO(render_stats_xlsx(report_for(engine, MAY)))).sheetnames
    )


# --- Settings ------------------------------------------------------------------------------------------------------


def test_checkpoints_are_configurable(monkeypatch):
    assert Settings().checkpoint_days == ((6, 30), (12, 31))
    monkeypatch.setenv("RELAYBOT_INCIDENT_CHECKPOINTS", "6-30，9月30日")
    assert Settings().incident_checkpoints == ["06-30", "09-30"]
    assert Settings().checkpoint_days == ((6, 30), (9, 30))
    monkeypatch.setenv("RELAYBOT_INCIDENT_CHECKPOINTS", "13-01")
    with pytest.raises(ValidationError, match="13-01"):
        Settings()


def test_a_bad_checkpoint_is_refused_in_chinese(tmp_path, monkeypatch):
    from bot.config import load_settings, settings_error_text

    for name in Settings.model_fields:
        monkeypatch.delenv("RELAYBOT_" + name.upper(), raising=False)
    config = tmp_path / "relaybot.toml"
    config.write_text('incident_checkpoints = ["06-30", "6月31日"]\n', encoding="utf-8")
    monkeypatch.setenv("RELAYBOT_CONFIG", str(config))
    with pytest.raises(Exception) as caught:
        load_settings()
    text = settings_error_text(caught.value)
    assert "incident_checkpoints" in text and '应为月-日，如 "06-30"' in text
    assert "not a month-day" not in text
