"""Issue 16 in chat: a city admin's `推送 刷单 全市` and `进度 全市 #N` in the city office group that one district's
bot serves; nobody else's words there are taken, and a district admin's own commands stay the district's."""

from __future__ import annotations

import pytest
from sqlmodel import select

from bot.config import Settings
from bot.domain.roster import import_roster, read_roster
from bot.runtime.app import build_bot
from bot.storage.db import make_engine, session
from bot.storage.models import AuditLog, Confirmation, Push, ScheduledPush, Unit
from bot.transport.base import Member
from bot.transport.memory import MemoryTransport
from tests.conftest import ADMIN, LI, LIAISON_ROOM, OFFICE_ROOM, WANG, ZHAO
from tests.operations.test_city import ROSTER_B, _add

pytestmark = pytest.mark.postgres

CITY_ADMIN = Member("wxid_city_lin", "林主任", "市反诈中心-林")
CITY_ROOM = "city@chatroom"
ROSTER_A = """单位,类别,联络员,微信ID
城关镇,镇街,王芳,wxid_wangfang
东城街道,镇街,李强,wxid_liqiang
"""


@pytest.fixture
async def district_bot(city_db, tmp_path, clock):
    city = city_db
    a = _add(city, "海湖区", login=True)  # the district's own login, as on its server
    _add(city, "城东区", ROSTER_B)
    engine = make_engine(a)
    read = read_roster("名单.csv", ROSTER_A.encode())
    with session(engine) as s:
        import_roster(s, read.rows, columns=read.columns)
        s.commit()
    settings = Settings(
        database_url=a,
        district="海湖区",
        city_database_url=city,  # this district's bot serves the city's office group
        evidence_dir=str(tmp_path / "evidence"),
        admin_ids=[ADMIN.contact_id],
        city_admin_ids=[CITY_ADMIN.contact_id],
        liaison_groups=["海湖区反诈联络员群"],
        office_group="海湖区反诈办工作群",
        city_office_group="市反诈中心工作群",
        ack_quiet_seconds=30,
        ack_min_interval_seconds=0,
    )
    transport = MemoryTransport(bot_id="bot-self")
    transport.add_room(LIAISON_ROOM, "海湖区反诈联络员群", [ADMIN, WANG, ZHAO, LI])
    transport.add_room(OFFICE_ROOM, "海湖区反诈办工作群", [ADMIN])
    transport.add_room(CITY_ROOM, "市反诈中心工作群", [CITY_ADMIN, ADMIN, WANG])
    bot = build_bot(settings, transport, engine=engine, clock=clock, send_loop=False)
    await bot.start()
    await bot.send_pending()
    transport.sent.clear()
    yield bot, transport, engine, city
    await bot.stop()
    engine.dispose()


async def said(bot, transport, who: Member, text: str, room: str | None) -> list[str]:
    """The bot's answers to `who` writing `text` in `room` (None: privately to the bot)."""
    transport.sent.clear()
    await transport.say(who, text, room_id=room)
    await bot.send_pending()
    return [o.text for o in transport.sent if o.chat_id == (room or who.contact_id) and o.text]


