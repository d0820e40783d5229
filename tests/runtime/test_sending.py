"""Paced sending from the outbox, by a moved clock: spacing, budget, back-off, resuming after a crash."""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter

import pytest
from sqlmodel import select

from bot.runtime.app import build_bot
from bot.storage import outbox
from bot.storage.db import session
from bot.storage.models import Outbox
from bot.transport.base import ChatKind, SendError
from tests.bot_process import relaybot
from tests.conftest import ADMIN, LIAISON_ROOM, OFFICE_ROOM, WANG

GROUPS = [f"g{i:02d}@chatroom" for i in range(30)]


@pytest.fixture
def many_groups(transport):
    for room_id in GROUPS:
        transport.add_room(room_id, f"联络员{room_id[1:3]}群", [ADMIN, WANG])
    return transport


@pytest.fixture
def paced(settings):
    return settings.model_copy(
        update={
            "liaison_groups": [f"联络员{i:02d}群" for i in range(30)],
            "send_spacing_seconds": 3.0,
            "send_jitter_seconds": 2.0,
        }
    )


async def drain(bot, clock, *, until=None, max_steps=500):
    """Run the sender as its loop would, jumping the clock over each wait; returns (time, chat) per send."""
    sent = []
    for _ in range(max_steps):
        before = len(bot.transport.sent)
        wait = await bot.send_due()
        for out in bot.transport.sent[before:]:
            sent.append((clock.now, out.chat_id))
        if wait == 5.0 and len(bot.transport.sent) == before:
            with session(bot.engine) as s:
                if not s.exec(select(Outbox).where(Outbox.state == "pending")).first():
                    return sent
        if until is not None and clock.now >= until:
            return sent
        clock.advance(seconds=max(wait, 0.0))
    raise AssertionError("the outbox did not drain")


async def test_a_push_to_30_groups_is_spread_out_and_progress_shows_delivery(many_groups, paced, engine, clock, roster):
    bot = build_bot(paced, many_groups, engine=engine, clock=clock, send_loop=False)
    await bot.start()
    await bot.send_pending()
    many_groups.sent.clear()
    await many_groups.say(ADMIN, "推送 刷单", room_id=OFFICE_ROOM)
    start = clock.now
    sent = await drain(bot, clock, until=start.replace(second=40))
    # The office's answer first, then groups one by one, 3-5 s apart.
    assert sent[0][1] == OFFICE_ROOM
    gaps = [(b[0] - a[0]).total_seconds() for a, b in itertools.pairwise(sent)]
    assert all(3.0 <= g <= 5.0 for g in gaps), gaps
    assert len(set(gaps)) > 1  # jitter
    delivered = len([c for _, c in sent if c in GROUPS])
    await many_groups.say(ADMIN, "进度 #1", room_id=OFFICE_ROOM)
    rest = await drain(bot, clock)
    # The answer jumps the queue of broadcasts (but keeps the pace).
    assert rest[0][1] == OFFICE_ROOM
    answer = next(o.text for o in many_groups.sent if o.text.startswith("#1「"))
    assert f"（已发到 {delivered}/30 个群）" in answer
    per_group = Counter(c for _, c in sent + rest if c in GROUPS)
    assert per_group == Counter({g: 1 for g in GROUPS})
    assert (rest[-1][0] - start).total_seconds() >= 29 * 3
    await bot.stop()


async def test_daily_budget_holds_the_rest_until_tomorrow_and_says_so_once(many_groups, paced, engine, clock, roster):
    bot = build_bot(
        paced.model_copy(update={"daily_send_budget": 10}), many_groups, engine=engine, clock=clock, send_loop=False
    )
    await bot.start()
    await many_groups.say(ADMIN, "推送 刷单", room_id=OFFICE_ROOM)
    sent = await drain(bot, clock)
    per_day = Counter(t.day for t, _ in sent)
    # 31 messages (the office's answer and 30 groups) at 10 a day, plus one notice on each day that hit the limit.
    assert per_day == Counter({26: 11, 27: 11, 28: 11, 29: 1})
    assert [t.hour for t, _ in sent if t.day == 27][0] == 0  # resumed at midnight
    notices = [o.text for o in many_groups.sent if "达到每日上限" in o.text]
    assert len(notices) == 3
    assert Counter(c for _, c in sent if c in GROUPS) == Counter({g: 1 for g in GROUPS})
    await bot.stop()


