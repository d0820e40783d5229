"""End to end (issue 15 item 2): `推送 刷单 今天9:00` through the real Wechaty gateway, the bot stopped before
9:00 and started again after it (its clock moved): the push reaches the liaison group once, late, and the office
is told; a further restart repeats nothing."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import select

from bot.storage.db import make_engine, session
from bot.storage.models import Push, ScheduledPush
from tests.bot_process import ROOT, BotProcess, gateway_env, relaybot
from tests.gateway_harness import Gateway, texts_to

pytestmark = pytest.mark.e2e  # the bot as a process against the real Node gateway

ADMIN = ("wxid_admin_chen", "陈静")
WANG = ("wxid_wangfang", "王芳")
PEOPLE = [ADMIN, WANG]
LIAISON_ROOM = "25001@chatroom"
OFFICE_ROOM = "25002@chatroom"
THURSDAY = datetime(2026, 11, 26, tzinfo=ZoneInfo("Asia/Shanghai"))


def offset_to(local_time: datetime) -> str:
    return str((local_time - datetime.now(UTC)).total_seconds())


@pytest.fixture(scope="module")
def gateway():
    gw = Gateway.start()
    for contact_id, name in PEOPLE:
        gw.contact(contact_id, name)
    gw.room(LIAISON_ROOM, "全区反诈联络员群", [c for c, _ in PEOPLE])
    gw.room(OFFICE_ROOM, "反诈办工作群", [ADMIN[0]])
    yield gw
    gw.stop()


@pytest.fixture
def bot(gateway, tmp_path, db_url):
    imported = relaybot(
        "roster", "import", str(ROOT / "content" / "examples" / "roster_example.csv"), db_url=db_url, cwd=tmp_path
    )
    assert imported.returncode == 0, imported.stderr
    env = gateway_env(
        gateway, db_url, tmp_path, admin=ADMIN[0], liaison_groups="全区反诈联络员群", office_group=OFFICE_ROOM
    )
    env.update({"RELAYBOT_SCHEDULE_CHECK_SECONDS": "0.3", "RELAYBOT_OUTAGE_NOTICE_MINUTES": "0"})
    proc = BotProcess(env, tmp_path)
    proc.db_url = db_url
    yield proc
    proc.stop()
    proc.close()


def pushes_in(items) -> list[str]:
    return [t for t in texts_to(items, LIAISON_ROOM) if t.startswith("【反诈预警 #")]


def test_a_scheduled_push_survives_a_restart_and_reaches_the_group_once(gateway, bot):
    bot.env["RELAYBOT_CLOCK_OFFSET_SECONDS"] = offset_to(THURSDAY.replace(hour=8, minute=50))
    bot.start()
    mark = len(gateway.sent())
    gateway.say(ADMIN[0], "推送 刷单 今天9:00", room=OFFICE_ROOM)
    sent = gateway.wait_sent(
        lambda items: any("已定时" in t for t in texts_to(items, OFFICE_ROOM)), since=mark, timeout=60
    )
    answer = next(t for t in texts_to(sent, OFFICE_ROOM) if "已定时" in t)
    assert answer.startswith("已定时：11月26日(周四) 09:00 推送「") and answer.endswith("取消请发：取消定时 1")
    time.sleep(1.0)  # a few schedule checks: nothing is due before 9:00
    assert pushes_in(gateway.sent(mark)) == []
    bot.stop()

    # Down over 9:00; back at 9:07 by its clock: pushed once, late, and the office is told so.
    bot.env["RELAYBOT_CLOCK_OFFSET_SECONDS"] = offset_to(THURSDAY.replace(hour=9, minute=7))
    mark = len(gateway.sent())
    bot.start()
    sent = gateway.wait_sent(
        lambda items: len(pushes_in(items)) == 1 and any(t.startswith("定时1") for t in texts_to(items, OFFICE_ROOM)),
        since=mark,
        timeout=60,
    )
    assert pushes_in(sent)[0].startswith("【反诈预警 #1】")
    told = next(t for t in texts_to(sent, OFFICE_ROOM) if t.startswith("定时1"))
    assert told.startswith("定时1（原定 11月26日(周四) 09:00）已推送：已推送 #1「")
    assert told.splitlines()[1].startswith("机器人停止运行过，晚了 7 分钟")
    time.sleep(1.0)  # more schedule checks: none pushes it again
    bot.stop()

    bot.env["RELAYBOT_CLOCK_OFFSET_SECONDS"] = offset_to(THURSDAY.replace(hour=9, minute=20))
    bot.start()
    time.sleep(2.0)  # a few schedule checks after a restart
    assert len(pushes_in(gateway.sent(mark))) == 1
    engine = make_engine(bot.db_url)
    try:
        with session(engine) as s:
            assert [p.id for p in s.exec(select(Push))] == [1]
            row = s.exec(select(ScheduledPush)).one()
            assert (row.state, row.push_id) == ("sent", 1)
    finally:
        engine.dispose()
