"""A full disk (issue 12 item 8), with a real SQLITE_FULL from the real engine (bot.storage.db's diag knob:
the file capped with PRAGMA max_page_count, every write needing new pages).

Nothing a person said is lost: messages that could not be recorded are kept in memory and replayed, in order and
with the time they were said, once writes work again; their chat hears once that they were kept (暂存), the
second channel once per outage, and the office that storage is back.
"""

from __future__ import annotations

import errno
import sqlite3
from datetime import UTC, datetime

import pytest
from sqlalchemy.exc import OperationalError
from sqlmodel import select

from bot.adapters.webhooks import WebhookNotifier
from bot.storage.db import DIAG_FULL_FILE, diag_full_knob, session
from bot.storage.guard import is_storage_full
from bot.storage.models import Confirmation, Unit
from tests.conftest import ADMIN, LI, LIAISON_ROOM, OFFICE_ROOM, WANG, on_postgres
from tests.runtime.test_second_channel import received, wait_for

KEPT = "⚠️ 系统存储已满，消息已暂存，恢复后自动补记"


@pytest.fixture
def robot(httpserver):
    httpserver.expect_request("/cgi-bin/webhook/send").respond_with_json({"errcode": 0, "errmsg": "ok"})
    return httpserver


@pytest.fixture
def disk(engine, tmp_path, monkeypatch):
    """fill() makes the bot's database full, free() gives the space back."""
    if on_postgres():
        pytest.skip("the page cap is SQLite's; PostgreSQL's DiskFull is covered by test_full_is_recognised")
    flag = tmp_path / "disk-full"
    monkeypatch.setenv(DIAG_FULL_FILE, str(flag))
    diag_full_knob(engine)

    class Disk:
        def fill(self) -> None:
            flag.touch()

        def free(self) -> None:
            flag.unlink()

    return Disk()


def confirmed(engine):
    with session(engine) as s:
        return sorted((s.get(Unit, c.unit_id).name, c.at.astimezone(UTC)) for c in s.exec(select(Confirmation)))


def texts_to(transport, chat_id):
    return [o.text for o in transport.sent if o.chat_id == chat_id]


async def push(bot, transport):
    await transport.say(ADMIN, "推送 刷单", room_id=OFFICE_ROOM)
    await bot.send_pending()
    transport.sent.clear()


async def test_confirmations_said_while_full_are_recorded_with_their_time_when_space_returns(
    bot, transport, clock, engine, disk, robot
):
    bot.notifier = WebhookNotifier("wecom", robot.url_for("/cgi-bin/webhook/send?key=K"))
    await push(bot, transport)
    disk.fill()
    said_at = []
    for who in (WANG, LI):
        said_at.append(clock.now.astimezone(UTC))
        await transport.say(who, "已转发", room_id=LIAISON_ROOM)
        clock.advance(minutes=1)
    assert confirmed(engine) == []
    assert [m.msg.sender for m in bot.units.storage.kept] == [WANG, LI]
    # The chat heard once, straight through the transport (the outbox cannot be written); the robot once.
    assert texts_to(transport, LIAISON_ROOM) == [KEPT]
    await wait_for(lambda: len(received(robot)) == 1)
    assert "数据库写不进去了" in received(robot)[0]

    await bot.check_health()  # the health round meets the same error: it must not crash, nor alert again
    clock.advance(minutes=5)
    assert await bot.replay_kept() == 0  # still full: nothing replayed, nothing lost
    assert len(bot.units.storage.kept) == 2

    disk.free()
    clock.advance(minutes=30)
    assert await bot.replay_kept() == 2
    assert await bot.replay_kept() == 0  # exactly once
    assert confirmed(engine) == [("东城街道", said_at[1]), ("城关镇", said_at[0])]
    await bot.send_pending()
    assert "✅ 存储已恢复，补记 2 条" in texts_to(transport, OFFICE_ROOM)
    await wait_for(lambda: len(received(robot)) == 2)
    assert received(robot)[1] == "✅ 存储已恢复，补记 2 条"
    assert not bot.units.storage.down


async def test_a_new_message_after_space_returns_comes_after_the_kept_ones(bot, transport, clock, engine, disk):
    await push(bot, transport)
    disk.fill()
    await transport.say(WANG, "已转发", room_id=LIAISON_ROOM)
    at_wang = clock.now.astimezone(UTC)
    disk.free()
    clock.advance(minutes=2)
    await transport.say(LI, "已转发", room_id=LIAISON_ROOM)  # replays Wang's first, then handles Li's
    assert confirmed(engine) == [("东城街道", clock.now.astimezone(UTC)), ("城关镇", at_wang)]
    assert not bot.units.storage.kept


