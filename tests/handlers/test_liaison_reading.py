"""Liaison groups through the in-memory transport: several open pushes, questions and answers, hints, 接龙
started by the office, recalls, face codes under a quote, and what the coalesced message says."""

from __future__ import annotations

from sqlmodel import select

from bot.storage.db import session
from bot.storage.models import Confirmation, Unit
from bot.transport.base import MessageKind
from tests.conftest import ADMIN, LI, LIAISON_ROOM, OFFICE_ROOM, WANG, ZHAO


def confirmed(engine):
    with session(engine) as s:
        return sorted((c.push_id, s.get(Unit, c.unit_id).name, c.method) for c in s.exec(select(Confirmation)))


def group_texts(transport):
    return [o for o in transport.sent if o.chat_id == LIAISON_ROOM and o.text]


async def push(bot, transport, what="刷单"):
    await transport.say(ADMIN, f"推送 {what}", room_id=OFFICE_ROOM)
    await bot.send_pending()


async def coalesced(bot, transport, clock):
    """What the next coalesced message to the liaison group says (after a quiet spell)."""
    transport.sent.clear()
    clock.advance(minutes=1)
    await bot.flush_acks()
    await bot.send_pending()
    return group_texts(transport)


async def two_pushes_an_hour_apart(bot, transport, clock):
    await push(bot, transport)
    clock.advance(hours=1)
    await push(bot, transport, "冒充公检法")


async def test_numbers_and_both_confirm_each_push(bot, transport, clock, engine):
    await two_pushes_an_hour_apart(bot, transport, clock)
    await transport.say(WANG, "已转发 #1 #2", room_id=LIAISON_ROOM)
    await transport.say(LI, "两条都已转发", room_id=LIAISON_ROOM)
    assert confirmed(engine) == [
        (1, "东城街道", "text"),
        (1, "城关镇", "text"),
        (2, "东城街道", "text"),
        (2, "城关镇", "text"),
    ]


async def test_a_bare_confirmation_with_two_pushes_apart_is_asked_about_and_a_number_answers(
    bot, transport, clock, engine
):
    await two_pushes_an_hour_apart(bot, transport, clock)
    await transport.say(WANG, "已转发", room_id=LIAISON_ROOM)
    await transport.say(ZHAO, "已转发", room_id=LIAISON_ROOM)  # the same unit's backup: not asked again
    assert confirmed(engine) == []  # not silently put on the newest
    sent = await coalesced(bot, transport, clock)
    assert len(sent) == 1 and "城关镇还有 #1、#2 未确认，是哪一条？" in sent[0].text
    assert sent[0].mention_ids == (WANG.contact_id,)
    await transport.say(WANG, "#2", room_id=LIAISON_ROOM)
    assert confirmed(engine) == [(2, "城关镇", "answer")]


async def test_which_is_answered_with_all(bot, transport, clock, engine):
    await two_pushes_an_hour_apart(bot, transport, clock)
    await transport.say(WANG, "转发了", room_id=LIAISON_ROOM)
    await coalesced(bot, transport, clock)
    await transport.say(WANG, "都已转发", room_id=LIAISON_ROOM)
    assert confirmed(engine) == [(1, "城关镇", "answer"), (2, "城关镇", "answer")]


async def test_pushes_sent_together_are_all_confirmed_by_one_reply(bot, transport, clock, engine):
    await push(bot, transport)
    clock.advance(minutes=2)
    await push(bot, transport, "冒充公检法")
    await transport.say(WANG, "已转发", room_id=LIAISON_ROOM)
    assert confirmed(engine) == [(1, "城关镇", "text"), (2, "城关镇", "text")]


async def test_a_backup_liaisons_later_reply_on_an_older_push_is_said(bot, transport, clock, engine):
    await two_pushes_an_hour_apart(bot, transport, clock)
    await transport.say(WANG, "已转发 #2", room_id=LIAISON_ROOM)
    await coalesced(bot, transport, clock)
    await transport.say(ZHAO, "已转发", room_id=LIAISON_ROOM)  # 城关镇's backup: only #1 is left
    assert confirmed(engine) == [(1, "城关镇", "text"), (2, "城关镇", "text")]
    sent = await coalesced(bot, transport, clock)
    assert len(sent) == 1
    assert sent[0].text.splitlines() == [
        "✅ 已记录 #1：城关镇（本次 1 个单位）。目前已确认 1/6。",
        "（城关镇的这条确认记在 #1；#2 此前已确认）",
    ]


async def test_an_unsure_reply_is_asked_once_and_only_that_persons_yes_counts(bot, transport, clock, engine):
    await push(bot, transport)
    await transport.say(WANG, "只转了职工群", room_id=LIAISON_ROOM)
    await transport.say(WANG, "好像转了吧", room_id=LIAISON_ROOM)
    sent = await coalesced(bot, transport, clock)
    assert [o.text for o in sent] == ["城关镇：是否已转发 #1？回复“是”即确认"]
    await transport.say(LI, "是", room_id=LIAISON_ROOM)  # nobody asked 李强
    await transport.say(WANG, "收到", room_id=LIAISON_ROOM)  # not an answer
    assert confirmed(engine) == []
    await transport.say(WANG, "是的", room_id=LIAISON_ROOM)
    assert confirmed(engine) == [(1, "城关镇", "answer")]
    await transport.say(WANG, "转了一部分", room_id=LIAISON_ROOM)
    assert not any("是否已转发" in o.text for o in await coalesced(bot, transport, clock))  # never asked twice


