"""Groups set in chat and by configuration, invitations, and recognising liaisons by id or name."""

from __future__ import annotations

from sqlmodel import select

from bot.runtime.app import build_bot
from bot.storage.db import session
from bot.storage.models import AuditLog, Group, Liaison
from bot.transport.base import Member
from tests.conftest import ADMIN, LI, LIAISON_ROOM, OFFICE_ROOM, STRANGER, WANG, WU, ZHOU


def kinds(engine):
    with session(engine) as s:
        return {g.room_id: g.kind for g in s.exec(select(Group))}


def contact_of(engine, name):
    with session(engine) as s:
        return s.exec(select(Liaison).where(Liaison.name == name)).one().contact_id


async def test_configured_groups_by_name(bot, engine):
    assert kinds(engine) == {LIAISON_ROOM: "liaison", OFFICE_ROOM: "office"}


async def test_admin_sets_and_undoes_group_kinds_in_chat_and_it_survives_restart(
    bot, transport, engine, settings, clock
):
    transport.add_room("new@chatroom", "东片联络员群", [ADMIN, LI])
    await transport.say(ADMIN, "设为联络员群", room_id="new@chatroom")
    await transport.say(ADMIN, "取消联络员群", room_id=LIAISON_ROOM)
    await transport.say(LI, "设为办公群", room_id="new@chatroom")  # not an admin
    await bot.send_pending()
    assert kinds(engine)["new@chatroom"] == "liaison"
    assert kinds(engine)[LIAISON_ROOM] == "none"
    texts = [o.text for o in transport.sent]
    assert texts == [
        "好的，本群已设为联络员群「东片联络员群」。之后的推送会发到这里。",
        "好的，本群不再作为联络员群。",
        "该指令仅限反诈办管理员使用。",
    ]
    await bot.stop()
    again = build_bot(settings, transport, engine=engine, clock=clock, send_loop=False)
    await again.start()  # the configuration names 全区反诈联络员群, but the admin's undo stands
    assert kinds(engine)[LIAISON_ROOM] == "none"
    assert kinds(engine)["new@chatroom"] == "liaison"
    await again.stop()


async def test_a_new_office_group_replaces_the_old(bot, transport, engine):
    transport.add_room("office2@chatroom", "反诈办新群", [ADMIN])
    await transport.say(ADMIN, "设为办公群", room_id="office2@chatroom")
    assert kinds(engine)["office2@chatroom"] == "office"
    assert kinds(engine)[OFFICE_ROOM] == "none"


async def test_invitation_accepted_only_from_an_admin(bot, transport, engine):
    # (A bound liaison's invitation into the unit's own group is accepted too: tests/handlers/test_reach.py.)
    await transport.invite("inv-1", STRANGER.contact_id, "某群")
    await transport.invite("inv-2", ADMIN.contact_id, "南片联络员群")
    await bot.send_pending()
    assert transport.accepted_invites == ["inv-2"]
    assert "已加入群「南片联络员群」" in transport.sent[-1].text
    with session(engine) as s:
        audits = [(a.actor_id, a.allowed) for a in s.exec(select(AuditLog).where(AuditLog.action == "room_invite"))]
    assert audits == [(STRANGER.contact_id, False), (ADMIN.contact_id, True)]


async def test_recognition_by_id_name_and_nickname(bot, engine):
    assert contact_of(engine, "王芳") == WANG.contact_id  # roster id
    assert contact_of(engine, "吴刚") == WU.contact_id  # WeChat name seen in the member list
    assert contact_of(engine, "周敏") == ZHOU.contact_id  # group nickname 周敏（西湖镇）


async def test_recognition_on_join_and_when_speaking(settings, transport, engine, clock, roster):
    transport.members[LIAISON_ROOM] = [m for m in transport.members[LIAISON_ROOM] if m.contact_id != WU.contact_id]
    b = build_bot(settings, transport, engine=engine, clock=clock, send_loop=False)
    await b.start()
    assert contact_of(engine, "吴刚") is None
    await transport.join(LIAISON_ROOM, [Member("wxid_wu_new", "吴刚", "")], ADMIN.contact_id)
    assert contact_of(engine, "吴刚") == "wxid_wu_new"
    await b.stop()
    # 周敏 changed phones and left with her old account; her roster entry was reset by the office.
    with session(engine) as s:
        zhou = s.exec(select(Liaison).where(Liaison.name == "周敏")).one()
        zhou.contact_id = None
        s.add(zhou)
        s.commit()
    transport.members[LIAISON_ROOM] = [m for m in transport.members[LIAISON_ROOM] if m.contact_id != ZHOU.contact_id]
    b = build_bot(settings, transport, engine=engine, clock=clock, send_loop=False)
    await b.start()  # the fresh member list drops the old account
    assert contact_of(engine, "周敏") is None
    # Her new account is first seen when she speaks: same group nickname, so she is recognised.
    await transport.say(Member("wxid_zhou_2", "敏敏", "周敏（西湖镇）"), "大家好", room_id=LIAISON_ROOM)
    assert contact_of(engine, "周敏") == "wxid_zhou_2"
    await b.stop()


async def test_an_ambiguous_name_binds_nobody_and_tells_the_office_once(settings, transport, engine, clock, roster):
    twin = Member("wxid_other_wu", "吴刚", "")  # two members called 吴刚
    transport.members[LIAISON_ROOM].append(twin)
    b = build_bot(settings, transport, engine=engine, clock=clock, send_loop=False)
    await b.start()
    await transport.say(twin, "已转发", room_id=LIAISON_ROOM)
    await b.send_pending()
    assert contact_of(engine, "吴刚") is None
    office = [o.text for o in transport.sent if o.chat_id == OFFICE_ROOM]
    assert office == [
        "已认出：赵磊（城关镇）、周敏（西湖镇）\n如有认错，发“认错 姓名”解除。",  # the others, by name (issue 12 item 7)
        "⚠️ 无法识别联络员：名单中的「吴刚」（区卫健局）在群里对应多位成员，未绑定。请在名单中填写其微信ID。",
    ]
    await b.stop()
