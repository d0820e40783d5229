"""Incident statistics: reading CSV/.xlsx all-or-nothing, re-import, the plan's ranking rule, text, workbook, chart."""

from __future__ import annotations

import io
import warnings
from datetime import UTC, date, datetime, timedelta

import openpyxl
import pytest
from openpyxl import Workbook
from PIL import Image
from sqlmodel import select

from bot.chat.compose import stats_report_text
from bot.content import load_library, load_texts
from bot.domain import incidents as stats
from bot.domain.incidents import (
    LEVEL_REMIND,
    LEVEL_TALK,
    LEVEL_WRITTEN,
    StatsError,
    build_stats_report,
    import_stats,
    latest_period,
    parse_period,
    parse_stats_table,
    read_stats_bytes,
    read_stats_file,
)
from bot.reports.incident_render import render_stats_chart, render_stats_xlsx
from bot.storage.db import session
from bot.storage.models import IncidentStat

TODAY = date(2026, 11, 30)
NOW = datetime(2026, 11, 30, 2, 0, tzinfo=UTC)
HEADER = "镇街,周期,案件类型,警情数\n"
W45, W46, W47, W48 = ((date.fromisocalendar(2026, w, 1), date.fromisocalendar(2026, w, 7)) for w in (45, 46, 47, 48))
HYPERLINK = '=HYPERLINK("http://x")'


def write_csv(path, body, *, bom=False, header=HEADER):
    path.write_bytes(("\ufeff" if bom else "").encode() + (header + body).encode("utf-8"))
    return path


def store(engine, body, *, header=HEADER, source="警情.csv", now=NOW):
    """Read CSV text and import it in one committed transaction, as the bot does."""
    rows = read_stats_bytes("警情.csv", (header + body).encode(), today=TODAY)
    with session(engine) as s:
        report = import_stats(s, rows, now=now, source=source)
        s.commit()
    return report


def snapshot(engine):
    with session(engine) as s:
        return sorted(
            (x.town, x.period_start, x.period_end, x.case_type, x.count, x.source) for x in s.exec(select(IncidentStat))
        )


def report_for(engine, period):
    with session(engine) as s:
        return build_stats_report(s, period_start=period[0], period_end=period[1], library=load_library())


def facts(rows):
    return [(r.line, r.town, r.period_start, r.period_end, r.case_type, r.count) for r in rows]


# --- Reading -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("bom", [False, True])
def test_csv_with_and_without_bom_and_every_period_form(tmp_path, bom):
    body = (
        "城关镇,2026-W47,刷单,3\n"
        "城关镇,2026年第47周,,5\n"  # empty 案件类型 is the town's 合计
        "东城街道,2026-11,冒充客服,2\n"
        "东城街道,2026年11月,合计,4\n"  # same month, written another way: 合计 is the empty type too
        "\n"  # blank lines are skipped but still counted, as Excel numbers them
        "西湖镇,2026-11-23~2026-11-29,刷单,1\n"
        "西湖镇,11月16日-11月22日,刷单,0\n"
    )
    rows = read_stats_file(write_csv(tmp_path / "s.csv", body, bom=bom), today=TODAY)
    assert facts(rows) == [
        (2, "城关镇", *W47, "刷单", 3),
        (3, "城关镇", *W47, "", 5),
        (4, "东城街道", date(2026, 11, 1), date(2026, 11, 30), "冒充客服", 2),
        (5, "东城街道", date(2026, 11, 1), date(2026, 11, 30), "", 4),
        (7, "西湖镇", *W48, "刷单", 1),
        (8, "西湖镇", *W47, "刷单", 0),
    ]


def test_period_forms_and_year_less_spans_around_new_year():
    assert parse_period("2026 - w47") == W47
    assert parse_period("2026年47周") == W47
    assert parse_period("2026/11/23 至 2026/11/29") == W48
    assert parse_period("2026-11-23-2026-11-29") == W48  # dashes inside and between the dates
    assert parse_period("2026年11月23日-29日") == W48
    # Read on 5 January, a span without a year is the one just past, across the new year.
    assert parse_period("12月28日-1月3日", today=date(2027, 1, 5)) == (date(2026, 12, 28), date(2027, 1, 3))
    assert parse_period("12月21日-12月27日", today=date(2027, 1, 5)) == (date(2026, 12, 21), date(2026, 12, 27))
    for bad in ("2026-W54", "2026-13", "2026-11-29~2026-11-23", "上周", "2026-11-23"):
        assert parse_period(bad, today=TODAY) is None, bad


