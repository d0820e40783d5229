"""End to end: an admin's 补登, 免转 and 撤销 in the office group, through a real Wechaty gateway on 127.0.0.1."""

from __future__ import annotations

import pytest
from sqlmodel import select

from bot.storage.db import make_engine, session
from bot.storage.models import AuditLog, Confirmation, Correction, Exemption, Unit
from tests.bot_process import ROOT, BotProcess, gateway_env, relaybot
from tests.gateway_harness import Gateway, texts_to

pytestmark = pytest.mark.e2e  # the bot as a process against the real Node gateway

ADMIN = ("wxid_admin_chen", "陈静")
WANG = ("wxid_wangfang", "王芳")
LI = ("wxid_liqiang", "李强")
SUN = ("wxid_sunli", "孙丽")
ZHENG = ("wxid_zhengjie", "郑洁")
PEOPLE = [ADMIN, WANG, LI, SUN, ZHENG]
LIAISON_ROOM = "21001@chatroom"
OFFICE_ROOM = "21002@chatroom"


@pytest.fixture(scope="module")
def gateway():
    gw = Gateway.start()
    for contact_id, name in PEOPLE:
        gw.contact(contact_id, name)
    gw.room(LIAISON_ROOM, "全区反诈联络员群", [c for c, _ in PEOPLE])
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


def ask(gateway, text: str, *, expect: str) -> str:
    """The admin writes in the office group; the office's answer that contains `expect`."""
    mark = len(gateway.sent())
    gateway.say(ADMIN[0], text, room=OFFICE_ROOM)
    sent = gateway.wait_sent(
        lambda items: any(expect in t for t in texts_to(items, OFFICE_ROOM)), since=mark, timeout=10
    )
    return next(t for t in texts_to(sent, OFFICE_ROOM) if expect in t)


def test_add_exempt_and_revoke_in_the_office_group(gateway, bot):
    bot.start()
    ask(gateway, "推送 刷单", expect="已推送 #1")
    mark = len(gateway.sent())
    gateway.say(WANG[0], "城关镇 已转发 #1", room=LIAISON_ROOM)
    gateway.say(LI[0], "已转发", room=LIAISON_ROOM)
    gateway.wait_sent(
        lambda items: any(t.startswith("✅ 已记录 #1") for t in texts_to(items, LIAISON_ROOM)), since=mark, timeout=10
    )

    assert ask(gateway, "补登 区卫健局 #1 电话确认", expect="补登") == (
        "已补登：区卫健局 #1（电话确认），记为按时。目前已确认 3/6。"
    )
    assert ask(gateway, "免转 区教育局 #1 不涉及", expect="免转") == (
        "已免转：区教育局 #1（不涉及），不再提醒、不计未转发。目前已确认 3/5。"
    )
    assert ask(gateway, "撤销 东城街道 #1 误记", expect="撤销") == "已撤销 东城街道 #1 的确认。目前已确认 2/5。"
    assert ask(gateway, "补登 区卫健局 电话确认", expect="用法") == (
        "用法：补登 单位 #编号 理由，例如：补登 区卫健局 #3 电话确认（理由含“迟报”则记为迟报）"
    )

    # The exempted unit's confirmation is not taken, and the 补登 owes the group no acknowledgement: the next
    # acknowledgement names 金融行业 alone, counted against the five units still expected.
    mark = len(gateway.sent())
    gateway.say(SUN[0], "已转发", room=LIAISON_ROOM)
    gateway.say(ZHENG[0], "已转发", room=LIAISON_ROOM)
    sent = gateway.wait_sent(
        lambda items: any(t.startswith("✅") for t in texts_to(items, LIAISON_ROOM)), since=mark, timeout=10
    )
    assert [t for t in texts_to(sent, LIAISON_ROOM) if t.startswith("✅")] == [
        "✅ 已记录 #1：金融行业（本次 1 个单位）。目前已确认 3/5。"
    ]

    progress = ask(gateway, "进度", expect="未确认").splitlines()
    assert progress[1].startswith("已确认 3/5，")
    assert progress[2:] == [
        "补登（1）：区卫健局（电话确认）",
        "免转（1）：区教育局（不涉及）",
        "未确认（2）：东城街道、西湖镇",
    ]

    engine = make_engine(bot.db_url)
    with session(engine) as s:
        name = {u.id: u.name for u in s.exec(select(Unit))}
        confs = sorted(
            (name[c.unit_id], c.method, c.liaison_id is None, c.recorded_by, c.evidence_text)
            for c in s.exec(select(Confirmation))
        )
        exemptions = [(name[e.unit_id], e.reason, e.by_id, e.by_name) for e in s.exec(select(Exemption))]
        corrections = [
            (c.kind, name[c.unit_id], c.reason, c.by_id, c.by_name)
            for c in s.exec(select(Correction).order_by(Correction.id))
        ]
        audits = [
            (a.action, a.actor_id, a.detail)
            for a in s.exec(select(AuditLog).where(AuditLog.action.startswith("correction_")).order_by(AuditLog.id))
        ]
    engine.dispose()
    assert confs == [
        ("区卫健局", "office", True, ADMIN[0], "电话确认"),
        ("城关镇", "text", False, "", "城关镇 已转发 #1"),
        ("金融行业", "text", False, "", "已转发"),
    ]
    assert exemptions == [("区教育局", "不涉及", ADMIN[0], ADMIN[1])]
    assert corrections == [
        ("补登", "区卫健局", "电话确认", ADMIN[0], ADMIN[1]),
        ("免转", "区教育局", "不涉及", ADMIN[0], ADMIN[1]),
        ("撤销", "东城街道", "误记", ADMIN[0], ADMIN[1]),
    ]
    assert audits == [
        ("correction_add", ADMIN[0], "#1 区卫健局 补登: 电话确认"),
        ("correction_exempt", ADMIN[0], "#1 区教育局 免转: 不涉及"),
        ("correction_revoke", ADMIN[0], "#1 东城街道 撤销确认: 误记"),
    ]
