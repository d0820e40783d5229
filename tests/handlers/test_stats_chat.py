"""Incident figures through the chat and the command line: an admin's spreadsheet, 警情, relaybot stats import."""

from __future__ import annotations

from sqlmodel import select

from bot.storage.db import session
from bot.storage.models import IncidentStat, Outbox
from bot.transport.base import FileData
from tests.bot_process import relaybot
from tests.conftest import ADMIN, LI, OFFICE_ROOM

CSV = """镇街,周期,案件类型,警情数
城关镇,2026-W47,刷单返利,5
城关镇,2026-W47,冒充公检法,2
东城街道,2026-W47,刷单返利,3
西湖镇,2026-W47,虚假投资理财,1
"""


async def test_an_admin_sends_the_figures_and_the_office_gets_the_report(bot, transport, engine):
    await transport.send_file(ADMIN, FileData("第47周警情.csv", CSV.encode("utf-8")))
    await bot.send_pending()
    reply = next(o.text for o in transport.sent if o.chat_id == ADMIN.contact_id)
    assert reply.startswith("警情数据导入成功（4 行）")
    office = [o for o in transport.sent if o.chat_id == OFFICE_ROOM]
    text = office[0].text
    assert text.startswith("📈 电诈警情通报")
    assert "城关镇" in text and "推送 刷单返利" in text
    assert office[1].file is not None and office[1].file.name.endswith(".xlsx")
    assert office[2].image is not None and office[2].image.name.endswith(".png")
    with session(engine) as s:
        assert sum(r.count for r in s.exec(select(IncidentStat))) == 11


async def test_a_broken_file_is_refused_and_changes_nothing(bot, transport, engine):
    bad = CSV.replace("东城街道,2026-W47,刷单返利,3", "东城街道,2026-W47,刷单返利,三")
    await transport.send_file(ADMIN, FileData("警情.csv", bad.encode("utf-8")))
    await bot.send_pending()
    assert transport.sent[-1].text.startswith("警情数据导入失败，什么都没有改：第 4 行“警情数”为“三”")
    with session(engine) as s:
        assert s.exec(select(IncidentStat)).all() == []


async def test_files_from_others_are_not_imported(bot, transport, engine):
    await transport.send_file(LI, FileData("警情.csv", CSV.encode("utf-8")))
    with session(engine) as s:
        assert s.exec(select(IncidentStat)).all() == []


async def test_jingqing_command_shows_the_latest_period(bot, transport):
    await transport.say(ADMIN, "警情", room_id=OFFICE_ROOM)
    await bot.send_pending()
    assert "还没有警情数据" in transport.sent[-1].text
    await transport.send_file(ADMIN, FileData("警情.csv", CSV.encode("utf-8")))
    await bot.send_pending()
    transport.sent.clear()
    await transport.say(ADMIN, "警情", room_id=OFFICE_ROOM)
    await bot.send_pending()
    assert transport.sent[0].text.startswith("📈 电诈警情通报")


def test_cli_stats_import_queues_the_report_for_the_running_bot(bot, engine, tmp_path):
    path = tmp_path / "警情.csv"
    path.write_text(CSV, encoding="utf-8")
    result = relaybot("stats", "import", str(path), db_url=str(engine.url), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "警情数据导入成功（4 行）" in result.stdout and "📈 电诈警情通报" in result.stdout
    with session(engine) as s:
        queued = s.exec(select(Outbox).where(Outbox.chat_id == OFFICE_ROOM, Outbox.state == "pending")).all()
    assert [bool(r.file_name) for r in queued] == [False, True, True]
