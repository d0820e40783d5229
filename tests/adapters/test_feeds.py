"""Feed fetching and parsing against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from werkzeug import Request, Response

from bot.adapters.feed_fetch import FeedError, fetch_feed, parse_feed, redact

RSS = """<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel>
  <title>县反诈中心 预警</title>
  <link>http://example.invalid/</link>
  <item>
    <guid isPermaLink="false">alert-2</guid>
    <title>警惕  “刷单返利”
      新骗局</title>
    <link>/alerts/2.html</link>
    <description><![CDATA[
      <p>近期<b>多人</b>被骗&amp;报警</p><script>track()</script><p>请转告家人</p>
    ]]></description>
    <pubDate>Tue, 02 Jun 2026 09:30:00 +0800</pubDate>
  </item>
  <item>
    <title>没有 guid 的条目</title>
    <link>alerts/1.html</link>
    <description>&lt;i&gt;escaped&lt;/i&gt; html</description>
    <pubDate>Mon, 01 Jun 2026 08:00:00 GMT</pubDate>
  </item>
  <item>
    <title>Neither guid nor link</title>
    <description>Only text.</description>
  </item>
</channel></rss>
"""

ATOM = """<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom">
  <title type="text">Atom 预警</title>
  <id>urn:feed</id>
  <updated>2026-06-02T10:00:00+08:00</updated>
  <entry>
    <id>urn:entry:1</id>
    <title type="html">&lt;em&gt;冒充&lt;/em&gt; 公检法</title>
    <link rel="alternate" href="entries/1"/>
    <updated>2026-06-02T10:00:00+08:00</updated>
    <summary type="html">&lt;p&gt;Hello &amp;amp; &lt;a href="x"&gt;bye&lt;/a&gt;&lt;/p&gt;</summary>
  </entry>
