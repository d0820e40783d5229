"""Parsers: confirmations, #N, quote-replies, commands, deadlines."""

from __future__ import annotations

from datetime import datetime, time
from zoneinfo import ZoneInfo

import pytest

from bot.chat.parsing import (
    DeadlineError,
    is_bare_ack,
    is_confirmation,
    parse_command,
    parse_deadline,
    parse_push_ref,
    parse_quote,
)

TZ = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 11, 26, 9, 30, tzinfo=TZ)  # Thursday


@pytest.mark.parametrize(
    "text",
    [
        "已转发",
        "已转",
        "转发了",
        "已发",
        "已分享",
        "已传达",
        "已转发 #3",
        "#3 已转发",
        "＃３已转发",
        "已转发！",
        "已转发👍",
        "👍已转发🙏",
        "城关镇已转发",
        "城关镇 已转发 #12",
        "【城关镇】已转发",
        "ＯＫ，已转发",
        "收到，已转发本单位群",
        "已转发至本单位工作群，谢谢",
        "已转发到各村居群",
        "已经转发了",
        "均已转发",
        "已\u200b转发",
        "  已 转 发  ",
        "王芳 已转发",
    ],
)
def test_confirmations_are_recognised(text):
    assert is_confirmation(text, ("城关镇", "东城街道", "王芳"))


@pytest.mark.parametrize(
    "text",
    [
        "请问怎么转发?",
        "请问怎么转发？",
        "已转发吗",
        "转发",
        "还没转发",
        "我们单位未转发",
        "转发到哪个群",
        "不转发",
        "大家记得转发",
        "这条需要转发吗",
        "今天的预警是不是要转发到内部群里",
        "收到",
        "好的",
        "",
        "   ",
        "已转发" * 70,
    ],
)
def test_questions_and_sentences_are_not_confirmations(text):
    assert not is_confirmation(text, ("城关镇",))


def test_a_name_before_the_confirmation_counts_whether_or_not_it_is_on_the_roster():
    # Liaisons write their unit or their own name before or after; the reader does not need to know it.
    assert is_confirmation("东城街道已转发", ())
    assert is_confirmation("东城街道已转发", ("东城街道",))
    # A unit name holding a relay character (区发改局) is not read as a relay once it is known.
    assert not is_confirmation("区发改局收到", ("区发改局",))


@pytest.mark.parametrize("text,n", [("#3", 3), ("＃ 12 已转发", 12), ("已转发 #105", 105), ("已转发", None)])
def test_push_ref(text, n):
    assert parse_push_ref(text) == n


def test_quote_reply_as_pad_puppets_render_it():
    q = parse_quote("「陈静：【反诈预警 #12】警惕刷单返利…」\n- - - - - - - - - - - - - - -\n已转发")
    assert q is not None
    assert parse_push_ref(q.quoted) == 12
    assert q.reply == "已转发"
    assert parse_quote("已转发 「不是引用」") is None


def test_bare_ack_is_only_emoji():
    assert is_bare_ack("👍")
    assert not is_bare_ack("好")
    assert not is_bare_ack("")


@pytest.mark.parametrize(
    "text,name,arg",
    [
        ("推送 刷单", "推送", "刷单"),
        ("推送刷单", "推送", "刷单"),
        ("@反诈助手\u2005进度", "进度", ""),
        ("进度#3", "进度", "#3"),
        ("截止 #3 明天12:00", "截止", "#3 明天12:00"),
        ("设为联络员群", "设为联络员群", ""),
    ],
)
def test_commands(text, name, arg):
    cmd = parse_command(text)
    assert cmd is not None and (cmd.name, cmd.arg) == (name, arg)


def test_not_commands():
    assert parse_command("已转发") is None
    assert parse_command("大家好\n推送") is None


@pytest.mark.parametrize(
    "text,expected",
    [
        ("今天18:00", datetime(2026, 11, 26, 18, 0)),
        ("明天12:00", datetime(2026, 11, 27, 12, 0)),
        ("明天 12点", datetime(2026, 11, 27, 12, 0)),
        ("明天下午3点", datetime(2026, 11, 27, 15, 0)),
        ("后天9点半", datetime(2026, 11, 28, 9, 30)),
        ("11月30日17:00", datetime(2026, 11, 30, 17, 0)),
        ("11月30号 17：00", datetime(2026, 11, 30, 17, 0)),
        ("2026-12-01 09:00", datetime(2026, 12, 1, 9, 0)),
        ("2026年12月2日8:00", datetime(2026, 12, 2, 8, 0)),
        ("12/1", datetime(2026, 12, 1, 18, 0)),
        ("1月5日", datetime(2027, 1, 5, 18, 0)),
        ("明天", datetime(2026, 11, 27, 18, 0)),
    ],
)
def test_deadlines(text, expected):
    assert parse_deadline(text, now=NOW, tz=TZ, default_time=time(18)) == expected.replace(tzinfo=TZ)


@pytest.mark.parametrize(
    "text", ["今天8:00", "昨天", "下周", "13月1日", "2026-02-30 10:00", "25:00", "明天25点", "abc"]
)
def test_bad_deadlines(text):
    with pytest.raises(DeadlineError):
        parse_deadline(text, now=NOW, tz=TZ, default_time=time(18))
