"""The roster sent in chat (issue 13 item 7): told from the incident figures by its header, imported with the same
report as the command line, short; deactivating units waits for 确认导入 from the admin who sent it (kept as a row
across a restart, for 30 minutes)."""

from __future__ import annotations

import io

import pytest
from openpyxl import Workbook
from sqlmodel import select

from bot.config import Settings
from bot.runtime.app import build_bot
from bot.storage.db import session
from bot.storage.models import IncidentStat, Liaison, Unit
from bot.transport.base import FileData, Member
from tests.conftest import ADMIN, EXAMPLE_ROSTER, LI, OFFICE_ROOM

ADMIN2 = Member("admin-liu", "刘洋", "反诈办-刘洋")


@pytest.fixture
def settings(settings) -> Settings:
    return settings.model_copy(update={"admin_ids": [ADMIN.contact_id, ADMIN2.contact_id]})


def xlsx(rows: list[list[object]], title: str = "XX区反诈联络员名单") -> bytes:
    wb = Workbook()
    ws = wb.active
    ws.append([title])
    ws.merge_cells("A1:G1")
    for row in rows:
        ws.append(row)
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def example_rows(*without: str) -> list[list[str]]:
    lines = EXAMPLE_ROSTER.read_text(encoding="utf-8").splitlines()
    header = ["单位名称", "类别", "姓名", "微信号", "微信昵称", "联系电话", "角色"]
    return [header] + [line.split(",") for line in lines[1:] if line.split(",")[0] not in without]


def units(engine) -> dict[str, bool]:
    with session(engine) as s:
        return {u.name: u.active for u in s.exec(select(Unit))}


async def reply_to(transport, bot, chat_id: str) -> str:
    await bot.send_pending()
    texts = [o.text for o in transport.sent if o.chat_id == chat_id and o.text]
    transport.sent.clear()
    assert texts, "no reply"
    return texts[-1]


async def test_a_gbk_roster_sent_privately_is_imported_not_taken_for_incident_figures(bot, transport, engine):
    text = (
        "XX区反诈联络员名单,,,,,,\n" + "\n".join(",".join(r) for r in example_rows()) + "\n南山镇,镇街,冯云,,冯云,,主\n"
    )
    await transport.send_file(ADMIN, FileData("名单.csv", text.encode("gbk")))
    reply = await reply_to(transport, bot, ADMIN.contact_id)
    assert reply.startswith("联络员名单“名单.csv”：\nCSV 按 GBK 编码读取")
    assert "第 2 行为表头，上面的 1 行（标题）已跳过" in reply
    assert "导入成功：8 行。\n  新增单位 1：南山镇\n  新增联络员 1：南山镇-冯云\n  未变 7 人" in reply
    assert units(engine)["南山镇"] is True
    with session(engine) as s:
        assert s.exec(select(IncidentStat)).first() is None


async def test_deactivating_units_waits_for_the_senders_confirmation_across_a_restart(
    bot, transport, engine, settings, clock
):
    before = units(engine)
    await transport.send_file(ADMIN, FileData("新名单.xlsx", xlsx(example_rows("金融行业"))), room_id=OFFICE_ROOM)
    reply = await reply_to(transport, bot, OFFICE_ROOM)
    assert "没有导入：这次导入会停用 1 个单位（新名单里没有它们）：金融行业。" in reply
    assert "回复「确认导入」即导入并停用上面这些单位（30 分钟内有效" in reply
    assert units(engine) == before

    await transport.say(ADMIN2, "确认导入", room_id=OFFICE_ROOM)
    assert await reply_to(transport, bot, OFFICE_ROOM) == "这份名单是陈静发的，只有陈静可以回复「确认导入」。"
    await transport.say(LI, "确认导入", room_id=OFFICE_ROOM)  # not an admin: not taken as a confirmation
    assert units(engine) == before

    await bot.stop()  # a restart keeps the waiting import
    clock.advance(minutes=20)
    again = build_bot(settings, transport, engine=engine, clock=clock, send_loop=False)
    await again.start()
    await again.send_pending()
    transport.sent.clear()
    try:
        await transport.say(ADMIN, "@反诈助手 确认导入", room_id=OFFICE_ROOM)
        reply = await reply_to(transport, again, OFFICE_ROOM)
        assert reply.startswith("联络员名单“新名单.xlsx”：\n读取工作表“Sheet”")
        assert "导入成功：6 行。" in reply and "停用单位（不在新名单中） 1：金融行业" in reply
        assert units(engine) == {**before, "金融行业": False}
        await transport.say(ADMIN, "确认导入", room_id=OFFICE_ROOM)
        assert await reply_to(transport, again, OFFICE_ROOM) == "没有等待确认的名单导入。请重新发送名单文件。"
    finally:
        await again.stop()


