"""Issue 15 item 2 from the command line: `relaybot push 刷单 --at 明天9:00`, `relaybot scheduled [--cancel N]`,
and the running bot pushing it at its time."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlmodel import select

from bot.runtime.app import build_bot
from bot.storage.db import session
from bot.storage.models import AuditLog, Group, GroupKind, Push, ScheduledPush
from tests.bot_process import relaybot
from tests.conftest import LIAISON_ROOM, OFFICE_ROOM, TZ


def offset_to(moment: datetime) -> str:
    """RELAYBOT_CLOCK_OFFSET_SECONDS that puts the command's clock at `moment`."""
    return str((moment - datetime.now(UTC)).total_seconds())


THURSDAY_9 = datetime(2026, 11, 26, 9, 0, tzinfo=TZ)


def run(*args: str, db_url: str, tmp_path):
    return relaybot(*args, db_url=db_url, cwd=tmp_path, RELAYBOT_CLOCK_OFFSET_SECONDS=offset_to(THURSDAY_9))


async def test_schedule_list_and_cancel_from_the_cli_then_the_bot_pushes_at_the_time(
    db_url, tmp_path, engine, roster, settings, transport, clock
):
    with session(engine) as s:
        s.add(Group(room_id=LIAISON_ROOM, name="全区反诈联络员群", kind=GroupKind.LIAISON.value))
        s.add(Group(room_id=OFFICE_ROOM, name="反诈办工作群", kind=GroupKind.OFFICE.value))
        s.commit()
    first = run("push", "刷单", "--at", "明天9:00", db_url=db_url, tmp_path=tmp_path)
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith("已定时：11月27日(周五) 09:00 推送「")
    assert first.stdout.strip().endswith("取消：relaybot scheduled --cancel 1")
    second = run("push", "公检法", "--at", "周五 10:00", "--yes", db_url=db_url, tmp_path=tmp_path)
    assert second.returncode == 0, second.stderr

    listed = run("scheduled", db_url=db_url, tmp_path=tmp_path)
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert lines[0] == "待推送的定时（2 条）："
    assert lines[1].startswith("定时1　11月27日(周五) 09:00　「") and lines[1].endswith("relaybot push")
    assert lines[2].startswith("定时2　11月27日(周五) 10:00　「") and "（确认）" in lines[2]
    assert lines[3] == "取消：relaybot scheduled --cancel 编号"  # the command line's way, not the chat's

    cancelled = run("scheduled", "--cancel", "2", db_url=db_url, tmp_path=tmp_path)
    assert cancelled.returncode == 0 and cancelled.stdout.startswith("已取消定时2：11月27日(周五) 10:00「")
    again = run("scheduled", "--cancel", "2", db_url=db_url, tmp_path=tmp_path)
    assert again.returncode == 1 and again.stderr.strip() == "定时2 已经取消，无法取消。"

    for text, args in (
        ("请写明几点推送，例如：推送 刷单 明天9:00", ("--at", "明天")),
        ("推送时间 11月26日(周四) 08:00 已经过了，没有定时。要现在推送，请发：推送 刷单返利", ("--at", "8:00")),
        ("没看懂推送时间“下下周”。", ("--at", "下下周")),
    ):
        refused = run("push", "刷单", *args, db_url=db_url, tmp_path=tmp_path)
        assert refused.returncode == 2 and refused.stderr.startswith(text), refused.stderr
    with session(engine) as s:
        assert [r.state for r in s.exec(select(ScheduledPush).order_by(ScheduledPush.id))] == ["waiting", "cancelled"]
        actions = [a.action for a in s.exec(select(AuditLog).order_by(AuditLog.id))]
        assert actions == ["push_scheduled", "push_scheduled", "push_schedule_cancel"]

    # The running bot, by its clock, pushes 定时1 at 09:00 and tells the office group; 定时2 never goes.
    clock.now = datetime(2026, 11, 27, 9, 0, tzinfo=TZ)
    bot = build_bot(settings, transport, engine=engine, clock=clock, send_loop=False)
    await bot.start()
    try:
        await bot.run_schedule()
        await bot.send_pending()
        clock.now = datetime(2026, 11, 27, 10, 0, tzinfo=TZ)
        await bot.run_schedule()
        await bot.send_pending()
    finally:
        await bot.stop()
    pushed = [o.text for o in transport.sent if o.chat_id == LIAISON_ROOM and "【反诈预警" in o.text]
    assert len(pushed) == 1 and pushed[0].startswith("【反诈预警 #1】")
    assert any(o.text.startswith("定时1（原定 11月27日(周五) 09:00）已推送：已推送 #1") for o in transport.sent)
    with session(engine) as s:
        assert [(p.id, p.created_by) for p in s.exec(select(Push))] == [(1, "cli")]
