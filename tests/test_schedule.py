"""Reminders, deadlines, escalation and scheduled reports, all by moving a fake clock."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import select

from bot.domain.workdays import WorkCalendar
from bot.operations.agenda import occurrences
from bot.runtime.app import build_bot
from bot.storage.db import session
from bot.storage.models import Miss, Push, ScheduledRun
from tests.conftest import ADMIN, LI, LIAISON_ROOM, OFFICE_ROOM, SUN, TZ, WANG, WU, ZHAO, ZHENG, ZHOU


def local(*args):
    return datetime(*args, tzinfo=TZ)


def sent_to(transport, chat_id):
    return [o for o in transport.sent if o.chat_id == chat_id]


def final_list(transport):
    """The deadline's message to the office (jumping the clock also skips reminders, which the office is told)."""
    return next(o.text for o in sent_to(transport, OFFICE_ROOM) if "已截止" in o.text)


async def push(bot, transport, kind="刷单"):
    await transport.say(ADMIN, f"推送 {kind}", room_id=OFFICE_ROOM)
    await bot.send_pending()


async def tick(bot, clock, when):
    clock.now = when
    handled = await bot.run_schedule()
    await bot.send_pending()
    return handled


def test_trigger_times_follow_working_days_holidays_and_make_up_days(settings):
    found = occurrences(
        since=local(2026, 9, 29, 23, 0),
        now=local(2026, 10, 12, 23, 0),
        settings=settings,
        calendar=WorkCalendar(),
        tz=TZ,
    )
    got = [(o.job, o.due.astimezone(TZ).strftime("%m-%d %H:%M")) for o in found]
    reminder_days = sorted({d for j, d in got if j == "remind" for d in [d[:5]]})
    # National Day 10-01..10-07 off; Saturday 10-10 is a make-up working day; Sunday 10-11 off.
    assert reminder_days == ["09-30", "10-08", "10-09", "10-10", "10-12"]
    assert ("remind", "10-10 10:00") in got and ("remind", "10-10 16:00") in got
    assert ("summary", "10-10 18:30") in got
    assert [d for j, d in got if j == "weekly"] == ["10-05 09:00", "10-12 09:00"]
    assert [d for j, d in got if j == "monthly"] == ["10-01 09:00"]


def test_a_weekend_has_no_reminders(settings):
    found = occurrences(
        since=local(2026, 11, 27, 17, 0),
        now=local(2026, 11, 30, 10, 30),
        settings=settings,
        calendar=WorkCalendar(),
        tz=TZ,
    )
    assert [(o.job, o.due) for o in found] == [
        ("summary", local(2026, 11, 27, 18, 30)),
        ("weekly", local(2026, 11, 30, 9, 0)),
        ("remind", local(2026, 11, 30, 10, 0)),
    ]


async def test_daily_reminder_mentions_main_and_backup_of_missing_units_only(bot, transport, clock):
    await push(bot, transport)
    await transport.say(LI, "已转发", room_id=LIAISON_ROOM)
    await transport.say(SUN, "已转发", room_id=LIAISON_ROOM)
    transport.sent.clear()
    assert await tick(bot, clock, local(2026, 11, 26, 9, 59)) == 0
    assert await tick(bot, clock, local(2026, 11, 26, 10, 0)) == 1
    group = sent_to(transport, LIAISON_ROOM)
    assert len(group) == 1
    assert set(group[0].mention_ids) == {
        WANG.contact_id,
        ZHAO.contact_id,
        ZHOU.contact_id,
        WU.contact_id,
        ZHENG.contact_id,
    }
    lines = group[0].text.splitlines()
    assert lines[1:5] == ["城关镇（#1）", "西湖镇（#1）", "区卫健局（#1）", "金融行业（#1）"]
    assert "截止：#1 11月26日(周四) 18:00" in group[0].text
    transport.sent.clear()
    assert await tick(bot, clock, local(2026, 11, 26, 10, 5)) == 0  # once only
    assert transport.sent == []


async def test_no_reminder_when_nothing_is_missing(bot, transport, clock):
    await push(bot, transport)
    for who in (WANG, LI, ZHOU, SUN, WU, ZHENG):
        await transport.say(who, "已转发", room_id=LIAISON_ROOM)
    transport.sent.clear()
    await tick(bot, clock, local(2026, 11, 26, 10, 0))
    assert sent_to(transport, LIAISON_ROOM) == []


