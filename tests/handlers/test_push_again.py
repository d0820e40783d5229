"""Issue 13: the same alert pushed twice the same day waits for 确认 (chat and `relaybot push`); others are not held."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import select

from bot.content import load_library, load_texts
from bot.storage.db import session
from bot.storage.models import AuditLog, Group, GroupKind, Push
from tests.bot_process import relaybot
from tests.conftest import ADMIN, LIAISON_ROOM, OFFICE_ROOM, TZ

SHUADAN_TITLE = load_library().find("刷单").title


async def command(bot, transport, text: str, *, room: str | None = OFFICE_ROOM) -> str:
    """An admin's command; the bot's one answer to it."""
    transport.sent.clear()
    await transport.say(ADMIN, text, room_id=room)
    await bot.send_pending()
    answers = [o.text for o in transport.sent if o.chat_id == (room or ADMIN.contact_id) and o.text]
    assert len(answers) == 1, answers
    return answers[0]


def pushes(engine) -> list[int]:
    with session(engine) as s:
        return [p.id for p in s.exec(select(Push).order_by(Push.id))]


def liaison_items(transport) -> list:
    return [o for o in transport.sent if o.chat_id == LIAISON_ROOM]


async def test_the_same_case_type_twice_asks_for_confirmation_and_confirmation_pushes(bot, transport, clock, engine):
    assert (await command(bot, transport, "推送 刷单")).startswith("已推送 #1")
    clock.advance(minutes=7)
    answer = await command(bot, transport, "推送 刷单")
    assert answer == (f"#1「{SHUADAN_TITLE}」今天 09:00 已推送过，这次没有推送。如确要再推一次，请发：推送 刷单 确认")
    assert liaison_items(transport) == []  # nothing went to the groups
    assert pushes(engine) == [1]
    with session(engine) as s:
        assert s.exec(select(AuditLog).where(AuditLog.action == "push_repeat")).one().detail.startswith("#1 ")

    answer = await command(bot, transport, "推送 刷单 确认")
    assert answer.startswith("已推送 #2")
    assert len(liaison_items(transport)) == 1
    assert pushes(engine) == [1, 2]


async def test_an_alias_of_the_same_type_is_the_same_alert_and_another_type_is_not_held(bot, transport, engine):
    await command(bot, transport, "推送 刷单")
    assert "已推送过" in await command(bot, transport, "推送 刷单返利")  # the case type's full name
    assert (await command(bot, transport, "推送 公检法")).startswith("已推送 #2")
    assert (await command(bot, transport, "推送 刷单确认")).startswith("已推送 #3")  # 确认 typed without a space
    assert pushes(engine) == [1, 2, 3]


async def test_a_withdrawn_push_or_yesterdays_does_not_hold_the_next(bot, transport, clock, engine):
    await command(bot, transport, "推送 刷单")
    await command(bot, transport, "撤回 #1")
    assert (await command(bot, transport, "推送 刷单")).startswith("已推送 #2")  # #1 was taken back
    # The rule is the local calendar day: the next morning (under 24 hours later) pushes at once.
    clock.now = datetime(2026, 11, 27, 8, 30, tzinfo=TZ)
    assert (await command(bot, transport, "推送 刷单")).startswith("已推送 #3")
    assert pushes(engine) == [1, 2, 3]


async def test_the_same_link_twice_asks_and_confirmation_pushes_it_with_its_title(bot, transport, httpserver, engine):
    page = '<html><head><meta property="og:title" content="警惕刷单返利新套路"></head></html>'
    httpserver.expect_request("/a").respond_with_data(page, content_type="text/html; charset=utf-8")
    url = httpserver.url_for("/a")
    assert (await command(bot, transport, f"推送 {url}")).startswith("已推送 #1「警惕刷单返利新套路」")
    answer = await command(bot, transport, f"推送 {url}")
    assert answer == (
        f"#1「警惕刷单返利新套路」今天 09:00 已推送过，这次没有推送。如确要再推一次，请发：推送 {url} 确认"
    )
    assert (await command(bot, transport, f"推送 {url} 确认")).startswith("已推送 #2「警惕刷单返利新套路」")
    cards = [o.link for o in liaison_items(transport) if o.link]
    assert [(c.url, c.title) for c in cards] == [(url, "警惕刷单返利新套路")]
    # A different link is a different alert.
    other = httpserver.url_for("/b")
    httpserver.expect_request("/b").respond_with_data(
        "<html><head><title>另一篇</title></head></html>", content_type="text/html"
    )
    assert (await command(bot, transport, f"推送 {other}")).startswith("已推送 #3「另一篇」")


async def test_a_link_sent_privately_again_asks_for_confirmation_too(bot, transport, httpserver, engine):
    httpserver.expect_request("/a").respond_with_data(
        "<html><head><title>冒充客服退款</title></head></html>", content_type="text/html"
    )
    url = httpserver.url_for("/a")
    await command(bot, transport, f"推送 {url}")
    await command(bot, transport, url, room=None)  # kept as a draft
    answer = await command(bot, transport, "推送", room=None)
    assert answer.startswith("#1「冒充客服退款」今天 09:00 已推送过") and answer.endswith("请发：推送 确认")
    assert pushes(engine) == [1]
    assert (await command(bot, transport, "推送 确认", room=None)).startswith("已推送 #2「冒充客服退款」")


def test_relaybot_push_twice_asks_for_yes(db_url, tmp_path, engine, roster):
    with session(engine) as s:
        s.add(Group(room_id=LIAISON_ROOM, name="全区反诈联络员群", kind=GroupKind.LIAISON.value))
        s.commit()
    first = relaybot("push", "刷单", db_url=db_url, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert "已推送 #1" in first.stdout
    again = relaybot("push", "刷单", db_url=db_url, cwd=tmp_path)
    assert again.returncode == 1
    assert "#1" in again.stderr and "已推送过" in again.stderr
    assert load_texts().t("push_repeat.cli", what="刷单") in again.stderr
    assert "Traceback" not in again.stderr
    assert pushes(engine) == [1]
    yes = relaybot("push", "刷单", "--yes", db_url=db_url, cwd=tmp_path)
    assert yes.returncode == 0, yes.stderr
    assert "已推送 #2" in yes.stdout
    other = relaybot("push", "公检法", db_url=db_url, cwd=tmp_path)
    assert other.returncode == 0 and "已推送 #3" in other.stdout