async def test_a_reply_about_a_push_that_does_not_confirm_gets_one_hint(bot, transport, clock, engine):
    await push(bot, transport)
    quote = "「反诈助手：【反诈预警 #1】警惕刷单返利」\n- - - - - - - - - - - - - - -\n收到"
    await transport.say(WANG, quote, room_id=LIAISON_ROOM)
    await transport.say(WANG, "#1 收到", room_id=LIAISON_ROOM)
    sent = await coalesced(bot, transport, clock)
    assert [o.text for o in sent] == ["城关镇：如已转发 #1，请回复“已转发 #1”或发转发截图"]
    assert confirmed(engine) == []


async def test_a_face_code_alone_under_a_quoted_push_counts(bot, transport, clock, engine):
    await push(bot, transport)
    await transport.say(
        WANG, "「反诈助手：【反诈预警 #1】警惕刷单返利」\n- - - - - - - - - - - - - - -\n[Strong]", room_id=LIAISON_ROOM
    )
    await transport.say(
        LI, "「反诈助手：【反诈预警 #1】警惕刷单返利」\n- - - - - - - - - - - - - - -\n[流泪]", room_id=LIAISON_ROOM
    )
    assert confirmed(engine) == [(1, "城关镇", "quote")]


async def test_a_group_note_the_office_starts_for_an_older_push_confirms_that_push(bot, transport, clock, engine):
    await two_pushes_an_hour_apart(bot, transport, clock)
    start = "#接龙 #1 转发情况\n\n1. 反诈办 陈静 请各单位接龙"
    await transport.say(ADMIN, start, room_id=LIAISON_ROOM)
    await transport.say(WANG, start + "\n2. 城关镇 王芳 已转发", room_id=LIAISON_ROOM)
    await transport.say(LI, start + "\n2. 城关镇 王芳 已转发\n3. 东城街道 已转发", room_id=LIAISON_ROOM)
    assert confirmed(engine) == [(1, "东城街道", "note"), (1, "城关镇", "note")]


async def test_a_recall_by_someone_else_changes_nothing(bot, transport, clock, engine):
    await push(bot, transport)
    said = await transport.say(WANG, "已转发", room_id=LIAISON_ROOM)
    recall = f'<sysmsg type="revokemsg"><revokemsg><newmsgid>{said.message_id}</newmsgid></revokemsg></sysmsg>'
    await transport.say(LI, recall, room_id=LIAISON_ROOM, kind=MessageKind.RECALL)
    assert confirmed(engine) == [(1, "城关镇", "text")]
    await transport.say(WANG, recall, room_id=LIAISON_ROOM, kind=MessageKind.RECALL)
    assert confirmed(engine) == []
    sent = await coalesced(bot, transport, clock)
    assert [o.text for o in sent] == ["↩️ 城关镇撤回了 #1 的确认，请重新确认"]


async def test_a_liaison_typing_the_rate_limit_words_pauses_nothing(bot, transport, engine):
    from bot.storage.models import BotState
    from bot.storage.outbox import BACKOFF_KEY

    await transport.say(WANG, "发送消息过于频繁，可稍后再试。", room_id=LIAISON_ROOM)
    with session(engine) as s:
        assert s.get(BotState, BACKOFF_KEY) is None
    await transport.say(WANG, "发送消息过于频繁，可稍后再试。", room_id=LIAISON_ROOM, kind=MessageKind.SYSTEM)
    with session(engine) as s:
        assert s.get(BotState, BACKOFF_KEY) is not None


async def test_a_reply_naming_a_push_by_its_case_type_confirms_that_push(bot, transport, clock, engine):
    await two_pushes_an_hour_apart(bot, transport, clock)  # #1 刷单返利, #2 冒充公检法
    await transport.say(WANG, "刷单返利那条已转", room_id=LIAISON_ROOM)
    await transport.say(LI, "公检法那条转了", room_id=LIAISON_ROOM)
    assert confirmed(engine) == [(1, "城关镇", "text"), (2, "东城街道", "text")]


async def test_trickling_confirmations_get_at_most_one_summary_per_interval(bot, transport, clock, engine):
    from tests.conftest import SUN, ZHENG, ZHOU

    bot.settings.ack_min_interval_seconds = 300
    await push(bot, transport)
    transport.sent.clear()
    replies = {0: WANG, 3: LI, 6: ZHOU, 9: SUN}  # one every 90 s, each followed by a 30 s quiet spell
    for step in range(10):  # 30 s steps, to 5 min
        if step in replies:
            await transport.say(replies[step], "已转发", room_id=LIAISON_ROOM)
        clock.advance(seconds=30)
        await bot.flush_acks()
    await bot.send_pending()
    assert [o.text for o in group_texts(transport)] == ["✅ 已记录 #1：城关镇（本次 1 个单位）。目前已确认 1/6。"]
    await transport.say(ZHENG, "已转发", room_id=LIAISON_ROOM)
    clock.advance(seconds=30)  # 5 min 30 s: five minutes after the first summary
    await bot.flush_acks()
    await bot.send_pending()
    assert [o.text for o in group_texts(transport)][1:] == [
        "✅ 已记录 #1：东城街道、西湖镇、区教育局、金融行业（本次 4 个单位）。目前已确认 5/6。"
    ]
