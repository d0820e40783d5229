"""Outage notices (bot/runtime/outage.py, issue 12 item 11) with the in-memory transport and a fake clock: after a
crash or a gateway outage each liaison group hears once which window the bot could not hear; short gaps, quiet
nights and restarts are not announced twice; the heartbeat is written at most once a minute."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlmodel import col, select

from bot.runtime.app import build_bot
from bot.runtime.outage import HEARD_UNTIL, read_heard_until, window_text, worth_announcing
from bot.storage.db import session
from bot.storage.models import Alert, BotState, Outbox, Push
from bot.transport.memory import MemoryTransport
from tests.conftest import ADMIN, LIAISON_ROOM, OFFICE_ROOM, TZ, WANG, add_rooms

SECOND_ROOM = "liaison2@chatroom"
NOTICE = "机器人离线，这段时间的“已转发”请重发"


@pytest.fixture
def settings(settings):
    return settings.model_copy(update={"liaison_groups": ["全区反诈联络员群", "第二联络员群"]})


def new_transport() -> MemoryTransport:
    t = add_rooms(MemoryTransport(bot_id="bot-self"))
    t.add_room(SECOND_ROOM, "第二联络员群", [ADMIN, WANG])
    return t


@pytest.fixture
def transport() -> MemoryTransport:
    return new_transport()


async def restart(settings, engine, clock) -> tuple:
    """A new bot process on the same database (the old one was killed: it never stopped)."""
    transport = new_transport()
    bot = build_bot(settings, transport, engine=engine, clock=clock, send_loop=False)
    await bot.start()
    await bot.send_pending()
    return bot, transport


def notices(transport: MemoryTransport) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for m in transport.sent:
        if NOTICE in m.text:
            out.setdefault(m.chat_id, []).append(m.text)
    return out


def heard_until(engine) -> datetime | None:
    with session(engine) as s:
        return read_heard_until(s)


def local(hour: int, minute: int, day: int = 26) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=TZ)


async def test_after_a_crash_each_liaison_group_hears_the_window_once(bot, settings, engine, clock):
    assert heard_until(engine) == clock.now  # connected at 09:00
    clock.advance(minutes=5)
    await bot.check_health()
    assert heard_until(engine) == local(9, 5)
    clock.advance(seconds=40)
    await bot.check_health()
    assert heard_until(engine) == local(9, 5)  # at most one write a minute
    # kill -9 at about 09:05:50; restarted at 09:13
    clock.now = local(9, 13)
    second, t2 = await restart(settings, engine, clock)
    assert notices(t2) == {
        LIAISON_ROOM: ["09:05–09:13 机器人离线，这段时间的“已转发”请重发"],
        SECOND_ROOM: ["09:05–09:13 机器人离线，这段时间的“已转发”请重发"],
    }
    assert OFFICE_ROOM not in {m.chat_id for m in t2.sent if NOTICE in m.text}
    assert t2.sent[0].text.endswith(NOTICE)  # first in the queue

    # Another restart soon after: the same window is not announced again.
    clock.advance(seconds=30)
    third, t3 = await restart(settings, engine, clock)
    assert notices(t3) == {}


async def test_a_notice_queued_before_another_crash_is_sent_once_not_doubled(bot, settings, engine, clock):
    clock.now = local(10, 0)
    crashed = build_bot(settings, new_transport(), engine=engine, clock=clock, send_loop=False)
    await crashed.start()  # queued the 09:00–10:00 notice, then died before sending it
    clock.advance(seconds=20)
    _, t = await restart(settings, engine, clock)
    assert notices(t) == {
        LIAISON_ROOM: ["09:00–10:00 机器人离线，这段时间的“已转发”请重发"],
        SECOND_ROOM: ["09:00–10:00 机器人离线，这段时间的“已转发”请重发"],
    }
    with session(engine) as s:
        rows = s.exec(select(Outbox).where(col(Outbox.text).contains(NOTICE))).all()
    assert len(rows) == 2


async def test_a_short_gap_or_a_clean_quick_restart_is_not_announced(bot, settings, engine, clock):
    clock.advance(minutes=1, seconds=50)  # under outage_notice_minutes (2)
    _, t = await restart(settings, engine, clock)
    assert notices(t) == {}
    await bot.stop()  # a clean stop writes the heartbeat too
    clock.advance(seconds=30)
    _, t = await restart(settings, engine, clock)
    assert notices(t) == {}


async def test_a_gateway_outage_is_announced_when_the_link_comes_back(bot, transport, engine, clock):
    clock.advance(minutes=3)
    await bot.on_connection("lost", "stream ended")
    assert heard_until(engine) == local(9, 3)
    for _ in range(5):
        clock.advance(minutes=2)
        await bot.check_health()
    assert heard_until(engine) == local(9, 3)  # no heartbeat while the link is down
    await bot.on_connection("restored", "")
    await bot.send_pending()
    assert notices(transport) == {
        LIAISON_ROOM: ["09:03–09:13 机器人离线，这段时间的“已转发”请重发"],
        SECOND_ROOM: ["09:03–09:13 机器人离线，这段时间的“已转发”请重发"],
    }
    assert heard_until(engine) == local(9, 13)


async def test_a_quiet_night_is_not_announced_unless_a_push_was_open(bot, settings, engine, clock):
    await bot.stop()
    clock.now = local(20, 30)
    with session(engine) as s:
        row = s.get(BotState, HEARD_UNTIL)
        assert row is not None
        row.value = local(20, 30).isoformat()  # stopped for the night at 20:30 on Thursday
        s.add(row)
        s.commit()
    clock.now = local(7, 50, day=27)  # started at 07:50 on Friday, before working hours
    _, t = await restart(settings, engine, clock)
    assert notices(t) == {}

    # Saturday and Sunday, nobody expected to say anything: not announced either.
    with session(engine) as s:
        assert not worth_announcing(s, local(8, 0, day=28), local(20, 0, day=29), tz=TZ)
        assert worth_announcing(s, local(19, 0, day=27), local(22, 0, day=27), tz=TZ)  # Friday 19:00-20:00
        alert = Alert(case_type="刷单", title="t", text="x", created_at=local(17, 0, day=28))
        s.add(alert)
        s.flush()
        assert alert.id is not None
        s.add(Push(alert_id=alert.id, created_at=local(17, 0, day=28), deadline=local(12, 0, day=29)))
        s.flush()
        assert worth_announcing(s, local(22, 0, day=28), local(9, 0, day=29), tz=TZ)  # a push open on Saturday
        assert not worth_announcing(s, local(13, 0, day=29), local(18, 0, day=29), tz=TZ)  # after its deadline
        s.rollback()


def test_the_window_shows_dates_when_it_spans_days():
    assert window_text(local(9, 12), local(9, 20), TZ) == "09:12–09:20"
    assert window_text(local(18, 5), local(9, 20, day=27), TZ) == "11月26日 18:05–11月27日 09:20"
    assert window_text(local(9, 12) + timedelta(seconds=59), local(9, 20), TZ) == "09:12–09:20"


async def test_a_failing_heartbeat_never_stops_the_bot(bot, settings, engine, clock, monkeypatch):
    import bot.runtime.outage as outage

    def broken(*_args, **_kwargs):
        raise RuntimeError("database or disk is full")

    monkeypatch.setattr(outage, "read_heard_until", broken)
    monkeypatch.setattr(outage, "_save", broken)
    clock.advance(minutes=10)
    await bot.check_health()  # logged, not raised
    restarted, _ = await restart(settings, engine, clock)
    assert restarted.ready.is_set()
