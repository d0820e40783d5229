"""End to end: targeted pushes (issue 15 item 1) through a real Wechaty gateway on 127.0.0.1. The roster's 标签
column is imported with the CLI; `推送 刷单 给 学校` reaches only the liaison group of the 学校 unit's liaison and
counts only that unit; a library default target (default_targets) aims 虚假征信 at the banks."""

from __future__ import annotations

import pytest
from sqlmodel import select

from bot.storage.db import make_engine, session
from bot.storage.models import Confirmation, Push, PushTarget, Unit
from tests.bot_process import BotProcess, gateway_env, relaybot
from tests.gateway_harness import Gateway, texts_to

pytestmark = pytest.mark.e2e  # the bot as a process against the real Node gateway

ADMIN = ("wxid_admin_chen", "陈静")
WANG = ("wxid_wangfang", "王芳")  # 城关镇: no tag
SUN = ("wxid_sunli", "孙丽")  # 区教育局: 学校
ZHENG = ("wxid_zhengjie", "郑洁")  # 金融行业: 银行
PEOPLE = [ADMIN, WANG, SUN, ZHENG]
GROUP_ONE = "24001@chatroom"  # 王芳 and 孙丽
GROUP_TWO = "24002@chatroom"  # 郑洁
OFFICE_ROOM = "24003@chatroom"

ROSTER = """单位,类别,联络员,微信ID,微信昵称,手机,角色,标签
城关镇,镇街,王芳,wxid_wangfang,王芳,13800000001,主,
区教育局,区直单位,孙丽,wxid_sunli,孙丽,13800000005,主,学校
金融行业,行业,郑洁,wxid_zhengjie,郑洁,13800000007,主,银行、保险
"""


@pytest.fixture(scope="module")
def gateway():
    gw = Gateway.start()
    for contact_id, name in PEOPLE:
        gw.contact(contact_id, name)
    gw.room(GROUP_ONE, "联络员一群", [ADMIN[0], WANG[0], SUN[0]])
    gw.room(GROUP_TWO, "联络员二群", [ADMIN[0], ZHENG[0]])
    gw.room(OFFICE_ROOM, "反诈办工作群", [ADMIN[0]])
    yield gw
    gw.stop()


def test_a_targeted_push_reaches_and_counts_only_its_units(gateway, tmp_path, db_url):
    roster = tmp_path / "名单.csv"
    roster.write_text(ROSTER, encoding="utf-8")
    imported = relaybot("roster", "import", str(roster), db_url=db_url, cwd=tmp_path)
    assert imported.returncode == 0, imported.stderr
    env = gateway_env(
        gateway,
        db_url,
        tmp_path,
        admin=ADMIN[0],
        liaison_groups="联络员一群,联络员二群",
        office_group=OFFICE_ROOM,
        RELAYBOT_DEFAULT_TARGETS="虚假征信=银行",
    )
    bot = BotProcess(env, tmp_path)
    try:
        bot.start()
        mark = len(gateway.sent())
        gateway.say(ADMIN[0], "推送 刷单 给 学校", room=OFFICE_ROOM)
        sent = gateway.wait_sent(
            lambda items: (
                any("已推送 #1" in t for t in texts_to(items, OFFICE_ROOM))
                and any("【反诈预警 #1】" in t for t in texts_to(items, GROUP_ONE))
            ),
            since=mark,
            timeout=20,
        )
        answer = next(t for t in texts_to(sent, OFFICE_ROOM) if "已推送 #1" in t)
        assert "到 1 个联络员群，共 1 个单位" in answer and "对象：学校" in answer
        assert "本条请以下单位转发：学校（区教育局）" in texts_to(sent, GROUP_ONE)[0]

        # 王芳's unit is not asked: her 已转发 records nothing; 孙丽's does.
        mark = len(gateway.sent())
        gateway.say(WANG[0], "已转发", room=GROUP_ONE)
        gateway.say(SUN[0], "已转发", room=GROUP_ONE)
        sent = gateway.wait_sent(
            lambda items: any("✅ 已记录 #1" in t for t in texts_to(items, GROUP_ONE)), since=mark, timeout=20
        )
        ack = next(t for t in texts_to(sent, GROUP_ONE) if "✅ 已记录 #1" in t)
        recorded = next(line for line in ack.splitlines() if line.startswith("✅ 已记录 #1"))
        assert "区教育局" in recorded and "城关镇" not in recorded and "1/1" in recorded
        # 王芳 hears once, in the same message, that her unit need not relay #1.
        assert "@王芳 #1 只请学校转发，城关镇无需转发，也不用回复。" in ack

        mark = len(gateway.sent())
        gateway.say(ADMIN[0], "进度 #1", room=OFFICE_ROOM)
        sent = gateway.wait_sent(
            lambda items: any("已确认" in t for t in texts_to(items, OFFICE_ROOM)), since=mark, timeout=20
        )
        progress = next(t for t in texts_to(sent, OFFICE_ROOM) if "已确认" in t)
        assert "（对象：学校）" in progress and "已确认 1/1" in progress and "全部单位已确认" in progress

        # The library default: 虚假征信 goes to the banks' group only.
        mark = len(gateway.sent())
        gateway.say(ADMIN[0], "推送 征信", room=OFFICE_ROOM)
        sent = gateway.wait_sent(
            lambda items: (
                any("已推送 #2" in t for t in texts_to(items, OFFICE_ROOM))
                and any("【反诈预警 #2】" in t for t in texts_to(items, GROUP_TWO))
            ),
            since=mark,
            timeout=20,
        )
        assert "对象：银行" in next(t for t in texts_to(sent, OFFICE_ROOM) if "已推送 #2" in t)
    finally:
        bot.stop()
        bot.close()
    everything = gateway.sent()
    assert not any("#2】" in t for t in texts_to(everything, GROUP_ONE))  # #2 never reached group one
    assert not any("#1】" in t for t in texts_to(everything, GROUP_TWO))  # nor #1 group two
    engine = make_engine(db_url)
    try:
        with session(engine) as s:
            names = {u.id: u.name for u in s.exec(select(Unit))}
            confirmations = [(c.push_id, names[c.unit_id]) for c in s.exec(select(Confirmation))]
            aimed = sorted((t.push_id, names[t.unit_id]) for t in s.exec(select(PushTarget)))
            labels = [p.target for p in s.exec(select(Push).order_by(Push.id))]
    finally:
        engine.dispose()
    assert confirmations == [(1, "区教育局")]
    assert aimed == [(1, "区教育局"), (2, "金融行业")]
    assert labels == ["学校", "银行"]
