"""Bindings by name are told to the office and can be undone (认错); an undone contact is never bound again, and a
second person matching a recognised roster entry is reported, not bound (issue 12 item 7)."""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import select

from bot.domain.people import Binding, Claim, observe, unbind
from bot.runtime.app import build_bot
from bot.storage.db import session
from bot.storage.models import AuditLog, Confirmation, Correction, Group, GroupKind, Liaison, Unbinding
from bot.transport.base import Member
from tests.conftest import ADMIN, LIAISON_ROOM, OFFICE_ROOM, ZHAO

FAKE_ZHAO = Member("wxid_fake_zhao", "小赵", "赵磊")  # a stranger who took the roster nickname of 城关镇's 赵磊


def contact_of(engine, name: str) -> str | None:
    with session(engine) as s:
        return s.exec(select(Liaison).where(Liaison.name == name)).one().contact_id


def zhao_entry(s) -> Liaison:
    return s.exec(select(Liaison).where(Liaison.name == "赵磊")).one()


def served_room(s, room_id: str = LIAISON_ROOM) -> None:
    s.add(Group(room_id=room_id, name="联络员群", kind=GroupKind.LIAISON.value))
    s.flush()


# ---- the domain ---------------------------------------------------------------------------------


def test_members_recognised_together_come_back_together(engine, roster, clock):
    with session(engine) as s:
        served_room(s)
        members = [Member("a", "赵磊", ""), Member("b", "x", "周敏（西湖镇）"), Member("c", "路人", "")]
        found = observe(s, room_id=LIAISON_ROOM, members=members, now=clock(), complete=True)
        assert found == [
            Binding(contact_id="a", name="赵磊", units=["城关镇"]),
            Binding(contact_id="b", name="周敏", units=["西湖镇"]),
        ]


def test_an_undone_contact_is_not_bound_again_and_the_real_one_is(engine, roster, clock):
    now = clock()
    with session(engine) as s:
        served_room(s)
        assert observe(s, room_id=LIAISON_ROOM, members=[FAKE_ZHAO], now=now) == [
            Binding(contact_id=FAKE_ZHAO.contact_id, name="赵磊", units=["城关镇"])
        ]
        # The real 赵磊 speaks: two people claim one roster entry; he is not bound, the office is told once.
        claim = observe(s, room_id=LIAISON_ROOM, members=[ZHAO], now=now)
        assert claim == [
            Claim(key=f"claim:{ZHAO.contact_id}:{zhao_entry(s).id}", who="赵磊", name="赵磊", unit="城关镇")
        ]
        assert observe(s, room_id=LIAISON_ROOM, members=[ZHAO], now=now) == []
        assert zhao_entry(s).contact_id == FAKE_ZHAO.contact_id

        since = unbind(s, [zhao_entry(s)], by_id=ADMIN.contact_id, by_name=ADMIN.name, now=now)
        assert since == {zhao_entry(s).id: now}
        assert zhao_entry(s).contact_id is None
        assert s.exec(select(Unbinding.contact_id)).all() == [FAKE_ZHAO.contact_id]
        # The stranger speaks again: not bound; still in the room with the nickname, he does not make the name
        # ambiguous for the real one, who is bound on his next message.
        later = now + timedelta(minutes=5)
        assert observe(s, room_id=LIAISON_ROOM, members=[FAKE_ZHAO], now=later) == []
        assert zhao_entry(s).contact_id is None
        assert observe(s, room_id=LIAISON_ROOM, members=[ZHAO], now=later) == [
            Binding(contact_id=ZHAO.contact_id, name="赵磊", units=["城关镇"])
        ]
        assert observe(s, room_id=LIAISON_ROOM, members=[FAKE_ZHAO, ZHAO], now=later, complete=True) == []
        assert zhao_entry(s).contact_id == ZHAO.contact_id


# ---- through the running bot --------------------------------------------------------------------


async def start_without_zhao(settings, transport, engine, clock):
    transport.members[LIAISON_ROOM] = [m for m in transport.members[LIAISON_ROOM] if m.contact_id != ZHAO.contact_id]
    bot = build_bot(settings, transport, engine=engine, clock=clock, send_loop=False)
    await bot.start()
    await bot.send_pending()
    return bot


def office(transport) -> list[str]:
    return [o.text for o in transport.sent if o.chat_id == OFFICE_ROOM]


async def test_bindings_at_start_are_one_office_line(settings, transport, engine, clock, roster):
    bot = build_bot(settings, transport, engine=engine, clock=clock, send_loop=False)
    await bot.start()
    await bot.send_pending()
    assert office(transport) == [
        "已认出：赵磊（城关镇）、周敏（西湖镇）、吴刚（区卫健局）\n如有认错，发“认错 姓名”解除。"
    ]
    await bot.stop()


