"""Feeds and link previews in the running bot, against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import pytest
from sqlmodel import select
from werkzeug import Response

from bot.runtime.app import build_bot
from bot.storage.db import session
from bot.storage.models import Feed, FeedItem
from tests.conftest import ADMIN, LIAISON_ROOM, OFFICE_ROOM


def rss(items: list[tuple[str, str]]) -> str:
    body = "".join(
        f"<item><guid>{guid}</guid><title>{title}</title><link>https://mp.example.cn/{guid}</link>"
        f"<pubDate>Thu, 26 Nov 2026 0{i}:00:00 +0800</pubDate></item>"
        for i, (guid, title) in enumerate(items)
    )
    return f'<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>反诈中心</title>{body}</channel></rss>'


class FeedServer:
    """A feed endpoint that honours If-None-Match, and whose content the test changes."""

    def __init__(self, httpserver):
        self.items = [(f"a{i}", f"预警文章{i}") for i in range(5)]
        self.broken = False
        self.requests = 0
        httpserver.expect_request("/feed.xml").respond_with_handler(self.handle)
        self.url = httpserver.url_for("/feed.xml")

    def handle(self, request):
        self.requests += 1
        if self.broken:
            return Response("<html>维护中</html>", content_type="text/html")
        body = rss(self.items)
        etag = f'"{len(self.items)}"'
        if request.headers.get("If-None-Match") == etag:
            return Response(status=304, headers={"ETag": etag})
        return Response(body, content_type="application/rss+xml", headers={"ETag": etag})


@pytest.fixture
def feed(httpserver):
    return FeedServer(httpserver)


@pytest.fixture
async def feed_bot(settings, transport, engine, clock, roster, feed):
    b = build_bot(
        settings.model_copy(update={"feeds": [feed.url]}), transport, engine=engine, clock=clock, send_loop=False
    )
    await b.start()
    await b.send_pending()
    transport.sent.clear()
    yield b
    await b.stop()


def office_texts(transport):
    return [o.text for o in transport.sent if o.chat_id == OFFICE_ROOM]


async def test_new_items_become_numbered_candidates_once_and_one_is_pushed_as_a_link(feed_bot, transport, clock, feed):
    assert await feed_bot.poll_feeds() == 1
    await feed_bot.send_pending()
    first = office_texts(transport)
    assert len(first) == 1  # a new feed's backlog: only its newest three are shown
    assert [line.split("：")[1].split(" ")[0] for line in first[0].splitlines()[1:4]] == [
        "预警文章4",
        "预警文章3",
        "预警文章2",
    ]

    transport.sent.clear()
    assert await feed_bot.poll_feeds() == 0  # not due yet
    clock.advance(minutes=31)
    assert await feed_bot.poll_feeds() == 1  # 304: nothing new
    await feed_bot.send_pending()
    assert office_texts(transport) == []

    feed.items.append(("a5", "警惕冒充客服退款"))
    clock.advance(minutes=31)
    await feed_bot.poll_feeds()
    await feed_bot.send_pending()
    message = office_texts(transport)[0]
    n = int(message.splitlines()[1].split("：")[0].removeprefix("候选 "))
    assert message.splitlines()[1] == f"候选 {n}：警惕冒充客服退款 https://mp.example.cn/a5"
    assert f"发送“推送 候选{n}”" in message
    assert [o for o in transport.sent if o.chat_id == LIAISON_ROOM] == []  # only the office sees candidates

    transport.sent.clear()
    await transport.say(ADMIN, f"推送 候选{n}", room_id=OFFICE_ROOM)
    await transport.say(ADMIN, f"推送 候选{n}", room_id=OFFICE_ROOM)
    await transport.say(ADMIN, "推送 候选999", room_id=OFFICE_ROOM)
    await feed_bot.send_pending()
    card = next(o for o in transport.sent if o.chat_id == LIAISON_ROOM and o.link)
    assert (card.link.url, card.link.title) == ("https://mp.example.cn/a5", "警惕冒充客服退款")
    office = office_texts(transport)
    assert office[0].startswith("已推送 #1「警惕冒充客服退款」")
    assert office[1] == f"候选 {n} 已经推送过了（#1）。"
    assert office[2] == "没有找到候选 999。"


async def test_nothing_reaches_the_liaison_groups_without_an_admin_unless_configured(
    settings, transport, engine, clock, roster, feed
):
    b = build_bot(
        settings.model_copy(update={"feeds": [feed.url], "feed_auto_push": True}),
        transport,
        engine=engine,
        clock=clock,
        send_loop=False,
    )
    await b.start()
    await b.poll_feeds()  # the backlog is never pushed by itself
    feed.items.append(("a5", "警惕虚假征信"))
    clock.advance(minutes=31)
    await b.poll_feeds()
    await b.send_pending()
    pushed = [o for o in transport.sent if o.chat_id == LIAISON_ROOM and o.link]
    assert [o.link.title for o in pushed] == ["警惕虚假征信"]
    await b.stop()


async def test_a_broken_feed_is_retried_and_reported_once_after_a_day(feed_bot, transport, clock, feed, engine):
    feed.broken = True
    await feed_bot.poll_feeds()
    with session(engine) as s:
        row = s.exec(select(Feed)).one()
        assert row.last_error and row.failing_since is not None
    for _ in range(50):  # a day and more of polls every 31 minutes
        clock.advance(minutes=31)
        await feed_bot.poll_feeds()
    await feed_bot.send_pending()
    notices = [t for t in office_texts(transport) if "素材源已连续一天无法读取" in t]
    assert len(notices) == 1 and feed.url in notices[0]
    feed.broken = False
    clock.advance(minutes=31)
    await feed_bot.poll_feeds()
    with session(engine) as s:
        assert s.exec(select(Feed)).one().failing_since is None
        assert len(s.exec(select(FeedItem)).all()) == 5
    assert feed.requests >= 50  # retried all along, the bot never stopped


async def test_a_bare_link_gets_its_page_title_and_a_dead_one_asks_for_a_title(bot, transport, httpserver):
    page = (
        '<html><head><meta property="og:title" content="公安提醒：警惕“百万保障”扣费骗局">'
        '<meta property="og:description" content="客服说要关闭百万保障？挂断！"><title>别的标题</title></head></html>'
    )
    httpserver.expect_request("/article").respond_with_data(page, content_type="text/html; charset=utf-8")
    url = httpserver.url_for("/article")
    await transport.say(ADMIN, url)  # privately: kept as a draft
    await transport.say(ADMIN, "推送")
    dead = httpserver.url_for("/gone")
    await transport.say(ADMIN, f"推送 {dead}", room_id=OFFICE_ROOM)  # not pushed with its URL as title (issue 13)
    await transport.say(ADMIN, f"推送 {dead} 标题 警惕扣费骗局", room_id=OFFICE_ROOM)
    await bot.send_pending()
    cards = [o.link for o in transport.sent if o.chat_id == LIAISON_ROOM and o.link]
    assert (cards[0].url, cards[0].title, cards[0].description) == (
        url,
        "公安提醒：警惕“百万保障”扣费骗局",
        "客服说要关闭百万保障？挂断！",
    )
    assert [(c.url, c.title) for c in cards[1:]] == [(dead, "警惕扣费骗局")]


def test_feed_settings_from_the_environment(monkeypatch):
    from bot.config import load_settings

    monkeypatch.setenv("RELAYBOT_FEEDS", "https://a.example/rss, https://b.example/feed.json")
    assert load_settings().feeds == ["https://a.example/rss", "https://b.example/feed.json"]
