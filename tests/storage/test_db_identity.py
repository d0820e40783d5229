"""The database file deleted or replaced under the running bot, and a start on a database that is not the one
the bot last ran on (issue 12 item 9)."""

from __future__ import annotations

import os
import shutil
from datetime import UTC

import pytest
from sqlalchemy.engine import make_url
from sqlmodel import select

from bot.adapters.webhooks import WebhookNotifier
from bot.runtime.storage_watch import StorageUnavailable
from bot.storage.db import session
from bot.storage.guard import Marker, identity_problem, read_marker
from bot.storage.models import Confirmation, Unit
from tests.bot_process import ROOT, relaybot
from tests.conftest import ADMIN, LI, LIAISON_ROOM, OFFICE_ROOM, WANG, on_postgres
from tests.runtime.test_second_channel import received, wait_for

sqlite_only = pytest.mark.skipif(on_postgres(), reason="an SQLite file is what can be deleted under the bot")


@pytest.fixture
def robot(httpserver):
    httpserver.expect_request("/cgi-bin/webhook/send").respond_with_json({"errcode": 0, "errmsg": "ok"})
    return httpserver


def db_file(engine):
    return make_url(str(engine.url)).database


def confirmed(engine):
    with session(engine) as s:
        return sorted((s.get(Unit, c.unit_id).name, c.at.astimezone(UTC)) for c in s.exec(select(Confirmation)))


@sqlite_only
async def test_a_deleted_database_file_stops_acknowledging_and_keeps_what_is_said(
    bot, transport, clock, engine, robot, tmp_path
):
    bot.notifier = WebhookNotifier("wecom", robot.url_for("/cgi-bin/webhook/send?key=K"))
    await transport.say(ADMIN, "推送 刷单", room_id=OFFICE_ROOM)
    await bot.send_pending()
    await transport.say(WANG, "已转发", room_id=LIAISON_ROOM)  # recorded; its ✅ 已记录 waits for a quiet spell
    aside = tmp_path / "moved-away.db"
    os.rename(db_file(engine), aside)  # as `rm` does for the path: the bot's open file lives on, unlinked
    transport.sent.clear()
    said_at = clock.now.astimezone(UTC)
    await transport.say(LI, "已转发", room_id=LIAISON_ROOM)
    clock.advance(minutes=5)
    with pytest.raises(StorageUnavailable):
        await bot.flush_acks()
    await bot.send_pending()
    texts = [o.text for o in transport.sent]
    assert not any("✅ 已记录" in t for t in texts)  # nothing is acknowledged into a deleted file
    assert [o.text for o in transport.sent if o.chat_id == LIAISON_ROOM] == [
        "⚠️ 系统数据库异常，消息已暂存，恢复后自动补记"
    ]
    assert any("被删除或替换" in o.text for o in transport.sent if o.chat_id == OFFICE_ROOM)
    await wait_for(lambda: len(received(robot)) == 1)
    assert "被删除或替换" in received(robot)[0]
    assert [k.msg.sender for k in bot.units.storage.kept] == [LI]

    os.rename(aside, db_file(engine))  # put back: the same file again, so what was kept is recorded
    assert await bot.replay_kept() == 1
    assert [name for name, _ in confirmed(engine)] == ["东城街道", "城关镇"]
    assert dict(confirmed(engine))["东城街道"] == said_at


@sqlite_only
async def test_the_health_round_notices_a_replaced_file_without_any_message(bot, engine, robot, tmp_path):
    bot.notifier = WebhookNotifier("wecom", robot.url_for("/cgi-bin/webhook/send?key=K"))
    copy = tmp_path / "copy.db"
    shutil.copy(db_file(engine), copy)
    os.replace(copy, db_file(engine))  # another file at the path
    await bot.check_health()
    await bot.check_health()
    await wait_for(lambda: len(received(robot)) == 1)
    assert "被删除或替换" in received(robot)[0] and bot.units.storage.reason == "replaced"


def test_identity_problems():
    marker = Marker(database_id="abc")
    assert identity_problem(None, "") == ""
    assert identity_problem(marker, "abc") == ""
    assert identity_problem(marker, "") == "missing"
    assert identity_problem(marker, "xyz") == "different"


@sqlite_only
def test_a_deleted_database_is_not_started_empty_until_restored_or_accepted(tmp_path):
    url = f"sqlite:///{tmp_path / 'data' / 'relaybot.db'}"
    roster = str(ROOT / "content" / "examples" / "roster_example.csv")
    assert relaybot("roster", "import", roster, db_url=url, cwd=tmp_path).returncode == 0
    first = relaybot("run", "--console", "--real-database", db_url=url, cwd=tmp_path, stdin="/quit\n")
    assert first.returncode == 0, first.stderr
    marker = read_marker(tmp_path / "data" / "relaybot.db.marker")
    assert marker is not None and marker.units == 6
    assert relaybot("db", "backup", "backup.db", db_url=url, cwd=tmp_path).returncode == 0

    (tmp_path / "data" / "relaybot.db").unlink()
    for suffix in ("-wal", "-shm"):
        (tmp_path / "data" / f"relaybot.db{suffix}").unlink(missing_ok=True)
    upgrade = relaybot("db", "upgrade", db_url=url, cwd=tmp_path)  # systemd's ExecStartPre
    assert upgrade.returncode == 2
    assert not (tmp_path / "data" / "relaybot.db").exists()  # it made no empty database
    assert "relaybot db accept-new" in upgrade.stderr and "6 个单位" in upgrade.stderr
    empty = relaybot("run", "--console", "--real-database", db_url=url, cwd=tmp_path, stdin="/quit\n")
    assert empty.returncode == 2 and "数据库不是机器人上次运行时用的那个" in empty.stderr

    shutil.copy(tmp_path / "backup.db", tmp_path / "data" / "relaybot.db")  # restored: it starts
    restored = relaybot("run", "--console", "--real-database", db_url=url, cwd=tmp_path, stdin="/quit\n")
    assert restored.returncode == 0, restored.stderr

    other = f"sqlite:///{tmp_path / 'other.db'}"
    assert relaybot("run", "--console", "--real-database", db_url=other, cwd=tmp_path, stdin="/quit\n").returncode == 0
    shutil.copy(tmp_path / "other.db", tmp_path / "data" / "relaybot.db")  # another bot's database
    swapped = relaybot("run", "--console", "--real-database", db_url=url, cwd=tmp_path, stdin="/quit\n")
    assert swapped.returncode == 2 and "数据库编号与上次不同" in swapped.stderr
    accepted = relaybot("db", "accept-new", db_url=url, cwd=tmp_path)
    assert accepted.returncode == 0 and "已确认使用现在的数据库" in accepted.stdout
    assert relaybot("run", "--console", "--real-database", db_url=url, cwd=tmp_path, stdin="/quit\n").returncode == 0
