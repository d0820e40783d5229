"""Issue 13: a link whose page gives no title is not pushed with its URL as title; the office is asked for one.
Pages come from a real HTTP server on 127.0.0.1 (pytest-httpserver)."""

from __future__ import annotations

import pytest
from sqlmodel import select

from bot.chat.parsing import PushArgs, parse_push_args
from bot.content import load_texts
from bot.storage.db import session
from bot.storage.models import Alert, AuditLog, Push
from tests.conftest import ADMIN, LIAISON_ROOM, OFFICE_ROOM

TEXTS = load_texts()
UNREAD = TEXTS.t("push_title.why_unread")


async def command(bot, transport, text: str, *, room: str | None = OFFICE_ROOM) -> str:
    """An admin's command; the bot's one answer to it."""
    transport.sent.clear()
    await transport.say(ADMIN, text, room_id=room)
    await bot.send_pending()
    answers = [o.text for o in transport.sent if o.chat_id == (room or ADMIN.contact_id) and o.text]
    assert len(answers) == 1, answers
    return answers[0]


def cards(transport) -> list[tuple[str, str, str]]:
    return [
        (o.link.url, o.link.title, o.link.description) for o in transport.sent if o.chat_id == LIAISON_ROOM and o.link
    ]


def push_count(engine) -> int:
    with session(engine) as s:
        return len(s.exec(select(Push)).all())


def serve(httpserver, path: str, **response) -> str:
    httpserver.expect_request(path).respond_with_data(**response)
    return httpserver.url_for(path)


@pytest.mark.parametrize(
    "response",
    [
        {"response_data": "not here", "status": 404},
        {"response_data": "<html><head></head><body>没有标题</body></html>", "content_type": "text/html"},
        {"response_data": "<html><head><title>  </title></head></html>", "content_type": "text/html"},
        {"response_data": b"\x89PNG\r\n", "content_type": "image/png"},
        {"response_data": "oops", "status": 500},
    ],
    ids=["404", "no-title", "blank-title", "an-image", "500"],
)
async def test_an_unreadable_link_is_not_pushed_and_a_given_title_pushes_it(
    bot, transport, httpserver, engine, response
):
    url = serve(httpserver, "/article", **response)
    answer = await command(bot, transport, f"推送 {url}")
    assert answer == f"读不到这个链接的标题{UNREAD}，还没有推送。请加上标题再发一次：\n推送 {url} 标题 <标题>"
    assert cards(transport) == [] and push_count(engine) == 0
    with session(engine) as s:
        assert s.exec(select(AuditLog).where(AuditLog.action == "push_untitled")).one().detail == url

    requests = len(httpserver.log)
    answer = await command(bot, transport, f"推送 {url} 标题 警惕刷单返利新套路")
    assert answer.startswith("已推送 #1「警惕刷单返利新套路」")
    assert cards(transport) == [(url, "警惕刷单返利新套路", "")]
    assert len(httpserver.log) == requests  # with a title given, the page is not read again


async def test_a_readable_link_is_pushed_at_once_as_before(bot, transport, httpserver):
    page = (
        '<html><head><meta property="og:title" content="公安提醒：警惕扣费骗局">'
        '<meta property="og:description" content="挂断！"></head></html>'
    )
    url = serve(httpserver, "/ok", response_data=page, content_type="text/html; charset=utf-8")
    assert (await command(bot, transport, f"推送 {url}")).startswith("已推送 #1「公安提醒：警惕扣费骗局」")
    assert cards(transport) == [(url, "公安提醒：警惕扣费骗局", "挂断！")]


async def test_the_title_may_be_written_in_several_ways_and_wins_over_the_pages(bot, transport, httpserver):
    url = serve(httpserver, "/gone", response_data="", status=404)
    assert (await command(bot, transport, f"推送 {url} 标题：“冒充客服退款”")).startswith("已推送 #1「冒充客服退款」")
    page = "<html><head><title>网页自己的标题</title></head></html>"
    ok = serve(httpserver, "/ok", response_data=page, content_type="text/html")
    assert (await command(bot, transport, f"推送 {ok} 反诈办改的标题")).startswith("已推送 #2「反诈办改的标题」")


async def test_an_unreadable_link_sent_privately_waits_for_a_title(bot, transport, httpserver, engine):
    url = serve(httpserver, "/gone", response_data="", status=404)
    assert await command(bot, transport, url, room=None) == TEXTS.t("push_title.draft_saved", why=UNREAD)
    assert await command(bot, transport, "推送", room=None) == TEXTS.t("push_title.need_draft")
    assert push_count(engine) == 0
    assert (await command(bot, transport, "推送 标题 警惕虚假投资", room=None)).startswith("已推送 #1「警惕虚假投资」")
    assert cards(transport) == [(url, "警惕虚假投资", "")]
    with session(engine) as s:
        assert s.exec(select(Alert).where(Alert.draft_of == ADMIN.contact_id)).all() == []


async def test_a_link_card_without_a_title_waits_for_one_too(bot, transport, engine):
    from bot.transport.base import LinkCard

    await transport.send_link(ADMIN, LinkCard("https://mp.weixin.qq.com/s/x", ""))
    await bot.send_pending()
    private = [o.text for o in transport.sent if o.chat_id == ADMIN.contact_id]
    assert private == [TEXTS.t("push_title.draft_saved", why=UNREAD)]
    assert await command(bot, transport, "推送", room=None) == TEXTS.t("push_title.need_draft")
    assert push_count(engine) == 0


async def test_a_link_given_its_title_is_no_longer_a_draft(bot, transport, httpserver, engine):
    url = serve(httpserver, "/gone", response_data="", status=404)
    await command(bot, transport, url, room=None)  # privately: an untitled draft
    assert (await command(bot, transport, f"推送 {url} 标题 警惕刷单")).startswith("已推送 #1")
    # The draft went out that way: a later bare 推送 does not find it.
    assert await command(bot, transport, "推送", room=None) == TEXTS.t("push.no_draft")


@pytest.mark.parametrize(
    "arg, parsed",
    [
        ("刷单", PushArgs("刷单", "", False)),
        ("刷单 确认", PushArgs("刷单", "", True)),
        ("刷单，确认。", PushArgs("刷单", "", True)),
        ("确认", PushArgs("", "", True)),
        ("候选5 确认", PushArgs("候选5", "", True)),
        ("https://a.cn/x", PushArgs("https://a.cn/x", "", False)),
        ("https://a.cn/x 确认", PushArgs("https://a.cn/x", "", True)),
        ("https://a.cn/x 标题 警惕刷单", PushArgs("https://a.cn/x", "警惕刷单", False)),
        ("https://a.cn/x 标题：「警惕 刷单」 确认", PushArgs("https://a.cn/x", "警惕 刷单", True)),
        ("https://a.cn/x 标题 请确认", PushArgs("https://a.cn/x", "请确认", False)),
        ("https://a.cn/x 标题", PushArgs("https://a.cn/x", "", False)),
        ("标题 警惕虚假投资", PushArgs("", "警惕虚假投资", False)),
    ],
)
def test_what_follows_push(arg, parsed):
    assert parse_push_args(arg) == parsed
