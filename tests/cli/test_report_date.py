"""`relaybot report --date` reads days as the chat does (issue 13): 11月26日 was refused though the chat takes it."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import openpyxl
import pytest
from typer.testing import CliRunner

from bot.cli.main import app
from bot.cli.report import ReportDateError, report_day
from bot.content import load_texts
from bot.domain.periods import parse_day
from bot.storage.db import session
from bot.storage.models import Alert, Confirmation, Push, PushState, Unit
from tests.conftest import TZ

TODAY = date(2026, 11, 27)  # a Friday


@pytest.mark.parametrize(
    "typed,day",
    [
        ("11月26日", date(2026, 11, 26)),
        ("11月26号", date(2026, 11, 26)),
        ("2026年11月26日", date(2026, 11, 26)),
        ("2026-11-26", date(2026, 11, 26)),
        ("2026/11/26", date(2026, 11, 26)),
        ("11/26", date(2026, 11, 26)),
        ("11-26", date(2026, 11, 26)),
        ("今天", TODAY),
        ("昨天", date(2026, 11, 26)),
        ("前天", date(2026, 11, 25)),
        (" １１月２６日 ", date(2026, 11, 26)),  # full-width digits, as a phone keyboard gives them
        ("", TODAY),
    ],
)
def test_every_day_the_chat_reads_is_a_report_day(typed, day):
    if typed.strip():
        assert parse_day(typed, today=TODAY) == day  # the chat's own reading: the same parser
    assert report_day(typed, kind="day", today=TODAY, texts=load_texts()) == day


@pytest.mark.parametrize("typed", ["11月32日", "2026-02-30", "下周", "abc", "11月", "26"])
def test_a_day_nobody_can_read_is_refused_in_chinese(typed):
    with pytest.raises(ReportDateError) as caught:
        report_day(typed, kind="week", today=TODAY, texts=load_texts())
    assert str(caught.value).startswith(f"--date 的日期看不懂：{typed}。可以这样写：2026-11-26、")


def test_a_period_that_has_not_begun_is_refused_with_what_it_was_read_as():
    with pytest.raises(ReportDateError) as caught:
        report_day("明天", kind="day", today=TODAY, texts=load_texts())
    assert "2026年11月28日，这一期还没有开始" in str(caught.value)
    assert report_day("明天", kind="week", today=TODAY, texts=load_texts()) == date(2026, 11, 28)  # this week
    # A year-less day more than half a year back is next year's in chat: the message shows how to say last year.
    with pytest.raises(ReportDateError) as caught:
        report_day("12月28日", kind="day", today=date(2027, 1, 4), texts=load_texts())
    assert "2027年12月28日" in str(caught.value) and "--date 2026-12-28" in str(caught.value)
    assert report_day("2026年12月28日", kind="day", today=date(2027, 1, 4), texts=load_texts()) == date(2026, 12, 28)


def one_push_on_the_26th(db_url: str) -> None:
    from bot.storage.db import make_engine

    engine = make_engine(db_url)
    try:
        with session(engine) as s:
            unit = Unit(name="城关镇", kind="镇街")
            alert = Alert(case_type="刷单", title="刷单返利", created_at=datetime(2026, 11, 26, 9, tzinfo=TZ))
            s.add_all([unit, alert])
            s.flush()
            push = Push(
                alert_id=alert.id,
                created_at=datetime(2026, 11, 26, 9, tzinfo=TZ),
                deadline=datetime(2026, 11, 26, 18, tzinfo=TZ),
                state=PushState.CLOSED.value,
            )
            s.add(push)
            s.flush()
            s.add(
                Confirmation(push_id=push.id, unit_id=unit.id, at=push.created_at + timedelta(minutes=5), method="text")
            )
            s.commit()
    finally:
        engine.dispose()


@pytest.fixture
def cli(db_url, tmp_path, monkeypatch):
    """`relaybot ...` in this process, in an empty folder, on the test's database, with the clock at TODAY 10:00."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("bot.clock.real_clock", lambda: datetime(2026, 11, 27, 10, 0, tzinfo=TZ))

    def run(*args: str):
        return CliRunner().invoke(app, list(args), env={"RELAYBOT_DATABASE_URL": db_url})

    return run


@pytest.mark.parametrize("typed", ["11月26日", "2026-11-26", "昨天"])
def test_cli_report_takes_the_chats_day_forms(cli, db_url, tmp_path, typed):
    one_push_on_the_26th(db_url)
    out = tmp_path / "日报.xlsx"
    result = cli("report", "--day", "--date", typed, "--out", str(out))
    assert result.exit_code == 0, result.output
    assert result.output.startswith("📊 反诈预警转发日报（11月26日）\n推送 1 条，应转 1 次：按时 1，迟报 0，未转 0。")
    assert "红榜：城关镇" in result.output and "黑榜：本期各单位均按时转发，不设黑榜。" in result.output
    assert f"已写入：{out}、{out.with_suffix('.png')}" in result.output
    assert openpyxl.load_workbook(out)["单位排名"]["A2"].value == 1


def test_cli_report_refuses_a_bad_date_in_chinese_and_writes_nothing(cli, tmp_path):
    out = tmp_path / "日报.xlsx"
    result = cli("report", "--day", "--date", "11月32日", "--out", str(out))
    assert result.exit_code == 2
    assert "--date 的日期看不懂：11月32日。可以这样写：2026-11-26、2026年11月26日、11月26日" in result.output
    assert "Traceback" not in result.output and not out.exists()


def test_cli_report_of_an_empty_day_writes_no_files_and_says_so(cli, tmp_path):
    out = tmp_path / "日报.xlsx"
    result = cli("report", "--day", "--date", "前天", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert result.output == (
        f"📊 反诈预警转发日报（11月25日）\n本期没有到期的推送，不附表格和图表。\n没有写入 {out}。\n"
    )
    assert not out.exists() and not out.with_suffix(".png").exists()
