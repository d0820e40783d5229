"""Issue 15 item 2: scheduled pushes (`推送 刷单 明天9:00`, 定时, 取消定时) on a moved clock, across restarts."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import SQLModel, select

from bot.content import load_library
from bot.runtime.app import build_bot
from bot.storage.db import session
from bot.storage.models import Alert, AuditLog, Push, ScheduledPush
from tests.conftest import ADMIN, LIAISON_ROOM, OFFICE_ROOM, TZ, WANG

SHUADAN_TITLE = load_library().find("刷单").title


def local(*args) -> datetime:
    return datetime(*args, tzinfo=TZ)


async def command(bot, transport, text: str, *, room: str | None = OFFICE_ROOM) -> str:
    """An admin's command; the bot's one answer to it."""
    transport.sent.clear()
    await transport.say(ADMIN, text, room_id=room)
    await bot.send_pending()
    answers = [o.text for o in transport.sent if o.chat_id == (room or ADMIN.contact_id) and o.text]
    assert len(answers) == 1, answers
    return answers[0]


async def tick(bot, clock, when: datetime) -> None:
    clock.now = when
    await bot.run_schedule()
    await bot.send_pending()


def pushes(engine) -> list[Push]:
    with session(engine) as s:
        return list(s.exec(select(Push).order_by(Push.id)))


def rows(engine) -> list[ScheduledPush]:
    with session(engine) as s:
        return list(s.exec(select(ScheduledPush).order_by(ScheduledPush.id)))


def audits(engine, action: str) -> list[str]:
    with session(engine) as s:
        return [a.detail for a in s.exec(select(AuditLog).where(AuditLog.action == action).order_by(AuditLog.id))]


def records(engine) -> dict[str, set[tuple]]:
    """Every table but the outbox (the answer goes there) and who was seen where."""
    out = {}
    with engine.connect() as conn:
        for table in SQLModel.metadata.sorted_tables:
            if table.name not in ("outbox", "membership"):
                out[table.name] = {tuple(row) for row in conn.execute(table.select())}
    return out


def pushed_to_liaisons(transport) -> list[str]:
    return [o.text for o in transport.sent if o.chat_id == LIAISON_ROOM and "【反诈预警" in o.text]


async def test_a_push_with_a_time_is_stored_not_sent_and_goes_out_once_at_that_time(bot, transport, clock, engine):
    answer = await command(bot, transport, "推送 刷单 明天9:00")
    assert answer == (
        f"已定时：11月27日(周五) 09:00 推送「{SHUADAN_TITLE}」（定时1）。到时按当时情况定截止时间。取消请发：取消定时 1"
    )
    assert pushed_to_liaisons(transport) == [] and pushes(engine) == []
    (row,) = rows(engine)
    assert (row.state, row.send_at, row.created_by, row.again, row.chat_id) == (
        "waiting",
        local(2026, 11, 27, 9, 0),
        ADMIN.contact_id,
        False,
        OFFICE_ROOM,
    )
    assert audits(engine, "push_scheduled") == [f"定时1 2026-11-27T09:00:00+08:00 刷单返利 {SHUADAN_TITLE}"]

    transport.sent.clear()
    await tick(bot, clock, local(2026, 11, 27, 8, 59))
    assert pushed_to_liaisons(transport) == [] and pushes(engine) == []

    await tick(bot, clock, local(2026, 11, 27, 9, 0, 20))
    (push,) = pushes(engine)
    assert (push.created_at, push.deadline, push.created_by) == (
        local(2026, 11, 27, 9, 0, 20),
        local(2026, 11, 27, 18, 0),  # the deadline a push made then gets
        ADMIN.contact_id,
    )
    assert [t.splitlines()[0] for t in pushed_to_liaisons(transport)] == [f"【反诈预警 #1】{SHUADAN_TITLE}"]
    office = [o.text for o in transport.sent if o.chat_id == OFFICE_ROOM and o.text.startswith("定时")]
    assert office == [
        f"定时1（原定 11月27日(周五) 09:00）已推送：已推送 #1「{SHUADAN_TITLE}」到 1 个联络员群，共 6 个单位，"
        "截止 11月27日(周五) 18:00。"
    ]
    assert (rows(engine)[0].state, rows(engine)[0].push_id) == ("sent", 1)
    assert audits(engine, "push")[-1].endswith("（定时1）")

    transport.sent.clear()
    await tick(bot, clock, local(2026, 11, 27, 9, 5))
    assert pushed_to_liaisons(transport) == [] and len(pushes(engine)) == 1


async def test_a_restart_before_the_time_loses_nothing_and_after_it_repeats_nothing(
    bot, settings, transport, clock, engine
):
    await command(bot, transport, "推送 刷单 12月3日 9:00")
    await bot.stop()
    second = build_bot(settings, transport, engine=engine, clock=clock, send_loop=False)
    await second.start()
    try:
        transport.sent.clear()
        await tick(second, clock, local(2026, 12, 3, 9, 1))
        assert len(pushed_to_liaisons(transport)) == 1
    finally:
        await second.stop()
    third = build_bot(settings, transport, engine=engine, clock=clock, send_loop=False)
    await third.start()
    try:
        transport.sent.clear()
        await tick(third, clock, local(2026, 12, 3, 9, 2))
        await third.send_pending()
        assert pushed_to_liaisons(transport) == []
        assert [p.id for p in pushes(engine)] == [1]
    finally:
        await third.stop()
    await bot.start()  # the fixture stops it again


async def test_a_bot_down_at_the_time_pushes_it_late_once_and_says_so(bot, transport, clock, engine):
    await command(bot, transport, "推送 https://example.org/a 标题 警惕刷单 周五 8:30")
    transport.sent.clear()
    await tick(bot, clock, local(2026, 11, 27, 10, 45))  # the bot was down from 8:00 to 10:45
    assert len(pushed_to_liaisons(transport)) == 1
    office = [o.text for o in transport.sent if o.chat_id == OFFICE_ROOM and o.text.startswith("定时1")]
    assert len(office) == 1
    assert office[0].startswith("定时1（原定 11月27日(周五) 08:30）已推送：已推送 #1「警惕刷单」")
    assert office[0].splitlines()[1] == "机器人停止运行过，晚了 135 分钟，于 11月27日(周五) 10:45 补发。"
    with session(engine) as s:
        alert = s.get(Alert, s.get(Push, 1).alert_id)
        assert (alert.link_url, alert.title) == ("https://example.org/a", "警惕刷单")


async def test_on_a_day_off_it_goes_out_with_the_next_working_days_deadline(bot, transport, clock, engine):
    answer = await command(bot, transport, "推送 刷单 周六 10:00")
    assert answer.startswith("已定时：11月28日(周六) 10:00") and "休息日，截止将顺延到下一个工作日" in answer
    await tick(bot, clock, local(2026, 11, 28, 10, 0))
    assert pushes(engine)[0].deadline == local(2026, 11, 30, 18, 0)


async def test_the_same_alert_pushed_earlier_that_day_holds_it_unless_scheduled_with_confirm(
    bot, transport, clock, engine
):
    await command(bot, transport, "推送 刷单 今天15:00")
    await command(bot, transport, "推送 刷单 今天16:00 确认")
    await command(bot, transport, "推送 刷单")
    transport.sent.clear()
    await tick(bot, clock, local(2026, 11, 26, 16, 0))
    assert [p.id for p in pushes(engine)] == [1, 2]  # 定时1 was refused, 定时2 (with 确认) made #2
    assert len(pushed_to_liaisons(transport)) == 1
    office = [o.text for o in transport.sent if o.chat_id == OFFICE_ROOM and o.text.startswith("定时")]
    assert office[0].startswith("定时1（原定 11月26日(周四) 15:00）没有推送：#1「")
    assert office[0].endswith("请发：推送 刷单返利 确认")
    assert office[1].startswith("定时2（原定 11月26日(周四) 16:00）已推送：已推送 #2")
    assert [r.state for r in rows(engine)] == ["not_sent", "sent"]


async def test_listing_and_cancelling(bot, transport, clock, engine):
    assert await command(bot, transport, "定时") == "没有待推送的定时。定时推送：推送 刷单 明天9:00"
    await command(bot, transport, "推送 公检法 后天 8:30")
    await command(bot, transport, "推送 刷单 明天9:00 确认")
    listed = (await command(bot, transport, "定时推送")).splitlines()
    assert listed[0] == "待推送的定时（2 条）："
    assert listed[1] == f"定时2　11月27日(周五) 09:00　「{SHUADAN_TITLE}」（确认）　陈静"
    assert listed[2].startswith("定时1　11月28日(周六) 08:30　「")
    assert listed[3] == "取消请发：取消定时 编号"

    assert await command(bot, transport, "取消定时 2") == (
        f"已取消定时2：11月27日(周五) 09:00「{SHUADAN_TITLE}」不再推送。"
    )
    assert audits(engine, "push_schedule_cancel") == [f"定时2 2026-11-27T09:00:00+08:00 {SHUADAN_TITLE}"]
    before = records(engine)
    assert await command(bot, transport, "取消定时 2") == "定时2 已经取消，无法取消。"
    assert await command(bot, transport, "取消定时 9") == "没有找到定时9。发“定时”查看待推送的定时。"
    assert await command(bot, transport, "取消定时") == "用法：取消定时 编号，例如：取消定时 3（发“定时”查看编号）"
    assert records(engine) == before
    assert (await command(bot, transport, "定时")).splitlines()[0] == "待推送的定时（1 条）："

    transport.sent.clear()
    await tick(bot, clock, local(2026, 11, 27, 9, 30))
    assert pushed_to_liaisons(transport) == [] and pushes(engine) == []
    await tick(bot, clock, local(2026, 11, 28, 8, 30))
    assert len(pushed_to_liaisons(transport)) == 1
    assert await command(bot, transport, "取消定时 1") == "定时1 已经推送过了，无法取消。"


async def test_bad_times_are_refused_and_nothing_is_stored(bot, transport, clock, engine):
    before = records(engine)
    assert await command(bot, transport, "推送 刷单 今天8:00") == (
        "推送时间 11月26日(周四) 08:00 已经过了，没有定时。要现在推送，请发：推送 刷单"
    )
    assert await command(bot, transport, "推送 刷单 明天") == "请写明几点推送，例如：推送 刷单 明天9:00"
    assert await command(bot, transport, "推送 刷单 2027-01-05 9:00") == (
        "推送时间 1月5日(周二) 09:00 太远了：最多可提前 30 天定时。"
    )
    assert (await command(bot, transport, "推送 刷单 13月40日 9:00")).startswith("没看懂推送时间“13月40日 9:00”")
    assert await command(bot, transport, "推送 候选3 明天9:00") == "候选素材不能定时推送，请到时发：推送 候选3"
    assert records(engine) == before
    assert pushed_to_liaisons(transport) == []


async def test_a_bare_push_still_goes_out_now(bot, transport, engine):
    assert (await command(bot, transport, "推送 刷单")).startswith("已推送 #1")
    assert rows(engine) == [] and len(pushes(engine)) == 1


async def test_a_draft_sent_privately_can_be_scheduled_and_is_no_draft_any_more(bot, transport, clock, engine):
    await command(bot, transport, "注意防范刷单返利诈骗，不要轻信高额回报", room=None)
    answer = await command(bot, transport, "推送 明天9:00", room=None)
    assert answer.startswith("已定时：11月27日(周五) 09:00 推送「注意防范刷单返利诈骗")
    assert await command(bot, transport, "推送", room=None) == (
        "没有待推送的内容。发送“推送 案件类型”（如：推送 刷单），或先把文章链接、图片或文字发给我，再发“推送”。"
    )
    transport.sent.clear()
    await tick(bot, clock, local(2026, 11, 27, 9, 0))
    assert len(pushed_to_liaisons(transport)) == 1
    # Scheduled privately: the admin hears of it privately.
    assert [o.text[:10] for o in transport.sent if o.chat_id == ADMIN.contact_id] == ["定时1（原定 11月"]


async def test_only_admins_schedule_list_or_cancel(bot, transport, engine):
    await command(bot, transport, "推送 刷单 明天9:00")
    before = records(engine)
    for text in ("定时", "取消定时 1"):
        transport.sent.clear()
        await transport.say(WANG, text, room_id=LIAISON_ROOM)
        await bot.send_pending()
    assert [r.state for r in rows(engine)] == ["waiting"]
    after = records(engine)
    refusals = ("auditlog", "notice")  # the refusal's audit row and its once-only courtesy notice
    assert {k: v for k, v in after.items() if k not in refusals} == {
        k: v for k, v in before.items() if k not in refusals
    }
