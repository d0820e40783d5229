"""Who may spend the sends (issue 12 items 2 and 10), by a moved clock.

Help, refusals and "not understood" answers to anyone but an admin are courtesy replies: one per person an hour,
after pushes and admin replies, from their own small daily cap and never from the office's budget. Pacing
measures from the last send, and a last send "in the future" (the clock was set back) counts as now.
"""

from __future__ import annotations

import itertools
from datetime import timedelta

import pytest
from sqlmodel import select

from bot.runtime.app import build_bot
from bot.storage import outbox
from bot.storage.db import session
from bot.storage.models import Outbox, OutboxState, Priority
from bot.transport.base import Member
from tests.conftest import ADMIN, LIAISON_ROOM, OFFICE_ROOM, STRANGER, TZ, WANG

HELP = "联络员请将推送转发到本单位内部群"
REFUSED = "该指令仅限反诈办管理员使用。"
BUDGET_NOTICE = "达到每日上限"
GROUPS = [f"g{i:02d}@chatroom" for i in range(6)]


@pytest.fixture
def paced(settings):
    return settings.model_copy(update={"send_spacing_seconds": 3.0, "send_jitter_seconds": 2.0})


async def started(settings, transport, engine, clock):
    bot = build_bot(settings, transport, engine=engine, clock=clock, send_loop=False)
    await bot.start()
    await bot.send_pending()  # what the start itself says
    transport.sent.clear()
    return bot


async def drain(bot, clock, *, max_steps=2000):
    """Run the sender as its loop would, jumping the clock over each wait; returns (time, chat, text) per send."""
    sent = []
    for _ in range(max_steps):
        before = len(bot.transport.sent)
        wait = await bot.send_due()
        sent += [(clock.now, out.chat_id, out.text) for out in bot.transport.sent[before:]]
        if len(bot.transport.sent) == before and wait > 0:
            with session(bot.engine) as s:
                if not s.exec(select(Outbox).where(Outbox.state == OutboxState.PENDING.value)).first():
                    return sent
        clock.advance(seconds=max(wait, 0.0))
    raise AssertionError("the outbox did not drain")


def to(sent, chat_id):
    return [text for _, chat, text in sent if chat == chat_id]


def office_budget_used(engine, clock) -> int:
    with session(engine) as s:
        return outbox.sent_today(s, now=clock.now, tz=TZ)


# ---- item 2: strangers cannot spend the office's sends --------------------------------------------------


