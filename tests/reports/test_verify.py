"""回访核查 (issue 15 item 5): a unit's record of the three months up to a victim's day, on a constructed history."""

from __future__ import annotations

import io
from datetime import date, datetime, timedelta

import openpyxl
import pytest
from sqlmodel import select

from bot.content import load_texts
from bot.reports.verify import (
    VerifyDateError,
    build_unit_record,
    parse_verify_day,
    summary_text,
    window_start,
)
from bot.reports.verify_render import render_record_xlsx
from bot.storage.db import session
from bot.storage.models import (
    Alert,
    Confirmation,
    Correction,
    Exemption,
    Liaison,
    Push,
    PushState,
    Unit,
)
from tests.conftest import TZ

D = date(2026, 11, 20)
NOW = datetime(2026, 11, 26, 9, 0, tzinfo=TZ)


def local(*args) -> datetime:
    return datetime(*args, tzinfo=TZ)


def add_push(s, title: str, at: datetime, *, state: str = PushState.CLOSED.value) -> int:
    alert = Alert(title=title, text=title, created_at=at)
    s.add(alert)
    s.flush()
    push = Push(
        alert_id=alert.id, created_at=at, created_by="admin-chen", deadline=at + timedelta(hours=9), state=state
    )
    s.add(push)
    s.flush()
    return push.id


def unit_of(s, name: str) -> Unit:
    return s.exec(select(Unit).where(Unit.name == name)).one()


def liaison_of(s, name: str) -> Liaison:
    return s.exec(select(Liaison).where(Liaison.name == name)).one()


def confirm(s, push_id: int, unit: Unit, at: datetime, *, method: str, liaison: Liaison | None, late: bool, **extra):
    s.add(
        Confirmation(
            push_id=push_id,
            unit_id=unit.id,
            liaison_id=liaison.id if liaison else None,
            at=at,
            method=method,
            late=late,
            **extra,
        )
    )


@pytest.fixture
def history(engine, roster) -> dict[str, int]:
    """城关镇's pushes around D: one of each state, a withdrawn one, and one on each side of the window."""
    ids = {}
    with session(engine) as s:
        town, other = unit_of(s, "城关镇"), unit_of(s, "东城街道")
        wang, zhao, li = liaison_of(s, "王芳"), liaison_of(s, "赵磊"), liaison_of(s, "李强")
        ids["before"] = add_push(s, "窗口前一刻", local(2026, 8, 19, 23, 59))
        ids["on_time"] = add_push(s, "刷单返利预警", local(2026, 8, 20, 0, 0))  # the window's first minute
        confirm(
            s,
            ids["on_time"],
            town,
            local(2026, 8, 20, 8, 5),
            method="image",
            liaison=wang,
            late=False,
            evidence_file="a.png",
            evidence_at=local(2026, 8, 20, 8, 5),
            verdict="已核验",
            verdict_reason="标题相符",
        )
        ids["late"] = add_push(s, "虚假投资理财预警", local(2026, 9, 10, 9, 0))
        confirm(
            s,
            ids["late"],
            town,
            local(2026, 9, 11, 10, 0),
            method="quote",
            liaison=zhao,
            late=True,
            evidence_file="b.png",
            evidence_at=local(2026, 9, 11, 10, 1),
            verdict="存疑",
            verdict_reason="截的是联络员群",
        )
        ids["missed"] = add_push(s, "冒充公检法预警", local(2026, 10, 8, 9, 0))
        confirm(s, ids["missed"], other, local(2026, 10, 8, 10, 0), method="text", liaison=li, late=False)
        ids["added"] = add_push(s, "虚假征信预警", local(2026, 10, 20, 9, 0))
        confirm(
            s,
            ids["added"],
            town,
            local(2026, 10, 21, 9, 0),
            method="office",
            liaison=None,
            late=False,
            recorded_by="admin-chen",
            evidence_text="电话确认",
        )
        s.add(
            Correction(
                push_id=ids["added"],
                unit_id=town.id,
                kind="补登",
                reason="电话确认",
                by_id="admin-chen",
                by_name="陈静",
                at=local(2026, 10, 21, 9, 0),
            )
        )
        ids["exempt"] = add_push(s, "杀猪盘预警", local(2026, 11, 2, 9, 0))
        s.add(
            Exemption(
                push_id=ids["exempt"],
                unit_id=town.id,
                reason="不涉及",
                by_id="admin-chen",
                by_name="陈静",
                at=local(2026, 11, 2, 10, 0),
            )
        )
        ids["withdrawn"] = add_push(s, "撤回的推送", local(2026, 11, 5, 9, 0), state=PushState.WITHDRAWN.value)
        confirm(s, ids["withdrawn"], town, local(2026, 11, 5, 9, 30), method="text", liaison=wang, late=False)
        ids["on_d"] = add_push(s, "网络游戏诈骗预警", local(2026, 11, 20, 23, 59))  # the window's last minute
        ids["after"] = add_push(s, "窗口后一刻", local(2026, 11, 21, 0, 0))
        s.commit()
    return ids


