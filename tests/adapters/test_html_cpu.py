"""Crafted HTML costs linear time and never holds the event loop (issue 12 item 3; CVE-2025-6069 in html.parser).

On Python 3.11.7 html.parser took 37 s for 300 kB of unclosed "<a" in a link preview, on the event loop, and
feedparser's sgmllib sanitizer 28 s for 400 kB of "&lt;!--" in one entry. These tests watch the event loop from
another thread while such pages are read: every ping must be answered (patience is generous, so a loaded machine
passes; the old code held the loop for minutes), and the crafted input must still give its title or text.
"""

from __future__ import annotations

import asyncio
import html
import threading
import time

from bot.adapters.feed_fetch import fetch_feed, html_to_text
from bot.adapters.link_preview import fetch_preview

PATIENCE = 20.0  # seconds a ping may wait for the loop: far above any scheduling hiccup, far below the old freeze
CRAFTED_SIZE = 600_000  # characters of unclosed tags (the old parser: about 150 s on this machine)


class LoopWatch:
    """Pings the event loop from a thread until stopped; `stalled` is set if a ping went unanswered for PATIENCE s."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.pings = 0
        self.stalled = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            answered = threading.Event()
            self.loop.call_soon_threadsafe(answered.set)
            posted = time.monotonic()
            # Waits in short steps: once the test leaves the `with` block, the loop itself is in __exit__'s join
            # and cannot answer a ping posted just before, which must not count as a stall.
            while not answered.wait(0.05):
                if self._stop.is_set():
                    return
                if time.monotonic() - posted > PATIENCE:
                    self.stalled = True
                    return
            self.pings += 1
            self._stop.wait(0.005)  # a ping every few milliseconds, not a busy loop

    def __enter__(self) -> LoopWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def unclosed_tags_page(size: int) -> bytes:
    return ("<html><head><meta charset='utf-8'><title>正常标题</title>" + "<a" * (size // 2)).encode()


async def test_a_page_of_unclosed_tags_gets_its_title_and_the_loop_stays_free(server, client):
    page = unclosed_tags_page(CRAFTED_SIZE)
    server.expect_request("/crafted").respond_with_data(page, content_type="text/html")
    started = time.perf_counter()
    with LoopWatch(asyncio.get_running_loop()) as watch:
        preview = await fetch_preview(client, server.url_for("/crafted"), timeout=120)
    print(f"benchmark: preview of {len(page)} bytes of unclosed <a: {time.perf_counter() - started:.2f} s")
    assert not watch.stalled, "the event loop did not answer for PATIENCE seconds while the page was read"
    assert preview is not None and preview.title == "正常标题"


async def test_html_to_text_of_crafted_markup_is_linear():
    markups = ["<a" * (CRAFTED_SIZE // 2), "<!--" * (CRAFTED_SIZE // 4), "<a b='" * (CRAFTED_SIZE // 6)]
    started = time.perf_counter()
    with LoopWatch(asyncio.get_running_loop()) as watch:
        texts = [await asyncio.wait_for(asyncio.to_thread(html_to_text, m), 120) for m in markups]
    print(f"benchmark: html_to_text of 3 x {CRAFTED_SIZE} crafted characters: {time.perf_counter() - started:.2f} s")
    assert not watch.stalled
    assert all(isinstance(t, str) for t in texts)
    assert html_to_text("<p>正文" + "<a" * (CRAFTED_SIZE // 2)).startswith("正文")


def crafted_feed() -> bytes:
    # The HTML is escaped, so the feed is well-formed XML and feedparser hands the markup to its HTML handling.
    # 920 kB of "<!--" markup (1.6 MB escaped): feedparser's sanitizer alone would take minutes (28 s for 400 kB).
    entries = [("<!--", 230_000), ("<a", 40_000)]
    items = "".join(
        f"<item><guid>g{i}</guid><title>条目{i}</title>"
        f"<description>{html.escape('<p>摘要' + unit * count)}</description></item>"
        for i, (unit, count) in enumerate(entries)
    )
    feed = f'<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>源</title>{items}</channel></rss>'
    return feed.encode()


async def test_a_feed_of_crafted_entries_is_read_in_linear_time(server, client):
    body = crafted_feed()
    assert len(body) < 2_000_000  # under fetch_feed's cap: it is parsed, not refused as too large
    server.expect_request("/crafted.xml").respond_with_data(body, content_type="application/rss+xml")
    started = time.perf_counter()
    with LoopWatch(asyncio.get_running_loop()) as watch:
        # A generous wait (the parse takes well under a second): the old parse took minutes.
        result = await asyncio.wait_for(fetch_feed(client, server.url_for("/crafted.xml")), 60)
    print(f"benchmark: feed of {len(body)} bytes of crafted entries: {time.perf_counter() - started:.2f} s")
    assert not watch.stalled
    assert result.status == "ok", result.error
    assert sorted(e.title for e in result.entries) == ["条目0", "条目1"]
    assert all(e.summary.startswith("摘要") for e in result.entries)
