"""One bot per database, and the window a stopped bot could not hear, through the real Wechaty gateway (issue 12
item 11): a second bot process exits at once (code 2, naming the first) and the first loses none of 100
confirmations; after a kill -9 and a restart each liaison group hears once which window to repeat 已转发 for."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import Counter
from datetime import datetime

import pytest

from bot.clock import real_clock
from bot.runtime.outage import HEARD_UNTIL
from tests.bot_process import ROOT, BotProcess, gateway_env
from tests.conftest import TZ
from tests.e2e.test_faults_e2e import (
    ADMIN,
    OFFICE_ROOM,
    Db,
    liaison_id,
    pushed,
    setup_people,
    start_bot,
    texts_to,
    unit_name,
)
from tests.gateway_harness import Gateway, wait_until

pytestmark = pytest.mark.e2e

NOTICE = "机器人离线，这段时间的“已转发”请重发"


@pytest.fixture
def gateway():
    gw = Gateway.start()
    yield gw
    gw.stop()


@pytest.fixture
def db(db_url):
    handle = Db(db_url)
    yield handle
    handle.engine.dispose()


def test_a_second_bot_on_the_same_database_exits_2_and_the_first_loses_nothing(
    gateway, tmp_path, db_url, db, processes
):
    units, room = 100, "51001@chatroom"
    setup_people(gateway, tmp_path, db_url, units)
    gateway.room(room, "全区反诈联络员群", [ADMIN, *(liaison_id(i) for i in range(1, units + 1))])
    first = start_bot(processes, gateway, tmp_path, db_url, "全区反诈联络员群")
    gateway.say(ADMIN, "推送 刷单", room=OFFICE_ROOM)
    gateway.wait_sent(lambda items: pushed(items, room) == 1, timeout=30)

    env = gateway_env(
        gateway, db_url, tmp_path, admin=ADMIN, liaison_groups="全区反诈联络员群", office_group=OFFICE_ROOM
    )
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("RELAYBOT_", "WECHATY_"))}
    began = time.monotonic()
    second = subprocess.run(
        [sys.executable, "-m", "bot", "run"],
        cwd=tmp_path,
        env={**clean, **env, "PYTHONPATH": str(ROOT)},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )
    print(f"the second bot exited after {time.monotonic() - began:.1f} s")
    assert second.returncode == 2, second.stdout + second.stderr
    assert "另一个机器人进程正在使用这个数据库" in second.stderr
    assert first.process is not None and f"pid={first.process.pid} " in second.stderr
    assert "ready as" not in second.stderr + second.stdout

    for i in range(1, units + 1):
        gateway.say(liaison_id(i), "已转发", room=room)
    wait_until(db.confirmed, lambda c: len(c) == units, 120, "every confirmation to be stored")
    assert db.confirmed() == Counter({unit_name(i): 1 for i in range(1, units + 1)})
    assert "lost the Wechaty event stream" not in first.log()
    assert first.process.poll() is None

    mark = len(gateway.sent())
    gateway.say(ADMIN, "进度", room=OFFICE_ROOM)
    progress = gateway.wait_sent(lambda items: texts_to(items, OFFICE_ROOM), since=mark, timeout=30)
    assert "已确认 100/100" in texts_to(progress, OFFICE_ROOM)[-1]


def _local(moment: datetime) -> str:
    return f"{moment.astimezone(TZ):%H:%M}"


def test_after_a_kill_9_each_liaison_group_hears_the_window_once(gateway, tmp_path, db_url, db, processes):
    rooms = {"51011@chatroom": "联络员一群", "51012@chatroom": "联络员二群"}
    setup_people(gateway, tmp_path, db_url, 4)
    for k, (room_id, name) in enumerate(rooms.items()):
        gateway.room(room_id, name, [ADMIN, liaison_id(2 * k + 1), liaison_id(2 * k + 2)])
    # The bot's clock on a Thursday morning (a working day), whatever the real time is.
    offset = (datetime(2026, 11, 26, 9, 12, tzinfo=TZ) - real_clock()).total_seconds()
    groups = ",".join(rooms.values())
    bot = start_bot(processes, gateway, tmp_path, db_url, groups, RELAYBOT_CLOCK_OFFSET_SECONDS=str(offset))
    heard = db.state(HEARD_UNTIL)
    assert heard is not None  # written when it connected
    bot.kill()
    before = datetime.fromisoformat(heard)
    mark = len(gateway.sent())

    # Restarted, by its clock eight minutes later.
    later = BotProcess(
        gateway_env(
            gateway,
            db_url,
            tmp_path,
            admin=ADMIN,
            liaison_groups=groups,
            office_group=OFFICE_ROOM,
            RELAYBOT_CLOCK_OFFSET_SECONDS=str(offset + 8 * 60),
        ),
        tmp_path,
    )
    processes.append(later)
    later.start(timeout=90)
    sent = gateway.wait_sent(
        lambda items: all(any(NOTICE in t for t in texts_to(items, r)) for r in rooms), since=mark, timeout=30
    )
    after = datetime.fromisoformat(db.state(HEARD_UNTIL) or "")
    assert (after - before).total_seconds() >= 8 * 60
    line = f"{_local(before)}–{_local(after)} {NOTICE}"
    for room_id in rooms:
        assert [t for t in texts_to(sent, room_id) if NOTICE in t] == [line]
    assert not any(NOTICE in t for t in texts_to(sent, OFFICE_ROOM))

    # A clean restart soon after: the window is not announced again. The notice would be queued at start, before
    # the admin's 进度 reply: once the reply is there, nothing more is coming.
    assert later.stop() == 0
    mark = len(gateway.sent())
    later.start(timeout=90)
    gateway.say(ADMIN, "进度", room=OFFICE_ROOM)
    gateway.wait_sent(lambda items: texts_to(items, OFFICE_ROOM), since=mark, timeout=30)
    assert not any(NOTICE in t for r in rooms for t in texts_to(gateway.sent(mark), r))
