"""A city push lands in a district as a scheduled push (bot/operations/city.py); when the district's bot pushes
it, its office group is told it was the city's push 全市第N号, not a 定时N the office never made."""

from __future__ import annotations

from sqlmodel import select

from bot.content import load_library, load_texts
from bot.operations.pushing import library_alert
from bot.operations.scheduled import schedule_push
from bot.storage.db import session
from bot.storage.models import Push, ScheduledPush
from tests.conftest import LIAISON_ROOM, OFFICE_ROOM


async def test_the_office_hears_a_city_push_as_the_citys(bot, transport, clock, engine, settings):
    now = clock.now
    with session(engine) as s:
        # What push_to_city writes into each district's schema (here: the one database of the test).
        scheduled = schedule_push(
            s,
            library_alert(load_library().find("刷单"), now=now),
            send_at=now,
            now=now,
            actor_id="cli",
            actor_name="relaybot city push",
            again=True,
            chat_kind="",
            chat_id="",
            settings=settings,
            texts=load_texts(),
        )
        scheduled.row.city_no = 4
        s.add(scheduled.row)
        s.commit()

    transport.sent.clear()
    await bot.run_schedule()
    await bot.send_pending()

    (pushed,) = [o.text for o in transport.sent if o.chat_id == LIAISON_ROOM and "【反诈预警" in o.text]
    assert pushed.startswith("【反诈预警 #1】") and "（全市第4号）" in pushed.splitlines()[0]
    (told,) = [o.text for o in transport.sent if o.chat_id == OFFICE_ROOM]
    assert told.startswith("市反诈中心的全市第4号推送（11月26日(周四) 09:00 下达）已推送：已推送 #1「"), told
    assert "定时" not in told
    with session(engine) as s:
        (row,) = s.exec(select(ScheduledPush)).all()
        (push,) = s.exec(select(Push)).all()
        assert (row.state, row.push_id, push.city_no) == ("sent", push.id, 4)