async def test_a_second_chat_hears_once_too_and_the_bound_is_said(bot, transport, clock, engine, disk, robot):
    bot.notifier = WebhookNotifier("wecom", robot.url_for("/cgi-bin/webhook/send?key=K"))
    bot.units.storage.keep_max = 2
    await push(bot, transport)
    disk.fill()
    await transport.say(WANG, "已转发", room_id=LIAISON_ROOM)
    await transport.say(LI, "已转发", room_id=LIAISON_ROOM)
    await transport.say(ADMIN, "进度", room_id=OFFICE_ROOM)  # beyond the bound: counted, not kept, not told
    await transport.say(ADMIN, "进度", room_id=OFFICE_ROOM)
    assert texts_to(transport, LIAISON_ROOM) == [KEPT]
    # The office heard of the outage and of the bound (straight through the transport), and nothing else.
    office = texts_to(transport, OFFICE_ROOM)
    assert len(office) == 2 and "数据库写不进去了" in office[0] and "暂存的消息已满 2 条" in office[1]
    assert bot.units.storage.dropped == 2
    await wait_for(lambda: len(received(robot)) == 2)
    assert any("暂存的消息已满 2 条" in t for t in received(robot))
    disk.free()
    assert await bot.replay_kept() == 2
    await bot.send_pending()
    assert any("补记 2 条；另有 2 条" in t for t in texts_to(transport, OFFICE_ROOM))


async def test_the_health_round_survives_a_full_disk_and_alerts_once(bot, clock, disk, robot):
    bot.notifier = WebhookNotifier("wecom", robot.url_for("/cgi-bin/webhook/send?key=K"))
    bot.health.note_receive()
    disk.fill()
    for _ in range(3):
        clock.advance(minutes=1)
        bot.health.note_receive()
        await bot.check_health()  # used to raise OperationalError out of the job
    await wait_for(lambda: len(received(robot)) == 1)
    assert "数据库写不进去了" in received(robot)[0]
    assert bot.units.storage.down


def test_full_is_recognised():
    full = sqlite3.OperationalError("database or disk is full")
    full.sqlite_errorcode = 13  # type: ignore[attr-defined]
    assert is_storage_full(OperationalError("INSERT", {}, full))
    assert is_storage_full(OSError(errno.ENOSPC, "No space left on device"))
    assert not is_storage_full(sqlite3.OperationalError("database is locked"))
    assert not is_storage_full(OSError(errno.EACCES, "Permission denied"))
    psycopg = pytest.importorskip("psycopg")
    assert is_storage_full(OperationalError("INSERT", {}, psycopg.errors.DiskFull("could not extend file")))
    assert not is_storage_full(OperationalError("INSERT", {}, psycopg.errors.QueryCanceled("timeout")))


async def test_low_free_space_is_told_to_the_office_once_a_day(bot, transport, clock, robot):
    bot.notifier = WebhookNotifier("wecom", robot.url_for("/cgi-bin/webhook/send?key=K"))
    bot.settings.storage_min_free_mb = 1e12  # any real disk is "low" against a petabyte
    for _ in range(3):
        await bot.check_health()
        clock.advance(minutes=10)
    await bot.send_pending()
    told = [t for t in texts_to(transport, OFFICE_ROOM) if "磁盘空间不足" in t]
    assert len(told) == 1
    clock.advance(days=1)
    await bot.check_health()
    await bot.send_pending()
    assert len([t for t in texts_to(transport, OFFICE_ROOM) if "磁盘空间不足" in t]) == 2
    await wait_for(lambda: len(received(robot)) == 2)


def test_doctor_warns_of_low_free_space(settings, tmp_path):
    from bot.cli.doctor import Level, check_settings

    settings.storage_min_free_mb = 1e12
    low = [f for f in check_settings(settings, datetime.now(UTC)) if "所在磁盘只剩" in f.text]
    assert len(low) == 1 and low[0].level == Level.WARN and "截图文件夹" in low[0].text
    settings.storage_min_free_mb, settings.storage_min_free_percent = 0, 0
    assert not [f for f in check_settings(settings, datetime.now(UTC)) if "所在磁盘只剩" in f.text]
