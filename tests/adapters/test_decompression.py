"""Compressed bodies from a real HTTP server on 127.0.0.1: counted after decompression, before it is done."""

from __future__ import annotations

import gzip
import tracemalloc
import zlib
from contextlib import contextmanager

from werkzeug import Request, Response

from bot.adapters.feed_fetch import fetch_feed
from bot.adapters.link_preview import fetch_preview
from tests.adapters.test_feeds import RSS

PAGE = "<html><head><title>反诈提醒：警惕刷单</title></head><body>" + "正文" * 2000 + "</body></html>"


def _bomb(size: int = 200_000_000, layers: int = 2) -> bytes:
    """`size` zero bytes gzipped `layers` times: a few kB on the wire."""
    data = b"\0" * size
    for _ in range(layers):
        data = gzip.compress(data, compresslevel=9)
    return data


@contextmanager
def _traced(peak: list[float]):
    """The peak of Python allocations (bytes objects included) inside the block, in MB."""
    tracemalloc.start()
    try:
        yield
    finally:
        peak.append(tracemalloc.get_traced_memory()[1] / 1e6)
        tracemalloc.stop()


def _compressed(body: bytes, encoding: str, content_type: str):
    def handler(request: Request) -> Response:
        # The test client asks for what the bot may undo; a hostile server sends whatever it likes anyway.
        assert request.headers.get("Accept-Encoding") == "gzip, deflate"
        return Response(body, content_type=content_type, headers={"Content-Encoding": encoding})

    return handler


async def test_a_gzip_feed_and_a_deflate_feed_are_read(server, client):
    server.expect_request("/gz").respond_with_handler(
        _compressed(gzip.compress(RSS.encode()), "gzip", "application/rss+xml")
    )
    server.expect_request("/deflate").respond_with_handler(
        _compressed(zlib.compress(RSS.encode()), "deflate", "application/rss+xml")
    )
    raw = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    server.expect_request("/raw-deflate").respond_with_handler(
        _compressed(raw.compress(RSS.encode()) + raw.flush(), "deflate", "application/rss+xml")
    )
    for path in ("/gz", "/deflate", "/raw-deflate"):
        result = await fetch_feed(client, server.url_for(path))
        assert result.status == "ok", (path, result.error)
        assert result.entries, path


async def test_a_stacked_gzip_bomb_is_refused_without_inflating_it(server, client):
    bomb = _bomb()
    assert len(bomb) < 50_000
    server.expect_request("/feed").respond_with_handler(_compressed(bomb, "gzip, gzip", "application/rss+xml"))
    server.expect_request("/page").respond_with_handler(_compressed(bomb, "gzip, gzip", "text/html"))
    peak: list[float] = []
    with _traced(peak):
        result = await fetch_feed(client, server.url_for("/feed"))
        preview = await fetch_preview(client, server.url_for("/page"))
    assert result.status == "error" and "too large" in result.error
    assert preview is None
    assert peak[0] < 20, peak  # the 2 MB cap and a chunk, not the 200 MB inside


async def test_a_single_gzip_bomb_stops_at_the_cap(server, client):
    bomb = _bomb(layers=1)  # 200 MB of zeros in about 200 kB
    server.expect_request("/feed").respond_with_handler(_compressed(bomb, "gzip", "application/rss+xml"))
    peak: list[float] = []
    with _traced(peak):
        result = await fetch_feed(client, server.url_for("/feed"))
    assert result.status == "error" and "too large" in result.error
    assert peak[0] < 20, peak


async def test_a_compressed_page_is_previewed_and_an_unknown_encoding_is_not_read(server, client):
    server.expect_request("/gz").respond_with_handler(
        _compressed(gzip.compress(PAGE.encode()), "gzip", "text/html; charset=utf-8")
    )
    server.expect_request("/br").respond_with_handler(_compressed(b"\x8b\x00\x80", "br", "text/html"))
    server.expect_request("/broken").respond_with_handler(_compressed(b"not gzip at all", "gzip", "text/html"))
    preview = await fetch_preview(client, server.url_for("/gz"))
    assert preview is not None and preview.title == "反诈提醒：警惕刷单"
    assert await fetch_preview(client, server.url_for("/br")) is None
    assert await fetch_preview(client, server.url_for("/broken")) is None