def test_xlsx_with_title_row_excel_dates_and_float_counts(tmp_path):
    wb = Workbook()
    ws = wb.active
    ws.append(["2026年11月各镇街电诈警情统计"])  # a title line above the header, as police exports have
    ws.append(["镇街", "日期", "案件类型", "警情数"])
    ws.append(["城关镇", datetime(2026, 11, 25), "刷单", 3.0])
    ws.append(["城关镇", "2026/11/18", "刷单", "2"])
    ws.append(["东城街道", datetime(2026, 11, 29, 23, 59), None, 7.0])  # Sunday: still week 48
    ws.append(["东城街道", datetime(2026, 11, 30), None, 1])  # Monday: the next week
    wb.save(tmp_path / "s.xlsx")
    rows = read_stats_file(tmp_path / "s.xlsx", today=TODAY)
    assert facts(rows) == [
        (3, "城关镇", *W48, "刷单", 3),
        (4, "城关镇", *W47, "刷单", 2),
        (5, "东城街道", *W48, "", 7),
        (6, "东城街道", date(2026, 11, 30), date(2026, 12, 6), "", 1),
    ]
    assert all(type(r.count) is int for r in rows)


def test_xlsx_month_typed_into_excel_becomes_a_month_and_a_day_is_refused(tmp_path):
    # Excel turns a typed 2026年11月 into the date 2026-11-01 with a month-only format.
    wb = Workbook()
    ws = wb.active
    ws.append(["镇街", "周期", "警情数"])  # 案件类型 may be left out: every row is a 合计
    ws.append(["城关镇", datetime(2026, 11, 1), 4])
    ws["B2"].number_format = 'yyyy"年"m"月"'
    wb.save(tmp_path / "m.xlsx")
    assert facts(read_stats_file(tmp_path / "m.xlsx")) == [(2, "城关镇", date(2026, 11, 1), date(2026, 11, 30), "", 4)]

    ws["B2"].number_format = "yyyy-mm-dd"
    wb.save(tmp_path / "d.xlsx")
    with pytest.raises(StatsError, match="第 2 行“周期”是一个日期（2026-11-01）"):
        read_stats_file(tmp_path / "d.xlsx")


def test_float_counts_as_excel_stores_them():
    table = [["镇街", "周期", "警情数"], ["城关镇", "2026-W48", 3.0], ["东城街道", "2026-W48", "2.0"]]
    assert [(r.count, type(r.count)) for r in parse_stats_table(table)] == [(3, int), (2, int)]
    with pytest.raises(StatsError, match="第 2 行“警情数”为“TRUE”"):
        parse_stats_table([["镇街", "周期", "警情数"], ["城关镇", "2026-W48", True]])


def test_xlsx_fractional_count_is_refused(tmp_path):
    wb = Workbook()
    wb.active.append(["镇街", "周期", "案件类型", "警情数"])
    wb.active.append(["城关镇", "2026-W48", "刷单", 2.5])
    wb.save(tmp_path / "s.xlsx")
    with pytest.raises(StatsError, match="第 2 行“警情数”为“2.5”，应为 0 或正整数"):
        read_stats_file(tmp_path / "s.xlsx")


