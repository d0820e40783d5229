"""Issue 13's small untruths about pushes: the unit card counts open pushes, a past deadline is called past (not
"not understood"), and a withdrawn push is called withdrawn (not "not found") by every command naming it."""

from __future__ import annotations

from datetime import datetime, time

import pytest
from sqlmodel import select

from bot.chat.parsing import DeadlineError, DeadlinePassed, parse_deadline
from bot.storage.db import session
from bot.storage.models import Confirmation, Exemption, Push
from tests.conftest import ADMIN, LI, LIAISON_ROOM, OFFICE_ROOM, TZ, WANG


def local(*args) -> datetime:
    return datetime(*args, tzinfo=TZ)


async def command(bot, transport, text: str, *, room: str | None = OFFICE_ROOM) -> str:
    """An admin's command; the bot's one answer to it."""
    transport.sent.clear()
    await transport.say(ADMIN, text, room_id=room)
    await bot.send_pending()
    answers = [o.text for o in transport.sent if o.chat_id == (room or ADMIN.contact_id) and o.text]
    assert len(answers) == 1, answers
    return answers[0]


def card_line(card: str) -> str:
    return next(line for line in card.splitlines() if line.startswith("近 30 天："))


# ---- the unit card --------------------------------------------------------------------------------------------


async def test_the_unit_card_counts_open_pushes_as_received(bot, transport, clock):
    await command(bot, transport, "推送 刷单")
    await command(bot, transport, "推送 公检法")
    clock.advance(minutes=10)
    await transport.say(WANG, "已转发 #1 #2", room_id=LIAISON_ROOM)
    card = await command(bot, transport, "单位 城关镇")
    assert card_line(card) == "近 30 天：收到 2，按时 2，迟报 0，未转 0"
    # A unit that has not confirmed them yet has received them too: still to relay, not missed.
    card = await command(bot, transport, "单位 东城街道")
    assert card_line(card) == "近 30 天：收到 2，按时 0，迟报 0，未转 0，待转 2（#1、#2，未到截止）"


async def test_the_unit_card_after_the_deadline_and_with_an_exemption(bot, transport, clock):
    await command(bot, transport, "推送 刷单")
    await transport.say(LI, "已转发", room_id=LIAISON_ROOM)
    clock.now = local(2026, 11, 26, 18, 30)
    await bot.run_schedule()
    await bot.send_pending()
    await command(bot, transport, "推送 公检法")  # after 16:00: due tomorrow
    await command(bot, transport, "免转 东城街道 #2 不涉及")
    assert card_line(await command(bot, transport, "单位 城关镇")) == (
        "近 30 天：收到 2，按时 0，迟报 0，未转 1，待转 1（#2，未到截止）"
    )
    assert card_line(await command(bot, transport, "单位 东城街道")) == (
        "近 30 天：收到 1，按时 1，迟报 0，未转 0，免转 1"
    )
    await command(bot, transport, "撤回 #2")
    assert card_line(await command(bot, transport, "单位 城关镇")) == "近 30 天：收到 1，按时 0，迟报 0，未转 1"


# ---- deadlines in the past ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "typed, meant",
    [
        ("下午5点", "11月26日(周四) 17:00"),  # a bare time is today's
        ("17:00", "11月26日(周四) 17:00"),
        ("今天17:00", "11月26日(周四) 17:00"),
        ("今天 下午5点", "11月26日(周四) 17:00"),
        ("昨天", "11月25日(周三) 18:00"),
        ("昨天12点", "11月25日(周三) 12:00"),
        ("11月25日17:00", "11月25日(周三) 17:00"),
        ("2026-11-20 09:00", "11月20日(周五) 09:00"),
    ],
)
async def test_a_deadline_in_the_past_is_refused_as_past(bot, transport, clock, engine, typed, meant):
    await command(bot, transport, "推送 刷单")
    clock.now = local(2026, 11, 26, 21, 41)
    with session(engine) as s:
        before = s.get(Push, 1).deadline
    answer = await command(bot, transport, f"截止 #1 {typed}")
    hm = meant[-5:]
    assert answer == f"这个时间已经过了：{meant}。截止时间要晚于现在，例如：截止 #1 明天{hm}"
    assert [o for o in transport.sent if o.chat_id == LIAISON_ROOM] == []
    with session(engine) as s:
        assert s.get(Push, 1).deadline == before