async def test_a_confirmation_after_30_minutes_imports_nothing(bot, transport, engine, clock):
    before = units(engine)
    await transport.send_file(ADMIN, FileData("新名单.xlsx", xlsx(example_rows("金融行业", "区卫健局"))))
    assert "停用 2 个单位" in await reply_to(transport, bot, ADMIN.contact_id)
    clock.advance(minutes=31)
    await transport.say(ADMIN, "确认导入")
    assert await reply_to(transport, bot, ADMIN.contact_id) == (
        "“新名单.xlsx”的确认已超过 30 分钟，没有导入。请重新发送名单文件。"
    )
    assert units(engine) == before


async def test_a_newer_file_replaces_the_one_waiting(bot, transport, engine):
    await transport.send_file(ADMIN, FileData("甲.xlsx", xlsx(example_rows("金融行业", "区卫健局"))))
    await reply_to(transport, bot, ADMIN.contact_id)
    await transport.send_file(ADMIN, FileData("乙.xlsx", xlsx(example_rows("金融行业"))))
    await reply_to(transport, bot, ADMIN.contact_id)
    await transport.say(ADMIN, "确认导入")
    assert "停用单位（不在新名单中） 1：金融行业" in await reply_to(transport, bot, ADMIN.contact_id)
    assert units(engine)["区卫健局"] is True


async def test_mistakes_are_listed_a_few_at_a_time_and_nothing_changes(bot, transport, engine):
    rows = example_rows() + [["南山镇", "乡村", f"人{i}", "", f"人{i}", "", ""] for i in range(12)]
    before = units(engine)
    await transport.send_file(ADMIN, FileData("名单.xlsx", xlsx(rows)))
    reply = await reply_to(transport, bot, ADMIN.contact_id)
    assert "导入失败，名单没有改动。发现 12 处问题：\n1. 第 10 行“类别”为“乡村”" in reply
    assert "5. 第 14 行" in reply and "6. " not in reply and "另有 7 处问题没有列出。" in reply
    assert units(engine) == before


async def test_a_big_first_roster_gets_a_short_answer(bot, transport, engine):
    rows = [example_rows()[0]] + [[f"单位{i // 2}", "镇街", f"联络员{i}", "", f"昵称{i}", "", ""] for i in range(300)]
    await transport.send_file(ADMIN, FileData("全区名单.xlsx", xlsx(rows)))
    reply = await reply_to(transport, bot, ADMIN.contact_id)
    assert "新增联络员 300：单位0-联络员0、单位0-联络员1、单位1-联络员2、单位1-联络员3、单位2-联络员4等 300 个" in reply
    assert "回复「确认导入」" in reply  # the example's 6 units are not in it
    assert len(reply) < 1000 and reply.count("\n") < 20
    with session(engine) as s:
        assert len(s.exec(select(Liaison)).all()) == 7  # waiting, not applied


async def test_confirm_with_nothing_waiting(bot, transport):
    await transport.say(ADMIN, "确认导入", room_id=OFFICE_ROOM)
    assert await reply_to(transport, bot, OFFICE_ROOM) == "没有等待确认的名单导入。请重新发送名单文件。"
