"""End to end through the real Wechaty gateway (issue 12 items 6 and 7): a stranger's rooms renamed to the
configured group names are not promoted after a restart, and a stranger recognised by a roster nickname is told
to the office, undone with 认错, and not counted or rebound afterwards."""

from __future__ import annotations

import pytest
from sqlmodel import select

from bot.storage.db import make_engine, session
from bot.storage.models import Confirmation, Group, Liaison
from tests.bot_process import ROOT, BotProcess, gateway_env, relaybot
from tests.gateway_harness import Gateway, texts_to

pytestmark = pytest.mark.e2e  # the bot as a process against the real Node gateway

ADMIN = ("wxid_admin_chen", "陈静")
WANG = ("wxid_wangfang", "王芳")
STRANGER = ("wxid_stranger_x", "小赵")
LIAISON_ROOM = "31001@chatroom"
OFFICE_ROOM = "31002@chatroom"
FAKE_LIAISON = "31003@chatroom"
FAKE_OFFICE = "31004@chatroom"
WAIT = 30  # generous: the machine may be busy; nothing here asserts a duration


@pytest.fixture
def gateway():
    gw = Gateway.start()
    for contact_id, name in (ADMIN, WANG, STRANGER):
        gw.contact(contact_id, name)
    gw.room(LIAISON_ROOM, "全区反诈联络员群", [ADMIN[0], WANG[0]])
    gw.room(OFFICE_ROOM, "反诈办工作群", [ADMIN[0]])
    yield gw
    gw.stop()


@pytest.fixture
def bot(gateway, tmp_path, db_url):
    imported = relaybot(
        "roster", "import", str(ROOT / "content" / "examples" / "roster_example.csv"), db_url=db_url, cwd=tmp_path
    )
    assert imported.returncode == 0, imported.stderr
    # The groups by name, as in the incident: names are what a stranger can copy.
    env = gateway_env(
        gateway, db_url, tmp_path, admin=ADMIN[0], liaison_groups="全区反诈联络员群", office_group="反诈办工作群"
    )
    proc = BotProcess(env, tmp_path)
    proc.db_url = db_url
    yield proc
    proc.stop()
    proc.close()


def ask(gateway, text: str, *, expect: str) -> str:
    """The admin writes in the office group; the office's answer that contains `expect`."""
    mark = len(gateway.sent())
    gateway.say(ADMIN[0], text, room=OFFICE_ROOM)
    sent = gateway.wait_sent(
        lambda items: any(expect in t for t in texts_to(items, OFFICE_ROOM)), since=mark, timeout=WAIT
    )
    return next(t for t in texts_to(sent, OFFICE_ROOM) if expect in t)


def test_rooms_renamed_to_the_group_names_get_no_push_after_a_restart(gateway, bot):
    gateway.room(FAKE_LIAISON, "闲聊群", [STRANGER[0]])
    gateway.room(FAKE_OFFICE, "另一个群", [STRANGER[0]])
    bot.start()
    mark = len(gateway.sent())
    gateway.topic(FAKE_LIAISON, "全区反诈联络员群", changer=STRANGER[0])
    gateway.topic(FAKE_OFFICE, "反诈办工作群", changer=STRANGER[0])

    def warned(items) -> bool:
        office = texts_to(items, OFFICE_ROOM)
        return all(any(room in t and "未改变设置" in t for t in office) for room in (FAKE_LIAISON, FAKE_OFFICE))

    # The rename events themselves make the office hear of it, while the bot runs.
    sent = gateway.wait_sent(warned, since=mark, timeout=WAIT)
    warning = next(t for t in texts_to(sent, OFFICE_ROOM) if FAKE_LIAISON in t)
    assert "「全区反诈联络员群」" in warning and "设为联络员群" in warning

    bot.stop()
    bot.start()
    mark = len(gateway.sent())
    ask(gateway, "推送 刷单", expect="已推送 #1")
    gateway.wait_sent(
        lambda items: any(t.startswith("【反诈预警 #1】") for t in texts_to(items, LIAISON_ROOM)),
        since=mark,
        timeout=WAIT,
    )
    everything = gateway.sent()
    assert texts_to(everything, FAKE_LIAISON) == [] and texts_to(everything, FAKE_OFFICE) == []
    # Told once, not again at the restart.
    office = texts_to(everything, OFFICE_ROOM)
    assert [sum(room in t for t in office) for room in (FAKE_LIAISON, FAKE_OFFICE)] == [1, 1], office
    engine = make_engine(bot.db_url)
    with session(engine) as s:
        kinds = {g.room_id: g.kind for g in s.exec(select(Group))}
    engine.dispose()
    assert kinds == {LIAISON_ROOM: "liaison", OFFICE_ROOM: "office", FAKE_LIAISON: "none", FAKE_OFFICE: "none"}


def test_a_stranger_with_a_roster_nickname_is_reported_and_undone(gateway, bot):
    bot.start()
    ask(gateway, "推送 刷单", expect="已推送 #1")
    mark = len(gateway.sent())
    gateway.join(LIAISON_ROOM, ADMIN[0], [STRANGER[0]], nicknames={STRANGER[0]: "赵磊"})
    gateway.wait_sent(
        lambda items: "已认出：赵磊（城关镇）\n如有认错，发“认错 赵磊”解除。" in texts_to(items, OFFICE_ROOM),
        since=mark,
        timeout=WAIT,
    )
    mark = len(gateway.sent())
    gateway.say(STRANGER[0], "已转发", room=LIAISON_ROOM)
    gateway.wait_sent(
        lambda items: any(t.startswith("✅ 已记录 #1：城关镇") for t in texts_to(items, LIAISON_ROOM)),
        since=mark,
        timeout=WAIT,
    )

    undone = ask(gateway, "认错 赵磊", expect="已解除")
    assert "经此人记下的确认已撤销：城关镇 #1" in undone
    progress = ask(gateway, "进度", expect="未确认").splitlines()
    assert any(line.startswith("未确认") and "城关镇" in line for line in progress), progress

    # His next 已转发 is not counted and does not bind him again: he is told he is not on the roster.
    mark = len(gateway.sent())
    gateway.say(STRANGER[0], "已转发 #1", room=LIAISON_ROOM)
    gateway.wait_sent(
        lambda items: any("不在联络员名单" in t for t in texts_to(items, LIAISON_ROOM)), since=mark, timeout=WAIT
    )
    engine = make_engine(bot.db_url)
    with session(engine) as s:
        zhao = s.exec(select(Liaison).where(Liaison.name == "赵磊")).one()
        confirmations = s.exec(select(Confirmation)).all()
    engine.dispose()
    assert zhao.contact_id is None
    assert confirmations == []