@pytest.mark.parametrize(
    "header,body,message",
    [
        ("镇街,周期,案件类型\n", "城关镇,2026-W48,刷单\n", "第 1 行（表头）缺少“警情数”列"),
        ("镇街,案件类型,警情数\n", "城关镇,刷单,3\n", "第 1 行（表头）缺少“周期”或“日期”列"),
        ("镇街,周期,日期,警情数\n", "城关镇,2026-W48,2026-11-25,3\n", "同时有“周期”和“日期”列"),
        ("镇街,镇(街),周期,警情数\n", "城关镇,城关镇,2026-W48,3\n", "第 1 行（表头）“镇(街)”列出现了两次"),
        (HEADER, "城关镇,2026-W48,刷单,3\n东城街道,上上周,刷单,1\n", "第 3 行“周期”为“上上周”，看不懂"),
        (HEADER, "城关镇,2026-11-25,刷单,3\n", "第 2 行“周期”是一个日期"),
        (HEADER, "城关镇,2026-W48,刷单,-3\n", "第 2 行“警情数”为“-3”，应为 0 或正整数"),
        (HEADER, "城关镇,2026-W48,刷单,三\n", "第 2 行“警情数”为“三”"),
        (HEADER, "城关镇,2026-W48,刷单,\n", "第 2 行“警情数”为空"),
        (HEADER, ",2026-W48,刷单,3\n", "第 2 行“镇街”为空"),
        ("镇（街）,周期,类型,警情数（起）\n", "城关镇,2026-W48,刷单,3.5\n", "第 2 行“警情数(起)”为“3.5”"),
        ("镇街,日期,案件类型,警情数\n", "城关镇,2026-11-32,刷单,3\n", "第 2 行“日期”为“2026-11-32”，不是有效的日期"),
        (
            HEADER,
            "城关镇,2026-W48,刷单,3\n东城街道,2026-W48,刷单,1\n城关镇,2026年第48周,刷单,4\n",
            "第 4 行与第 2 行重复：城关镇 2026-W48 刷单 出现了两次",
        ),
        (
            "镇街,日期,案件类型,警情数\n",
            "城关镇,2026-11-23,刷单,1\n城关镇,2026-11-25,刷单,2\n",
            "第 3 行与第 2 行重复：城关镇 2026-W48 刷单 出现了两次（“日期”按所在的周一至周日归为一周",
        ),
        (
            HEADER,
            "城关镇,2026-W48,,3\n城关镇,2026-W48,刷单,2\n城关镇,2026-W48,贷款,2\n",
            "第 2 行的合计 3 小于城关镇 2026-W48 各案件类型之和 4（第 3、4 行）",
        ),
        ("", "", "文件是空的"),
        (HEADER, "\n,,,\n", "文件里没有警情数据"),
    ],
)
def test_bad_csv_names_row_and_column_and_changes_nothing(tmp_path, engine, header, body, message):
    store(engine, "城关镇,2026-W47,刷单,5\n")
    before = snapshot(engine)
    path = write_csv(tmp_path / "bad.csv", body, header=header)
    with pytest.raises(StatsError, match=message.replace("(", r"\(").replace(")", r"\)")):
        rows = read_stats_file(path, today=TODAY)
        with session(engine) as s:  # never reached: the import is all or nothing
            import_stats(s, rows, now=NOW, source="bad.csv")
            s.commit()
    assert snapshot(engine) == before


@pytest.mark.parametrize(
    "name,data,message",
    [
        ("s.xlsx", b"PK\x03\x04 not really a zip", "无法打开这个 Excel 文件"),
        ("s.xlsx", b"", "无法打开这个 Excel 文件"),
        ("s.csv", (HEADER + "城关镇,2026-W48,刷单,3\n").encode("gbk") + b"\x01\xff", "既不是 UTF-8 也不是 GBK"),
        ("s.xls", b"\xd0\xcf\x11\xe0", "不支持旧版 .xls 文件"),
        ("s.pdf", b"%PDF", "不支持的文件类型“.pdf”"),
    ],
)
def test_broken_or_foreign_files(name, data, message):
    with pytest.raises(StatsError, match=message):
        read_stats_bytes(name, data)


def test_row_cap(monkeypatch):
    monkeypatch.setattr(stats, "MAX_ROWS", 2)
    body = "".join(f"镇{i},2026-W48,刷单,1\n" for i in range(3))
    with pytest.raises(StatsError, match="数据超过 2 行"):
        read_stats_bytes("s.csv", (HEADER + body).encode())
    assert len(read_stats_bytes("s.csv", (HEADER + body[: body.rindex("镇")]).encode())) == 2


# --- Import ------------------------------------------------------------------------------------------------


