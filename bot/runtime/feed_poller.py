"""Feeds and links: the HTTP client, the feed poller, and link previews for an admin's bare link."""

from __future__ import annotations

import logging
import re
from datetime import datetime, timedelta

import httpx

from bot.adapters.feed_fetch import FetchResult, fetch_feed
from bot.adapters.feed_fetch import redact as feed_redact
from bot.adapters.link_preview import RefusedLink, fetch_preview
from bot.adapters.web_guard import DestinationRefused, guarded_client
from bot.chat.parsing import parse_command, parse_push_args, strip_mentions
from bot.config import Settings
from bot.domain import feeds as feed_watch
from bot.domain.people import first_notice
from bot.operations.pushing import push_alert
from bot.runtime.alerter import SecondChannel
from bot.runtime.units import UnitOfWork
from bot.storage.models import Feed, Priority
from bot.transport.base import Incoming, LinkCard, MessageKind

log = logging.getLogger(__name__)

_BARE_URL = re.compile(r"^https?://\S+$")


class Web:
    """The bot's HTTP clients, open between start and stop: one for link previews, which come from chat and reach
    public addresses only, and one for the configured feeds, which may also reach the intranet hosts the office
    listed (feed_allowed_hosts). Setting `client` (as tests do) sets both."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.previews: httpx.AsyncClient | None = None
        self.feeds: httpx.AsyncClient | None = None

    @property
    def client(self) -> httpx.AsyncClient | None:
        return self.previews

    @client.setter
    def client(self, client: httpx.AsyncClient | None) -> None:
        self.previews = self.feeds = client

    def open(self) -> None:
        if self.previews is None:
            self.previews = guarded_client(self.settings.preview_allowed_hosts)
        if self.feeds is None:
            self.feeds = guarded_client(self.settings.feed_allowed_hosts)

    async def close(self) -> None:
        for client in {id(c): c for c in (self.previews, self.feeds) if c is not None}.values():
            await client.aclose()


async def link_previews(web: Web, settings: Settings, msg: Incoming) -> dict[str, LinkCard]:
    """For an admin's bare link (sent privately, or after 推送), the page's title and description, fetched here
    because handlers run without network access; a page that cannot be read gets its URL as the title (the
    handler then asks the office for a title instead of pushing it)."""
    if web.previews is None or msg.kind != MessageKind.TEXT or msg.sender.contact_id not in settings.admin_ids:
        return {}
    cmd = parse_command(msg.text)
    if cmd is not None and cmd.name != "推送":
        return {}
    if cmd is None:
        text = strip_mentions(msg.text)
    else:
        # 推送 <链接> [确认]; with a title given (推送 <链接> 标题 …) the page need not be read.
        args = parse_push_args(cmd.arg)
        text = "" if args.title else args.target
    if not _BARE_URL.match(text):
        return {}
    try:
        preview = await fetch_preview(web.previews, text, timeout=settings.preview_timeout_seconds)
    except DestinationRefused as exc:
        # Its title would go to every liaison group: the link goes out as its URL, and the office is told why.
        log.warning("no preview for %s: %s", feed_redact(text)[:80], exc)
        return {text: RefusedLink(text, text)}
    if preview is None:
        log.info("no preview for %s: the office is asked for a title", text[:80])
        return {text: LinkCard(text, text)}
    return {text: LinkCard(text, preview.title, preview.description, preview.image)}


class FeedPoller:
    """Polls the configured feeds that are due; network waits happen outside the unit-of-work lock."""

    def __init__(self, units: UnitOfWork, web: Web, alerter: SecondChannel) -> None:
        self.units = units
        self.web = web
        self.alerter = alerter

    @property
    def settings(self) -> Settings:
        return self.units.settings

    async def poll(self) -> int:
        """Poll the feeds that are due; returns how many were polled."""
        now = self.units.clock()
        with self.units.session() as s:
            due = [
                (f.id, f.url, f.etag, f.last_modified) for f in feed_watch.due_feeds(s, self.settings.feeds, now=now)
            ]
        if not due or self.web.feeds is None:
            return 0
        results = []
        for feed_id, url, etag, last_modified in due:
            result = await fetch_feed(
                self.web.feeds, url, etag=etag, last_modified=last_modified, timeout=self.settings.feed_timeout_seconds
            )
            if result.status == "error":
                log.warning("feed %s failed: %s", feed_redact(url), result.error)
            results.append((feed_id, result))
        self.alerter.alert_all(await self.units.run(self._store, results, now))
        return len(results)

    def _store(self, results: list[tuple[int, FetchResult]], now: datetime) -> list[str]:
        """Record the polls in one unit of work; returns the alerts for the second channel."""
        every = timedelta(minutes=self.settings.feed_poll_minutes)
        texts = self.units.texts
        health: list[str] = []
        with self.units.session() as s:
            ctx = self.units.context(s, now)
            for feed_id, result in results:
                feed = s.get(Feed, feed_id)
                if feed is None:
                    continue
                first_poll = feed.last_ok_at is None
                shown = feed_watch.record_poll(s, feed, result, now=now, every=every)
                for text in feed_watch.candidates_text(texts, shown):
                    ctx.to_office(text)
                if self.settings.feed_auto_push and not first_poll:
                    for item in reversed(shown):
                        outcome = push_alert(
                            s,
                            feed_watch.alert_for(item, now=now),
                            now=now,
                            actor_id="feed",
                            actor_name=feed.url[:100],
                            settings=self.settings,
                            texts=texts,
                        )
                        item.push_id = outcome.push.id if outcome.push else None
                        s.add(item)
                if (
                    feed_watch.failing_for_a_day(feed, now=now)
                    and feed.failing_since is not None
                    and first_notice(s, kind="feed_failing", key=f"{feed.id}:{feed.failing_since.isoformat()}", now=now)
                ):
                    text = texts.t("feeds.failing", url=feed_redact(feed.url), error=feed.last_error)
                    ctx.to_office(text, priority=Priority.NOTICE)
                    health.append(text)
            s.commit()
        return health