async def test_a_frequency_limit_pauses_sending_for_30_minutes_and_tells_the_office_once(
    many_groups, paced, engine, clock, roster
):
    bot = build_bot(paced, many_groups, engine=engine, clock=clock, send_loop=False)
    await bot.start()
    await many_groups.say(ADMIN, "推送 刷单", room_id=OFFICE_ROOM)
    await drain(bot, clock, until=clock.now.replace(second=20))  # a few groups have it
    calls = {"n": 0}
    real_send = many_groups.send

    async def limited(out):
        calls["n"] += 1
        raise SendError("发送消息过于频繁", rate_limited=True)

    many_groups.send = limited
    while calls["n"] == 0:
        clock.advance(seconds=await bot.send_due())
    failed_at = clock.now
    assert calls["n"] == 1
    clock.advance(minutes=29)
    assert await bot.send_due() > 0 and calls["n"] == 1  # still paused
    with session(engine) as s:
        assert s.exec(select(Outbox).where(Outbox.state == "failed")).all() == []  # kept, not dropped
    many_groups.send = real_send
    rest = await drain(bot, clock)
    assert (rest[0][0] - failed_at).total_seconds() >= 30 * 60
    assert rest[0][1] == OFFICE_ROOM and "发送过于频繁" in many_groups.sent[-len(rest)].text
    all_sent = Counter(o.chat_id for o in many_groups.sent if o.chat_id in GROUPS)
    assert all_sent == Counter({g: 1 for g in GROUPS})
    notices = [o.text for o in many_groups.sent if "暂停发送" in o.text]
    assert len(notices) == 1
    await bot.stop()


async def test_a_crash_in_the_middle_of_a_fan_out_resumes_without_duplicates(many_groups, paced, engine, clock, roster):
    first = build_bot(paced, many_groups, engine=engine, clock=clock, send_loop=False)
    await first.start()
    await many_groups.say(ADMIN, "推送 刷单", room_id=OFFICE_ROOM)
    await drain(first, clock, until=clock.now.replace(second=45))

    class Crash(BaseException):
        pass

    async def crash(out):
        raise Crash()  # the process dies while handing this message over

    many_groups.send, real_send = crash, many_groups.send
    with pytest.raises(Crash):
        while True:
            clock.advance(seconds=await first.send_due())
    with session(engine) as s:
        assert len(s.exec(select(Outbox).where(Outbox.state == "sending")).all()) == 1
    many_groups.send = real_send

    second = build_bot(paced, many_groups, engine=engine, clock=clock, send_loop=False)  # the restarted process
    await second.start()
    await drain(second, clock)
    assert Counter(o.chat_id for o in many_groups.sent if o.chat_id in GROUPS) == Counter({g: 1 for g in GROUPS})
    await second.stop()


async def test_relaybot_push_from_another_process_is_sent_by_the_running_bot(bot, transport, engine, tmp_path):
    result = relaybot("push", "公检法", db_url=str(engine.url), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "已推送 #1「" in result.stdout and "已排入发送队列" in result.stdout
    await bot.send_pending()
    assert [o.chat_id for o in transport.sent] == [LIAISON_ROOM]
    assert transport.sent[0].text.startswith("【反诈预警 #1】")
    bad = relaybot("push", "外星人", db_url=str(engine.url), cwd=tmp_path)
    assert bad.returncode == 1 and "没有找到案件类型“外星人”" in bad.stderr


async def test_a_clean_stop_waits_for_the_send_in_flight_so_it_is_not_sent_again(transport, settings, engine, clock):
    """A stop while a message is being handed to the gateway lets that send finish and be recorded as sent: a row
    left SENDING would be sent a second time after the restart (as an office warning once was, on PostgreSQL)."""
    bot = build_bot(settings, transport, engine=engine, clock=clock, send_loop=False)
    await bot.start()
    await bot.send_pending()
    with session(engine) as s:
        row = outbox.queue(s, now=clock.now, chat_kind=ChatKind.ROOM, chat_id=OFFICE_ROOM, text="在途的一条")
        s.commit()
        row_id = row.id
    entered, release = asyncio.Event(), asyncio.Event()
    real_send = transport.send

    async def slow_send(out):
        entered.set()
        await release.wait()
        return await real_send(out)

    transport.send = slow_send
    sending = asyncio.create_task(bot.sender.send_pending())
    await entered.wait()
    stopping = asyncio.create_task(bot.sender.stop())
    for _ in range(20):
        await asyncio.sleep(0)
    assert not stopping.done(), "stop() returned while a send was in flight"
    release.set()
    await stopping
    assert await sending == 1
    with session(engine) as s:
        assert s.get(Outbox, row_id).state == "sent"
        assert outbox.recover_interrupted(s) == []  # nothing for the next start to send again
    await bot.stop()