def test_reimport_updates_in_place(engine):
    first = store(engine, "城关镇,2026-W48,刷单,3\n城关镇,2026-W48,,5\n", source="第一版.csv")
    assert [r.key for r in first.added] == [("城关镇", *W48, "刷单"), ("城关镇", *W48, "")]
    with session(engine) as s:
        ids = {x.case_type: x.id for x in s.exec(select(IncidentStat))}

    later = NOW + timedelta(hours=3)
    second = store(
        engine, "城关镇,2026-W48,刷单,4\n城关镇,2026-W48,,5\n东城街道,2026-W47,刷单,1\n", source="更正版.csv", now=later
    )
    assert [(r.key, old, r.count) for r, old in second.updated] == [(("城关镇", *W48, "刷单"), 3, 4)]
    assert [r.key for r in second.added] == [("东城街道", *W47, "刷单")]
    assert second.unchanged == 1
    assert second.periods == [W47, W48]
    assert second.lines() == [
        "新增 1 条",
        "更新 1 条：城关镇 2026-W48 刷单 3→4",
        "未变 1 条",
        "周期：2026-W47、2026-W48",
    ]
    with session(engine) as s:
        stored = {x.case_type: x for x in s.exec(select(IncidentStat).where(IncidentStat.town == "城关镇"))}
    assert {k: x.id for k, x in stored.items()} == ids  # the same rows, updated
    assert (stored["刷单"].count, stored["刷单"].source, stored["刷单"].imported_at) == (4, "更正版.csv", later)
    assert store(engine, "城关镇,2026-W48,刷单,4\n").lines() == ["数据没有变化（1 条）", "周期：2026-W48"]


def test_unknown_towns_are_flagged_against_the_roster(engine, roster):
    report = store(engine, "城关镇,2026-W48,刷单,3\n城关,2026-W48,刷单,1\n")
    assert report.unknown_towns == ["城关"]
    assert "⚠️ 名单中没有这些镇街，请核对名称：城关" in report.lines()


def test_latest_period(engine):
    with session(engine) as s:
        assert latest_period(s) is None
    store(engine, "城关镇,2026-W47,刷单,3\n城关镇,2026-W48,刷单,3\n城关镇,2026-11-24~2026-11-25,刷单,3\n")
    with session(engine) as s:
        assert latest_period(s) == W48
    store(engine, "城关镇,2026-11,,9\n")  # ends on the 30th, after week 48
    with session(engine) as s:
        assert latest_period(s) == (date(2026, 11, 1), date(2026, 11, 30))


# --- Ranking and the plan's rule ---------------------------------------------------------------------------

# Hand-computed: top two (rank 1 or 2, ties included) per week.
#   W45: 城关镇 10, 西湖镇 8, 东城街道 3, 南山镇 1          -> 城关镇, 西湖镇
#   W46: 城关镇 7, 东城街道 7, 西湖镇 2, 南山镇 1           -> 城关镇, 东城街道 (tied first)
#   W47: 城关镇 9, 东城街道 6, 南山镇 6 (tied second), 西湖镇 1 -> 城关镇, 东城街道, 南山镇
# So in W47: 城关镇 three in a row -> 书面说明; 东城街道 two -> 约谈; 南山镇 one -> 提醒谈话; 西湖镇 nothing.
THREE_WEEKS = (
    "城关镇,2026-W45,,10\n西湖镇,2026-W45,,8\n东城街道,2026-W45,,3\n南山镇,2026-W45,,1\n"
    "城关镇,2026-W46,,7\n东城街道,2026-W46,,7\n西湖镇,2026-W46,,2\n南山镇,2026-W46,,1\n"
    "城关镇,2026-W47,刷单,5\n城关镇,2026-W47,冒充客服,4\n"
    "东城街道,2026-W47,刷单,2\n东城街道,2026-W47,杀猪盘,3\n东城街道,2026-W47,,6\n"  # 合计 above its parts
    "南山镇,2026-W47,其他,6\n西湖镇,2026-W47,冒充客服,1\n"
)


def test_ranking_and_escalation_over_three_consecutive_weeks(engine):
    store(engine, THREE_WEEKS)
    rep = report_for(engine, W47)
    assert [(t.rank, t.town, t.total, t.streak, t.level) for t in rep.towns] == [
        (1, "城关镇", 9, 3, LEVEL_WRITTEN),
        (2, "东城街道", 6, 2, LEVEL_TALK),
        (2, "南山镇", 6, 1, LEVEL_REMIND),
        (4, "西湖镇", 1, 0, ""),
    ]
    assert rep.escalations == {LEVEL_WRITTEN: ["城关镇"], LEVEL_TALK: ["东城街道"], LEVEL_REMIND: ["南山镇"]}
    town = {t.town: t for t in rep.towns}
    assert town["城关镇"].by_type == {"刷单": 5, "冒充客服": 4}
    assert (town["东城街道"].unclassified, town["东城街道"].previous_total) == (1, 7)
    assert (rep.total, rep.previous_total, rep.previous_period) == (22, 17, W46)

    # One week earlier the same data gives W46's view: 城关镇 two in a row, 东城街道 first time.
    rep46 = report_for(engine, W46)
    assert rep46.escalations == {LEVEL_WRITTEN: [], LEVEL_TALK: ["城关镇"], LEVEL_REMIND: ["东城街道"]}


