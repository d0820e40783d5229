"""Runtime health with the in-memory transport and a fake clock: the self-check send and its echo, the receive
check, connection alerts once per outage, sending held while the link is down, and health_snapshot()."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

import pytest
from sqlmodel import select

from bot.runtime.app import build_bot
from bot.runtime.health import _duration, health_snapshot
from bot.storage.db import session
from bot.storage.models import BotState, Outbox
from bot.transport.base import ChatKind, Outgoing, SendError
from bot.transport.memory import MemoryTransport
from tests.conftest import ADMIN, LIAISON_ROOM, OFFICE_ROOM, WANG, ZHAO, add_rooms


class EchoingTransport(MemoryTransport):
    """Echoes each send back to the sink, as the Wechaty gateway does; can be told to fail or to stay silent."""

    echo: bool = True
    echo_first: bool = True  # the echo overtakes the send's answer (it does on the real gateway, sometimes)
    fail: SendError | None = None

    async def send(self, out: Outgoing) -> str | None:
        if self.fail is not None:
            raise self.fail
        message_id = await super().send(out)
        if self.echo and self.sink is not None:
            echo = self.sink.on_echo(message_id, out.chat_id, out.text)
            if self.echo_first:
                await echo
            else:
                asyncio.get_running_loop().create_task(echo)
        return message_id


class Robot:
    """The second channel, recording what it was told."""

    def __init__(self) -> None:
        self.texts: list[str] = []

    async def send(self, text: str) -> bool:
        self.texts.append(text)
        return True


@pytest.fixture
def transport() -> EchoingTransport:
    return add_rooms(EchoingTransport(bot_id="bot-self"))


@pytest.fixture
def robot(bot) -> Robot:
    bot.notifier = Robot()
    bot.settings.self_check_target = "filehelper"
    return bot.notifier


async def settle() -> None:
    """Let the alert tasks the bot started run."""
    for _ in range(5):
        await asyncio.sleep(0)


async def eventually(predicate, timeout: float = 3.0) -> None:
    for _ in range(int(timeout / 0.01)):
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("timed out")


def snapshot(bot):
    with session(bot.engine) as s:
        return health_snapshot(s)


def self_checks(transport):
    return [o for o in transport.sent if o.text.startswith("🤖 机器人自检")]


# ---- the self-check send -----------------------------------------------------------------------------------


async def test_self_check_really_sends_to_the_target_outside_the_outbox_and_records_it(bot, transport, clock, robot):
    result = await bot.health.self_check()
    assert result is not None and result["send_ok"] and result["echo_ok"] is True
    [sent] = transport.sent
    assert (sent.chat_kind, sent.chat_id) == (ChatKind.PRIVATE, "filehelper")
    assert sent.text.startswith("🤖 机器人自检 09:00（") and sent.text.endswith("）")
    with session(bot.engine) as s:
        assert s.exec(select(Outbox)).all() == []  # not queued, so not counted against the daily budget
    snap = snapshot(bot)
    assert snap["last_send_ok_at"] == clock.now
    assert snap["last_receive_at"] == clock.now  # the echo
    assert snap["self_check"] == {
        "at": clock.now,
        "target": "filehelper",
        "send_ok": True,
        "echo_ok": True,
        "detail": "",
    }
    await settle()
    assert robot.texts == []


async def test_an_echo_after_the_send_returned_is_matched_too(bot, transport, clock, robot):
    transport.echo_first = False
    await bot.health.self_check()
    await eventually(lambda: snapshot(bot)["self_check"]["echo_ok"] is True)


async def test_a_room_name_as_target_sends_into_that_room(bot, transport, robot):
    bot.settings.self_check_target = "反诈办工作群"
    await bot.health.self_check()
    [sent] = transport.sent
    assert (sent.chat_kind, sent.chat_id) == (ChatKind.ROOM, OFFICE_ROOM)


async def test_self_check_runs_at_its_interval_and_a_restart_does_not_repeat_it(
    bot, transport, clock, robot, settings, engine
):
    await bot.check_health()
    assert len(self_checks(transport)) == 1
    clock.advance(minutes=30)
    await bot.check_health()
    assert len(self_checks(transport)) == 1
    clock.advance(minutes=31)
    await bot.check_health()
    assert len(self_checks(transport)) == 2

    # A restart ten minutes later remembers when the last self-check was.
    await bot.stop()
    again = build_bot(settings, transport, engine=engine, clock=clock, send_loop=False)
    await again.start()
    clock.advance(minutes=10)
    await again.check_health()
    assert len(self_checks(transport)) == 2
    clock.advance(minutes=51)
    await again.check_health()
    assert len(self_checks(transport)) == 3
    await again.stop()


async def test_no_target_or_zero_minutes_means_no_self_check(bot, transport, clock, robot):
    bot.settings.self_check_minutes = 0
    await bot.check_health()
    bot.settings.self_check_minutes = 60
    bot.settings.self_check_target = ""
    await bot.check_health()
    assert transport.sent == []


async def test_no_self_check_while_the_link_is_down_or_sending_is_paused(bot, transport, clock, robot):
    await bot.on_connection("lost", "stream ended")
    assert await bot.health.self_check() is None
    await bot.on_connection("restored", "")
    with session(bot.engine) as s:
        s.add(
            BotState(
                key="send_backoff_until", value=(clock.now + timedelta(minutes=5)).isoformat(), updated_at=clock.now
            )
        )
        s.commit()
    assert await bot.health.self_check() is None  # WeChat said "too frequent": no probe now
    assert transport.sent == []
    clock.advance(minutes=6)
    assert (await bot.health.self_check())["send_ok"]


async def test_a_failing_self_check_is_told_once_and_its_recovery_once(bot, transport, clock, robot):
    start = clock.now
    transport.fail = SendError("sending to filehelper failed: GRPCError(UNKNOWN)")
    await bot.check_health()
    await settle()
    assert len(robot.texts) == 1 and "自检发送失败（发往 filehelper）" in robot.texts[0]
    clock.advance(minutes=60)
    await bot.check_health()  # fails again: same outage, nothing more said
    await settle()
    assert len(robot.texts) == 1
    snap = snapshot(bot)
    assert snap["send_down_since"] == start and snap["last_send_ok_at"] is None
    assert snap["self_check"]["send_ok"] is False and "GRPCError" in snap["self_check"]["detail"]
    with session(bot.engine) as s:
        assert s.get(BotState, "send_backoff_until") is None  # the outbox is not paused by a self-check

    transport.fail = None
    clock.advance(minutes=60)
    await bot.check_health()
    await settle()
    assert robot.texts[1:] == ["✅ 反诈联络员群助手自检发送已恢复正常（中断约 2 小时）。"]
    assert snapshot(bot)["send_down_since"] is None


# ---- the receive check ---------------------------------------------------------------------------------------


async def test_no_echo_and_nothing_received_is_told_once_and_the_next_message_ends_it(bot, transport, clock, robot):
    bot.settings.self_check_echo_seconds = 60
    transport.echo = False
    sent_at = clock.now
    await bot.check_health()
    clock.advance(seconds=59)
    await bot.check_health()
    await settle()
    assert robot.texts == []  # still within the time allowed for the echo
    clock.advance(seconds=2)
    await bot.check_health()
    await settle()
    assert robot.texts == [
        ("⚠️ 反诈联络员群助手发出自检消息后 60 秒内什么也没收到，可能收不到群消息（确认无法记录）。请检查微信网关。")
    ]
    snap = snapshot(bot)
    assert snap["receive_down_since"] == sent_at
    assert snap["self_check"]["echo_ok"] is False and "没有收到" in snap["self_check"]["detail"]

    clock.advance(minutes=60)
    await bot.check_health()  # the next self-check: no echo again, same outage
    clock.advance(seconds=61)
    await bot.check_health()
    await settle()
    assert len(robot.texts) == 1

    clock.advance(minutes=3)
    await transport.say(WANG, "请问今天有推送吗", room_id=LIAISON_ROOM)
    await bot.check_health()
    await settle()
    assert robot.texts[1:] == ["✅ 反诈联络员群助手又能收到消息了（中断约 1 小时 5 分钟）。"]
    snap = snapshot(bot)
    assert snap["receive_down_since"] is None and snap["last_receive_at"] == clock.now


async def test_no_echo_but_other_messages_arriving_is_not_an_outage(bot, transport, clock, robot):
    transport.echo = False
    await bot.check_health()
    clock.advance(seconds=10)
    await transport.say(WANG, "收到", room_id=LIAISON_ROOM)
    clock.advance(seconds=60)
    await bot.check_health()
    await settle()
    assert robot.texts == []
    check = snapshot(bot)["self_check"]
    assert check["echo_ok"] is False and "收到了其他消息" in check["detail"]


async def test_echo_seconds_zero_checks_sending_only(bot, transport, clock, robot):
    bot.settings.self_check_echo_seconds = 0
    transport.echo = False
    await bot.check_health()
    clock.advance(minutes=10)
    await bot.check_health()
    await settle()
    assert robot.texts == [] and snapshot(bot)["self_check"]["echo_ok"] is None


async def test_every_received_message_moves_last_receive_at(bot, transport, clock):
    assert snapshot(bot)["last_receive_at"] is None
    await transport.say(ZHAO, "好的", room_id=LIAISON_ROOM)
    first = clock.now
    await bot.check_health()
    assert snapshot(bot)["last_receive_at"] == first
    clock.advance(seconds=30)
    await transport.say(ZHAO, "好的", room_id=LIAISON_ROOM)
    await bot.stop()  # saved on the way out too
    assert snapshot(bot)["last_receive_at"] == clock.now


# ---- the connection ------------------------------------------------------------------------------------------


def office_notices(bot):
    with session(bot.engine) as s:
        return [r.text for r in s.exec(select(Outbox).where(Outbox.chat_id == OFFICE_ROOM))]


async def test_a_short_connection_blip_tells_nobody(bot, clock, robot):
    await bot.on_connection("lost", "StreamTerminatedError")
    clock.advance(seconds=90)
    await bot.check_health()
    await bot.on_connection("restored", "")
    await bot.check_health()
    await settle()
    assert robot.texts == [] and office_notices(bot) == []


async def test_a_long_outage_is_told_once_and_its_end_once(bot, clock, robot):
    lost_at = clock.now
    await bot.on_connection("lost", "StreamTerminatedError")
    assert snapshot(bot)["link_down_since"] == lost_at
    clock.advance(minutes=2)
    await bot.check_health()
    for _ in range(6):  # reconnect attempts keep failing
        clock.advance(seconds=30)
        await bot.check_health()
    await bot.on_connection("lost", "again")
    await settle()
    assert robot.texts == [
        (
            "⚠️ 反诈联络员群助手与微信网关的连接断开了（已 2 分钟），正在自动重连。排队的消息不会丢，"
            "恢复后继续发送；断开期间群里的确认可能收不到，恢复后请用“进度”核对。"
        )
    ]
    await bot.on_connection("restored", "")
    await settle()
    assert robot.texts[1:] == ["✅ 与微信网关的连接已恢复（中断约 5 分钟）。"]
    assert office_notices(bot) == ["✅ 与微信网关的连接已恢复（中断约 5 分钟）。"]
    assert snapshot(bot)["link_down_since"] is None


async def test_a_logout_is_told_at_once(bot, clock, robot):
    await bot.on_connection("logged_out", "")
    await settle()
    assert len(robot.texts) == 1 and "退出登录" in robot.texts[0]
    clock.advance(minutes=5)
    await bot.check_health()
    await settle()
    assert len(robot.texts) == 1


async def test_nothing_is_sent_while_the_link_is_down_and_all_of_it_after(settings, transport, engine, clock, roster):
    bot = build_bot(
        settings.model_copy(update={"send_spacing_seconds": 0, "send_jitter_seconds": 0}),
        transport,
        engine=engine,
        clock=clock,
    )
    await bot.start()
    await asyncio.sleep(0.2)  # whatever the start queued goes out
    await bot.on_connection("lost", "StreamTerminatedError")
    before = len(transport.sent)
    await transport.say(ADMIN, "推送 刷单", room_id=OFFICE_ROOM)
    await asyncio.sleep(0.3)
    assert len(transport.sent) == before
    await bot.on_connection("restored", "")
    for _ in range(100):
        if {o.chat_id for o in transport.sent[before:]} >= {OFFICE_ROOM, LIAISON_ROOM}:
            break
        await asyncio.sleep(0.02)
    pushes = [o for o in transport.sent[before:] if o.text.startswith("【反诈预警 #1】")]
    assert [o.chat_id for o in pushes] == [LIAISON_ROOM]
    with session(engine) as s:
        assert {r.attempts for r in s.exec(select(Outbox))} == {1}
    await bot.stop()


async def test_a_send_that_fails_because_the_link_dropped_pauses_nothing(bot, transport, clock, robot):
    await transport.say(ADMIN, "进度", room_id=OFFICE_ROOM)
    error = SendError("sending to office@chatroom failed: StreamTerminatedError('Connection lost')")
    error.disconnected = True
    transport.fail = error
    await bot.send_due()
    await settle()
    with session(bot.engine) as s:
        [row] = s.exec(select(Outbox)).all()
        assert (row.state, row.attempts) == ("pending", 0)
        assert s.get(BotState, "send_backoff_until") is None
    assert robot.texts == []
    transport.fail = None
    clock.advance(seconds=10)  # past the sending pace
    await bot.send_due()
    with session(bot.engine) as s:
        assert s.exec(select(Outbox.state)).all() == ["sent"]


# ---- the snapshot --------------------------------------------------------------------------------------------


def test_snapshot_of_an_empty_or_damaged_record_reads_as_nothing(engine, clock):
    with session(engine) as s:
        assert health_snapshot(s) == {
            "last_send_ok_at": None,
            "last_receive_at": None,
            "self_check": None,
            "send_down_since": None,
            "receive_down_since": None,
            "link_down_since": None,
        }
        for key, value in [("self_check", "{not json"), ("last_receive_at", "yesterday"), ("health_link_down", "")]:
            s.add(BotState(key=key, value=value, updated_at=clock.now))
        s.commit()
        assert set(health_snapshot(s).values()) == {None}
        s.get(BotState, "self_check").value = json.dumps(
            {"at": clock.now.isoformat(), "target": "x", "send_ok": True, "echo_ok": "maybe"}
        )
        s.commit()
        assert health_snapshot(s)["self_check"]["echo_ok"] is None


def test_durations_read_as_people_say_them():
    assert [_duration(timedelta(seconds=s)) for s in (0, 45, 90, 3600, 3900, 7200)] == [
        "0 秒",
        "45 秒",
        "2 分钟",
        "1 小时",
        "1 小时 5 分钟",
        "2 小时",
    ]