async def test_leave_mentions_the_backup_instead(bot, transport, clock):
    await push(bot, transport)
    await transport.say(ADMIN, "请假 城关镇 今天", room_id=OFFICE_ROOM)
    await bot.send_pending()
    assert (
        "已记录：城关镇 主联络员 11月26日 请假，期间提醒 @ 备联络员（赵磊）。"
        in sent_to(transport, OFFICE_ROOM)[-1].text
    )
    transport.sent.clear()
    await tick(bot, clock, local(2026, 11, 26, 10, 0))
    ids = sent_to(transport, LIAISON_ROOM)[0].mention_ids
    assert ZHAO.contact_id in ids and WANG.contact_id not in ids
    await transport.say(ADMIN, "销假 城关镇", room_id=OFFICE_ROOM)
    transport.sent.clear()
    await tick(bot, clock, local(2026, 11, 26, 16, 0))
    ids = sent_to(transport, LIAISON_ROOM)[0].mention_ids
    assert WANG.contact_id in ids and ZHAO.contact_id in ids


async def test_long_lists_are_split(bot, transport, clock, settings):
    bot.settings = settings.model_copy(update={"reminder_max_mentions": 2})
    await push(bot, transport)
    transport.sent.clear()
    await tick(bot, clock, local(2026, 11, 26, 10, 0))
    group = sent_to(transport, LIAISON_ROOM)
    assert [o.text.splitlines()[0] for o in group] == [
        f"⏰ 转发提醒（{i}/4）：以下单位还未确认转发" for i in range(1, 5)
    ]
    # 城关镇 has two liaisons and fills a message alone; the six others go two by two.
    assert [len(o.mention_ids) for o in group] == [2, 2, 2, 1]
    assert all(len(o.mention_ids) <= 2 for o in group)
    assert sorted(i for o in group for i in o.mention_ids) == sorted(
        [
            WANG.contact_id,
            ZHAO.contact_id,
            LI.contact_id,
            ZHOU.contact_id,
            SUN.contact_id,
            WU.contact_id,
            ZHENG.contact_id,
        ]
    )


async def test_deadline_posts_the_final_list_and_records_misses(bot, transport, clock, engine):
    await push(bot, transport)
    for who in (WANG, LI, ZHOU):
        await transport.say(who, "已转发", room_id=LIAISON_ROOM)
    transport.sent.clear()
    await tick(bot, clock, local(2026, 11, 26, 18, 0))
    office = final_list(transport)
    assert office.splitlines()[1:] == ["未转发（3）：区教育局、区卫健局、金融行业"]
    assert "已截止：确认 3/6" in office
    with session(engine) as s:
        assert s.get(Push, 1).state == "closed"
        assert len(s.exec(select(Miss)).all()) == 3
    # A confirmation after the deadline is kept and marked late; the miss stays on record.
    clock.advance(minutes=20)
    await transport.say(SUN, "已转发", room_id=LIAISON_ROOM)
    await transport.say(ADMIN, "进度", room_id=OFFICE_ROOM)
    await bot.send_pending()
    assert "已确认 4/6（迟报 1）" in sent_to(transport, OFFICE_ROOM)[-1].text
    with session(engine) as s:
        assert len(s.exec(select(Miss)).all()) == 3


async def test_the_ladder_climbs_and_a_confirmed_push_resets_it(bot, transport, clock, engine):
    days = [local(2026, 11, 26, 9, 0), local(2026, 11, 27, 9, 0), local(2026, 11, 30, 9, 0), local(2026, 12, 1, 9, 0)]
    others = (WANG, LI, ZHOU, SUN, ZHENG)  # 区卫健局 (吴刚) never confirms the first three
    for index, day in enumerate(days):
        clock.now = day
        await push(bot, transport)
        for who in others + ((WU,) if index == 3 else ()):
            await transport.say(who, "已转发", room_id=LIAISON_ROOM)
        transport.sent.clear()
        await tick(bot, clock, day.replace(hour=18))
        office = final_list(transport)
        private = [o for o in transport.sent if o.chat_id == WU.contact_id]
        if index == 0:
            assert "区卫健局" in office and "提醒：" not in office and private == []
        if index == 1:
            assert "提醒：区卫健局（连续2次）" in office
            assert private and "已连续 2 次未按时转发反诈预警（#1、#2）" in private[0].text
        if index == 2:
            assert "约谈：区卫健局（连续3次）" in office
        if index == 3:
            assert "全部单位按时转发。" in office
    await transport.say(ADMIN, "单位 卫健", room_id=OFFICE_ROOM)
    await bot.send_pending()
    card = sent_to(transport, OFFICE_ROOM)[-1].text
    # Misses in November and now none in December: two consecutive months with misses are not reached.
    assert "连续未按时：0 次；当前等级：正常" in card
    assert "近 30 天：收到 4，按时 1，迟报 0，未转 3" in card


