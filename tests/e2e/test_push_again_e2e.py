"""End to end (issue 13): `推送 刷单` twice through the real Wechaty gateway creates one push; the bot says when it
was pushed and asks for `推送 刷单 确认`, which pushes it again. Another case type is pushed at once."""

from __future__ import annotations

import pytest
from sqlmodel import select

from bot.content import load_library
from bot.storage.db import make_engine, session
from bot.storage.models import Push
from tests.bot_process import ROOT, BotProcess, gateway_env, relaybot
from tests.gateway_harness import Gateway, texts_to

pytestmark = pytest.mark.e2e  # the bot as a process against the real Node gateway

ADMIN = ("wxid_admin_chen", "陈静")
WANG = ("wxid_wangfang", "王芳")
PEOPLE = [ADMIN, WANG]
LIAISON_ROOM = "24001@chatroom"
OFFICE_ROOM = "24002@chatroom"


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
        lambda items: any(expect in t for t in texts_to(items, OFFICE_ROOM)), since=mark, timeout=60
    )
    return next(t for t in texts_to(sent, OFFICE_ROOM) if expect in t)


def pushes_in(items) -> list[str]:
    """The pushes among sent items that went to the liaison group."""
    return [t for t in texts_to(items, LIAISON_ROOM) if t.startswith("【反诈预警 #")]


def test_pushing_the_same_alert_again_asks_for_confirmation(gateway, bot):
    bot.start()
    mark = len(gateway.sent())
    assert ask(gateway, "推送 刷单", expect="已推送 #1").startswith("已推送 #1")
    gateway.wait_sent(lambda items: len(pushes_in(items)) == 1, since=mark, timeout=60)

    answer = ask(gateway, "推送 刷单", expect="已推送过")
    title = load_library().find("刷单").title
    assert answer.startswith(f"#1「{title}」今天 ")
    assert answer.endswith("已推送过，这次没有推送。如确要再推一次，请发：推送 刷单 确认")

    assert ask(gateway, "推送 刷单 确认", expect="已推送 #2").startswith("已推送 #2")
    assert ask(gateway, "推送 公检法", expect="已推送 #3").startswith("已推送 #3")
    sent = gateway.wait_sent(lambda items: len(pushes_in(items)) == 3, since=mark, timeout=60)
    assert [t.split("】")[0] for t in pushes_in(sent)] == [
        "【反诈预警 #1",
        "【反诈预警 #2",
        "【反诈预警 #3",
    ]
    engine = make_engine(bot.db_url)
    try:
        with session(engine) as s:
            assert [p.id for p in s.exec(select(Push).order_by(Push.id))] == [1, 2, 3]
    finally:
        engine.dispose()
