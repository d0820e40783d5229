"""The relay loop through the in-memory transport: push, confirmations, progress, reminders, refusals."""

from __future__ import annotations

from sqlmodel import select

from bot.db import session
from bot.models import AuditLog, Confirmation, Liaison, Push, Unit
from bot.transport.base import ChatKind
from tests.conftest import ADMIN, LI, LIAISON_ROOM, OFFICE_ROOM, STRANGER, SUN, WANG, WU, ZHENG, ZHOU


def texts_in(transport, chat_id):
    return [o.text for o in transport.sent if o.chat_id == chat_id and o.text]


async def push_shuadan(bot, transport):
    await transport.say(ADMIN, "推送 刷单", room_id=OFFICE_ROOM)
    await bot.send_pending()


async def test_push_reaches_liaison_group_with_number_deadline_and_instructions(bot, transport):
    await push_shuadan(bot, transport)
    group_texts = texts_in(transport, LIAISON_ROOM)
    assert len(group_texts) == 1
    assert group_texts[0].startswith("【反诈预警 #1】")
    assert "96110" in group_texts[0]
    assert "11月26日(周四) 18:00" in group_texts[0]
    assert "已转发 #1" in group_texts[0]
    office = texts_in(transport, OFFICE_ROOM)
    assert office and "已推送 #1" in office[0] and "6 个单位" in office[0]


async def test_confirmations_in_several_styles_then_progress_names_exactly_the_missing(bot, transport, clock, engine):
    await push_shuadan(bot, transport)
    clock.advance(minutes=5)
    await transport.say(WANG, "城关镇 已转发 #1 👍", room_id=LIAISON_ROOM)
    await transport.say(LI, "「反诈助手：【反诈预警 #1】警惕刷单返利」\n- - - - - - - - - - - - - - -\n已转", room_id=LIAISON_ROOM)
    from bot.transport.base import Image
    await transport.send_image(SUN, Image("shot.jpg", b"\xff\xd8fake"), room_id=LIAISON_ROOM)
    await transport.say(ZHOU, "请问怎么转发？", room_id=LIAISON_ROOM)  # a question, not a confirmation
    with session(engine) as s:
        confs = {s.get(Unit, c.unit_id).name: c.method for c in s.exec(select(Confirmation))}
    assert confs == {"城关镇": "text", "东城街道": "quote", "区教育局": "image"}
    await transport.say(ADMIN, "进度", room_id=OFFICE_ROOM)
    await bot.send_pending()
    reply = texts_in(transport, OFFICE_ROOM)[-1]
    assert "已确认 3/6" in reply
    missing_line = reply.splitlines()[-1]
    assert missing_line == "未确认（3）：西湖镇、区卫健局、金融行业"
