"""Reach, observed (issue 15 item 6): unit groups through the in-memory transport and a real database."""

from __future__ import annotations

from sqlmodel import SQLModel, select

from bot.storage.db import session
from bot.storage.models import (
    Alert,
    AuditLog,
    Confirmation,
    Group,
    GroupKind,
    Membership,
    Push,
    ReachSighting,
    Unit,
)
from bot.transport.base import Image, LinkCard, Member
from tests.conftest import ADMIN, LI, LIAISON_ROOM, OFFICE_ROOM, STRANGER, WANG, ZHAO

UNIT_ROOM = "chengguan-staff@chatroom"
PEOPLE = [Member(f"wxid_staff{i}", f"职工{i}") for i in range(7)]


def texts_in(transport, chat_id):
    return [o.text for o in transport.sent if o.chat_id == chat_id and o.text]


def rows(engine) -> dict[str, set[tuple]]:
    """Every row of every table."""
    out = {}
    with engine.connect() as conn:
        for table in SQLModel.metadata.sorted_tables:
            out[table.name] = {tuple(r) for r in conn.execute(table.select())}
    return out


async def bot_brought_in(bot, transport, inviter: Member, room_id: str = UNIT_ROOM, name: str = "城关镇全体职工群"):
    """`inviter` adds the bot to a room holding them and PEOPLE."""
    transport.add_room(room_id, name, [inviter, *PEOPLE])
    await transport.join(room_id, [Member(transport.bot_id, transport.bot_name)], inviter_id=inviter.contact_id)
    await bot.send_pending()


async def pushed(bot, transport) -> str:
    """Push 刷单; returns the push's text as the liaison group got it."""
    await transport.say(ADMIN, "推送 刷单", room_id=OFFICE_ROOM)
    await bot.send_pending()
    return texts_in(transport, LIAISON_ROOM)[-1]


async def test_a_liaison_brings_the_bot_in_and_the_group_becomes_the_units_group(bot, transport, engine):
    await bot_brought_in(bot, transport, WANG)
    with session(engine) as s:
        group = s.exec(select(Group).where(Group.room_id == UNIT_ROOM)).one()
        assert group.kind == GroupKind.UNIT.value
        assert s.get_one(Unit, group.unit_id).name == "城关镇"
        assert s.exec(select(Membership).where(Membership.room_id == UNIT_ROOM)).all() == []
        assert s.exec(select(AuditLog).where(AuditLog.action == "unit_group")).one().actor_id == WANG.contact_id
    said = texts_in(transport, UNIT_ROOM)
    assert len(said) == 1 and "不看、不存" in said[0]
    assert any("城关镇全体职工群" in t and "王芳" in t for t in texts_in(transport, OFFICE_ROOM))
    # New members of a unit group are not recorded either.
    await transport.join(UNIT_ROOM, [Member("wxid_new", "新同事")], inviter_id=WANG.contact_id)
    with session(engine) as s:
        assert s.exec(select(Membership).where(Membership.room_id == UNIT_ROOM)).all() == []


async def test_a_forwarded_push_confirms_the_unit_with_no_word_and_stores_the_member_count(
    bot, transport, engine, clock
):
    await bot_brought_in(bot, transport, WANG)
    push_text = await pushed(bot, transport)
    transport.sent.clear()
    clock.advance(minutes=3)
    await transport.say(WANG, push_text, room_id=UNIT_ROOM)  # forwarded as it came
    with session(engine) as s:
        conf = s.exec(select(Confirmation)).one()
        assert (s.get_one(Unit, conf.unit_id).name, conf.method, conf.verdict) == ("城关镇", "observed", "已核验")
        assert conf.liaison_id is None and conf.acked_at is not None
        sighting = s.exec(select(ReachSighting)).one()
        assert (sighting.push_id, sighting.room_id, sighting.member_count) == (conf.push_id, UNIT_ROOM, 8)
    clock.advance(minutes=10)
    await bot.flush_acks()
    await bot.send_pending()
    assert transport.sent == []  # nobody is told anything: not the liaison group, not the unit group
    # Seen again (another forward of the same push in the same group): nothing more is stored.
    before = rows(engine)
    await transport.say(ZHAO, push_text, room_id=UNIT_ROOM)
    assert rows(engine) == before
    await transport.say(ADMIN, "进度", room_id=OFFICE_ROOM)
    await bot.send_pending()
    progress = texts_in(transport, OFFICE_ROOM)[-1]
    assert "已确认 1/6" in progress and "单位群看到转发：1 个单位，覆盖 8 人" in progress


async def test_the_alert_body_or_title_alone_is_recognised_but_a_mention_of_the_case_is_not(bot, transport, engine):
    await bot_brought_in(bot, transport, WANG)
    await pushed(bot, transport)
    await transport.say(WANG, "刷单的事大家注意一下", room_id=UNIT_ROOM)
    with session(engine) as s:
        assert s.exec(select(Confirmation)).all() == []
        title = s.get_one(Alert, s.exec(select(Push)).one().alert_id).title
    await transport.say(WANG, f"转给大家：{title}", room_id=UNIT_ROOM)
    with session(engine) as s:
        assert s.exec(select(Confirmation)).one().method == "observed"


async def test_a_word_confirmation_is_upgraded_not_doubled(bot, transport, engine, clock):
    await bot_brought_in(bot, transport, WANG)
    push_text = await pushed(bot, transport)
    await transport.say(WANG, "城关镇 已转发 #1", room_id=LIAISON_ROOM)
    clock.advance(minutes=1)
    await transport.say(WANG, push_text, room_id=UNIT_ROOM)
    with session(engine) as s:
        conf = s.exec(select(Confirmation)).one()
        assert (conf.method, conf.verdict, conf.room_id) == ("text", "已核验", LIAISON_ROOM)
        assert len(s.exec(select(ReachSighting)).all()) == 1


