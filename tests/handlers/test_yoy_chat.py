"""同比 and the 6月30日 checkpoint through the chat: last year's spreadsheet is stored without an old 通报, then the
June 通报 names the towns that owe a 书面说明."""

from __future__ import annotations

from sqlmodel import select

from bot.storage.db import session
from bot.storage.models import AuditLog, IncidentStat
from bot.transport.base import FileData
from tests.conftest import ADMIN, OFFICE_ROOM

HEADER = "镇街,周期,案件类型,警情数\n"
THIS_YEAR = HEADER + "城关镇,2026-05,,9\n东城街道,2026-05,,2\n城关镇,2026-06,,8\n东城街道,2026-06,,3\n"
LAST_YEAR = HEADER + "城关镇,2025-06,,10\n东城街道,2025-06,,4\n城关镇,2025-05,,7\n"


def office_texts(transport):
    return [o.text for o in transport.sent if o.chat_id == OFFICE_ROOM and o.text]


async def test_last_years_file_then_the_june_report_lists_who_must_explain(bot, transport, engine):
    await transport.send_file(ADMIN, FileData("今年警情.csv", THIS_YEAR.encode("utf-8")))
    await bot.send_pending()
    june = office_texts(transport)[0]
    assert june.startswith("📈 电诈警情通报 2026年6月")
    assert "📌 6月30日节点（目标：发案数环比、同比下降）：没有去年的警情数据，无法判断" in june
    transport.sent.clear()

    await transport.send_file(ADMIN, FileData("去年警情.csv", LAST_YEAR.encode("utf-8")))
    await bot.send_pending()
    reply = next(o.text for o in transport.sent if o.chat_id == ADMIN.contact_id)
    assert reply.startswith("警情数据导入成功（3 行）：新增 3 条")
    assert "这些是往期数据（比已有的最新一期早），已保存用于同比，不另发通报。" in reply
    assert office_texts(transport) == []  # no 通报 of May 2025 in the office group
    with session(engine) as s:
        assert len(s.exec(select(IncidentStat)).all()) == 7
        assert [a.action for a in s.exec(select(AuditLog))].count("stats_import") == 2
    transport.sent.clear()

    await transport.say(ADMIN, "警情 2026-06", room_id=OFFICE_ROOM)
    await bot.send_pending()
    text = office_texts(transport)[0]
    assert "同比：去年同期 14 起（-21.4%）" in text
    assert "1. 城关镇 8 起（环比 -1，同比 -20%）" in text
    assert "2. 东城街道 3 起（环比 +1，同比 -25%）" in text
    assert "📌 6月30日节点（目标：发案数环比、同比下降）未达到，需书面说明：东城街道" in text
