"""End to end (issue 15 item 6): a liaison brings the bot into the unit's own group through the real gateway; the
forwarded push confirms the unit with no word, other chat there leaves no row anywhere, a stranger is refused."""

from __future__ import annotations

import pytest
from sqlalchemy import func
from sqlalchemy import select as sa_select
from sqlmodel import SQLModel, select

from bot.storage.db import make_engine, session
from bot.storage.models import Confirmation, Liaison, ReachSighting, Unit
from tests.bot_process import ROOT, BotProcess, gateway_env, relaybot
from tests.gateway_harness import Gateway, has_text, texts_to, wait_until

pytestmark = pytest.mark.e2e

ADMIN = ("wxid_admin_chen", "陈静")
WANG = ("wxid_wangfang", "王芳")  # 城关镇's liaison, bound by WeChat name in the liaison group
LI = ("wxid_liqiang", "李强")  # 东城街道's
STRANGER = ("wxid_passerby", "路人甲")
STAFF = [(f"wxid_staff{i}", f"职工{i}") for i in range(5)]
LIAISON_ROOM = "30001@chatroom"
OFFICE_ROOM = "30002@chatroom"
UNIT_ROOM = "30003@chatroom"
STRANGE_ROOM = "30004@chatroom"
STRANGE_ROOM_2 = "30005@chatroom"


@pytest.fixture(scope="module")
def gateway():
    gw = Gateway.start()
    for contact_id, name in [ADMIN, WANG, LI, STRANGER, *STAFF]:
        gw.contact(contact_id, name)
    gw.room(LIAISON_ROOM, "全区反诈联络员群", [ADMIN[0], WANG[0], LI[0]])
    gw.room(OFFICE_ROOM, "反诈办工作群", [ADMIN[0]])
    yield gw
    gw.stop()


@pytest.fixture
def bot(gateway, tmp_path, db_url):
    imported = relaybot(
        "roster", "import", str(ROOT / "content" / "examples" / "roster_example.csv"), db_url=db_url, cwd=tmp_path
    )
    assert imported.returncode == 0, imported.stderr
    proc = BotProcess(
        gateway_env(
            gateway, db_url, tmp_path, admin=ADMIN[0], liaison_groups="全区反诈联络员群", office_group=OFFICE_ROOM
        ),
        tmp_path,
    )
    proc.db_url = db_url
    yield proc
    proc.stop()
    proc.close()


def counts(db_url) -> dict[str, int]:
    """The number of rows of every table."""
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            return {
                t.name: conn.execute(sa_select(func.count()).select_from(t)).scalar_one()
                for t in SQLModel.metadata.sorted_tables
            }
    finally:
        engine.dispose()


def read(db_url, fn):
    engine = make_engine(db_url)
    try:
        with session(engine) as s:
            return fn(s)
    finally:
        engine.dispose()