async def test_other_chat_in_a_unit_group_leaves_no_row_and_gets_no_answer(bot, transport, engine, clock):
    await bot_brought_in(bot, transport, WANG)
    await pushed(bot, transport)
    transport.sent.clear()
    before = rows(engine)
    for sender, text in [
        (PEOPLE[0], "今天食堂几点开饭？"),
        (WANG, "已转发 #1"),  # a confirmation typed here is not one: only the alert itself counts
        (PEOPLE[1], "帮助"),
        (PEOPLE[1], "推送 刷单"),
        (WANG, "@反诈助手 进度"),
    ]:
        await transport.say(sender, text, room_id=UNIT_ROOM)
    await transport.send_image(PEOPLE[2], Image("shot.jpg", b"\xff\xd8fake"), room_id=UNIT_ROOM)
    await transport.send_link(PEOPLE[3], LinkCard("https://example.com/news", "本地新闻"), room_id=UNIT_ROOM)
    transport.members[UNIT_ROOM].append(ADMIN)
    await transport.say(ADMIN, "单位群", room_id=UNIT_ROOM)  # not even an admin is answered in a unit group
    clock.advance(minutes=10)
    await bot.flush_acks()
    await bot.send_pending()
    assert rows(engine) == before
    assert transport.sent == []


async def test_a_stranger_bringing_the_bot_in_is_refused_and_leaves_nothing(bot, transport, engine):
    before = rows(engine)
    await bot_brought_in(bot, transport, STRANGER, room_id="strange@chatroom", name="陌生群")
    assert transport.left_rooms == ["strange@chatroom"]
    assert rows(engine) == before
    assert transport.sent == []
    await transport.invite("inv-stranger", STRANGER.contact_id, "陌生群")
    assert transport.accepted_invites == []


async def test_a_liaisons_invitation_is_accepted_without_telling_the_office_yet(bot, transport):
    await transport.invite("inv-li", LI.contact_id, "东城街道工作群")
    await bot.send_pending()
    assert transport.accepted_invites == ["inv-li"]
    assert texts_in(transport, OFFICE_ROOM) == []  # the office hears when the bot is in (the join)


async def test_the_office_names_lists_and_removes_unit_groups(bot, transport, engine):
    await bot_brought_in(bot, transport, ADMIN, room_id="xihu@chatroom", name="西湖镇干部群")
    with session(engine) as s:
        group = s.exec(select(Group).where(Group.room_id == "xihu@chatroom")).one()
        assert group.kind == GroupKind.NONE.value  # an admin's room waits for the office's word
    await transport.say(PEOPLE[0], "大家好", room_id="xihu@chatroom")  # remembered, as in any room, until named
    for text in [
        "单位群 没有的群 西湖镇",
        "单位群 西湖镇干部群 没有的单位",
        "单位群 西湖镇干部群",
        "单位群 全区反诈联络员群 西湖镇",
    ]:
        before = rows(engine)
        await transport.say(ADMIN, text, room_id=OFFICE_ROOM)
        after = rows(engine)
        assert {k for k in after if after[k] != before[k]} <= {"auditlog", "outbox"}, text
    await bot.send_pending()
    answers = texts_in(transport, OFFICE_ROOM)[-4:]
    assert "没有找到群“没有的群”" in answers[0] and "没有找到单位“没有的单位”" in answers[1]
    assert "用法" in answers[2] and "不能设为单位群" in answers[3]
    await transport.say(ADMIN, "单位群 西湖镇干部群 西湖镇", room_id=OFFICE_ROOM)
    await bot.send_pending()
    assert "已把「西湖镇干部群」设为 西湖镇 的单位群" in texts_in(transport, OFFICE_ROOM)[-1]
    said = texts_in(transport, "xihu@chatroom")
    assert len(said) == 1 and "不看、不存" in said[0]  # the group hears once what the bot does there
    with session(engine) as s:
        assert s.exec(select(Membership).where(Membership.room_id == "xihu@chatroom")).all() == []
    await bot_brought_in(bot, transport, WANG)
    await transport.say(ADMIN, "单位群", room_id=OFFICE_ROOM)
    await bot.send_pending()
    listing = texts_in(transport, OFFICE_ROOM)[-1]
    assert (
        "单位群（2 个）" in listing
        and "「西湖镇干部群」　西湖镇" in listing
        and "「城关镇全体职工群」　城关镇" in listing
    )
    await transport.say(ADMIN, "移除单位群 西湖镇干部群", room_id=OFFICE_ROOM)
    await bot.send_pending()
    assert "已移除单位群「西湖镇干部群」" in texts_in(transport, OFFICE_ROOM)[-1]
    with session(engine) as s:
        group = s.exec(select(Group).where(Group.room_id == "xihu@chatroom")).one()
        assert (group.kind, group.unit_id) == (GroupKind.NONE.value, None)
        assert [a.action for a in s.exec(select(AuditLog).where(AuditLog.action.startswith("unit_group")))] == [
            "unit_group",
            "unit_group",
            "unit_group_list",
            "unit_group_remove",
        ]


async def test_a_join_without_an_inviter_after_a_liaisons_invitation_is_the_liaisons(bot, transport, engine):
    await transport.invite("inv-wang", WANG.contact_id, "城关镇全体职工群")
    await bot_brought_in(bot, transport, Member("", ""))  # the puppet's join names no inviter
    assert transport.left_rooms == []
    with session(engine) as s:
        group = s.exec(select(Group).where(Group.room_id == UNIT_ROOM)).one()
        assert group.kind == GroupKind.UNIT.value and s.get_one(Unit, group.unit_id).name == "城关镇"
