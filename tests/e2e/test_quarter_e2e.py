"""End to end: the quarterly review (季点评) on the first working day after the quarter, through the real gateway.

The bot runs as a process whose clock is moved to Monday 2027-01-04 09:00, the first working day after Q4 2026 once
the office has entered 2027-01-01 as 休息日. It posts the review of Q4 against Q3 in the office group, with the .xlsx
and the chart, once: a restart on the same database posts nothing again.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from sqlmodel import select

from bot.domain.roster import import_roster, read_roster_file
from bot.operations.agenda import schedule_epoch
from bot.storage.db import make_engine, session
from bot.storage.models import CalendarDay, ScheduledRun
from tests.bot_process import ROOT, BotProcess, gateway_env
from tests.gateway_harness import Gateway, has_text, texts_to
from tests.reports.test_quarter import Q3, Q4, Q4_TEXT, local, record

pytestmark = pytest.mark.e2e

ADMIN = ("wxid_admin_chen", "陈静")
LIAISON_ROOM = "20301@chatroom"
OFFICE_ROOM = "20302@chatroom"
WAIT = 60.0
TITLE = "反诈预警转发季点评（2026年第4季度）"


@pytest.fixture(scope="module")
def gateway():
    gw = Gateway.start()
    gw.contact(*ADMIN)
    gw.room(LIAISON_ROOM, "全区反诈联络员群", [ADMIN[0]])
    gw.room(OFFICE_ROOM, "反诈办工作群", [ADMIN[0]])
    yield gw
    gw.stop()


@pytest.fixture
def history(db_url):
    """A district that ran through Q3 and Q4 2026, a bot that has been on since December, and 2027-01-01 entered
    as a day off (chinese-calendar does not know 2027)."""
    engine = make_engine(db_url)
    with session(engine) as s:
        import_roster(s, read_roster_file(ROOT / "content" / "examples" / "roster_example.csv"))
        s.add(CalendarDay(day=date(2027, 1, 1), working=False, set_by=ADMIN[0], set_at=local(2026, 12, 20, 10, 0)))
        schedule_epoch(s, now=local(2026, 12, 1, 8, 0))
        s.commit()
    record(engine, Q3 + Q4)
    yield engine
    engine.dispose()


def offset_to(moment: datetime) -> str:
    return str((moment - datetime.now(UTC)).total_seconds())


def test_the_review_reaches_the_office_group_once_with_its_files(gateway, history, db_url, tmp_path):
    env = gateway_env(
        gateway,
        db_url,
        tmp_path,
        admin=ADMIN[0],
        liaison_groups="全区反诈联络员群",
        office_group="反诈办工作群",
        RELAYBOT_SCHEDULE_CHECK_SECONDS="0.3",
        RELAYBOT_OUTAGE_NOTICE_MINUTES="0",
        RELAYBOT_CLOCK_OFFSET_SECONDS=offset_to(local(2027, 1, 4, 9, 0, 5)),
    )
    bot = BotProcess(env, tmp_path)
    try:
        mark = len(gateway.sent())
        bot.start(timeout=WAIT)
        sent = gateway.wait_sent(
            lambda items: any(i.get("file_name") == f"{TITLE}.png" for i in items), since=mark, timeout=WAIT
        )
        review = [t for t in texts_to(sent, OFFICE_ROOM) if t.startswith(f"📊 {TITLE}")]
        assert len(review) == 1 and review[0].splitlines()[: len(Q4_TEXT)] == Q4_TEXT
        files = [
            (i["kind"], i["file_name"]) for i in sent if i["conversation_id"] == OFFICE_ROOM and i["kind"] != "text"
        ]
        assert files == [("file", f"{TITLE}.xlsx"), ("image", f"{TITLE}.png")]
        bot.stop()

        # A restart a minute later on the same database: the stored run stops a second review. The answer to a
        # command sent after the restart comes after the schedule has been looked at (at start and every 0.3 s).
        bot.env["RELAYBOT_CLOCK_OFFSET_SECONDS"] = offset_to(local(2027, 1, 4, 9, 1))
        mark = len(gateway.sent())
        bot.start(timeout=WAIT)
        gateway.say(ADMIN[0], "报表 日", room=OFFICE_ROOM)
        again = gateway.wait_sent(has_text(OFFICE_ROOM, "反诈预警转发日报（1月4日）"), since=mark, timeout=WAIT)
        assert not [t for t in texts_to(again, OFFICE_ROOM) if TITLE in t]
        with session(history) as s:
            runs = s.exec(select(ScheduledRun).where(ScheduledRun.job == "quarterly")).all()
        assert [(r.due_at, r.state) for r in runs] == [(local(2027, 1, 4, 9, 0), "done")]
    except BaseException:
        print(bot.log())
        raise
    finally:
        bot.stop()
        bot.close()
