"""Link previews against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest
from werkzeug import Response

from bot.adapters.link_preview import Preview, fetch_preview

OG_PAGE = """<!doctype html><html><head>
<meta charset="utf-8">
<title>Plain title | Site</title>
<meta name="description" content="plain description">
<meta property="og:title" content="  警惕 &quot;刷单&quot;
   返利 ">
<meta property="og:description" content="OG &amp; description">
<meta property="og:image" content="/img/cover.png">
</head><body><p>text</p></body></html>"""

PLAIN_PAGE = """<html><head>
<title>
   反诈   提醒 &amp; 通知
</title>
<meta name="Description" content="  一条
 描述 ">
</head><body></body></html>"""


async def test_og_tags_win_over_title_and_meta_description(server, client):
    server.expect_request("/a/page").respond_with_data(OG_PAGE, content_type="text/html; charset=utf-8")
    preview = await fetch_preview(client, server.url_for("/a/page"))
    assert preview == Preview(
        url=server.url_for("/a/page"),
        title='警惕 "刷单" 返利',
        description="OG & description",
        image=server.url_for("/img/cover.png"),
    )


async def test_title_and_meta_description_when_there_are_no_og_tags(server, client):
    server.expect_request("/plain").respond_with_data(PLAIN_PAGE, content_type="text/html")
    preview = await fetch_preview(client, server.url_for("/plain"))
    assert preview == Preview(url=server.url_for("/plain"), title="反诈 提醒 & 通知", description="一条 描述", image="")


async def test_long_title_and_description_are_capped(server, client):
    page = f"<title>{'长' * 300}</title><meta name=description content='{'d' * 500}'>"
    server.expect_request("/long").respond_with_data(page, content_type="text/html")
    preview = await fetch_preview(client, server.url_for("/long"))
    assert len(preview.title) == 100 and len(preview.description) == 200


GBK_PAGE = "<html><head>{meta}<title>反诈中心：朱镕基时代的老骗局又来了</title></head><body>正文</body></html>"


@pytest.mark.parametrize(
    "content_type,meta",
    [
        ("text/html; charset=GBK", ""),
        # Labelled gb2312 but holding 镕, which only GBK has: read as browsers do, with GB18030.
        ("text/html", '<meta charset="gb2312">'),
        ("text/html", '<meta http-equiv="Content-Type" content="text/html; charset=gb2312">'),
    ],
)
async def test_gbk_page_is_decoded(server, client, content_type, meta):
    page = GBK_PAGE.format(meta=meta).encode("gbk")
    server.expect_request("/gbk").respond_with_data(page, content_type=content_type)
    preview = await fetch_preview(client, server.url_for("/gbk"))
    assert preview.title == "反诈中心：朱镕基时代的老骗局又来了"


async def test_utf8_is_the_fallback_and_bad_bytes_do_not_fail(server, client):
    server.expect_request("/u").respond_with_data(
        "<title>中文\udcff</title>".encode("utf-8", "surrogateescape"), content_type="text/html"
    )
    preview = await fetch_preview(client, server.url_for("/u"))
    assert preview.title == "中文\ufffd"


async def test_redirect_is_followed(server, client):
    server.expect_request("/short").respond_with_response(Response(status=302, headers={"Location": "/a/page"}))
    server.expect_request("/a/page").respond_with_data(OG_PAGE, content_type="text/html")
    preview = await fetch_preview(client, server.url_for("/short"))
    assert preview.url == server.url_for("/a/page") and preview.image == server.url_for("/img/cover.png")


@pytest.mark.parametrize(
    "status,body,content_type",
    [
        (200, b"\x89PNG\r\n\x1a\n<title>not a page</title>", "image/png"),
        (404, OG_PAGE.encode(), "text/html"),
        (500, OG_PAGE.encode(), "text/html"),
        (200, b"<html><head></head><body>no title</body></html>", "text/html"),
    ],
)
async def test_unreadable_or_untitled_pages_give_none(server, client, status, body, content_type):
    server.expect_request("/x").respond_with_data(body, status=status, content_type=content_type)
    assert await fetch_preview(client, server.url_for("/x")) is None
    assert len(server.log) == 1


async def test_slow_page_gives_none_within_the_timeout(server, client):
    def body():
        yield b"<html><head>"
        for _ in range(40):  # a byte every 0.1 s: no read timeout ever fires, only a total one
            time.sleep(0.1)
            yield b" "
        yield b"<title>late</title></head>"

    server.expect_request("/slow").respond_with_response(Response(body(), content_type="text/html"))
    started = time.monotonic()
    assert await fetch_preview(client, server.url_for("/slow"), timeout=0.5) is None
    assert time.monotonic() - started < 0.5 + 2


async def test_reading_stops_at_the_end_of_head(server, client):
    sent = [0]
    total = 64 * 1024 * 1024

    def body():
        yield OG_PAGE.split("<body>")[0].encode()
        while sent[0] < total:
            sent[0] += 65536
            yield b"<p>" + b"x" * 65533

    server.expect_request("/article").respond_with_response(Response(body(), content_type="text/html"))
    preview = await fetch_preview(client, server.url_for("/article"), max_bytes=100_000)
    assert preview is not None and preview.title == '警惕 "刷单" 返利'
    await asyncio.sleep(0.3)  # let the server notice the closed connection
    assert sent[0] < total / 4


async def test_head_larger_than_max_bytes_gives_none(server, client):
    page = "<html><head>" + "<meta name=x content=y>" * 10_000 + "<title>too late</title></head>"
    server.expect_request("/fat").respond_with_data(page, content_type="text/html")
    assert await fetch_preview(client, server.url_for("/fat"), max_bytes=100_000) is None
    assert await fetch_preview(client, server.url_for("/fat"), max_bytes=1_000_000) is not None


@pytest.mark.parametrize(
    "url",
    [
        "ftp://127.0.0.1/file.html",
        "javascript:alert(1)",
        "file:///etc/passwd",
        "data:text/html,<title>x</title>",
        "//127.0.0.1/x",
        "http://",
        "not a url",
    ],
)
async def test_non_http_urls_give_none_without_a_request(url):
    requests = []

    def record(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        return httpx.Response(200, html="<title>should not be fetched</title>")

    async with httpx.AsyncClient(transport=httpx.MockTransport(record)) as client:
        assert await fetch_preview(client, url) is None
    assert requests == []
