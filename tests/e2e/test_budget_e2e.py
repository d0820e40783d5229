"""End to end (issue 12 item 2): a stranger writing to the bot over and over, privately and in a liaison group,
through the real Wechaty gateway, cannot spend the office's daily budget nor hold up the admin's push."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import col, select

from bot.storage.db import make_engine, session
from bot.storage.models import Outbox, OutboxState, Priority
from tests.bot_process import ROOT, BotProcess, gateway_env, relaybot
from tests.gateway_harness import Gateway, has_text, texts_to, wait_until

pytestmark = pytest.mark.e2e  # the bot as a process against the real Node gateway

ADMIN = ("wxid_admin_chen", "陈静")
WANG = ("wxid_wangfang", "王芳")
STRANGER = ("wxid_passerby", "路人甲")
LIAISON_ROOM = "20101@chatroom"
OFFICE_ROOM = "20102@chatroom"
HELP = "联络员请将推送转发到本单位内部群"
REFUSED = "该指令仅限反诈办管理员使用。"


@pytest.fixture
def gateway():
    gw = Gateway.start()
    for contact_id, name in (ADMIN, WANG, STRANGER):
        gw.contact(contact_id, name)
    gw.room(LIAISON_ROOM, "全区反诈联络员群", [ADMIN[0], WANG[0], STRANGER[0]])
    gw.room(OFFICE_ROOM, "反诈办工作群", [ADMIN[0]])
    yield gw
    gw.stop()


def offset_to(local_time: datetime) -> str:
    return str((local_time - datetime.now(UTC)).total_seconds())


def test_30_messages_from_a_stranger_get_one_answer_and_leave_the_budget_to_the_office(
    gateway, tmp_path, db_url, processes
):
    imported = relaybot(
        "roster", "import", str(ROOT / "content" / "examples" / "roster_example.csv"), db_url=db_url, cwd=tmp_path
    )
    assert imported.returncode == 0, imported.stderr
    env = gateway_env(
        gateway,
        db_url,
        tmp_path,
        admin=ADMIN[0],
        liaison_groups="全区反诈联络员群",
        office_group=OFFICE_ROOM,
        # A small budget, and a pace at which 30 answers would form a queue in front of the push.
        RELAYBOT_DAILY_SEND_BUDGET="8",
        RELAYBOT_STRANGER_REPLY_BUDGET="3",
        RELAYBOT_SEND_SPACING_SECONDS="0.3",
        # The bot's day: a Thursday afternoon, nowhere near midnight or a scheduled job.
        RELAYBOT_CLOCK_OFFSET_SECONDS=offset_to(datetime(2026, 11, 26, 14, 0, tzinfo=ZoneInfo("Asia/Shanghai"))),
    )
    bot = BotProcess(env, tmp_path)
    processes.append(bot)
    bot.start(timeout=60)
    mark = len(gateway.sent())

    for i in range(30):
        if i % 2:
            gateway.say(STRANGER[0], "帮助")
        else:
            gateway.say(STRANGER[0], ("帮助", "推送 刷单", "哈哈哈 ？？")[i // 2 % 3], room=LIAISON_ROOM)
    gateway.say(ADMIN[0], "推送 刷单", room=OFFICE_ROOM)
    sent = gateway.wait_sent(
        lambda items: has_text(OFFICE_ROOM, "#1")(items) and has_text(LIAISON_ROOM, "【反诈预警 #1】")(items),
        since=mark,
        timeout=60,
    )
    engine = make_engine(db_url)
    try:

        def unsent() -> int:
            # Pending, or handed to the gateway and not yet recorded as sent (on a loaded machine the gateway may
            # have it well before the bot's database does).
            waiting = (OutboxState.PENDING.value, OutboxState.SENDING.value)
            with session(engine) as s:
                return len(s.exec(select(Outbox.id).where(col(Outbox.state).in_(waiting))).all())

        wait_until(unsent, lambda n: n == 0, 60, "the outbox to drain")
        sent = gateway.sent(mark)
        answers = [t for t in texts_to(sent, STRANGER[0]) + texts_to(sent, LIAISON_ROOM) if HELP in t or REFUSED in t]
        assert len(answers) == 1, answers  # one answer an hour, however often he writes
        assert not [t for t in texts_to(sent, OFFICE_ROOM) if "达到每日上限" in t]
        with session(engine) as s:
            rows = s.exec(select(Outbox).where(Outbox.state == OutboxState.SENT.value)).all()
        budgeted = [r.text[:20] for r in rows if r.priority in (int(Priority.REPLY), int(Priority.BROADCAST))]
        assert len(budgeted) == 2, budgeted  # the office's answer and the push: the stranger spent none of it
        assert sum(r.priority == int(Priority.COURTESY) for r in rows) == 1
    finally:
        engine.dispose()