</feed>
"""

JSON_FEED = {
    "version": "https://jsonfeed.org/version/1.1",
    "title": "JSON 预警",
    "items": [
        {
            "id": 7,
            "url": "/j/7",
            "title": "虚假 征信",
            "date_published": "2026-06-02T10:00:00+08:00",
            "content_html": "<p>注销<br>校园贷</p><script>track()</script>",
        },
        {"id": "8", "external_url": "https://other.invalid/8", "content_text": "plain  text", "title": "t8"},
    ],
}


def rss_response(**headers) -> Response:
    return Response(RSS, content_type="application/rss+xml; charset=utf-8", headers=headers)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- parsing ---


async def test_rss_entries_are_plain_text_with_absolute_links_and_utc_dates(server, client):
    server.expect_request("/feeds/rss.xml").respond_with_response(rss_response())
    result = await fetch_feed(client, server.url_for("/feeds/rss.xml"))
    assert result.status == "ok" and result.error == ""
    assert result.title == "县反诈中心 预警"
    first, second, third = result.entries  # newest first, undated last
    assert first.guid == "alert-2"
    assert first.title == "警惕 “刷单返利” 新骗局"
    assert first.link == server.url_for("/alerts/2.html")
    assert first.summary == "近期多人被骗&报警 请转告家人"  # tags and script gone, entities decoded
    assert first.published == datetime(2026, 6, 2, 1, 30, tzinfo=UTC)
    assert first.published.tzinfo == second.published.tzinfo == UTC
    assert second.link == server.url_for("/feeds/alerts/1.html")  # relative to the feed's folder
    assert second.summary == "escaped html"
    assert third.link == "" and third.published is None


async def test_atom(server, client):
    server.expect_request("/feeds/atom.xml").respond_with_data(ATOM, content_type="application/atom+xml")
    result = await fetch_feed(client, server.url_for("/feeds/atom.xml"))
    assert result.status == "ok" and result.title == "Atom 预警"
    [entry] = result.entries
    assert entry.guid == "urn:entry:1"
    assert entry.title == "冒充 公检法"
    assert entry.link == server.url_for("/feeds/entries/1")
    assert entry.summary == "Hello & bye"
    assert entry.published == datetime(2026, 6, 2, 2, 0, tzinfo=UTC)
    assert entry.published.tzinfo == UTC


async def test_json_feed(server, client):
    server.expect_request("/feed.json").respond_with_json(JSON_FEED, content_type="application/feed+json")
    result = await fetch_feed(client, server.url_for("/feed.json"))
    assert result.status == "ok" and result.title == "JSON 预警"
    seven, eight = result.entries
    assert (seven.guid, seven.link, seven.title) == ("7", server.url_for("/j/7"), "虚假 征信")
    assert seven.summary == "注销 校园贷"
    assert seven.published == datetime(2026, 6, 2, 2, 0, tzinfo=UTC)
    assert seven.published.tzinfo == UTC  # not just equal: stored as UTC
    assert (eight.guid, eight.link) == ("8", "https://other.invalid/8")
    assert (eight.summary, eight.published) == ("plain text", None)


def test_long_texts_are_capped_and_only_the_newest_100_entries_are_kept():
    start = datetime(2026, 1, 1, tzinfo=UTC)
    # Oldest first in the document, so keeping the first 100 would keep the wrong ones.
    items = "".join(
        f"<item><guid>g{i}</guid><title>{'标题' * 150}</title><description>{'x ' * 400}</description>"
        f"<pubDate>{start + timedelta(hours=i):%a, %d %b %Y %H:%M:%S} GMT</pubDate></item>"
        for i in range(130)
    )
    content = f"<rss version='2.0'><channel><title>{'t' * 300}</title>{items}</channel></rss>"
    title, entries = parse_feed(content.encode())
    assert len(title) == 200
    assert [e.guid for e in entries] == [f"g{i}" for i in range(129, 29, -1)]
    assert all(len(e.title) == 200 and e.title.endswith("…") and len(e.summary) == 300 for e in entries)


def test_a_body_naming_a_local_file_is_not_read_from_disk(tmp_path):
    # feedparser opens bytes that look like a path; a hostile server must not make us read local files.
    path = tmp_path / "local.xml"
    path.write_text(RSS, encoding="utf-8")
    with pytest.raises(FeedError):
        parse_feed(str(path).encode())


def test_gb2312_feed_is_decoded():
    content = RSS.replace('encoding="utf-8"', 'encoding="gb2312"').replace("“", '"').replace("”", '"')
    title, entries = parse_feed(content.encode("gb2312"), content_type="text/xml")
    assert title == "县反诈中心 预警" and entries[0].title == '警惕 "刷单返利" 新骗局'


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"hello",
        b"/etc/passwd",
        b"<html><body><h1>502 Bad Gateway</h1></body></html>",
        b'{"version": "something else", "items": []}',
        b"{not json",
        b"\x00\xff\xfe garbage",
    ],
)
def test_garbage_raises_feed_error(content):
    with pytest.raises(FeedError):
        parse_feed(content)


# --- HTTP ---


async def test_etag_gives_not_modified_and_keeps_validators(server, client):
    def handler(request: Request) -> Response:
        if request.headers.get("If-None-Match") == '"v1"':
            return Response(status=304, headers={"ETag": '"v1"'})
        return rss_response(ETag='"v1"')

    server.expect_request("/rss").respond_with_handler(handler)
    url = server.url_for("/rss")
    first = await fetch_feed(client, url)
    assert (first.status, first.etag, len(first.entries)) == ("ok", '"v1"', 3)
    second = await fetch_feed(client, url, etag=first.etag, last_modified="")
    assert (second.status, second.etag, second.entries) == ("not_modified", '"v1"', [])
    assert server.log[1][0].headers.get("If-None-Match") == '"v1"'


async def test_last_modified_gives_not_modified(server, client):
    stamp = "Tue, 02 Jun 2026 01:30:00 GMT"

    def handler(request: Request) -> Response:
        if request.headers.get("If-Modified-Since") == stamp:
            return Response(status=304)
        return rss_response(**{"Last-Modified": stamp})

    server.expect_request("/rss").respond_with_handler(handler)
    first = await fetch_feed(client, server.url_for("/rss"))
    assert (first.status, first.etag, first.last_modified) == ("ok", "", stamp)
    second = await fetch_feed(client, server.url_for("/rss"), last_modified=first.last_modified)
    assert (second.status, second.last_modified) == ("not_modified", stamp)
    assert "If-None-Match" not in server.log[1][0].headers


@pytest.mark.parametrize("status", [301, 302])
async def test_redirect_is_followed_and_links_resolve_against_the_final_url(server, client, status):
    server.expect_request("/old").respond_with_response(Response(status=status, headers={"Location": "/feeds/rss.xml"}))
    server.expect_request("/feeds/rss.xml").respond_with_response(rss_response())
    result = await fetch_feed(client, server.url_for("/old"))
    assert result.status == "ok"
    assert result.entries[1].link == server.url_for("/feeds/alerts/1.html")


async def test_redirect_loop_stops_after_five_even_when_the_client_would_follow_more(server):
    server.expect_request("/loop").respond_with_response(Response(status=302, headers={"Location": "/loop"}))
    async with httpx.AsyncClient(trust_env=False, follow_redirects=True) as client:
        result = await fetch_feed(client, server.url_for("/loop"))
    assert result.status == "error" and "redirects" in result.error
    assert len(server.log) == 6  # the request and five redirects


async def test_server_errors_are_retried_with_a_delay(server, client):
    responses = iter([Response(status=500), Response(status=503), rss_response()])
    server.expect_request("/rss").respond_with_handler(lambda request: next(responses))
    started = time.monotonic()
    result = await fetch_feed(client, server.url_for("/rss"), retries=2, retry_delay=0.2)
    assert result.status == "ok" and len(result.entries) == 3
    assert len(server.log) == 3
    assert time.monotonic() - started >= 0.4  # two delays between three tries


async def test_retries_are_bounded(server, client):
    server.expect_request("/rss").respond_with_response(Response(status=502))
    result = await fetch_feed(client, server.url_for("/rss"), retries=2, retry_delay=0.01)
    assert result.status == "error" and "HTTP 502" in result.error
    assert len(server.log) == 3


async def test_connection_refused_is_retried_then_reported(client):
    started = time.monotonic()
    result = await fetch_feed(client, f"http://127.0.0.1:{closed_port()}/rss", retries=2, retry_delay=0.15)
    assert result.status == "error" and "ConnectError" in result.error and "3 tries" in result.error
    assert time.monotonic() - started >= 0.3


async def test_client_errors_and_garbage_are_not_retried(server, client):
    server.expect_request("/missing").respond_with_data("nope", status=404)
    server.expect_request("/html").respond_with_data("<html><body>login</body></html>", content_type="text/html")
    missing = await fetch_feed(client, server.url_for("/missing"), retry_delay=0.01)
    assert (missing.status, missing.error, len(server.log)) == ("error", "HTTP 404", 1)
    garbage = await fetch_feed(client, server.url_for("/html"), retry_delay=0.01)
    assert garbage.status == "error" and "not a feed" in garbage.error and garbage.entries == []
    assert len(server.log) == 2


@pytest.mark.parametrize(
    "body,content_type",
    [
        (b"\x00\x01 binary", "application/rss+xml"),
        (b"<rss><channel><item", "text/xml"),
        (b'{"items": "no"}', "application/json"),
    ],
)
async def test_malformed_feed_is_an_error_not_an_exception(server, client, body, content_type):
    server.expect_request("/rss").respond_with_data(body, content_type=content_type)
    result = await fetch_feed(client, server.url_for("/rss"), etag='"old"')
    assert result.status == "error" and result.error and result.entries == []
    assert result.etag == '"old"'  # validators of the last good fetch survive


def trickle(seconds: float, tail: str = RSS):
    """A body that dribbles a byte every 0.1 s (never idle long enough for a read timeout), then a valid feed."""

    def body():
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            yield b" "
            time.sleep(0.1)
        yield tail.encode()

    return Response(body(), content_type="application/rss+xml")


async def test_trickling_feed_is_cut_off_at_the_total_timeout(server, client):
    server.expect_request("/slow").respond_with_response(trickle(4))
    started = time.monotonic()
    result = await fetch_feed(client, server.url_for("/slow"), timeout=0.5, retry_delay=0.01)
    assert result.status == "error" and "timed out" in result.error
    assert time.monotonic() - started < 0.5 + 2


async def test_silent_server_is_cut_off_at_the_total_timeout(server, client):
    server.expect_request("/silent").respond_with_handler(lambda request: time.sleep(3) or rss_response())
    started = time.monotonic()
    result = await fetch_feed(client, server.url_for("/silent"), timeout=0.5)
    assert result.status == "error" and "timed out" in result.error
    assert time.monotonic() - started < 0.5 + 2


async def test_feed_over_max_bytes_declared_in_content_length(server, client):
    server.expect_request("/big").respond_with_data(b" " * 200_000 + RSS.encode(), content_type="text/xml")
    result = await fetch_feed(client, server.url_for("/big"), max_bytes=100_000)
    assert result.status == "error" and "too large" in result.error


async def test_streamed_feed_over_max_bytes_is_not_read_to_the_end(server, client):
    sent = [0]
    total = 64 * 1024 * 1024

    def body():
        yield b"<rss version='2.0'><channel><title>big</title>"
        while sent[0] < total:
            sent[0] += 65536
            yield b" " * 65536

    server.expect_request("/huge").respond_with_response(Response(body(), content_type="text/xml"))
    result = await fetch_feed(client, server.url_for("/huge"), max_bytes=100_000)
    assert result.status == "error" and "too large" in result.error
    await asyncio.sleep(0.3)  # let the server notice the closed connection
    assert sent[0] < total / 4


async def test_guids_are_stable_across_fetches(server, client):
    server.expect_request("/rss").respond_with_response(rss_response())
    first = await fetch_feed(client, server.url_for("/rss"))
    # The same items again, with a new one on top.
    newer = RSS.replace("<item>", "<item><title>new</title><description>n</description></item><item>", 1)
    server.clear()
    server.expect_request("/rss").respond_with_data(newer, content_type="application/rss+xml")
    second = await fetch_feed(client, server.url_for("/rss"))
    old_guids = [e.guid for e in first.entries]
    assert old_guids[0] == "alert-2" and old_guids[1] == server.url_for("/alerts/1.html")
    assert old_guids[2].startswith("sha256:")
    assert set(old_guids) < {e.guid for e in second.entries}
    assert len({e.guid for e in second.entries}) == 4


def test_json_feed_guids_are_stable():
    content = json.dumps(JSON_FEED).encode()
    assert [e.guid for e in parse_feed(content)[1]] == [e.guid for e in parse_feed(content)[1]] == ["7", "8"]


SECRET_URL_CASES = {
    "404": Response("x", status=404),
    "500": Response("x", status=500),
    "garbage": Response("<html>x</html>", content_type="text/html"),
    "too large": Response(b"x" * 300_000, content_type="text/xml"),
    "loop": Response(status=302, headers={"Location": "/token-case?token=secret"}),
}


@pytest.mark.parametrize("case", [*SECRET_URL_CASES, "slow", "refused"])
async def test_token_in_the_url_never_reaches_the_error(server, client, case):
    if case == "refused":
        url = f"http://127.0.0.1:{closed_port()}/rss?token=secret"
    else:
        response = trickle(3) if case == "slow" else SECRET_URL_CASES[case]
        server.expect_request("/token-case").respond_with_response(response)
        url = server.url_for("/token-case") + "?token=secret"
    result = await fetch_feed(client, url, timeout=0.5, retries=1, retry_delay=0.01, max_bytes=100_000)
    assert result.status == "error" and result.error
    assert "secret" not in result.error and "token" not in result.error


def test_redact_cuts_query_strings_from_any_url():
    # Greedy on purpose: a comma may belong to the query, so it goes too.
    text = "failed at https://h.invalid/a?token=secret#x, then http://h.invalid/b?k=1,secret2 end"
    assert redact(text) == "failed at https://h.invalid/a then http://h.invalid/b end"
    assert redact("bad token=secret here", "http://h.invalid/feed?token=secret") == "bad  here"


async def test_non_http_url_is_an_error_without_a_request(client):
    result = await fetch_feed(client, "file:///etc/passwd")
    assert result.status == "error" and "http" in result.error
