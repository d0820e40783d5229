"""Trial runs keep off the real database, and doctor finds and removes what older ones left (issue 12 item 13)."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta

from sqlalchemy import inspect
from sqlmodel import SQLModel, select

from bot.cli.console_traces import Traces, find_traces, remove_traces
from bot.runtime.health import LAST_RECEIVE
from bot.storage.db import make_engine, session
from bot.storage.models import (
    Alert,
    AuditLog,
    BotState,
    Confirmation,
    Group,
    GroupKind,
    Liaison,
    Membership,
    Miss,
    Outbox,
    OutboxState,
    Push,
    PushState,
    ScheduledRun,
    Unit,
)
from tests.bot_process import ROOT, gateway_env, relaybot
from tests.e2e.test_e2e import ADMIN, LIAISON_ROOM, OFFICE_ROOM, WANG, gateway  # noqa: F401  (fixture)
from tests.gateway_harness import has_text, wait_until

ROSTER = str(ROOT / "content" / "examples" / "roster_example.csv")
SESSION = (
    "\n".join(
        [
            "/room 反诈办工作群（控制台）",
            "推送 刷单",
            "/room 联络员群（控制台）",
            "/as 王芳-城关镇",
            "已转发",
            "/as 吴刚",
            "已转发",
            "/as 反诈办管理员",
            "/room 反诈办工作群（控制台）",
            "进度",
            "/quit",
        ]
    )
    + "\n"
)


def _rows(db_url) -> dict[str, list[tuple]]:
    """Every row of every table, in a stable order: the database's content, whatever the backend."""
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            names = set(inspect(conn).get_table_names())
            return {
                table.name: sorted(tuple(map(repr, row)) for row in conn.execute(table.select()))
                for table in SQLModel.metadata.sorted_tables
                if table.name in names
            }
    finally:
        engine.dispose()


def _file_digest(db_url) -> str | None:
    if not db_url.startswith("sqlite:///"):
        return None
    return hashlib.sha256(open(db_url.removeprefix("sqlite:///"), "rb").read()).hexdigest()


def _import_roster(db_url, tmp_path):
    imported = relaybot("roster", "import", ROSTER, db_url=db_url, cwd=tmp_path)
    assert imported.returncode == 0, imported.stderr


def test_a_console_session_leaves_the_real_database_as_it_was(db_url, tmp_path):
    _import_roster(db_url, tmp_path)
    before, digest = _rows(db_url), _file_digest(db_url)
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    result = relaybot("run", "--console", db_url=db_url, cwd=tmp_path, stdin=SESSION, TMPDIR=str(scratch))
    assert result.returncode == 0, result.stderr
    assert "试运行：用的是临时数据库" in result.stdout and "退出后删除；真实数据库不会有任何改动" in result.stdout
    assert "已确认 2/6" in result.stdout  # the copy has the real roster: the trial is useful
    assert _rows(db_url) == before
    if digest is not None:
        assert _file_digest(db_url) == digest  # byte for byte
    assert list(scratch.iterdir()) == []  # the throwaway copy is gone
    # And the real database has nothing for the doctor to find.
    engine = make_engine(db_url)
    with session(engine) as s:
        assert find_traces(s, now=datetime.now(UTC)) == Traces()
    engine.dispose()


def test_a_moved_clock_run_writes_no_future_rows_into_the_real_database(db_url, tmp_path):
    _import_roster(db_url, tmp_path)
    before = _rows(db_url)
    script = "/room 反诈办工作群（控制台）\n推送 刷单\n/wait 3\n/quit\n"  # 3 s at 3600x: three hours of schedule
    result = relaybot(
        "run", "--console", "--clock", "2030-01-07 09:00", "--speed", "3600", db_url=db_url, cwd=tmp_path, stdin=script
    )
    assert result.returncode == 0, result.stderr
    assert "【反诈预警 #1】" in result.stdout and "试运行：用的是临时数据库" in result.stdout
    assert _rows(db_url) == before
    engine = make_engine(db_url)
    with session(engine) as s:
        assert find_traces(s, now=datetime.now(UTC)).future == []
    engine.dispose()


