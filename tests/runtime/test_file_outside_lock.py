"""An admin's workbook is read before its unit of work, outside the unit-of-work lock (issue 12 item 5).

Reading 20 000 rows takes seconds (and a crafted file took 24 s): while it is read, other messages are answered.
The tests hold the read at a gate and wait for events, never for time.
"""

from __future__ import annotations

import asyncio
import threading

from sqlmodel import select

from bot.storage.db import session
from bot.storage.models import IncidentStat
from bot.transport.base import FileData
from handlers import office_records
from tests.adapters.test_xlsx_bomb import shared_strings_bomb, workbook
from tests.conftest import ADMIN, OFFICE_ROOM

WAIT = 120.0  # generous: the machine may be busy; nothing here measures speed


def _rows(count: int) -> list[list[object]]:
    towns = ["城关镇", "西湖镇", "东城街道", "海湖镇"]
    return [["镇街", "周期", "案件类型", "警情数"]] + [
        [towns[i % 4], "2026-W47", f"类型{i}", i % 7] for i in range(count)
    ]


async def test_another_message_is_answered_while_a_big_workbook_is_read(bot, transport, engine, monkeypatch):
    started, release = threading.Event(), threading.Event()
    read = office_records.read_incident_file

    def gated(file, *, today):
        started.set()
        assert release.wait(WAIT), "the read was never released"
        return read(file, today=today)

    monkeypatch.setattr(office_records, "read_incident_file", gated)
    big = workbook(_rows(5_000))  # a legal file of 5 000 rows
    sending = asyncio.create_task(transport.send_file(ADMIN, FileData("第47周警情.xlsx", big)))
    assert await asyncio.to_thread(started.wait, WAIT)
    # The workbook is being read. With the read inside the unit of work this would wait for the lock: not answered.
    await asyncio.wait_for(transport.say(ADMIN, "进度", room_id=OFFICE_ROOM), WAIT)
    await bot.send_pending()
    assert [o.text for o in transport.sent if o.chat_id == OFFICE_ROOM]  # 进度 answered
    assert not sending.done()
    with session(engine) as s:
        assert s.exec(select(IncidentStat)).first() is None
    release.set()
    await asyncio.wait_for(sending, WAIT)
    await bot.send_pending()
    reply = next(o.text for o in transport.sent if o.chat_id == ADMIN.contact_id)
    assert reply.startswith("警情数据导入成功（5000 行）"), reply
    with session(engine) as s:
        assert len(s.exec(select(IncidentStat)).all()) > 0


async def test_a_workbook_bomb_sent_in_chat_is_refused_in_chinese_and_changes_nothing(bot, transport, engine):
    await transport.send_file(ADMIN, FileData("第47周警情.xlsx", shared_strings_bomb()), room_id=OFFICE_ROOM)
    await bot.send_pending()
    reply = [o.text for o in transport.sent if o.chat_id == OFFICE_ROOM]
    assert reply == [
        "警情数据导入失败，什么都没有改：“第47周警情.xlsx”解压后过大或结构异常，没有读取。"
        "请在 Excel 中打开后“另存为”普通 .xlsx 再发送。"
    ]
    with session(engine) as s:
        assert s.exec(select(IncidentStat)).all() == []


async def test_a_reader_that_fails_unexpectedly_still_gets_the_admin_an_answer(bot, transport, monkeypatch, caplog):
    from bot.domain import incidents

    def broken(*args, **kwargs):
        raise RuntimeError("a bug in the reader")

    monkeypatch.setattr(incidents, "read_stats_bytes", broken)
    await transport.send_file(ADMIN, FileData("警情.xlsx", workbook()), room_id=OFFICE_ROOM)
    await bot.send_pending()
    assert [o.text for o in transport.sent if o.chat_id == OFFICE_ROOM] == [
        "警情数据导入失败，什么都没有改：无法打开这个 Excel 文件，它可能已损坏或不是 .xlsx 格式。"
    ]
    assert any(r.exc_info and "reading the incident file" in r.getMessage() for r in caplog.records)
