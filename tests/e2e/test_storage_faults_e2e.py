"""A full disk through the real Wechaty gateway (issue 12 item 8): the bot as a process on a real SQLite file made
full by bot.storage.db's diagnostic knob (RELAYBOT_DIAG_FULL_FILE: a real SQLITE_FULL from the real engine), and a
real webhook server as the second channel."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime

import pytest
from sqlmodel import select

from bot.storage.db import session
from bot.storage.models import Confirmation, Unit
from tests.bot_process import BotProcess, gateway_env
from tests.e2e.test_faults_e2e import ADMIN, OFFICE_ROOM, Db, liaison_id, pushed, setup_people, texts_to, unit_name
from tests.gateway_harness import Gateway, wait_until

pytestmark = [pytest.mark.e2e]

ROOM = "50001@chatroom"
ROBOT_PATH = "/cgi-bin/webhook/send"
KEPT = "⚠️ 系统存储已满，消息已暂存，恢复后自动补记"


@pytest.fixture
def gateway():
    gw = Gateway.start()
    yield gw
    gw.stop()


@pytest.fixture
def robot(server):
    server.expect_request(ROBOT_PATH).respond_with_json({"errcode": 0, "errmsg": "ok"})
    return server


@pytest.fixture
def db(db_url):
    if not db_url.startswith("sqlite"):
        pytest.skip("the diagnostic disk-full knob caps an SQLite file")
    handle = Db(db_url)
    yield handle
    handle.engine.dispose()


def robot_texts(server) -> list[str]:
    return [json.loads(req.get_data())["text"]["content"] for req, _ in server.log]


def confirmations(db: Db) -> dict[str, datetime]:
    with session(db.engine) as s:
        units = {u.id: u.name for u in s.exec(select(Unit))}
        return {units[c.unit_id]: c.at for c in s.exec(select(Confirmation).where(Confirmation.push_id == 1))}


def test_confirmations_said_while_the_disk_is_full_are_recorded_when_space_returns(
    gateway, tmp_path, db_url, db, robot, processes
):
    units = 4
    setup_people(gateway, tmp_path, db_url, units)
    gateway.room(ROOM, "全区反诈联络员群", [ADMIN, *(liaison_id(i) for i in range(1, units + 1))])
    full = tmp_path / "disk-is-full"
    env = gateway_env(
        gateway,
        db_url,
        tmp_path,
        admin=ADMIN,
        liaison_groups="全区反诈联络员群",
        office_group=OFFICE_ROOM,
        RELAYBOT_DIAG_FULL_FILE=str(full),
        RELAYBOT_STORAGE_RETRY_SECONDS="1",
        RELAYBOT_NOTIFY_URL=robot.url_for(f"{ROBOT_PATH}?key=K"),
    )
    bot = BotProcess(env, tmp_path)
    processes.append(bot)
    bot.start()
    gateway.say(ADMIN, "推送 刷单", room=OFFICE_ROOM)
    gateway.wait_sent(lambda items: pushed(items, ROOM) == 1, timeout=30)
    mark = len(gateway.sent())

    full.touch()
    said = []
    for i in (1, 2, 3):
        said.append(datetime.now(UTC))
        gateway.say(liaison_id(i), "已转发", room=ROOM)
    wait_until(lambda: bot.log().count("kept in memory"), lambda n: n >= 3, 60, "three messages kept")
    assert confirmations(db) == {}
    assert texts_to(gateway.sent(mark), ROOM) == [KEPT]  # once for the chat, not once per message
    alerts = wait_until(lambda: robot_texts(robot), lambda t: len(t) >= 1, 30, "the second channel's alert")
    assert "数据库写不进去了" in alerts[0]

    freed = datetime.now(UTC)
    full.unlink()
    office = gateway.wait_sent(
        lambda items: any("存储已恢复" in t for t in texts_to(items, OFFICE_ROOM)), since=mark, timeout=60
    )
    assert [t for t in texts_to(office, OFFICE_ROOM) if "存储已恢复" in t] == ["✅ 存储已恢复，补记 3 条"]
    recorded = confirmations(db)
    assert sorted(recorded) == [unit_name(i) for i in (1, 2, 3)]
    for i in (1, 2, 3):  # recorded as said, not when replayed
        at = recorded[unit_name(i)].astimezone(UTC)
        assert at < freed and abs((at - said[i - 1]).total_seconds()) < 60, (at, said[i - 1], freed)
    acked = gateway.wait_sent(
        lambda items: any(t.startswith("✅ 已记录 #1") for t in texts_to(items, ROOM)), since=mark, timeout=60
    )
    assert texts_to(acked, ROOM).count(KEPT) == 1
    robot_all = wait_until(lambda: robot_texts(robot), lambda t: any("存储已恢复" in x for x in t), 30, "recovery")
    assert Counter("数据库写不进去了" in t for t in robot_all)[True] == 1  # one alert per outage
