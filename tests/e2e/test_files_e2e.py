"""End to end: a workbook bomb an admin sends in the office group, through the real Wechaty gateway (issue 12 item 5).

The bot as a process reads it as the file attachment the gateway serves: it is refused in Chinese, nothing is
imported, the bot answers the next message, and a normal workbook sent afterwards imports.
"""

from __future__ import annotations

import pytest
from sqlmodel import select

from bot.storage.db import make_engine, session
from bot.storage.models import IncidentStat
from tests.adapters.test_xlsx_bomb import shared_strings_bomb, workbook
from tests.bot_process import BotProcess, gateway_env
from tests.gateway_harness import Gateway, has_text

pytestmark = pytest.mark.e2e

ADMIN = ("wxid_admin_chen", "陈静")
OFFICE_ROOM = "20102@chatroom"
WAIT = 120.0  # generous: CI may share the machine; each wait ends when the message is seen


@pytest.fixture(scope="module")
def gateway():
    gw = Gateway.start()
    gw.contact(*ADMIN)
    gw.room(OFFICE_ROOM, "反诈办工作群", [ADMIN[0]])
    yield gw
    gw.stop()


@pytest.fixture
def bot(gateway, tmp_path, db_url):
    env = gateway_env(
        gateway, db_url, tmp_path, admin=ADMIN[0], liaison_groups="全区反诈联络员群", office_group=OFFICE_ROOM
    )
    proc = BotProcess(env, tmp_path)
    yield proc
    proc.stop()
    proc.close()


def stats(db_url: str) -> int:
    engine = make_engine(db_url)
    with session(engine) as s:
        count = len(s.exec(select(IncidentStat)).all())
    engine.dispose()
    return count


def test_a_workbook_bomb_in_chat_is_refused_and_the_bot_goes_on(gateway, bot, db_url):
    bot.start(timeout=WAIT)
    mark = len(gateway.sent())
    gateway.file(ADMIN[0], "第47周警情.xlsx", shared_strings_bomb(), room=OFFICE_ROOM)
    gateway.say(ADMIN[0], "帮助", room=OFFICE_ROOM)
    sent = gateway.wait_sent(has_text(OFFICE_ROOM, "解压后过大或结构异常"), since=mark, timeout=WAIT)
    gateway.wait_sent(has_text(OFFICE_ROOM, "反诈办指令"), since=mark, timeout=WAIT)  # 帮助 answered too
    refusal = next(i["text"] for i in sent if "解压后过大" in i.get("text", ""))
    assert refusal.startswith("警情数据导入失败，什么都没有改：“第47周警情.xlsx”解压后过大或结构异常")
    assert stats(db_url) == 0
    rows = [
        ["镇街", "周期", "案件类型", "警情数"],
        ["城关镇", "2026-W47", "刷单返利", 5],
        ["西湖镇", "2026-W47", "冒充公检法", 2],
    ]
    gateway.file(ADMIN[0], "第47周警情.xlsx", workbook(rows), room=OFFICE_ROOM)
    gateway.wait_sent(has_text(OFFICE_ROOM, "警情数据导入成功（2 行）"), since=mark, timeout=WAIT)
    assert stats(db_url) == 2
