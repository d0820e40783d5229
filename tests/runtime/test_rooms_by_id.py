"""Configured groups are matched by room id once known: a stranger's room renamed to a configured group's name is
never promoted (issue 12 item 6); the office hears of it instead."""

from __future__ import annotations

from dataclasses import replace

from sqlmodel import select

from bot.runtime.app import build_bot
from bot.storage.db import session
from bot.storage.models import Group
from bot.transport.base import Member
from tests.conftest import ADMIN, LIAISON_ROOM, OFFICE_ROOM, STRANGER

FAKE_LIAISON = "fake-liaison@chatroom"
FAKE_OFFICE = "fake-office@chatroom"


def kinds(engine) -> dict[str, str]:
    with session(engine) as s:
        return {g.room_id: g.kind for g in s.exec(select(Group))}


def rename(transport, room_id: str, name: str) -> None:
    transport.room_list[:] = [replace(r, name=name) if r.room_id == room_id else r for r in transport.room_list]


async def restart(bot, settings, transport, engine, clock):
    await bot.stop()
    again = build_bot(settings, transport, engine=engine, clock=clock, send_loop=False)
    await again.start()
    await again.send_pending()
    return again


def office_texts(transport) -> list[str]:
    return [o.text for o in transport.sent if o.chat_id == OFFICE_ROOM]


async def test_rooms_renamed_to_the_configured_names_are_not_promoted_and_pushes_go_only_to_the_real_groups(
    bot, transport, engine, settings, clock
):
    transport.add_room(FAKE_LIAISON, "闲聊群", [STRANGER])
    transport.add_room(FAKE_OFFICE, "另一个群", [STRANGER])
    rename(transport, FAKE_LIAISON, "全区反诈联络员群")
    rename(transport, FAKE_OFFICE, "反诈办工作群")
    bot = await restart(bot, settings, transport, engine, clock)
    assert kinds(engine) == {
        LIAISON_ROOM: "liaison",
        OFFICE_ROOM: "office",
        FAKE_LIAISON: "none",
        FAKE_OFFICE: "none",
    }
    warnings = office_texts(transport)
    assert len(warnings) == 2, warnings
    assert any(FAKE_LIAISON in w and "「全区反诈联络员群」" in w and "未改变设置" in w for w in warnings)
    assert any(FAKE_OFFICE in w and "「反诈办工作群」" in w and "设为办公群" in w for w in warnings)

    transport.sent.clear()
    await transport.say(ADMIN, "推送 刷单", room_id=OFFICE_ROOM)
    await bot.send_pending()
    assert {o.chat_id for o in transport.sent} == {LIAISON_ROOM, OFFICE_ROOM}

    # Told once: another restart does not repeat the warnings.
    transport.sent.clear()
    bot = await restart(bot, settings, transport, engine, clock)
    assert office_texts(transport) == []
    await bot.stop()


async def test_the_real_group_renamed_stays_served(bot, transport, engine, settings, clock):
    rename(transport, LIAISON_ROOM, "全区反诈联络员群（2027）")
    rename(transport, OFFICE_ROOM, "反诈办")
    bot = await restart(bot, settings, transport, engine, clock)
    assert kinds(engine) == {LIAISON_ROOM: "liaison", OFFICE_ROOM: "office"}
    # A stranger's room now taking the old name is still not the group.
    transport.add_room(FAKE_LIAISON, "全区反诈联络员群", [STRANGER])
    bot = await restart(bot, settings, transport, engine, clock)
    assert kinds(engine)[FAKE_LIAISON] == "none"
    assert kinds(engine)[LIAISON_ROOM] == "liaison"
    await bot.stop()


async def test_a_room_renamed_while_the_bot_runs_is_reported_when_it_next_speaks(bot, transport, engine):
    transport.add_room(FAKE_OFFICE, "闲聊群", [STRANGER])
    await transport.say(STRANGER, "大家好", room_id=FAKE_OFFICE)
    rename(transport, FAKE_OFFICE, "反诈办工作群")
    await transport.say(STRANGER, "设为办公群", room_id=FAKE_OFFICE)  # not an admin: refused
    await bot.send_pending()
    assert kinds(engine)[FAKE_OFFICE] == "none"
    warnings = [t for t in office_texts(transport) if FAKE_OFFICE in t]
    assert len(warnings) == 1 and "「反诈办工作群」" in warnings[0]