async def test_a_city_push_from_the_city_group_reaches_every_district_and_its_progress_is_told(district_bot, clock):
    bot, transport, engine, city = district_bot
    answer = await said(bot, transport, CITY_ADMIN, "推送 刷单 全市", CITY_ROOM)
    assert len(answer) == 1 and "全市第1号" in answer[0] and "2 个区" in answer[0]
    other = make_engine(_district(city, "城东区"))
    with session(other) as s:  # the other district got its scheduled push, for its own bot to send
        (row,) = s.exec(select(ScheduledPush)).all()
        assert row.city_no == 1 and row.push_id is None
    other.dispose()
    # This district's bot pushes it with its schedule poller: to its liaison group, tagged with the city number.
    await bot.run_schedule()
    await bot.send_pending()
    pushed = [o.text for o in transport.sent if o.chat_id == LIAISON_ROOM and o.text]
    assert len(pushed) == 1 and "#1" in pushed[0] and "（全市第1号）" in pushed[0]
    await transport.say(WANG, "已转发", room_id=LIAISON_ROOM)
    await bot.send_pending()
    with session(engine) as s:
        assert [c.unit_id for c in s.exec(select(Confirmation))] == [
            s.exec(select(Unit.id).where(Unit.name == "城关镇")).one()
        ]
    # The district's own 进度 names the city's number too.
    assert "（全市第1号）" in (await said(bot, transport, ADMIN, "进度 #1", OFFICE_ROOM))[0]
    progress = await said(bot, transport, CITY_ADMIN, "进度 全市 #1", CITY_ROOM)
    assert len(progress) == 1
    assert "全市：1/2" in progress[0] and "海湖区 #1：1/2" in progress[0] and "城东区：区机器人还没发出" in progress[0]
    # In the city group 全市 may be left out; in a private chat it is needed and works.
    assert "海湖区 #1：1/2" in (await said(bot, transport, CITY_ADMIN, "进度", CITY_ROOM))[0]
    assert "海湖区 #1：1/2" in (await said(bot, transport, CITY_ADMIN, "进度全市#1", OFFICE_ROOM))[0]
    private = await said(bot, transport, CITY_ADMIN, "进度 全市", None)
    assert "全市：1/2" in private[0]
    with session(engine) as s:
        actions = [a.action for a in s.exec(select(AuditLog).where(AuditLog.actor_id == CITY_ADMIN.contact_id))]
    assert actions.count("city_push") == 1 and actions.count("city_progress") == 4
    # The city's report of this month so far: districts ranked, with the workbook, in the chat it was asked in.
    transport.sent.clear()
    await transport.say(CITY_ADMIN, "报表 全市 本月", room_id=CITY_ROOM)
    await bot.send_pending()
    texts = [o.text for o in transport.sent if o.chat_id == CITY_ROOM and o.text]
    files = [o.file for o in transport.sent if o.chat_id == CITY_ROOM and o.file is not None]
    assert len(texts) == 1 and "海湖区" in texts[0] and "城东区" in texts[0], texts
    assert len(files) == 1 and files[0].name == "全市通报_2026-11.xlsx" and files[0].data.startswith(b"PK")
    assert "报表 全市 2026-11" in (await said(bot, transport, CITY_ADMIN, "报表 全市 下下月", CITY_ROOM))[0]
    # The same type again later today: asked for 确认; typed without spaces, as on a phone, in a private chat.
    clock.advance(minutes=10)
    again = (await said(bot, transport, CITY_ADMIN, "推送刷单全市", None))[0]
    assert "已做过全市第1号" in again and "推送 刷单返利 全市 确认" in again
    assert "全市第2号" in (await said(bot, transport, CITY_ADMIN, "推送 刷单 全市 确认", None))[0]
    # The same message read by a second district bot in the city's group a moment later: not pushed twice.
    assert "全市第2号刚刚已推送" in (await said(bot, transport, CITY_ADMIN, "推送 刷单 全市 确认", CITY_ROOM))[0]


async def test_only_city_admins_command_the_city_and_the_district_admin_keeps_his_own_district(district_bot):
    bot, transport, engine, city = district_bot
    # A district admin (not a city admin) in the city group: not taken, nothing pushed anywhere.
    assert await said(bot, transport, ADMIN, "推送 刷单 全市", CITY_ROOM) == []
    # A liaison who is in the city group: the same.
    assert await said(bot, transport, WANG, "推送 刷单", CITY_ROOM) == []
    other = make_engine(_district(city, "城东区"))
    with session(other) as s:
        assert s.exec(select(ScheduledPush)).all() == []
    other.dispose()
    # The district admin's own push in his office group is his district's, with no city number.
    answer = await said(bot, transport, ADMIN, "推送 刷单", OFFICE_ROOM)
    assert len(answer) == 1 and "#1" in answer[0]
    with session(engine) as s:
        assert [p.city_no for p in s.exec(select(Push))] == [None]
    # A district admin's 全市 in his own office group: told it is the city's, nothing pushed.
    refused = await said(bot, transport, ADMIN, "推送 征信 全市", OFFICE_ROOM)
    assert len(refused) == 1 and "city_admin_ids" in refused[0]
    with session(engine) as s:
        assert len(s.exec(select(Push)).all()) == 1
    # What a city push cannot carry is refused, not dropped: a target, a time, extra words.
    for words in ("推送 刷单 给 学校 全市", "推送 刷单 全市 明天9:00"):
        assert "全市推送只写类型" in (await said(bot, transport, CITY_ADMIN, words, CITY_ROOM))[0]
    assert "可用类型" in (await said(bot, transport, CITY_ADMIN, "推送 刷单 请各区今天转发 全市", CITY_ROOM))[0]
    other = make_engine(_district(city, "城东区"))
    with session(other) as s:
        assert s.exec(select(ScheduledPush)).all() == []
    other.dispose()
    # A city admin's 推送 without 全市 in the district's office group: how to write the city's (nothing pushed).
    hint = await said(bot, transport, CITY_ADMIN, "推送 刷单", OFFICE_ROOM)
    assert len(hint) == 1 and "推送 刷单 全市" in hint[0]
    # A city admin's unknown words in the city group get the city's commands; a wrong 进度 gets its usage.
    assert "推送 刷单 全市" in (await said(bot, transport, CITY_ADMIN, "帮助", CITY_ROOM))[0]
    assert "进度 全市 #3" in (await said(bot, transport, CITY_ADMIN, "进度 全市 甲乙", CITY_ROOM))[0]
    assert "可用类型" in (await said(bot, transport, CITY_ADMIN, "推送 全市", CITY_ROOM))[0]
    assert "没有全市第5号" in (await said(bot, transport, CITY_ADMIN, "进度 全市 #5", CITY_ROOM))[0]


def _district(city: str, name: str) -> str:
    from bot.districtnames import district_url

    return district_url(city, name)