def test_a_missing_week_breaks_the_chain_and_other_lengths_do_not_count(engine):
    store(
        engine,
        "城关镇,2026-W45,,9\n东城街道,2026-W45,,8\n"
        # no W46 at all
        "城关镇,2026-11-10~2026-11-15,,9\n"  # a six-day span ending the day before W47: not the same length
        "城关镇,2026-W47,,9\n东城街道,2026-W47,,8\n西湖镇,2026-W47,,0\n南山镇,2026-W47,,0\n",
    )
    rep = report_for(engine, W47)
    assert [(t.town, t.rank, t.level) for t in rep.towns] == [
        ("城关镇", 1, LEVEL_REMIND),
        ("东城街道", 2, LEVEL_REMIND),
        ("南山镇", 3, ""),
        ("西湖镇", 3, ""),
    ]
    assert (rep.previous_period, rep.previous_total, rep.towns[0].previous_total) == (None, None, None)


def test_a_stale_total_never_hides_reimported_types(engine):
    # Each town+period+type is replaced on its own: a 合计 from an older file stays beside newer types.
    store(engine, "城关镇,2026-W48,,3\n东城街道,2026-W48,,4\n")
    store(engine, "城关镇,2026-W48,刷单,4\n城关镇,2026-W48,冒充客服,1\n")
    rep = report_for(engine, W48)
    assert [(t.town, t.total, t.unclassified) for t in rep.towns] == [("城关镇", 5, 0), ("东城街道", 4, 4)]


def test_towns_without_incidents_are_never_top_two(engine):
    store(engine, "城关镇,2026-W47,,2\n东城街道,2026-W47,,0\n西湖镇,2026-W47,,0\n")
    assert report_for(engine, W47).escalations[LEVEL_REMIND] == ["城关镇"]


def test_months_of_different_lengths_are_consecutive(engine):
    store(engine, "城关镇,2026-10,,9\n东城街道,2026-10,,3\n西湖镇,2026-10,,1\n城关镇,2026-11,,9\n西湖镇,2026-11,,1\n")
    rep = report_for(engine, (date(2026, 11, 1), date(2026, 11, 30)))
    assert rep.escalations == {LEVEL_WRITTEN: [], LEVEL_TALK: ["城关镇"], LEVEL_REMIND: ["西湖镇"]}
    assert rep.previous_period == (date(2026, 10, 1), date(2026, 10, 31))


def test_top_case_types_suggest_library_alerts(engine):
    store(engine, THREE_WEEKS)
    rep = report_for(engine, W47)
    # 刷单 7, 其他 6, 冒充客服 5, 杀猪盘 3: the library knows all but 其他.
    assert [(c.case_type, c.count, c.suggestion) for c in rep.top_types] == [
        ("刷单", 7, "推送 刷单返利"),
        ("其他", 6, ""),
        ("冒充客服", 5, "推送 冒充电商物流客服"),
    ]
    assert rep.case_types[-1] == stats.TypeStat("杀猪盘", 3, "推送 网络婚恋交友")
    assert rep.suggestions == ["推送 刷单返利", "推送 冒充电商物流客服"]


# --- Text, workbook, chart ---------------------------------------------------------------------------------


def test_report_text(engine):
    store(engine, THREE_WEEKS)
    assert stats_report_text(load_texts(), report_for(engine, W47)) == "\n".join(
        [
            "📈 电诈警情通报 2026年第47周（11月16日—11月22日）",
            "全区警情 22 起（上期 17 起）",
            "同比：无去年同期数据（把去年的警情表导入后即可比较）",
            "警情数排名：",
            "1. 城关镇 9 起",
            "2. 东城街道 6 起",
            "2. 南山镇 6 起",
            "4. 西湖镇 1 起",
            "书面说明（连续三期前两名，主要领导向区领导小组书面说明情况）：城关镇",
            "约谈分管领导（连续两期前两名）：东城街道",
            "提醒谈话（本期前两名）：南山镇",
            "高发类型：刷单 7 起、其他 6 起、冒充客服 5 起",
            "建议推送：推送 刷单返利；推送 冒充电商物流客服",
        ]
    )
    empty = report_for(engine, W48)
    assert (
        stats_report_text(load_texts(), empty)
        == "📈 电诈警情通报 2026年第48周（11月23日—11月29日）\n本期没有警情数据。"
    )


