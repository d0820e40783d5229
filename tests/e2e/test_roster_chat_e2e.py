"""End to end: the roster sent in the office group through the real Wechaty gateway (issue 13 item 7).

The bot as a process reads the attachment the gateway serves, tells it from the incident figures by its header,
imports it with the command line's report, and holds a second file that would deactivate a unit until the admin
who sent it answers 确认导入.
"""

from __future__ import annotations

import io

import pytest
from openpyxl import Workbook
from sqlmodel import select

from bot.storage.db import make_engine, session
from bot.storage.models import IncidentStat, Unit
from tests.bot_process import BotProcess, gateway_env
from tests.gateway_harness import Gateway, has_text

pytestmark = pytest.mark.e2e

ADMIN = ("wxid_admin_chen", "陈静")
OFFICE_ROOM = "20102@chatroom"
WAIT = 120.0  # generous: CI may share the machine; each wait ends when the message is seen

HEADER = ["序号", "单位名称", "类别", "姓名", "微信号", "微信昵称", "联系电话"]
ROWS = [
    [1, "城关镇", "镇街", "王芳", "wxid_wangfang", "王芳-城关镇", 13800000001],
    [2, "东城街道", "镇街", "李强", "wxid_liqiang", "李强", 13800000003],
    [3, "区教育局", "区直单位", "孙丽", "", "孙丽", None],
]


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


def roster_xlsx(rows: list[list[object]]) -> bytes:
    wb = Workbook()
    wb.active.title = "填表说明"
    wb.active.append(["每个单位填写主、备联络员"])
    ws = wb.create_sheet("联络员")
    ws.append(["XX区反诈联络员名单"])
    ws.merge_cells("A1:G1")
    ws.append(HEADER)
    for row in rows:
        ws.append(row)
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def units(db_url: str) -> dict[str, bool]:
    engine = make_engine(db_url)
    with session(engine) as s:
        found = {u.name: u.active for u in s.exec(select(Unit))}
        assert s.exec(select(IncidentStat)).first() is None  # not taken for the incident figures
    engine.dispose()
    return found


def test_a_roster_sent_in_the_office_group_is_imported_and_a_deactivation_waits_for_confirmation(gateway, bot, db_url):
    bot.start(timeout=WAIT)
    mark = len(gateway.sent())
    gateway.file(ADMIN[0], "联络员名单.xlsx", roster_xlsx(ROWS), room=OFFICE_ROOM)
    sent = gateway.wait_sent(has_text(OFFICE_ROOM, "导入成功：3 行。"), since=mark, timeout=WAIT)
    reply = next(i["text"] for i in sent if "导入成功" in i.get("text", ""))
    assert reply.startswith("联络员名单“联络员名单.xlsx”：\n读取工作表“联络员”（第一个工作表“填表说明”里没有名单）")
    assert "新增单位 3：城关镇、东城街道、区教育局" in reply
    assert units(db_url) == {"城关镇": True, "东城街道": True, "区教育局": True}

    mark = len(gateway.sent())
    gateway.file(ADMIN[0], "联络员名单（新）.xlsx", roster_xlsx(ROWS[:2]), room=OFFICE_ROOM)
    gateway.wait_sent(has_text(OFFICE_ROOM, "回复「确认导入」"), since=mark, timeout=WAIT)
    assert units(db_url)["区教育局"] is True

    mark = len(gateway.sent())
    gateway.say(ADMIN[0], "确认导入", room=OFFICE_ROOM)
    gateway.wait_sent(has_text(OFFICE_ROOM, "停用单位（不在新名单中） 1：区教育局"), since=mark, timeout=WAIT)
    assert units(db_url) == {"城关镇": True, "东城街道": True, "区教育局": False}
