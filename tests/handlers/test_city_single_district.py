"""Issue 16 on a district alone (SQLite, no `district` setting): the city's words get a plain refusal, and a
`district` setting on SQLite is a configuration error in Chinese."""

from __future__ import annotations

import pytest
from sqlmodel import select

from bot.config import Settings
from bot.runtime.app import build_bot
from bot.storage.db import session
from bot.storage.models import Push, ScheduledPush
from tests.conftest import ADMIN, OFFICE_ROOM
from tests.handlers.test_city_chat import CITY_ADMIN, said


async def test_city_words_on_a_district_alone_are_refused_and_change_nothing(
    settings, transport, engine, clock, roster
):
    settings = settings.model_copy(update={"city_admin_ids": [CITY_ADMIN.contact_id]})
    bot = build_bot(settings, transport, engine=engine, clock=clock, send_loop=False)
    await bot.start()
    try:
        answer = await said(bot, transport, CITY_ADMIN, "推送 刷单 全市", None)
        assert answer == ["本机器人不是全市多区部署（没有设置 district），不能做全市推送或看全市进度。"]
        with session(engine) as s:
            assert s.exec(select(Push)).all() == [] and s.exec(select(ScheduledPush)).all() == []
        # The district's own admin's 推送 without 全市 is untouched by the city's router.
        assert "#1" in (await said(bot, transport, ADMIN, "推送 刷单", OFFICE_ROOM))[0]
    finally:
        await bot.stop()


def test_a_district_needs_postgresql():
    with pytest.raises(ValueError, match="district（区）只能和 PostgreSQL 一起用"):
        Settings(database_url="sqlite:///data/relaybot.db", district="海湖区")
    with pytest.raises(ValueError, match="区名“海 湖”不能用"):
        Settings(database_url="postgresql+psycopg://u@h/city", district="海 湖")
