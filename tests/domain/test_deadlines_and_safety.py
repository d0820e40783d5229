"""Default deadlines over working days, and a handler that fails half-way leaves nothing behind."""

from __future__ import annotations

from datetime import datetime, time

import pytest
from sqlmodel import select

from bot.domain.relay import default_deadline
from bot.domain.workdays import WorkCalendar
from bot.storage.db import session
from bot.storage.models import Confirmation, Outbox
from tests.conftest import ADMIN, LIAISON_ROOM, OFFICE_ROOM, TZ, WANG


@pytest.mark.parametrize(
    "pushed,due",
    [
        (datetime(2026, 11, 26, 9, 0), datetime(2026, 11, 26, 18, 0)),  # Thursday morning: same day
        (datetime(2026, 11, 26, 16, 30), datetime(2026, 11, 27, 18, 0)),  # late: next working day
        (datetime(2026, 11, 27, 17, 0), datetime(2026, 11, 30, 18, 0)),  # Friday evening: Monday
        (datetime(2026, 11, 28, 10, 0), datetime(2026, 11, 30, 18, 0)),  # Saturday: Monday
        (datetime(2026, 9, 30, 17, 0), datetime(2026, 10, 8, 18, 0)),  # before National Day: after the holiday
        (datetime(2026, 10, 9, 17, 0), datetime(2026, 10, 10, 18, 0)),  # make-up working Saturday
        (datetime(2027, 3, 5, 17, 0), datetime(2027, 3, 8, 18, 0)),  # a year chinese-calendar does not know yet
    ],
)
def test_default_deadline(pushed, due):
    got = default_deadline(
        pushed.replace(tzinfo=TZ), tz=TZ, deadline_time=time(18), late_push_after=time(16), calendar=WorkCalendar()
    )
    assert got == due.replace(tzinfo=TZ)


async def test_a_failing_handler_records_nothing_and_says_nothing(bot, transport, engine, monkeypatch):
    import handlers.liaison as liaison

    await transport.say(ADMIN, "推送 刷单", room_id=OFFICE_ROOM)
    await bot.send_pending()
    real = liaison.record_confirmation

    def record_then_fail(*args, **kwargs):
        real(*args, **kwargs)
        raise RuntimeError("disk full")

    monkeypatch.setattr(liaison, "record_confirmation", record_then_fail)
    with session(engine) as s:
        outbox_before = len(s.exec(select(Outbox)).all())
    await transport.say(WANG, "已转发", room_id=LIAISON_ROOM)
    with session(engine) as s:
        assert s.exec(select(Confirmation)).all() == []
        assert len(s.exec(select(Outbox)).all()) == outbox_before
    monkeypatch.setattr(liaison, "record_confirmation", real)
    await transport.say(WANG, "已转发", room_id=LIAISON_ROOM)  # the bot is still alive and records it now
    with session(engine) as s:
        assert len(s.exec(select(Confirmation)).all()) == 1