async def test_a_stranger_recognised_by_name_is_undone_by_the_office(settings, transport, engine, clock, roster):
    bot = await start_without_zhao(settings, transport, engine, clock)
    transport.sent.clear()
    await transport.join(LIAISON_ROOM, [FAKE_ZHAO], ADMIN.contact_id)
    await bot.send_pending()
    assert office(transport) == ["已认出：赵磊（城关镇）\n如有认错，发“认错 赵磊”解除。"]

    await transport.say(ADMIN, "推送 刷单", room_id=OFFICE_ROOM)
    await transport.say(FAKE_ZHAO, "已转发", room_id=LIAISON_ROOM)
    await bot.send_pending()
    with session(engine) as s:
        assert len(s.exec(select(Confirmation)).all()) == 1

    transport.sent.clear()
    await transport.say(ADMIN, "认错 赵磊", room_id=OFFICE_ROOM)
    await bot.send_pending()
    assert office(transport) == [
        "已解除：赵磊（城关镇）不再对应「赵磊（wxid_fake_zhao）」，以后也不会按名字再认作此人。"
        "经此人记下的确认已撤销：城关镇 #1。如单位确已转发，请用“补登”。"
    ]
    with session(engine) as s:
        assert s.exec(select(Confirmation)).all() == []
        assert [c.kind for c in s.exec(select(Correction))] == ["撤销"]
        assert s.exec(select(AuditLog).where(AuditLog.action == "unbind")).one().actor_id == ADMIN.contact_id
    assert contact_of(engine, "赵磊") is None

    # His next 已转发 binds nothing and counts for nobody; the real 赵磊 joining is recognised.
    transport.sent.clear()
    await transport.say(FAKE_ZHAO, "已转发 #1", room_id=LIAISON_ROOM)
    await bot.send_pending()
    assert contact_of(engine, "赵磊") is None
    with session(engine) as s:
        assert s.exec(select(Confirmation)).all() == []
    await transport.join(LIAISON_ROOM, [ZHAO], ADMIN.contact_id)
    await bot.send_pending()
    assert contact_of(engine, "赵磊") == ZHAO.contact_id
    assert "已认出：赵磊（城关镇）\n如有认错，发“认错 赵磊”解除。" in office(transport)
    await bot.stop()


async def test_the_real_liaison_appearing_later_is_reported_not_told_he_is_unregistered(
    settings, transport, engine, clock, roster
):
    bot = await start_without_zhao(settings, transport, engine, clock)
    await transport.join(LIAISON_ROOM, [FAKE_ZHAO], ADMIN.contact_id)
    await transport.say(ADMIN, "推送 刷单", room_id=OFFICE_ROOM)
    await bot.send_pending()
    transport.sent.clear()
    await transport.say(ZHAO, "已转发", room_id=LIAISON_ROOM)
    await bot.send_pending()
    assert office(transport) == [
        "⚠️ 两人对应名单中的「赵磊」（城关镇）：已认出一人，群「全区反诈联络员群」中的「赵磊」也对应此人，未绑定。"
        "如之前认错了，发“认错 赵磊”。"
    ]
    to_group = [o.text for o in transport.sent if o.chat_id == LIAISON_ROOM]
    assert to_group == [bot.texts.t("confirm.claim_pending")]
    assert bot.texts.t("confirm.unregistered") not in to_group
    await bot.stop()


async def test_unbind_answers_without_changing_anything_when_it_cannot(bot, transport, engine):
    async def answer(text: str) -> str:
        transport.sent.clear()
        await transport.say(ADMIN, text, room_id=OFFICE_ROOM)
        await bot.send_pending()
        (reply,) = [o.text for o in transport.sent if o.chat_id == OFFICE_ROOM]
        return reply

    assert (await answer("认错")).startswith("用法：认错 姓名")
    assert "名单里的微信ID" in await answer("认错 王芳")  # bound by the roster's id, not by name
    assert "没有已认出的「张三」" in await answer("认错 张三")
    assert "没有已认出的「赵磊」" in await answer("认错 东城街道 赵磊")
    assert contact_of(engine, "赵磊") == ZHAO.contact_id and contact_of(engine, "王芳") is not None
    assert "已解除：赵磊（城关镇）" in await answer("解绑 赵磊（城关镇）")
    assert "认错 姓名" in await answer("帮助")
    await transport.say(ZHAO, "认错 赵磊", room_id=LIAISON_ROOM)  # not an admin: nothing changes
    with session(engine) as s:
        assert len(s.exec(select(Unbinding)).all()) == 1