async def test_misses_in_two_consecutive_months_mean_a_written_explanation(bot, transport, clock):
    for day in (local(2026, 11, 26, 9, 0), local(2026, 12, 1, 9, 0)):
        clock.now = day
        await push(bot, transport)
        for who in (WANG, LI, ZHOU, SUN, ZHENG):
            await transport.say(who, "已转发", room_id=LIAISON_ROOM)
        await tick(bot, clock, day.replace(hour=18))
    clock.now = local(2026, 12, 2, 9, 0)
    await push(bot, transport)
    await transport.say(WU, "已转发", room_id=LIAISON_ROOM)  # on time now, but the months stand
    await tick(bot, clock, local(2026, 12, 2, 18, 0))
    await transport.say(ADMIN, "单位 区卫健局", room_id=OFFICE_ROOM)
    await bot.send_pending()
    assert "当前等级：书面说明" in sent_to(transport, OFFICE_ROOM)[-1].text


async def test_restart_within_grace_sends_once_beyond_grace_skips_and_tells_the_office(
    settings, transport, engine, clock, roster
):
    first = build_bot(settings, transport, engine=engine, clock=clock, send_loop=False)
    await first.start()
    await transport.say(ADMIN, "推送 刷单", room_id=OFFICE_ROOM)
    await first.send_pending()
    await first.stop()  # down over 10:00
    transport.sent.clear()

    clock.now = local(2026, 11, 26, 10, 40)  # 40 minutes late: within the 60-minute grace
    second = build_bot(settings, transport, engine=engine, clock=clock, send_loop=False)
    await second.start()
    assert await second.run_schedule() == 1
    await second.send_pending()
    assert len([o for o in sent_to(transport, LIAISON_ROOM) if o.text.startswith("⏰ 转发提醒")]) == 1
    await second.stop()

    transport.sent.clear()
    third = build_bot(
        settings, transport, engine=engine, clock=clock, send_loop=False
    )  # restarted again: nothing twice
    await third.start()
    assert await third.run_schedule() == 0
    await third.stop()
    transport.sent.clear()

    clock.now = local(2026, 11, 26, 17, 30)  # the 16:00 reminder is 90 minutes late: skipped
    fourth = build_bot(settings, transport, engine=engine, clock=clock, send_loop=False)
    await fourth.start()
    await fourth.run_schedule()
    await fourth.send_pending()
    assert not any(o.text.startswith("⏰ 转发提醒") for o in transport.sent)
    office = [o.text for o in sent_to(transport, OFFICE_ROOM)]
    assert office == ["⚠️ 机器人停机期间错过了以下定时任务（已超过 60 分钟，未补发）：11月26日(周四) 16:00 每日提醒"]
    with session(engine) as s:
        runs = [(r.job, r.state) for r in s.exec(select(ScheduledRun).order_by(ScheduledRun.due_at))]
    assert runs == [("remind", "done"), ("remind", "skipped")]
    await fourth.stop()


async def test_a_year_the_calendar_does_not_know(bot, transport, clock, engine):
    clock.now = local(2027, 1, 4, 8, 0)
    await bot.run_schedule()
    await bot.run_schedule()
    await bot.send_pending()
    notices = [o.text for o in sent_to(transport, OFFICE_ROOM) if "2027" in o.text]
    assert len(notices) == 1 and "暂按周一至周五" in notices[0]
    # The office enters a day off; it then wins: no reminder on it.
    await transport.say(ADMIN, "休息日 2027-01-05", room_id=OFFICE_ROOM)
    await push(bot, transport)
    transport.sent.clear()
    await tick(bot, clock, local(2027, 1, 4, 10, 0))
    assert len(sent_to(transport, LIAISON_ROOM)) == 1  # Monday the 4th is a working day
    transport.sent.clear()
    await tick(bot, clock, local(2027, 1, 5, 10, 0))
    assert sent_to(transport, LIAISON_ROOM) == []  # Tuesday the 5th was entered as a day off
