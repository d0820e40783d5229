"""Fair rankings (issue 13): equal figures share a rank, a list never picks tied units by the roster file's
order, a tie at a list's end is shown in full or counted, no unit is on both lists, and the rule is written under
the lists in the text and in the .xlsx.

The district is written straight into a real database (units in a given roster order, pushes, confirmations) and
the report is built, rendered and read back as the office would get it.
"""

from __future__ import annotations

import io
import random
from datetime import date, datetime, timedelta

import openpyxl
import pytest
from sqlalchemy import delete

from bot.content import load_texts
from bot.domain.escalation import Ladder
from bot.reports.build import build_report
from bot.reports.figures import Report, UnitRow
from bot.reports.ranking import BOARD_MAX_NAMED, BOARD_SIZE, draw_board, on_black_list, on_red_list, ranked_order
from bot.reports.render import render_xlsx
from bot.reports.text import report_text
from bot.storage.db import session
from bot.storage.models import Alert, Confirmation, Push, PushState, Unit
from tests.conftest import TZ

DAYS = [date(2026, 11, 24), date(2026, 11, 25), date(2026, 11, 26)]  # one push a day, deadline 18:00
WEEK = (date(2026, 11, 23), date(2026, 11, 29))
RULE = "排名规则：按时率高者在前，再比未转发少、迟报少、用时中位数短；各项相同的并列同名次，与第 3 名并列的一并上榜。"

# What a unit did with each of the three pushes: minutes after the push, "late" (after the deadline) or None.
Outcome = list[int | str | None]


def make_district(engine, units: list[tuple[str, Outcome]]) -> None:
    """The units in this roster order, the week's three pushes, and their confirmations."""
    with session(engine) as s:
        rows = [Unit(name=name, kind="镇街") for name, _ in units]
        s.add_all(rows)
        s.flush()
        pushes = []
        for day in DAYS:
            created = datetime(day.year, day.month, day.day, 9, 0, tzinfo=TZ)
            alert = Alert(case_type="刷单", title="刷单返利", created_at=created)
            s.add(alert)
            s.flush()
            push = Push(
                alert_id=alert.id,
                created_at=created,
                deadline=created.replace(hour=18),
                state=PushState.CLOSED.value,
                closed_at=created.replace(hour=18),
            )
            s.add(push)
            s.flush()
            pushes.append(push)
        for unit, (_, outcome) in zip(rows, units, strict=True):
            for push, did in zip(pushes, outcome, strict=True):
                if did is None:
                    continue
                minutes = 600 if did == "late" else int(did)
                s.add(
                    Confirmation(
                        push_id=push.id,
                        unit_id=unit.id,
                        at=push.created_at + timedelta(minutes=minutes),
                        method="text",
                        late=did == "late",
                    )
                )
        s.commit()


def week_report(engine) -> Report:
    with session(engine) as s:
        return build_report(
            s,
            kind="week",
            start=WEEK[0],
            end=WEEK[1],
            now=datetime(2026, 11, 30, 9, 0, tzinfo=TZ),
            tz=TZ,
            ladder=Ladder(2, 3, 2),
        )


def sheet_rows(report: Report, name: str) -> list[list]:
    wb = openpyxl.load_workbook(io.BytesIO(render_xlsx(report, TZ)))
    return [[c.value for c in row] for row in wb[name].iter_rows()]


def text_line(report: Report, prefix: str) -> str:
    return next(line for line in report_text(load_texts(), report).splitlines() if line.startswith(prefix))


# The probe's district: 46 units, 32 of which never relayed anything (all tied at the bottom).
GOOD = [(f"好{i:02d}镇", [10 + i, 10 + i, 10 + i]) for i in range(10)]  # all on time, distinct medians
LATE = [(f"迟{i}街道", [20 + i, 20 + i, "late"]) for i in range(4)]  # one late each, distinct medians
SILENT = [(f"默{i:02d}局", [None, None, None]) for i in range(32)]
PROBE = GOOD + LATE + SILENT


def test_a_32_unit_tie_at_the_bottom_is_counted_not_picked_by_file_order(engine):
    make_district(engine, PROBE)
    report = week_report(engine)
    silent = sorted(name for name, _ in SILENT)
    ranks = {u.unit: u.rank for u in report.units}
    assert {ranks[name] for name in silent} == {15}  # 14 units above them: all 32 share rank 15
    assert report.black == silent  # every tied unit is on the list, in name order
    assert report.black_named == 0
    assert text_line(report, "黑榜") == "黑榜：32 个单位并列第 15 名（均未转发 3 次），名单见表格“红黑榜”"
    assert report.red == ["好00镇", "好01镇", "好02镇"]
    assert text_line(report, "红榜") == "红榜：好00镇、好01镇、好02镇"


