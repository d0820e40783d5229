"""素材 over a real HTTP server (issue 14): feed candidates with a 推送 button that pushes them as the chat's
`推送 候选N` does, each configured feed's health; and a link to an address not allowed is never fetched."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import select

from bot.chat import compose
from bot.content import load_texts
from bot.domain.feeds import alert_for
from bot.storage.db import session
from bot.storage.models import Feed, FeedItem
from tests.conftest import ADMIN
from tests.web.conftest import VIEWER_ID, csrf_of
from tests.web.test_push_new import FROM, alert_of, audits, pushes, room_rows

OK_FEED = "https://news.example.org/rss.xml?token=s3cret"
BAD_FEED = "https://down.example.org/feed.xml"
NEW_FEED = "https://never.example.org/atom.xml"


@pytest.fixture
def web_settings(settings):
    # no internal address may be previewed here (tests/conftest.py allows 127.0.0.1 elsewhere)
    return settings.model_copy(
        update={"viewer_ids": [VIEWER_ID], "feeds": [OK_FEED, BAD_FEED, NEW_FEED], "preview_allowed_hosts": []}
    )


def add_items(served) -> tuple[int, int, int]:
    now = served.clock()
    with session(served.engine) as s:
        ok = Feed(url=OK_FEED, title="平安<b>资讯</b>", last_ok_at=now - timedelta(minutes=20))
        bad = Feed(
            url=BAD_FEED,
            last_ok_at=now - timedelta(days=2),
            failing_since=now - timedelta(days=1, hours=2),
            last_error="HTTP 503",
        )
        s.add(ok)
        s.add(bad)
        s.flush()
        older = FeedItem(
            feed_id=ok.id,
            guid="a",
            title="旧的一条",
            link="https://news.example.org/a",
            summary="旧摘要",
            seen_at=now - timedelta(hours=3),
        )
        s.add(older)
        s.flush()
        newer = FeedItem(
            feed_id=ok.id,
            guid="b",
            title="<img src=x onerror=alert(1)>冒充公检法",
            link="https://news.example.org/b",
            summary="摘要<script>x</script>",
            seen_at=now - timedelta(hours=1),
        )
        s.add(newer)
        s.flush()
        odd = FeedItem(feed_id=ok.id, guid="c", title="奇怪链接", link="javascript:alert(1)", seen_at=now)
        s.add(odd)
        s.commit()
        return int(older.id), int(newer.id), int(odd.id)


def item_of(served, item_id: int) -> FeedItem:
    with session(served.engine) as s:
        return s.get_one(FeedItem, item_id)


def test_the_feeds_page_lists_candidates_newest_first_and_each_feeds_health(served):
    older, newer, odd = add_items(served)
    page = served.sign_in().get("/feeds")
    assert page.status_code == 200
    html = page.text
    assert html.index(f'id="item-{odd}"') < html.index(f'id="item-{newer}"') < html.index(f'id="item-{older}"')
    # HTML in titles and summaries is text; a non-http link is never put in an href
    assert "&lt;img src=x onerror=alert(1)&gt;冒充公检法" in html and "<img src=x" not in html
    assert "摘要&lt;script&gt;x&lt;/script&gt;" in html
    assert 'href="javascript:' not in html and 'href="https://news.example.org/b"' in html
    assert "平安&lt;b&gt;资讯&lt;/b&gt;" in html
    assert f'id="push-{newer}"' in html
    # health: the feed's token never shown, the failing one with its error, the new one not read yet
    assert "s3cret" not in html and "https://news.example.org/rss.xml" in html
    assert "读取失败" in html and "HTTP 503" in html and "还没有读取" in html and "正常" in html
    viewer = served.sign_in(VIEWER_ID).get("/feeds").text
    assert f'id="item-{newer}"' in viewer and 'id="push-' not in viewer


def test_pushing_a_candidate_does_what_the_chats_candidate_push_does(served):
    _, newer, _ = add_items(served)
    c = served.sign_in()
    csrf = csrf_of(c.get("/feeds").text)
    r = c.post(f"/feeds/{newer}/push", data={"csrf": csrf})
    assert r.status_code == 303, r.text
    [push] = pushes(served)
    assert r.headers["location"] == f"/pushes/{push.id}"
    assert item_of(served, newer).push_id == push.id
    pushed = alert_of(served, push)
    expected = alert_for(item_of(served, newer), now=served.clock())
    assert (pushed.title, pushed.link_url, pushed.link_description) == (
        expected.title,
        expected.link_url,
        expected.link_description,
    )
    [row] = room_rows(served)
    assert row.attachment == "link"
    assert row.text == compose.push_text(
        load_texts(), n=push.id, alert=pushed, deadline=push.deadline, tz=served.settings.tz
    )
    entry = audits(served, "push")[0]
    assert entry.actor_id == ADMIN.contact_id and entry.detail.endswith(FROM)
    html = c.get("/feeds").text
    assert f'id="pushed-{newer}"' in html and f'id="push-{newer}"' not in html
    # again: the chat's sentence, nothing pushed
    r = c.post(f"/feeds/{newer}/push", data={"csrf": csrf})
    assert r.status_code == 400 and f"候选 {newer} 已经推送过了（#{push.id}）" in r.text
    r = c.post("/feeds/999999/push", data={"csrf": csrf})
    assert r.status_code == 404 and "没有找到候选 999999" in r.text
    r = c.post("/feeds/１２/push", data={"csrf": csrf})
    assert r.status_code == 404 and "没有找到候选" in r.text
    assert len(pushes(served)) == 1 and len(room_rows(served)) == 1


def test_the_same_link_pushed_today_needs_the_second_button(served):
    _, newer, _ = add_items(served)
    c = served.sign_in()
    csrf = csrf_of(c.get("/feeds").text)
    url = "https://news.example.org/b"
    with session(served.engine) as s:  # the same link, pushed earlier today from another candidate
        s.add(
            FeedItem(
                feed_id=item_of(served, newer).feed_id, guid="d", title="同一链接", link=url, seen_at=served.clock()
            )
        )
        s.commit()
        twin = s.exec(select(FeedItem).where(FeedItem.guid == "d")).one().id
    assert c.post(f"/feeds/{twin}/push", data={"csrf": csrf}).status_code == 303
    r = c.post(f"/feeds/{newer}/push", data={"csrf": csrf})
    assert r.status_code == 409 and 'id="again"' in r.text and f'action="/feeds/{newer}/push"' in r.text
    assert len(pushes(served)) == 1 and item_of(served, newer).push_id is None
    r = c.post(f"/feeds/{newer}/push", data={"csrf": csrf, "again": "1"})
    assert r.status_code == 303
    assert len(pushes(served)) == 2 and item_of(served, newer).push_id == pushes(served)[1].id


def test_a_viewer_or_a_form_without_its_token_cannot_push_a_candidate(served):
    _, newer, _ = add_items(served)
    viewer = served.sign_in(VIEWER_ID)
    r = viewer.post(f"/feeds/{newer}/push", data={"csrf": csrf_of(viewer.get("/feeds").text)})
    assert r.status_code == 403
    c = served.sign_in()
    assert c.post(f"/feeds/{newer}/push", data={}).status_code == 403
    assert c.post(f"/feeds/{newer}/push", data={"csrf": "nope"}).status_code == 403
    assert pushes(served) == [] and room_rows(served) == [] and item_of(served, newer).push_id is None


def test_a_link_to_an_address_not_allowed_is_never_fetched(served, server):
    server.expect_request("/inside").respond_with_data(
        "<html><head><title>内网页面</title></head></html>", content_type="text/html"
    )
    url = server.url_for("/inside")  # 127.0.0.1, not in preview_allowed_hosts here
    c = served.sign_in()
    page = c.get("/pushes/new", params={"link": url})
    assert page.status_code == 200
    assert "链接指向内网地址" in page.text and "内网页面" not in page.text
    r = c.post("/pushes/new", data={"csrf": csrf_of(page.text), "link": url})
    assert r.status_code == 400 and "链接指向内网地址" in r.text
    assert server.log == []
    assert pushes(served) == [] and room_rows(served) == []