async def test_a_future_deadline_still_works_and_nonsense_is_still_not_understood(bot, transport, clock):
    await command(bot, transport, "推送 刷单")
    clock.now = local(2026, 11, 26, 21, 41)
    assert await command(bot, transport, "截止 #1 明天下午5点") == "已将 #1 截止时间改为 11月27日(周五) 17:00。"
    assert (await command(bot, transport, "截止 #1 下周吧")).startswith("没看懂截止时间“下周吧”")


@pytest.mark.parametrize(
    "typed, expected",
    [
        ("1月5日", local(2027, 1, 5, 18)),  # long before today in this year: next year's
        ("11月30日", local(2026, 11, 30, 18)),
        ("今晚9点", local(2026, 11, 26, 21)),
    ],
)
def test_deadline_days(typed, expected):
    assert parse_deadline(typed, now=local(2026, 11, 26, 9), tz=TZ, default_time=time(18)) == expected


@pytest.mark.parametrize(
    "typed, at",
    [
        ("前天", local(2026, 11, 24, 18)),
        ("昨晚8点", local(2026, 11, 25, 20)),
        ("6月1日", local(2026, 6, 1, 18)),  # months ago, not next June
        ("今天8:00", local(2026, 11, 26, 8)),
    ],
)
def test_past_deadlines_say_when_they_were_read_as(typed, at):
    with pytest.raises(DeadlinePassed) as raised:
        parse_deadline(typed, now=local(2026, 11, 26, 9), tz=TZ, default_time=time(18))
    assert raised.value.at == at
    assert isinstance(raised.value, DeadlineError)  # callers that only know DeadlineError still refuse it


# ---- a withdrawn push ---------------------------------------------------------------------------------------


async def withdrawn_second(bot, transport) -> None:
    await command(bot, transport, "推送 刷单")
    await command(bot, transport, "推送 公检法")
    await command(bot, transport, "撤回 #2")


async def test_a_liaison_confirming_a_withdrawn_push_is_told_it_was_withdrawn(bot, transport, engine):
    await withdrawn_second(bot, transport)
    transport.sent.clear()
    await transport.say(WANG, "已转发 #2", room_id=LIAISON_ROOM)
    await bot.send_pending()
    replies = [o for o in transport.sent if o.chat_id == LIAISON_ROOM]
    assert [o.text for o in replies] == ["#2 已撤回，无需转发。"]
    assert replies[0].mention_ids == (WANG.contact_id,)
    with session(engine) as s:
        assert s.exec(select(Confirmation)).all() == []

    # With a push still open beside it: that one is recorded, and the withdrawn one explained.
    transport.sent.clear()
    await transport.say(LI, "已转发 #1 #2", room_id=LIAISON_ROOM)
    await bot.send_pending()
    assert "#2 已撤回，无需转发。" in [o.text for o in transport.sent if o.chat_id == LIAISON_ROOM]
    with session(engine) as s:
        assert [c.push_id for c in s.exec(select(Confirmation))] == [1]

    transport.sent.clear()
    await transport.say(LI, "已转发 #9", room_id=LIAISON_ROOM)  # a number never used is still "not found"
    await bot.send_pending()
    assert [o.text for o in transport.sent if o.chat_id == LIAISON_ROOM] == ["没有找到正在进行的推送 #9，请核对编号。"]


@pytest.mark.parametrize(
    "text, answer",
    [
        ("截止 #2 明天12:00", "#2 已撤回，无需再改截止时间。"),
        ("提醒 #2", "#2 已撤回，无需提醒。"),
        ("补登 城关镇 #2 电话确认", "#2 已撤回，无需补登。"),
        ("免转 城关镇 #2 不涉及", "#2 已撤回，无需免转。"),
        ("撤销 城关镇 #2", "#2 已撤回，不计入统计，无需撤销。"),
        ("撤回 #2", "#2 已经撤回过了。"),
    ],
)
async def test_office_commands_naming_a_withdrawn_push_say_so(bot, transport, engine, text, answer):
    await withdrawn_second(bot, transport)
    assert await command(bot, transport, text) == answer
    assert [o for o in transport.sent if o.chat_id == LIAISON_ROOM] == []
    with session(engine) as s:
        assert s.exec(select(Confirmation)).all() == [] and s.exec(select(Exemption)).all() == []


async def test_progress_of_a_withdrawn_push_shows_it_withdrawn(bot, transport):
    await withdrawn_second(bot, transport)
    answer = await command(bot, transport, "进度 #2")
    assert answer.startswith("#2「") and "（已撤回）" in answer.splitlines()[1]