def test_shared_ranks_in_the_xlsx_and_every_tied_unit_on_its_list_sheet(engine):
    make_district(engine, PROBE)
    report = week_report(engine)
    table = sheet_rows(report, "单位排名")
    assert table[0][:2] == ["排名", "单位"]
    rank_of = {row[1]: row[0] for row in table[1:]}
    assert [rank_of[f"好{i:02d}镇"] for i in range(10)] == list(range(1, 11))
    assert [rank_of[f"迟{i}街道"] for i in range(4)] == [11, 12, 13, 14]
    assert {rank_of[name] for name, _ in SILENT} == {15}
    assert [row[0] for row in table[1:]] == [*range(1, 15), *[15] * 32]  # competition ranking: 1..14, then 15 x 32
    boards = sheet_rows(report, "红黑榜")
    assert boards[0] == ["红榜", "红榜名次", "黑榜", "黑榜名次"]
    listed = [row for row in boards[1:] if any(row)]
    black = [(row[2], row[3]) for row in listed if row[2]]
    assert black == [(name, 15) for name in sorted(n for n, _ in SILENT)]
    assert [(row[0], row[1]) for row in listed if row[0] and row[1]] == [("好00镇", 1), ("好01镇", 2), ("好02镇", 3)]
    assert RULE in [row[0] for row in boards]


def test_the_lists_do_not_depend_on_the_roster_files_order(engine):
    make_district(engine, PROBE)
    first = week_report(engine)
    with session(engine) as s:  # the same district again, its units imported in another order
        for table in (Confirmation, Push, Alert, Unit):
            s.execute(delete(table))
        s.commit()
    shuffled = PROBE[:]
    random.Random(13).shuffle(shuffled)
    make_district(engine, shuffled)
    second = week_report(engine)
    assert (second.red, second.black, second.red_named, second.black_named) == (
        first.red,
        first.black,
        first.red_named,
        first.black_named,
    )
    assert [(u.rank, u.unit) for u in second.units] == [(u.rank, u.unit) for u in first.units]
    assert report_text(load_texts(), second) == report_text(load_texts(), first)
    assert sheet_rows(second, "红黑榜") == sheet_rows(first, "红黑榜")
    assert sheet_rows(second, "单位排名") == sheet_rows(first, "单位排名")


def test_a_short_tie_at_the_cut_off_is_named_in_full(engine):
    # Worst: 甲 (missed all), 乙 (missed two); then 丙/丁/戊 tied (missed one, same minutes): 5 units, all named.
    units = [
        ("甲镇", [None, None, None]),
        ("乙镇", [None, None, 30]),
        ("戊镇", [None, 30, 30]),
        ("丙镇", [None, 30, 30]),
        ("丁镇", [None, 30, 30]),
        ("庚镇", [5, 5, 5]),
        ("辛镇", [6, 6, 6]),
    ]
    make_district(engine, units)
    report = week_report(engine)
    assert report.black == ["甲镇", "乙镇", "丁镇", "丙镇", "戊镇"]  # the tie in name order, not file order
    assert report.black_named == 5 and len(report.black) <= BOARD_MAX_NAMED
    assert [u.rank for u in report.units] == [1, 2, 3, 3, 3, 6, 7]
    assert text_line(report, "黑榜") == "黑榜：甲镇；乙镇；丁镇、丙镇、戊镇（并列第 3 名）"
    assert text_line(report, "红榜") == "红榜：庚镇、辛镇"


def test_a_long_tie_after_named_units_is_counted_after_them(engine):
    # Two units clearly worst, then eight tied: the two are named, the eight counted.
    units = [("零镇", [None, None, None]), ("一镇", [None, None, 40])]
    units += [(f"并{i}镇", [None, 40, 40]) for i in range(8)]
    units += [("好镇", [3, 3, 3])]
    make_district(engine, units)
    report = week_report(engine)
    assert report.black[:2] == ["零镇", "一镇"] and sorted(report.black[2:]) == [f"并{i}镇" for i in range(8)]
    assert report.black_named == 2
    assert text_line(report, "黑榜") == (
        "黑榜：零镇；一镇；另有 8 个单位并列第 2 名（均未转发 1 次），名单见表格“红黑榜”"
    )


def test_nobody_missed_means_no_black_list(engine):
    units = [(f"{i}号镇", [10 + i, 10 + i, 10 + i]) for i in range(5)]
    make_district(engine, units)
    report = week_report(engine)
    assert report.black == []
    assert text_line(report, "黑榜") == "黑榜：本期各单位均按时转发，不设黑榜。"
    assert text_line(report, "红榜") == "红榜：0号镇、1号镇、2号镇"
    boards = sheet_rows(report, "红黑榜")
    notes = [row[0] for row in boards if row[0] and row[1] is None]
    assert notes == ["黑榜：本期各单位均按时转发，不设黑榜。", RULE]


def test_everyone_tied_says_so_instead_of_an_arbitrary_list(engine):
    units = [(f"静{i}镇", [None, None, None]) for i in range(9)]
    make_district(engine, units)
    report = week_report(engine)
    assert {u.rank for u in report.units} == {1}
    assert sorted(report.black) == [name for name, _ in units]
    lines = report_text(load_texts(), report).splitlines()
    assert "红榜：空缺，本期没有全部按时转发的单位。" in lines
    assert "黑榜：全部 9 个单位并列（均未转发 3 次），名单见表格“红黑榜”" in lines
    assert RULE in lines