def test_xlsx_read_back_with_inert_formula_text(engine):
    store(engine, THREE_WEEKS + f'"{HYPERLINK.replace(chr(34), chr(34) * 2)}",2026-W47,刷单,1\n')
    wb = openpyxl.load_workbook(io.BytesIO(render_stats_xlsx(report_for(engine, W47))))
    assert wb.sheetnames == ["镇街排名", "案件类型", "处置名单"]
    ranking = wb["镇街排名"]
    assert ranking.freeze_panes == "A2"
    values = list(ranking.values)
    assert values[0] == (
        "排名",
        "镇街",
        "警情数",
        "上期",
        "较上期",
        "去年同期",
        "同比",
        "连续前两名(期)",
        "处置",
        "刷单",
        "其他",
        "冒充客服",
        "杀猪盘",
        "未分类",
    )
    assert values[1] == (1, "城关镇", 9, 7, 2, None, "无去年数据", 3, "书面说明", 5, None, 4, None, None)
    assert values[2] == (2, "东城街道", 6, 7, -1, None, "无去年数据", 2, "约谈", 2, None, None, 3, 1)
    # Tied with 西湖镇 at 1: same rank, then by name. Kept as text, never a live formula.
    assert [v[:3] for v in values[4:]] == [(4, "'" + HYPERLINK, 1), (4, "西湖镇", 1)]
    assert ranking.cell(row=5, column=2).data_type == "s"
    assert list(wb["案件类型"].values)[1] == ("刷单", 8, pytest.approx(8 / 23), "推送 刷单返利")
    assert wb["案件类型"]["C2"].number_format == "0.0%"
    assert list(wb["处置名单"].values) == [
        ("处置", "镇街", "本期排名", "警情数", "说明"),
        ("书面说明", "城关镇", 1, 9, "连续 3 期前两名"),
        ("约谈", "东城街道", 2, 6, "连续 2 期前两名"),
        ("提醒谈话", "南山镇", 2, 6, "本期前两名"),
    ]


def test_chart_png_size(engine):
    store(engine, THREE_WEEKS)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # matplotlib warns of each Chinese glyph its font lacks
        png = render_stats_chart(report_for(engine, W47))
    image = Image.open(io.BytesIO(png)).convert("RGB")
    assert image.size == (1200, 600)  # four towns: the minimum height
    pixels = {rgb: n for n, rgb in image.getcolors(maxcolors=1 << 20)}
    # Each level's colour fills a bar, not just its legend swatch (a few hundred pixels).
    for rgb in ((0xC6, 0x28, 0x28), (0xEF, 0x6C, 0x00), (0xF9, 0xA8, 0x25)):
        assert pixels.get(rgb, 0) > 5000, rgb
    many = "".join(f"第{i}镇,2026-W48,,{i}\n" for i in range(20))
    store(engine, many)
    assert Image.open(io.BytesIO(render_stats_chart(report_for(engine, W48)))).size == (1200, 130 + 70 + 36 * 20)
    nothing = report_for(engine, (date(2030, 1, 7), date(2030, 1, 13)))
    assert Image.open(io.BytesIO(render_stats_chart(nothing))).size == (1200, 600)


@pytest.mark.parametrize("encoding", ["gbk", "utf-8-sig", "utf-8"])
def test_incident_figures_saved_by_excel_as_plain_csv_are_read(encoding):
    """Excel's plain "CSV（逗号分隔）" on a Chinese Windows is GBK: read like the roster (issue 13)."""
    rows = read_stats_bytes("警情.csv", (HEADER + "城关镇,2026-W48,刷单返利,3\n").encode(encoding), today=TODAY)
    assert [(r.town, r.case_type, r.count) for r in rows] == [("城关镇", "刷单返利", 3)]