async def test_410_messages_from_a_stranger_get_one_answer_and_the_admins_push_goes_first(
    settings, transport, engine, clock, roster
):
    bot = await started(settings, transport, engine, clock)
    for i in range(410):
        if i % 2:
            await transport.say(STRANGER, "帮助")  # privately
        else:
            text = ("帮助", "推送 刷单", "哈哈哈哈 ？？")[i // 2 % 3]
            await transport.say(STRANGER, text, room_id=LIAISON_ROOM)
        clock.advance(seconds=1)
    await transport.say(ADMIN, "推送 刷单", room_id=OFFICE_ROOM)
    sent = await drain(bot, clock)
    # The office's answer first (nothing ahead of it), then the push, then the one courtesy answer.
    assert sent[0][1] == OFFICE_ROOM and "#1" in sent[0][2]
    assert not to(sent, STRANGER.contact_id)  # he was answered in the group, the first time he asked
    group = to(sent, LIAISON_ROOM)
    assert len(group) == 2 and group[0].startswith("【反诈预警 #1】") and HELP in group[1]
    # The office's budget counts the answer and the push only; no "daily limit reached".
    assert office_budget_used(engine, clock) == 2
    assert not [t for _, _, t in sent if BUDGET_NOTICE in t]
    with session(engine) as s:
        courtesy = s.exec(select(Outbox).where(Outbox.priority == int(Priority.COURTESY))).all()
    assert len(courtesy) == 1
    await bot.stop()


async def test_an_admins_progress_is_answered_before_15_queued_help_replies(paced, transport, engine, clock, roster):
    bot = await started(paced, transport, engine, clock)
    for i in range(15):
        await transport.say(Member(f"wxid_visitor{i:02d}", f"访客{i}", ""), "帮助")
    await transport.say(ADMIN, "进度", room_id=OFFICE_ROOM)
    asked = clock.now
    sent = await drain(bot, clock)
    assert sent[0][1] == OFFICE_ROOM
    assert sent[0][0] - asked <= timedelta(seconds=5)  # the fake clock: one spacing at most, not 15
    assert [chat for _, chat, _ in sent[1:]] == [f"wxid_visitor{i:02d}" for i in range(15)]
    assert office_budget_used(engine, clock) == 1
    await bot.stop()


async def test_a_stranger_is_answered_again_after_an_hour_and_a_restart_does_not_reset_it(
    settings, transport, engine, clock, roster
):
    bot = await started(settings, transport, engine, clock)
    await transport.say(STRANGER, "帮助")
    assert len(await drain(bot, clock)) == 1
    clock.advance(minutes=30)
    await transport.say(STRANGER, "推送 刷单", room_id=LIAISON_ROOM)
    assert await drain(bot, clock) == []
    await bot.stop()
    bot = await started(settings, transport, engine, clock)  # a restart remembers when he was answered
    clock.advance(minutes=29)
    await transport.say(STRANGER, "帮助")
    assert await drain(bot, clock) == []
    clock.advance(minutes=2)  # an hour and a minute after the first answer
    await transport.say(STRANGER, "推送 刷单", room_id=LIAISON_ROOM)
    assert [(chat, text) for _, chat, text in await drain(bot, clock)] == [(LIAISON_ROOM, REFUSED)]
    await bot.stop()


async def test_courtesy_replies_have_their_own_daily_cap(settings, transport, engine, clock, roster):
    bot = await started(settings.model_copy(update={"stranger_reply_budget": 3}), transport, engine, clock)
    for i in range(5):
        await transport.say(Member(f"wxid_visitor{i:02d}", f"访客{i}", ""), "帮助")
    assert len(await drain(bot, clock)) == 3
    clock.advance(days=1)  # a new day: the cap is full again
    await transport.say(Member("wxid_visitor04", "访客4", ""), "帮助")
    assert len(await drain(bot, clock)) == 1
    assert office_budget_used(engine, clock) == 0
    await bot.stop()


async def test_a_liaisons_confirmation_is_acknowledged_however_often_he_asked_for_help(
    settings, transport, engine, clock, roster
):
    bot = await started(settings, transport, engine, clock)
    await transport.say(ADMIN, "推送 刷单", room_id=OFFICE_ROOM)
    await drain(bot, clock)
    for _ in range(3):
        await transport.say(WANG, "帮助", room_id=LIAISON_ROOM)
    await transport.say(WANG, "已转发 #1 #7", room_id=LIAISON_ROOM)
    clock.advance(seconds=settings.ack_quiet_seconds + 1)
    await bot.flush_acks()
    texts = to(await drain(bot, clock), LIAISON_ROOM)
    assert sum(HELP in t for t in texts) == 1  # help: once an hour
    assert any("#7" in t for t in texts)  # about the confirmation: not a courtesy, never dropped
    await bot.stop()


# ---- item 10: the clock set back ---------------------------------------------------------------------


@pytest.fixture
def six_groups(transport):
    for room_id in GROUPS:
        transport.add_room(room_id, f"联络员{room_id[1:3]}群", [ADMIN, WANG])
    return transport


async def test_after_the_clock_is_set_back_sending_keeps_the_normal_spacing(paced, six_groups, engine, clock, roster):
    paced = paced.model_copy(update={"liaison_groups": [f"联络员{i:02d}群" for i in range(6)]})
    bot = await started(paced, six_groups, engine, clock)
    await six_groups.say(ADMIN, "推送 刷单", room_id=OFFICE_ROOM)
    first = len(six_groups.sent)
    while len(six_groups.sent) < first + 3:  # the office's answer and two groups
        clock.advance(seconds=await bot.send_due())
    set_back = clock.advance(hours=-3)
    rest = await drain(bot, clock)
    assert len(rest) == 4
    # The first one within one spacing of the set-back clock, each next one 3-5 s after it: not 3 hours later.
    assert rest[0][0] - set_back <= timedelta(seconds=5)
    gaps = [(b[0] - a[0]).total_seconds() for a, b in itertools.pairwise(rest)]
    assert all(3.0 <= g <= 5.0 for g in gaps), gaps
    await bot.stop()


async def test_a_pause_recorded_before_the_clock_was_set_back_lasts_its_length_at_most(
    paced, transport, engine, clock, roster
):
    bot = await started(paced, transport, engine, clock)
    with session(engine) as s:
        outbox.start_backoff(s, now=clock.now, pacing=bot.sender.pacing())
        s.commit()
    clock.advance(hours=-3)
    await transport.say(ADMIN, "进度", room_id=OFFICE_ROOM)
    wait = await bot.send_due()
    assert 0 < wait <= paced.send_backoff_minutes * 60
    clock.advance(seconds=wait)
    assert await bot.send_due() == 0.0 and len(transport.sent) == 1
    await bot.stop()


async def test_a_courtesy_answer_recorded_before_the_clock_was_set_back_does_not_silence_for_the_jump(
    settings, transport, engine, clock, roster
):
    bot = await started(settings, transport, engine, clock)
    await transport.say(STRANGER, "帮助")
    assert len(await drain(bot, clock)) == 1
    clock.advance(hours=-3)
    await transport.say(STRANGER, "帮助")
    assert await drain(bot, clock) == []
    clock.advance(minutes=61)
    await transport.say(STRANGER, "帮助")
    assert len(await drain(bot, clock)) == 1
    await bot.stop()


async def test_someone_off_the_roster_who_asked_for_help_is_still_told_his_confirmation_did_not_count(
    settings, transport, engine, clock, roster
):
    bot = await started(settings, transport, engine, clock)
    await transport.say(ADMIN, "推送 刷单", room_id=OFFICE_ROOM)
    await drain(bot, clock)
    await transport.say(STRANGER, "帮助", room_id=LIAISON_ROOM)
    await transport.say(STRANGER, "已转发", room_id=LIAISON_ROOM)
    texts = to(await drain(bot, clock), LIAISON_ROOM)
    assert len(texts) == 2 and HELP in texts[0] and "您还不在联络员名单里" in texts[1]
    await bot.stop()