def test_a_liaisons_unit_group_is_watched_for_the_forwarded_push_and_nothing_else(gateway, bot):
    bot.start()
    # WANG is recognised as 城关镇's liaison among the liaison group's members (bound by WeChat name).
    wait_until(
        lambda: read(bot.db_url, lambda s: s.exec(select(Liaison.contact_id).where(Liaison.name == "王芳")).first()),
        lambda contact_id: contact_id == WANG[0],
        10,
        "王芳 bound",
    )

    mark = len(gateway.sent())
    gateway.invite(WANG[0], UNIT_ROOM, "城关镇全体职工群", [c for c, _ in STAFF])
    sent = gateway.wait_sent(
        lambda items: has_text(UNIT_ROOM, "不看、不存")(items) and has_text(OFFICE_ROOM, "城关镇全体职工群")(items),
        since=mark,
        timeout=10,
    )
    assert len(texts_to(sent, UNIT_ROOM)) == 1

    mark = len(gateway.sent())
    gateway.say(ADMIN[0], "推送 刷单", room=OFFICE_ROOM)
    sent = gateway.wait_sent(lambda items: texts_to(items, LIAISON_ROOM), since=mark, timeout=10)
    push_text = texts_to(sent, LIAISON_ROOM)[0]
    assert push_text.startswith("【反诈预警 #1】")
    wait_until(lambda: gateway.sent(since=mark), has_text(OFFICE_ROOM, "已推送 #1"), 10, "the office's answer")

    before = counts(bot.db_url)
    mark = len(gateway.sent())
    gateway.say(STAFF[0][0], "今天下午开会吗？", room=UNIT_ROOM)
    gateway.say(WANG[0], "已转发 #1", room=UNIT_ROOM)  # typed here it is not a confirmation
    gateway.say(STAFF[1][0], "帮助", room=UNIT_ROOM)
    gateway.link(STAFF[2][0], "https://example.com/news", "本地新闻", room=UNIT_ROOM)
    gateway.say(WANG[0], push_text, room=UNIT_ROOM)  # the push, forwarded
    sightings = wait_until(
        lambda: read(bot.db_url, lambda s: [(x.room_id, x.member_count) for x in s.exec(select(ReachSighting))]),
        lambda rows: rows and rows[0][1] > 0,
        10,
        "the sighting with its member count",
    )
    assert sightings == [(UNIT_ROOM, 1 + len(STAFF))]  # WANG and the staff; not the bot
    conf = read(
        bot.db_url,
        lambda s: [(s.get(Unit, c.unit_id).name, c.method, c.verdict, c.room_id) for c in s.exec(select(Confirmation))],
    )
    assert conf == [("城关镇", "observed", "已核验", UNIT_ROOM)]
    after = counts(bot.db_url)
    changed = {t: (before[t], after[t]) for t in after if after[t] != before[t]}
    assert changed == {"confirmation": (0, 1), "reachsighting": (0, 1)}

    # Another unit confirms by word: its acknowledgement names it alone, and nothing goes to the unit group.
    gateway.say(LI[0], "东城街道 已转发 #1", room=LIAISON_ROOM)
    sent = gateway.wait_sent(has_text(LIAISON_ROOM, "✅ 已记录 #1"), since=mark, timeout=10)
    acks = [t for t in texts_to(sent, LIAISON_ROOM) if t.startswith("✅")]
    assert acks and "东城街道" in acks[0] and "城关镇" not in acks[0]
    assert texts_to(gateway.sent(since=mark), UNIT_ROOM) == []

    mark = len(gateway.sent())
    gateway.say(ADMIN[0], "进度", room=OFFICE_ROOM)
    sent = gateway.wait_sent(has_text(OFFICE_ROOM, "覆盖"), since=mark, timeout=10)
    assert f"单位群看到转发：1 个单位，覆盖 {1 + len(STAFF)} 人" in texts_to(sent, OFFICE_ROOM)[-1]


def test_a_stranger_cannot_bring_the_bot_in(gateway, bot):
    bot.start()
    before = counts(bot.db_url)
    mark = len(gateway.sent())
    refused = gateway.invite(STRANGER[0], STRANGE_ROOM, "陌生群", [STRANGER[0]])
    # Added without an invitation (a small group): the bot records nothing and quits.
    gateway.room(STRANGE_ROOM_2, "另一个陌生群", [STRANGER[0], STAFF[0][0]])
    gateway.join(STRANGE_ROOM_2, STRANGER[0], ["bot-self"])
    wait_until(gateway.quits, lambda rooms: STRANGE_ROOM_2 in rooms, 10, "the bot quitting")
    invites = {i["invitation_id"]: i["accepted"] for i in gateway.invites()}
    assert invites[refused] is False
    assert [i for i in gateway.sent(since=mark) if i["conversation_id"] in (STRANGE_ROOM, STRANGE_ROOM_2)] == []
    after = counts(bot.db_url)
    # The refused invitation is audited, as every refused attempt is; nothing else is written.
    assert {t: (before[t], after[t]) for t in after if after[t] != before[t]} == {
        "auditlog": (before["auditlog"], before["auditlog"] + 1)
    }
