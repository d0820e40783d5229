"""The single-instance lock (bot/runtime/instance.py, issue 12 item 11): a lock file beside SQLite, an advisory lock
on PostgreSQL (the same tests run on whichever database the suite uses), released when the holder dies by kill -9;
a second `relaybot run` exits 2 naming the first; commands that read or only queue work keep working."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from bot.runtime.instance import AlreadyRunning, acquire, holder, lock_path
from bot.storage.db import session
from bot.storage.models import Group, GroupKind
from tests.bot_process import ROOT, relaybot

HOLD = """
import sys
from bot.runtime.instance import acquire
lock = acquire(sys.argv[1])
print("locked", flush=True)
sys.stdin.read()
"""


@pytest.fixture
def held(db_url):
    lock = acquire(db_url)
    yield lock
    lock.release()


def test_a_second_lock_on_the_same_database_is_refused_and_names_the_holder(db_url, held):
    with pytest.raises(AlreadyRunning) as refused:
        acquire(db_url, retry_seconds=0)
    assert f"pid={os.getpid()}" in refused.value.holder
    assert f"pid={os.getpid()}" in (holder(db_url) or "")
    held.release()
    assert holder(db_url) is None
    again = acquire(db_url, retry_seconds=0)  # free again after a clean release
    again.release()


def test_the_lock_of_a_process_killed_with_sigkill_does_not_block_the_restart(db_url, tmp_path):
    child = subprocess.Popen(
        [sys.executable, "-c", HOLD, db_url],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "locked"  # waits for the child to hold it
        with pytest.raises(AlreadyRunning) as refused:
            acquire(db_url, retry_seconds=0)
        assert f"pid={child.pid}" in refused.value.holder
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    lock = acquire(db_url, retry_seconds=30)  # the server may need a moment to notice the dropped session
    lock.release()
    path = lock_path(db_url)
    if path is not None:
        assert path.exists()  # the stale file stays and blocks nothing


def test_holder_only_looks(tmp_path):
    url = f"sqlite:///{tmp_path / 'nobot.db'}"
    assert holder(url) is None
    assert not (tmp_path / "nobot.db.lock").exists()  # doctor creates nothing
    assert lock_path("sqlite://") is None and acquire("sqlite://").held is False  # in memory: nothing to share


def _gateway_env(**extra: str) -> dict[str, str]:
    # Port 9 (discard): nothing listens. The lock is checked before any connection is tried.
    return {"WECHATY_PUPPET_SERVICE_ENDPOINT": "127.0.0.1:9", "WECHATY_PUPPET_SERVICE_TOKEN": "t", **extra}


def test_a_second_run_exits_2_with_the_reason_and_the_running_bots_pid(db_url, tmp_path, held):
    second = relaybot("run", db_url=db_url, cwd=tmp_path, **_gateway_env())
    assert second.returncode == 2, second.stdout + second.stderr
    assert "另一个机器人进程正在使用这个数据库" in second.stderr
    assert f"pid={os.getpid()}" in second.stderr
    assert "Traceback" not in second.stderr
    assert "无法连接微信网关" not in second.stderr  # it never got as far as the gateway

    console = relaybot("run", "--console", "--real-database", db_url=db_url, cwd=tmp_path, stdin="")
    assert console.returncode == 2, console.stdout + console.stderr
    assert f"pid={os.getpid()}" in console.stderr
    # A trial console works on a throwaway copy, which no bot holds: it runs beside the real bot.
    trial = relaybot("run", "--console", db_url=db_url, cwd=tmp_path, stdin="/quit\n")
    assert trial.returncode == 0, trial.stdout + trial.stderr


def test_reading_and_queueing_commands_work_while_a_bot_holds_the_lock(db_url, engine, tmp_path, held):
    with session(engine) as s:
        s.add(Group(room_id="liaison@chatroom", name="全区反诈联络员群", kind=GroupKind.LIAISON.value))
        s.commit()
    roster = ROOT / "content" / "examples" / "roster_example.csv"
    for args in (("roster", "import", str(roster)), ("push", "刷单"), ("status",), ("units",), ("roster", "show")):
        done = relaybot(*args, db_url=db_url, cwd=tmp_path)
        assert done.returncode == 0, (args, done.stdout, done.stderr)
    report = relaybot("report", "--day", "--out", str(tmp_path / "day.xlsx"), db_url=db_url, cwd=tmp_path)
    assert report.returncode == 0, report.stderr


def test_doctor_says_whether_a_bot_is_running(db_url, tmp_path):
    def instance_line() -> str:
        done = relaybot("doctor", "--timeout", "1", db_url=db_url, cwd=tmp_path, RELAYBOT_ADMIN_IDS="a")
        return next(line for line in done.stdout.splitlines() if "机器人" in line and "运行：" in line)

    assert instance_line() == "! 运行：没有机器人在运行这个数据库"
    lock = acquire(db_url)
    try:
        line = instance_line()
        assert line.startswith("✔ 运行：机器人正在运行（pid=") and f"pid={os.getpid()} " in line, line
    finally:
        lock.release()


def test_the_sqlite_lock_file_sits_beside_the_database(tmp_path):
    url = f"sqlite:///{tmp_path / 'data' / 'relaybot.db'}"
    assert lock_path(url) == tmp_path / "data" / "relaybot.db.lock"
    lock = acquire(url)
    try:
        text = (tmp_path / "data" / "relaybot.db.lock").read_text()
        assert text.startswith(f"pid={os.getpid()} host=")
    finally:
        lock.release()
