"""Feeds the office follows: what was polled, which items are new, and the candidates shown to the office."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlmodel import Session, col, select

from bot.adapters.feed_fetch import FetchResult
from bot.content import Texts
from bot.storage.models import Alert, Feed, FeedItem, pk

FIRST_POLL_SHOWN = 3  # a new feed's backlog is kept, but only its newest items are shown to the office
SHOWN_PER_MESSAGE = 10
FAILING_REPORTED_AFTER = timedelta(days=1)


def sync_feeds(session: Session, urls: list[str]) -> None:
    """Make sure every configured feed has a row (a feed removed from the settings keeps its history)."""
    known = set(session.exec(select(Feed.url)))
    for url in urls:
        if url not in known:
            session.add(Feed(url=url))


def due_feeds(session: Session, urls: list[str], *, now: datetime) -> list[Feed]:
    """Configured feeds whose next poll time has come."""
    if not urls:
        return []
    feeds = session.exec(select(Feed).where(col(Feed.url).in_(urls)).order_by(col(Feed.id)))
    return [f for f in feeds if f.next_poll_at is None or f.next_poll_at <= now]


def record_poll(
    session: Session, feed: Feed, result: FetchResult, *, now: datetime, every: timedelta
) -> list[FeedItem]:
    """Store what a poll returned; returns the items to show the office (new ones, newest first)."""
    feed.next_poll_at = now + every
    if result.status == "error":
        feed.last_error = result.error
        feed.failing_since = feed.failing_since or now
        session.add(feed)
        return []
    first_poll = feed.last_ok_at is None
    feed.etag, feed.last_modified = result.etag, result.last_modified
    feed.last_ok_at, feed.failing_since, feed.last_error = now, None, ""
    feed.title = result.title[:200] or feed.title
    session.add(feed)
    if result.status == "not_modified" or not result.entries:
        return []
    seen = set(session.exec(select(FeedItem.guid).where(FeedItem.feed_id == feed.id)))
    fresh = []
    for entry in result.entries:
        if entry.guid in seen:
            continue
        seen.add(entry.guid)
        item = FeedItem(
            feed_id=pk(feed),
            guid=entry.guid[:1000],
            title=entry.title[:500],
            link=entry.link[:2000],
            summary=entry.summary[:1000],
            published_at=entry.published,
            seen_at=now,
        )
        session.add(item)
        fresh.append(item)
    session.flush()
    fresh.sort(key=lambda i: (i.published_at or now, i.id), reverse=True)
    shown = fresh[:FIRST_POLL_SHOWN] if first_poll else fresh
    for item in shown:
        item.announced = True
        session.add(item)
    return shown


def failing_for_a_day(feed: Feed, *, now: datetime) -> bool:
    """True once a feed has failed for a whole day (reported once per episode by the caller)."""
    return feed.failing_since is not None and now - feed.failing_since >= FAILING_REPORTED_AFTER


def candidates_text(texts: Texts, items: list[FeedItem]) -> list[str]:
    """Office messages listing new candidates, at most SHOWN_PER_MESSAGE per message."""
    messages = []
    for start in range(0, len(items), SHOWN_PER_MESSAGE):
        chunk = items[start : start + SHOWN_PER_MESSAGE]
        lines = [texts.t("feeds.head")]
        lines += [texts.t("feeds.line", n=i.id, title=i.title or i.link, link=i.link) for i in chunk]
        lines.append(texts.t("feeds.foot", n=chunk[0].id))
        messages.append("\n".join(lines))
    return messages


def alert_for(item: FeedItem, *, now: datetime) -> Alert:
    """The alert that pushes a candidate: a link card when it has a link, else its text."""
    if item.link:
        return Alert(
            title=item.title or item.link, link_url=item.link, link_description=item.summary[:500], created_at=now
        )
    return Alert(title=item.title[:200], text="\n".join(p for p in (item.title, item.summary) if p), created_at=now)