def test_a_moved_clock_run_on_wechat_leaves_the_real_database_as_it_was(gateway, db_url, tmp_path):  # noqa: F811
    """`relaybot run --clock ... --speed ...` through the real gateway: a push and a confirmation, then stop."""
    _import_roster(db_url, tmp_path)
    before = _rows(db_url)
    env = {k: v for k, v in os.environ.items() if k not in ("TOKEN", "ENDPOINT") and not k.startswith("RELAYBOT_")}
    env.update(
        gateway_env(
            gateway, db_url, tmp_path, admin=ADMIN[0], liaison_groups="全区反诈联络员群", office_group=OFFICE_ROOM
        )
    )
    env["PYTHONPATH"] = str(ROOT)
    log = tmp_path / "bot.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "bot", "run", "--clock", "2030-01-07 09:00", "--speed", "60"],
            cwd=tmp_path,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_until(
            lambda: log.read_text(errors="replace"),
            lambda text: "ready as" in text or proc.poll() is not None,
            120,
            "the bot to log in",
        )
        assert "试运行：用的是临时数据库" in log.read_text(), log.read_text()
        mark = len(gateway.sent())
        gateway.say(ADMIN[0], "推送 刷单", room=OFFICE_ROOM)
        gateway.wait_sent(has_text(LIAISON_ROOM, "【反诈预警 #1】"), since=mark, timeout=60)
        gateway.say(WANG[0], "已转发", room=LIAISON_ROOM)
        gateway.wait_sent(has_text(LIAISON_ROOM, "已记录 #1"), since=mark, timeout=60)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    assert _rows(db_url) == before  # no push, no confirmation, no 2030 dates, no health times
    engine = make_engine(db_url)
    with session(engine) as s:
        assert find_traces(s, now=datetime.now(UTC)) == Traces()
    engine.dispose()


def test_the_real_database_only_when_asked_with_a_warning_and_doctor_cleans_up(db_url, tmp_path):
    _import_roster(db_url, tmp_path)
    before = _rows(db_url)
    result = relaybot("run", "--console", "--real-database", db_url=db_url, cwd=tmp_path, stdin=SESSION)
    assert result.returncode == 0, result.stderr
    assert "⚠ 注意：--real-database：本次试运行写入真实数据库" in result.stderr
    assert "已确认 2/6" in result.stdout

    doctor = relaybot("doctor", "--timeout", "1", db_url=db_url, cwd=tmp_path)
    found = [line for line in doctor.stdout.splitlines() if line.startswith("✘ 试运行：")]
    assert len(found) == 1, doctor.stdout
    assert "名联络员绑定到了 console- 身份" in found[0] and "2 条在 console- 群里的确认" in found[0]
    assert "relaybot doctor --fix-console-traces" in found[0]

    fixed = relaybot("doctor", "--timeout", "1", "--fix-console-traces", db_url=db_url, cwd=tmp_path)
    assert "已清除控制台痕迹：" in fixed.stdout and "推送 #1 已标为撤回（没有删除）。" in fixed.stdout, fixed.stdout
    assert "试运行" not in fixed.stdout.split("已标为撤回", 1)[1]  # the checks after the fix find nothing
    after = _rows(db_url)
    # The roster, the groups and the liaisons' bindings are as before the session.
    for table in ("unit", "liaison", "group", "membership", "confirmation", "outbox", "miss", "chatnote"):
        assert after.get(table) == before.get(table), table
    engine = make_engine(db_url)
    with session(engine) as s:
        assert [p.state for p in s.exec(select(Push))] == [PushState.WITHDRAWN.value]
        assert not find_traces(s, now=datetime.now(UTC)).removable()
    engine.dispose()