def test_everyone_equally_on_time_is_one_tie_on_the_red_list(engine):
    units = [(f"齐{i}镇", [15, 15, 15]) for i in range(8)]
    make_district(engine, units)
    report = week_report(engine)
    assert text_line(report, "红榜") == "红榜：全部 8 个单位并列（均按时转发，用时中位数 15 分钟），名单见表格“红黑榜”"
    assert text_line(report, "黑榜") == "黑榜：本期各单位均按时转发，不设黑榜。"


def test_the_rule_line_sits_under_the_lists(engine):
    make_district(engine, PROBE)
    lines = report_text(load_texts(), week_report(engine)).splitlines()
    assert lines.index(RULE) == lines.index(next(line for line in lines if line.startswith("黑榜"))) + 1


# ---- the rule itself, on figures made up here ------------------------------------------------------------------


def row(name: str, *, received: int = 4, late: int = 0, missed: int = 0, median: float | None = 10.0) -> UnitRow:
    return UnitRow(
        unit=name,
        kind="镇街",
        received=received,
        relayed=received - missed,
        on_time=received - missed - late,
        late=late,
        missed=missed,
        median_minutes=median,
        level="",
        rank=0,
    )


def test_the_rule_sentence_matches_the_order_the_code_applies():
    # Each criterion in the order the sentence names it decides only when the ones before it are equal.
    units = [
        row("按时率低", late=1, missed=1),  # on time 2/4
        row("未转发多", missed=1, median=1.0),  # on time 3/4, one missed
        row("迟报多", late=1, median=1.0),  # on time 3/4, none missed: before 未转发多
        row("用时长", median=20.0),
        row("用时短", median=5.0),
        row("无用时", median=None),  # nothing of its own relayed: after any median
        row("同甲", median=5.0),  # ties with 用时短
    ]
    order = [(rank, u.unit) for rank, u in ranked_order(units)]
    assert order == [
        (1, "同甲"),
        (1, "用时短"),
        (3, "用时长"),
        (4, "无用时"),
        (5, "迟报多"),
        (6, "未转发多"),
        (7, "按时率低"),
    ]
    assert load_texts().t("rank.rule", size=BOARD_SIZE) == RULE


def test_the_share_on_time_not_the_count_decides_with_exemptions():
    # 2 of 2 on time (exempted from the other two) beats 3 of 4; 1/3 and 2/6 are equal shares, so a shared rank.
    ranked = ranked_order([row("三成四", late=1), row("二成二", received=2)])
    assert [u.unit for _, u in ranked] == ["二成二", "三成四"]
    thirds = ranked_order([row("甲", received=3, missed=2, median=None), row("乙", received=6, missed=4, median=None)])
    assert [rank for rank, _ in thirds] == [1, 2]  # equal shares, but 乙 missed more: not a tie
    same = ranked_order([row("甲", received=3, late=2), row("乙", received=6, late=2)])
    assert same[0][1].unit == "乙"  # 4/6 on time beats 1/3


@pytest.mark.parametrize("seed", range(30))
def test_random_districts_keep_the_promises(seed):
    rng = random.Random(seed)
    units = [
        row(
            f"单位{i:02d}",
            received=3,
            late=(late := rng.choice([0, 0, 1])),
            missed=rng.choice([0, 0, 1, 3 - late]) if rng.random() < 0.7 else 0,
            median=rng.choice([None, 10.0, 12.5, 30.0]),
        )
        for i in range(rng.randrange(1, 40))
    ]
    units = [u if u.relayed else row(u.unit, received=3, missed=3, median=None) for u in units]
    ranked = [UnitRow(**{**u.__dict__, "rank": rank}) for rank, u in ranked_order(units)]
    # Competition ranking: a rank is one more than the units with strictly better figures.
    by_name = {u.unit: u for u in units}
    from bot.reports.ranking import rank_key

    for u in ranked:
        assert u.rank == 1 + sum(1 for o in units if rank_key(o) < rank_key(by_name[u.unit]))
    red = draw_board(ranked, eligible=on_red_list, worst_first=False)
    black = draw_board(ranked, eligible=on_black_list, worst_first=True)
    assert not set(red.units) & set(black.units)
    for board, eligible in ((red, on_red_list), (black, on_black_list)):
        pool = [u for u in ranked if eligible(u)]
        assert len(board.units) >= min(BOARD_SIZE, len(pool))
        ranks = {u.rank for u in ranked if u.unit in board.units}
        # Never half a tie: every eligible unit with a rank on the list is on it.
        assert {u.unit for u in pool if u.rank in ranks} == set(board.units)
        assert board.named == len(board.units) or len(board.units) > BOARD_MAX_NAMED
    # The same units in another order give the same lists.
    rng.shuffle(units)
    again = [UnitRow(**{**u.__dict__, "rank": rank}) for rank, u in ranked_order(units)]
    assert draw_board(again, eligible=on_black_list, worst_first=True) == black
    assert draw_board(again, eligible=on_red_list, worst_first=False) == red
