"""Issue 15 item 2: the time after `推送 …` (a scheduled push), read with the deadline grammar."""

from __future__ import annotations

from datetime import datetime, time
from zoneinfo import ZoneInfo

import pytest

from bot.chat.parsing import (
    DeadlineError,
    DeadlinePassed,
    PushArgs,
    TimeMissing,
    parse_command,
    parse_deadline,
    parse_push_args,
    parse_send_time,
)

TZ = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 11, 26, 9, 30, tzinfo=TZ)  # Thursday


@pytest.mark.parametrize(
    ("arg", "expected"),
    [
        ("刷单 明天9:00", PushArgs("刷单", "", False, "明天9:00")),
        ("刷单 12月3日 9:00", PushArgs("刷单", "", False, "12月3日 9:00")),
        ("刷单 2026-12-03 09:00", PushArgs("刷单", "", False, "2026-12-03 09:00")),
        ("https://a.cn/x 周一 8:30", PushArgs("https://a.cn/x", "", False, "周一 8:30")),
        ("https://a.cn/x 标题 警惕刷单 明天 下午3点", PushArgs("https://a.cn/x", "警惕刷单", False, "明天 下午3点")),
        ("刷单 明天9:00 确认", PushArgs("刷单", "", True, "明天9:00")),
        ("刷单 确认 明天9:00", PushArgs("刷单", "", True, "明天9:00")),
        ("明天9:00", PushArgs("", "", False, "明天9:00")),
        ("刷单 明天", PushArgs("刷单", "", False, "明天")),  # a day without a time: asked for one
        # Not a time: pushed now, as before.
        ("刷单", PushArgs("刷单", "", False, "")),
        ("刷单 确认", PushArgs("刷单", "", True, "")),
        ("https://a.cn/x 标题 双11 11", PushArgs("https://a.cn/x", "双11 11", False, "")),
        ("https://a.cn/x 标题 关于 3.15", PushArgs("https://a.cn/x", "关于 3.15", False, "")),
        ("候选5", PushArgs("候选5", "", False, "")),
    ],
)
def test_push_args_split_the_time_off_the_end(arg, expected):
    assert parse_push_args(arg) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("明天9:00", datetime(2026, 11, 27, 9, 0)),
        ("12月3日 9:00", datetime(2026, 12, 3, 9, 0)),
        ("2026-12-03 09:00", datetime(2026, 12, 3, 9, 0)),
        ("今天下午3点", datetime(2026, 11, 26, 15, 0)),
        ("周一 8:30", datetime(2026, 11, 30, 8, 30)),
        ("星期五9点半", datetime(2026, 11, 27, 9, 30)),
        ("周四 10:00", datetime(2026, 11, 26, 10, 0)),  # today, still ahead
        ("周四 9:00", datetime(2026, 12, 3, 9, 0)),  # today's has passed: next week's
        ("下周四 9:00", datetime(2026, 12, 3, 9, 0)),
        ("下周一 8:00", datetime(2026, 11, 30, 8, 0)),
        ("周日 20:00", datetime(2026, 11, 29, 20, 0)),
        ("1月5日 9:00", datetime(2027, 1, 5, 9, 0)),
    ],
)
def test_send_times(text, expected):
    assert parse_send_time(text, now=NOW, tz=TZ) == expected.replace(tzinfo=TZ)


def test_a_send_time_needs_a_time_of_day_and_must_be_ahead():
    with pytest.raises(TimeMissing):
        parse_send_time("明天", now=NOW, tz=TZ)
    with pytest.raises(DeadlinePassed) as passed:
        parse_send_time("今天8:00", now=NOW, tz=TZ)
    assert passed.value.at == datetime(2026, 11, 26, 8, 0, tzinfo=TZ)
    for text in ("13月40日 9:00", "明天25:00", "周八 9:00", "刷单"):
        with pytest.raises(DeadlineError):
            parse_send_time(text, now=NOW, tz=TZ)


def test_deadlines_read_weekdays_too():
    assert parse_deadline("周五", now=NOW, tz=TZ, default_time=time(18)) == datetime(2026, 11, 27, 18, 0, tzinfo=TZ)


def test_the_new_commands_are_commands():
    assert (parse_command("定时").name, parse_command("定时推送").name) == ("定时", "定时推送")
    cancel = parse_command("取消定时 3")
    assert (cancel.name, cancel.arg) == ("取消定时", "3")