async def test_first_match_by_name_needs_exactly_one_room(settings, transport, engine, clock, roster):
    transport.add_room(FAKE_LIAISON, "全区反诈联络员群", [STRANGER])
    bot = build_bot(settings, transport, engine=engine, clock=clock, send_loop=False)
    await bot.start()
    await bot.send_pending()
    assert kinds(engine) == {LIAISON_ROOM: "none", FAKE_LIAISON: "none", OFFICE_ROOM: "office"}
    warned = [t for t in office_texts(transport) if "全区反诈联络员群" in t and "同名" in t]
    assert len(warned) == 1 and LIAISON_ROOM in warned[0] and FAKE_LIAISON in warned[0]
    # The admin settles it in the real group; a restart keeps that.
    await transport.say(ADMIN, "设为联络员群", room_id=LIAISON_ROOM)
    await bot.stop()
    bot = build_bot(settings, transport, engine=engine, clock=clock, send_loop=False)
    await bot.start()
    assert kinds(engine)[LIAISON_ROOM] == "liaison" and kinds(engine)[FAKE_LIAISON] == "none"
    await bot.stop()


async def test_room_ids_in_the_configuration_match_by_id_only(settings, transport, engine, clock, roster):
    settings = settings.model_copy(update={"liaison_groups": [LIAISON_ROOM], "office_group": OFFICE_ROOM})
    rename(transport, LIAISON_ROOM, "随便什么名字")
    transport.add_room(FAKE_OFFICE, OFFICE_ROOM, [STRANGER])  # named like the office's id
    bot = build_bot(settings, transport, engine=engine, clock=clock, send_loop=False)
    await bot.start()
    assert kinds(engine) == {LIAISON_ROOM: "liaison", OFFICE_ROOM: "office", FAKE_OFFICE: "none"}
    await bot.stop()


async def test_there_is_never_a_second_office_group(bot, transport, engine, settings, clock):
    transport.add_room("office2@chatroom", "反诈办新群", [ADMIN])
    await transport.say(ADMIN, "设为办公群", room_id="office2@chatroom")
    # The old office room is renamed; a stranger's room takes the configured office name.
    rename(transport, OFFICE_ROOM, "旧办公群")
    transport.add_room(FAKE_OFFICE, "反诈办工作群", [STRANGER, Member("x", "x", "")])
    bot = await restart(bot, settings, transport, engine, clock)
    offices = [room for room, kind in kinds(engine).items() if kind == "office"]
    assert offices == ["office2@chatroom"]
    await bot.stop()


async def test_the_start_log_shows_each_room_id(bot, transport, engine, settings, clock, caplog):
    caplog.set_level("INFO", logger="bot.runtime.rooms")
    bot = await restart(bot, settings, transport, engine, clock)
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert LIAISON_ROOM in logged and OFFICE_ROOM in logged and "全区反诈联络员群" in logged
    await bot.stop()


async def test_status_lists_each_group_with_its_room_id(bot, db_url, tmp_path):
    from tests.bot_process import relaybot

    result = relaybot("status", db_url=db_url, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert f"群：{LIAISON_ROOM}「全区反诈联络员群」联络员群" in result.stdout
    assert f"群：{OFFICE_ROOM}「反诈办工作群」反诈办工作群" in result.stdout


async def test_a_rename_event_is_reported_at_once(bot, transport, engine):
    from bot.transport.base import RoomInfo

    transport.add_room(FAKE_LIAISON, "闲聊群", [STRANGER])
    rename(transport, FAKE_LIAISON, "全区反诈联络员群")
    await bot.on_room_topic(RoomInfo(FAKE_LIAISON, "全区反诈联络员群"))
    await bot.send_pending()
    assert kinds(engine)[FAKE_LIAISON] == "none"
    assert [t for t in office_texts(transport) if FAKE_LIAISON in t and "未改变设置" in t]