def record(engine, *, now: datetime = NOW):
    with session(engine) as s:
        return build_unit_record(s, unit=unit_of(s, "城关镇"), day=D, now=now, tz=TZ)


def test_every_push_of_the_window_with_the_units_state(engine, history):
    rec = record(engine)
    assert rec.start == date(2026, 8, 20) and rec.day == D
    listed = [r.push_id for r in rec.rows]
    # Withdrawn, before the window's first minute and after its last: not listed.
    expected = ["on_time", "late", "missed", "added", "exempt", "on_d"]
    assert listed == [history[k] for k in expected]
    rows = {k: rec.rows[i] for i, k in enumerate(expected)}
    assert [rows[k].state for k in expected] == ["已转发", "迟报", "未转发", "补登", "免转", "未转发"]
    assert (rows["on_time"].by, rows["on_time"].method, rows["on_time"].verdict) == ("王芳", "image", "已核验")
    assert rows["on_time"].confirmed_at == local(2026, 8, 20, 8, 5)
    assert (rows["late"].by, rows["late"].method, rows["late"].verdict, rows["late"].verdict_reason) == (
        "赵磊",
        "quote",
        "存疑",
        "截的是联络员群",
    )
    assert (rows["added"].by, rows["added"].method, rows["added"].note) == ("陈静", "office", "电话确认")
    assert (rows["exempt"].by, rows["exempt"].note, rows["exempt"].confirmed_at) == ("陈静", "不涉及", None)
    assert rows["missed"].confirmed_at is None and rows["missed"].by == ""  # 东城街道's confirmation is not ours


def test_the_summary_counts_and_lists_the_missed_ones(engine, history):
    text = summary_text(load_texts(), record(engine))
    assert text.splitlines() == [
        "🔎 回访核查：城关镇",
        "2026年8月20日 0:00 至 2026年11月20日 24:00 创建的推送（撤回的不计）",
        "收到 6 条：按时转发 1，迟报 1，未转发 2，补登 1，免转 1。",
        "未转发（2）：",
        f"#{history['missed']}「冒充公检法预警」2026-10-08 09:00 推送",
        f"#{history['on_d']}「网络游戏诈骗预警」2026-11-20 23:59 推送",
    ]


def test_a_push_before_its_deadline_is_pending_not_missed(engine, history):
    rec = record(engine, now=local(2026, 11, 21, 8, 0))  # the D push's deadline is 11-21 08:59
    assert rec.rows[-1].state == "待转"
    text = summary_text(load_texts(), rec)
    assert "未转发 1，" in text and "另有 1 条还没到截止时间、尚未确认" in text


def test_a_unit_with_no_pushes_in_the_window(engine, roster):
    with session(engine) as s:
        rec = build_unit_record(s, unit=unit_of(s, "西湖镇"), day=D, now=NOW, tz=TZ)
    assert rec.rows == []
    assert summary_text(load_texts(), rec).endswith("这段时间没有推送，没有需要转发的预警。")


