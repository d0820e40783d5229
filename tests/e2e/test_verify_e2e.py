"""End to end: an admin types 核查 in the office group (issue 15 item 5); the summary and the .xlsx arrive through
a real Wechaty gateway on 127.0.0.1."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlmodel import select

from bot.storage.db import make_engine, session
from bot.storage.models import Alert, AuditLog, Push, PushState
from tests.bot_process import ROOT, BotProcess, gateway_env, relaybot
from tests.conftest import TZ
from tests.gateway_harness import Gateway, texts_to

pytestmark = pytest.mark.e2e  # the bot as a process against the real Node gateway

ADMIN = ("wxid_admin_chen", "陈静")
WANG = ("wxid_wangfang", "王芳")
PEOPLE = [ADMIN, WANG]
LIAISON_ROOM = "23001@chatroom"
OFFICE_ROOM = "23002@chatroom"


@pytest.fixture(scope="module")
def gateway():
    gw = Gateway.start()
    for contact_id, name in PEOPLE:
        gw.contact(contact_id, name)
    gw.room(LIAISON_ROOM, "全区反诈联络员群", [c for c, _ in PEOPLE])
    gw.room(OFFICE_ROOM, "反诈办工作群", [ADMIN[0]])
    yield gw
    gw.stop()


def an_earlier_missed_push(db_url: str) -> datetime:
    """#1, pushed 20 days ago and never relayed by anyone: the record's one 未转发."""
    at = datetime.now(TZ).replace(second=0, microsecond=0) - timedelta(days=20)
    engine = make_engine(db_url)
    try:
        with session(engine) as s:
            alert = Alert(case_type="冒充公检法", title="冒充公检法诈骗预警", created_at=at)
            s.add(alert)
            s.flush()
            s.add(
                Push(
                    alert_id=alert.id,
                    created_at=at,
                    created_by=ADMIN[0],
                    deadline=at + timedelta(hours=8),
                    state=PushState.CLOSED.value,
                )
            )
            s.commit()
    finally:
        engine.dispose()
    return at


def test_an_admin_types_verify_and_gets_the_summary_and_the_file(gateway, tmp_path, db_url):
    imported = relaybot(
        "roster", "import", str(ROOT / "content" / "examples" / "roster_example.csv"), db_url=db_url, cwd=tmp_path
    )
    assert imported.returncode == 0, imported.stderr
    earlier = an_earlier_missed_push(db_url)
    bot = BotProcess(
        gateway_env(
            gateway, db_url, tmp_path, admin=ADMIN[0], liaison_groups="全区反诈联络员群", office_group=OFFICE_ROOM
        ),
        tmp_path,
    )
    try:
        bot.start()
        mark = len(gateway.sent())
        gateway.say(ADMIN[0], "推送 刷单", room=OFFICE_ROOM)
        gateway.wait_sent(
            lambda items: any("已推送 #2" in t for t in texts_to(items, OFFICE_ROOM)), since=mark, timeout=15
        )
        mark = len(gateway.sent())
        gateway.say(WANG[0], "已转发 #2", room=LIAISON_ROOM)
        gateway.wait_sent(
            lambda items: any(t.startswith("✅ 已记录 #2") for t in texts_to(items, LIAISON_ROOM)),
            since=mark,
            timeout=15,
        )

        mark = len(gateway.sent())
        gateway.say(ADMIN[0], "核查 城关镇 今天", room=OFFICE_ROOM)
        sent = gateway.wait_sent(
            lambda items: any(i["conversation_id"] == OFFICE_ROOM and i["kind"] == "file" for i in items),
            since=mark,
            timeout=60,  # the .xlsx is made by the report worker, a child process
        )
    finally:
        bot.stop()
        bot.close()
    today = datetime.now(TZ).date()
    office = [i for i in sent if i["conversation_id"] == OFFICE_ROOM]
    text = office[0]["text"].splitlines()
    assert text[0] == "🔎 回访核查：城关镇"
    assert text[2] == "收到 2 条：按时转发 1，迟报 0，未转发 1，补登 0，免转 0。"
    assert text[3:5] == ["未转发（1）：", f"#1「冒充公检法诈骗预警」{earlier.strftime('%Y-%m-%d %H:%M')} 推送"]
    files = [i for i in office if i["kind"] == "file"]
    assert [f["file_name"] for f in files] == [f"回访核查_城关镇_{today.isoformat()}.xlsx"]
    assert files[0]["size"] > 4000
    assert office.index(files[0]) == 1  # the file comes right after its text

    engine = make_engine(db_url)
    with session(engine) as s:
        audits = [(a.actor_id, a.detail) for a in s.exec(select(AuditLog).where(AuditLog.action == "verify"))]
    engine.dispose()
    assert audits == [(ADMIN[0], f"城关镇 {today.isoformat()}: 2 pushes")]