def test_the_fix_removes_exactly_the_console_traces(engine, roster):
    now = datetime.now(UTC)
    future = now + timedelta(days=30)
    with session(engine) as s:
        wang, wu = (s.exec(select(Liaison).where(Liaison.name == n)).one() for n in ("王芳", "吴刚"))
        unit = s.get(Unit, wang.unit_id)
        # Real data: a bound liaison, a served room, a push that reached it, a confirmation, a queued reply.
        real_room = Group(room_id="real@chatroom", name="全区反诈联络员群", kind=GroupKind.LIAISON.value)
        alert = Alert(case_type="刷单返利", title="t", text="x", created_at=now)
        s.add_all([real_room, alert])
        s.flush()
        real_push = Push(alert_id=alert.id, created_at=now, deadline=future, created_by="admin")
        console_push = Push(alert_id=alert.id, created_at=now, deadline=future, created_by="admin")
        s.add_all([real_push, console_push])
        s.flush()
        s.add_all(
            [
                Membership(room_id="real@chatroom", contact_id=wang.contact_id, seen_at=now),
                Confirmation(push_id=real_push.id, unit_id=unit.id, at=now, method="text", room_id="real@chatroom"),
                Outbox(
                    created_at=now - timedelta(hours=2),
                    chat_kind="room",
                    chat_id="real@chatroom",
                    push_id=real_push.id,
                    state=OutboxState.SENT.value,
                    sent_at=now - timedelta(hours=1),
                ),
                Outbox(created_at=now - timedelta(hours=2), chat_kind="room", chat_id="real@chatroom", text="reply"),
                AuditLog(at=future, action="push", detail="typed with a wrong clock: listed, not removed"),
            ]
        )
        # Console traces.
        wu.contact_id, wu.bound_at = "console-6", now
        s.add(wu)
        s.add_all(
            [
                Group(room_id="console-liaison@chatroom", name="联络员群（控制台）", kind=GroupKind.LIAISON.value),
                Membership(room_id="console-liaison@chatroom", contact_id="console-6", seen_at=now),
                Confirmation(
                    push_id=real_push.id, unit_id=wu.unit_id, at=now, method="text", room_id="console-liaison@chatroom"
                ),
                Outbox(
                    created_at=now,
                    chat_kind="room",
                    chat_id="console-liaison@chatroom",
                    push_id=console_push.id,
                    state=OutboxState.SENT.value,
                    sent_at=now,
                ),
                Outbox(created_at=now, chat_kind="room", chat_id="console-office@chatroom", text="进度"),
                Miss(push_id=console_push.id, unit_id=unit.id, deadline=now),
                BotState(key=LAST_RECEIVE, value=now.isoformat(), updated_at=now),
                ScheduledRun(job="remind", due_at=future, state="done", ran_at=future),
            ]
        )
        s.commit()
        real_ids = (real_push.id, console_push.id)

    with session(engine) as s:
        found = find_traces(s, now=now + timedelta(minutes=1))
        assert (found.liaisons, found.groups, found.memberships, found.outbox, found.confirmations) == (1, 1, 1, 2, 1)
        assert found.pushes == [real_ids[1]] and found.misses == 1 and found.health == [LAST_RECEIVE]
        assert ("auditlog", "at", 1) in found.future and ("scheduledrun", "due_at", 1) in found.future
        assert found.serious()
        remove_traces(s, now=now + timedelta(minutes=1))
        s.commit()

    with session(engine) as s:
        assert s.get(Liaison, wu.id).contact_id is None and s.get(Liaison, wu.id).bound_at is None
        assert s.get(Liaison, wang.id).contact_id == wang.contact_id  # a real binding stays
        assert [g.room_id for g in s.exec(select(Group))] == ["real@chatroom"]
        assert [m.room_id for m in s.exec(select(Membership))] == ["real@chatroom"]
        assert [c.room_id for c in s.exec(select(Confirmation))] == ["real@chatroom"]
        assert sorted(o.chat_id for o in s.exec(select(Outbox))) == ["real@chatroom", "real@chatroom"]
        assert s.get(Push, real_ids[0]).state == PushState.OPEN.value
        assert s.get(Push, real_ids[1]).state == PushState.WITHDRAWN.value  # marked, not deleted
        assert s.exec(select(Miss)).all() == []
        assert s.get(BotState, LAST_RECEIVE) is None
        assert s.exec(select(ScheduledRun)).all() == []
        assert any(a.detail.startswith("typed with a wrong clock") for a in s.exec(select(AuditLog)))  # listed only
        assert any(a.action == "console_traces_removed" for a in s.exec(select(AuditLog)))
        again = find_traces(s, now=now + timedelta(minutes=2))
        assert not again.removable() and again.future == [("auditlog", "at", 1)]