def test_the_xlsx_has_a_title_a_frozen_header_and_every_row(engine, history):
    rec = record(engine)
    wb = openpyxl.load_workbook(io.BytesIO(render_record_xlsx(rec)))
    ws = wb["核查记录"]
    assert ws["A1"].value == "回访核查：城关镇（镇街）"
    assert ws["A2"].value == (
        "范围：2026年8月20日 0:00 至 2026年11月20日 24:00 创建的推送（撤回的不计）；制表时间：2026-11-26 09:00；"
        "状态按制表时的记录"
    )
    assert ws["A3"].value == "收到 6 条：按时转发 1，迟报 1，未转发 2，补登 1，免转 1。"
    assert [c.value for c in ws[4]] == [
        "编号",
        "标题",
        "推送时间",
        "截止时间",
        "状态",
        "确认时间",
        "确认人",
        "确认方式",
        "截图核验",
        "说明",
    ]
    assert ws.freeze_panes == "A5"
    rows = [[c.value for c in r] for r in ws.iter_rows(min_row=5)]
    assert len(rows) == 6
    assert rows[0] == [
        history["on_time"],
        "刷单返利预警",
        "2026-08-20 00:00",
        "2026-08-20 09:00",
        "已转发",
        "2026-08-20 08:05",
        "王芳",
        "截图",
        "已核验（标题相符）",
        None,
    ]
    assert rows[1][4:9] == ["迟报", "2026-09-11 10:00", "赵磊", "引用回复", "存疑（截的是联络员群）"]
    assert rows[2][4:] == ["未转发", None, None, None, None, None]
    assert rows[3][4:] == ["补登", "2026-10-21 09:00", "陈静", "办公室补登", "无截图", "电话确认"]
    assert rows[4][4:] == ["免转", None, "陈静", None, None, "不涉及"]
    # Readable widths: the title column is as wide as its longest title, none is left at Excel's default.
    assert ws.column_dimensions["B"].width >= len("网络游戏诈骗预警") * 2
    assert all(ws.column_dimensions[c].width >= 6 for c in "ABCDEFGHIJ")


TODAY = date(2026, 11, 30)


@pytest.mark.parametrize(
    "typed,day",
    [
        ("2026-11-20", date(2026, 11, 20)),
        ("2026/11/20", date(2026, 11, 20)),
        ("2026年11月20日", date(2026, 11, 20)),
        ("11月20日", date(2026, 11, 20)),
        ("11月20号", date(2026, 11, 20)),
        ("11.20", date(2026, 11, 20)),
        ("１１月２０日", date(2026, 11, 20)),
        ("11月30日", TODAY),  # today is not in the future
        ("12月5日", date(2025, 12, 5)),  # no year: the most recent 12月5日, last year's
        ("12.31", date(2025, 12, 31)),
        ("2月29日", date(2024, 2, 29)),  # the most recent year that has one
        ("昨天", date(2026, 11, 29)),
        ("2025-06-01", date(2025, 6, 1)),
    ],
)
def test_days_as_people_type_them(typed, day):
    assert parse_verify_day(typed, today=TODAY) == day


@pytest.mark.parametrize("typed", ["11月32日", "2026-02-30", "abc", "20", "下周", "11月"])
def test_an_unreadable_day_is_refused(typed):
    with pytest.raises(VerifyDateError) as caught:
        parse_verify_day(typed, today=TODAY)
    assert not caught.value.future


@pytest.mark.parametrize("typed,day", [("2026-12-01", date(2026, 12, 1)), ("明天", date(2026, 12, 1))])
def test_a_future_day_is_refused_with_what_it_was_read_as(typed, day):
    with pytest.raises(VerifyDateError) as caught:
        parse_verify_day(typed, today=TODAY)
    assert caught.value.future and caught.value.day == day


@pytest.mark.parametrize(
    "day,start",
    [
        (date(2026, 11, 20), date(2026, 8, 20)),
        (date(2026, 1, 15), date(2025, 10, 15)),
        (date(2026, 5, 31), date(2026, 2, 28)),
        (date(2024, 5, 31), date(2024, 2, 29)),
        (date(2026, 12, 31), date(2026, 9, 30)),
    ],
)
def test_the_window_is_three_calendar_months(day, start):
    assert window_start(day) == start
