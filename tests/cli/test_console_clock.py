"""The trial clock of `run --console --clock ... --speed ...` stands still until the first message (issue 13: it ran
while the bot started and while a person typed, so the README's walkthrough missed the 10:00 reminder)."""

from __future__ import annotations

import io
import re
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from bot.clock import FakeClock, ShiftedClock
from bot.transport.base import Incoming, Member, RoomInfo
from bot.transport.console import ConsoleTransport
from tests.cli.console_process import Console, assert_clean, import_roster

TZ = ZoneInfo("Asia/Shanghai")
START = datetime(2026, 11, 26, 8, 0, tzinfo=TZ)


def _real() -> FakeClock:
    return FakeClock(datetime(2030, 1, 1, 12, 0, tzinfo=TZ))  # the "real" time the trial clock runs on


def _reminder_stamps(out: str) -> list[str]:
    """When each reminder was printed (a line may begin with the prompt: nobody typed after it)."""
    return re.findall(r"(\d\d-\d\d \d\d:\d\d) \[[^]]*\] 反诈助手: [^\n]*⏰ 转发提醒", out)


def test_a_held_clock_stands_still_until_started_then_runs_at_its_speed():
    real = _real()
    clock = ShiftedClock.starting_at(START, 3600, held=True, real=real)
    real.advance(seconds=30)  # the bot starting up, a person typing
    assert clock() == START and clock.held
    assert clock.start() is True
    assert clock() == START  # it starts from where it stood
    real.advance(seconds=2)
    assert clock() == datetime(2026, 11, 26, 10, 0, tzinfo=TZ)  # 1 s = 1 h
    assert clock.start() is False  # once started it runs on
    clock.hold()
    real.advance(seconds=5)
    assert clock() == datetime(2026, 11, 26, 10, 0, tzinfo=TZ)


def test_a_shifted_clock_not_held_runs_from_the_start():
    real = _real()
    clock = ShiftedClock.starting_at(START, 60, real=real)
    real.advance(seconds=1)
    assert clock() == datetime(2026, 11, 26, 8, 1, tzinfo=TZ)


class _Sink:
    def __init__(self, clock) -> None:
        self.clock, self.seen = clock, []

    async def on_ready(self, bot_id: str) -> None:
        pass

    async def on_message(self, msg: Incoming) -> None:
        self.seen.append((msg.text, self.clock()))


async def test_looking_around_does_not_start_the_clock_the_first_message_does():
    real = _real()
    clock = ShiftedClock.starting_at(START, 3600, held=True, real=real)
    admin, wang = Member("console-admin", "反诈办管理员", ""), Member("console-1", "王芳-城关镇", "")
    out = io.StringIO()
    console = ConsoleTransport(
        [(RoomInfo("o@chatroom", "反诈办工作群"), [admin]), (RoomInfo("l@chatroom", "联络员群"), [admin, wang])],
        out=out,
        clock=clock,
        tz=TZ,
        speed=3600,
    )
    sink = _Sink(clock)
    await console.start(sink)
    assert "试运行时钟停在 11月26日(周四) 08:00（1 秒 = 1 小时），发出第一条消息、输入 /wait 或 /start 后开始走" in (
        console.welcome()
    )
    for line in ("/help", "/who", "/room 联络员", "/as 王芳", "/private", "/room 反诈办"):
        await console.handle_line(line)
        real.advance(seconds=10)
    assert clock.held and clock() == START
    await console.handle_line("推送 刷单")
    assert sink.seen == [("推送 刷单", START)]  # the message is at the start time, not ten hours later
    assert "试运行时钟从 11月26日(周四) 08:00 开始走（1 秒 = 1 小时）。" in out.getvalue()
    real.advance(seconds=1)
    assert clock() == datetime(2026, 11, 26, 9, 0, tzinfo=TZ)
    await console.handle_line("/start")
    assert "时钟已经在走了" in out.getvalue()


async def test_start_starts_a_held_clock():
    real = _real()
    clock = ShiftedClock.starting_at(START, 60, held=True, real=real)
    admin = Member("console-admin", "反诈办管理员", "")
    out = io.StringIO()
    console = ConsoleTransport(
        [(RoomInfo("o@chatroom", "反诈办工作群"), [admin])], out=out, clock=clock, tz=TZ, speed=60
    )
    await console.handle_line("/start")
    assert not clock.held and "试运行时钟从 11月26日(周四) 08:00 开始走（1 秒 = 1 分钟）。" in out.getvalue()
    await console.handle_line("/wait 一会儿")
    assert "/wait 后面要写秒数，如 /wait 12（“一会儿”不是数字）。" in out.getvalue()


def test_a_push_typed_at_0900_gets_the_1000_reminder_however_slow_the_start(db_url, tmp_path):
    """At 3600x an hour is one real second: without the held clock, starting the bot (and a person reading the
    welcome before typing) passed 10:00 before the push was in."""
    import_roster(db_url, tmp_path)
    console = Console(db_url, tmp_path, "--clock", "2026-11-26 09:00", "--speed", "3600")
    console.wait_for("试运行时钟停在 11月26日(周四) 09:00（1 秒 = 1 小时）")
    console.wait_for("反诈办管理员> ")
    console.type("推送 刷单")
    console.wait_for("⏰ 转发提醒", "the first reminder")
    code = console.end_input()
    assert_clean(code, console)
    out = console.out
    assert "试运行时钟从 11月26日(周四) 09:00 开始走" in out
    assert _reminder_stamps(out)[0].startswith("11-26 10:"), out  # the 10:00 one, not the 16:00 one
    assert "请转发到本单位内部群后回复“已转发 #编号”。截止：#1 11月26日(周四) 18:00" in out


@pytest.mark.slow  # twelve seconds of /wait, and the day report drawn
def test_the_readme_walkthrough_shows_the_reminders_the_deadline_and_the_summary(db_url, tmp_path):
    """README: `relaybot run --console --clock "2026-11-26 08:00" --speed 3600`, push, then `/wait 12`."""
    import_roster(db_url, tmp_path)
    console = Console(db_url, tmp_path, "--clock", "2026-11-26 08:00", "--speed", "3600")
    console.type("推送 刷单", "/wait 12")
    console.wait_for("已截止：确认", "the deadline list")
    code = console.end_input()
    assert_clean(code, console)
    out = console.out
    stamps = _reminder_stamps(out)
    assert len(stamps) == 2 and stamps[0].startswith("11-26 10:") and stamps[1].startswith("11-26 16:"), out
    assert "#1「警惕刷单返利：先给小甜头，再骗大本金」已截止：确认 0/6。" in out
    assert "📊 反诈预警转发日报（11月26日）" in out
    assert "[图片] 反诈预警转发日报（11月26日）.png" in out  # made and sent before the console ended
