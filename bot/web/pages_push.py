"""新推送 and 素材 in the web console (issue 14).

新推送 pushes a library alert or a link the way the chat's `推送 <案件类型>` and `推送 <链接> [标题 <标题>]` do
(handlers/office.py): the same `push_alert`, the same message queued in the outbox for every liaison group, the same
same-day duplicate rule (the chat's `确认` is a second, explicit button here). The preview is the message itself
(compose.push_text), with the number the push will most likely get. A link's title and description come from the
bot's guarded link preview (web_guard.guarded_client with preview_allowed_hosts): nothing is fetched unguarded, and
an internal address is refused, never read. The deadline may be chosen (push_alert's `deadline`), else the default.

素材 lists the feed candidates (FeedItem, the N of the chat's `推送 候选N`) with a 推送 button that does what the chat's
candidate push does, and every configured feed's health, read-only (feed URLs may carry tokens: shown redacted).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func
from sqlmodel import Session, col, select
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from bot.adapters.feed_fetch import is_http_url
from bot.adapters.feed_fetch import redact as feed_redact
from bot.adapters.link_preview import fetch_preview
from bot.adapters.web_guard import DestinationRefused, guarded_client
from bot.chat import compose
from bot.clock import show
from bot.content import AlertLibrary, load_library
from bot.domain import targets
from bot.domain.relay import audit
from bot.operations.office import read_deadline
from bot.operations.pushing import (
    PushOutcome,
    default_target,
    library_alert,
    push_alert,
    push_candidate,
    push_deadline,
    release_link_drafts,
    same_push_today,
    title_from_earlier,
    unknown_target_text,
)
from bot.storage.models import Alert, Feed, FeedItem, Push

NAV = [("/pushes/new", "新推送", "push_new"), ("/feeds", "素材", "feeds")]

MAX_URL = 2000  # Alert.link_url
MAX_TITLE = 200  # Alert.title
FEED_ITEMS_SHOWN = 200
_PICKER = re.compile(r"^(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2})(?::\d{2})?$")


# ---- what the pages show ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LinkPreview:
    """What a link will be pushed as: its card (title, description) or why it has no title."""

    url: str
    title: str
    description: str
    thumbnail: str
    why_untitled: str  # "" when it has a title


@dataclass(frozen=True)
class FeedRow:
    id: int
    title: str
    link: str  # "" unless an http(s) URL: never put anything else in an href
    shown_link: str
    summary: str
    source: str
    at: str
    push_id: int | None


@dataclass(frozen=True)
class FeedHealth:
    url: str  # redacted
    title: str
    last_ok: str
    failing_since: str
    last_error: str


def next_number(session: Session) -> int:
    """The number the next push will most likely get (the preview's #N; the real one is given when it is sent)."""
    return int(session.exec(select(func.max(Push.id))).one() or 0) + 1


def picker_value(moment: datetime, tz) -> str:
    """A moment as a browser's datetime-local input shows it."""
    return moment.astimezone(tz).strftime("%Y-%m-%dT%H:%M")


def feed_rows(session: Session, *, tz) -> list[FeedRow]:
    rows = session.exec(
        select(FeedItem, Feed)
        .join(Feed, col(Feed.id) == FeedItem.feed_id)
        .order_by(col(FeedItem.id).desc())
        .limit(FEED_ITEMS_SHOWN)
    ).all()
    out = []
    for item, feed in rows:
        link = item.link if is_http_url(item.link) else ""
        out.append(
            FeedRow(
                id=int(item.id or 0),
                title=item.title or item.link,
                link=link,
                shown_link=item.link,
                summary=compose.brief(item.summary, 120),
                source=feed.title or feed_redact(feed.url),
                at=show(item.published_at or item.seen_at, tz),
                push_id=item.push_id,
            )
        )
    return out


def feed_health(session: Session, urls: list[str], *, tz) -> list[FeedHealth]:
    """Every configured feed, polled or not yet."""
    known = {f.url: f for f in session.exec(select(Feed).where(col(Feed.url).in_(urls)))} if urls else {}
    out = []
    for url in urls:
        feed = known.get(url)
        out.append(
            FeedHealth(
                url=feed_redact(url),
                title=feed.title if feed else "",
                last_ok=show(feed.last_ok_at, tz) if feed and feed.last_ok_at else "",
                failing_since=show(feed.failing_since, tz) if feed and feed.failing_since else "",
                last_error=feed.last_error if feed else "",
            )
        )
    return out


# ---- the pages and actions ----------------------------------------------------------------------------------


class PushPages:
    def __init__(self, console) -> None:
        self.c = console
        self.library: AlertLibrary = load_library()

    def t(self, key: str, **values: object) -> str:
        return self.c.texts.t(f"web_push.{key}", **values)

    @property
    def tz(self):
        return self.c.settings.tz

    # -- helpers --

    def _default_deadline(self, s, now: datetime) -> datetime:
        return push_deadline(s, now=now, settings=self.c.settings)

    def _deadline(self, s, text: str, now: datetime, n: int) -> tuple[datetime | None, str]:
        """The chosen deadline (the default when none is given), or None and the chat's sentence why not."""
        text = _PICKER.sub(r"\1 \2", text.strip()[:100])
        if not text:
            return self._default_deadline(s, now), ""
        return read_deadline(text, now=now, settings=self.c.settings, texts=self.c.texts, n=n)

    async def _link_preview(self, url: str, title: str) -> LinkPreview:
        """As the chat's 推送 <链接> [标题 <标题>]: with a title typed the page need not be read; otherwise it is read
        through the guarded client only (an internal address not in preview_allowed_hosts is refused)."""
        if title:
            return LinkPreview(url, title, "", "", "")
        card = None
        refused = False
        async with guarded_client(self.c.settings.preview_allowed_hosts) as client:
            try:
                card = await fetch_preview(client, url, timeout=self.c.settings.preview_timeout_seconds)
            except DestinationRefused:
                refused = True
        if card is None or not card.title.strip() or card.title == url:
            why = self.c.texts.t("push_title.why_internal" if refused else "push_title.why_unread")
            return LinkPreview(url, "", "", "", why)
        return LinkPreview(url, card.title[:MAX_TITLE], card.description[:500], card.image, "")

    def _link_alert(self, preview: LinkPreview, now: datetime) -> Alert:
        return Alert(
            link_url=preview.url,
            title=preview.title,
            link_description=preview.description,
            link_thumbnail=preview.thumbnail,
            created_at=now,
        )

    def _audit(self, s, who, request: Request, action: str, detail: str, now: datetime) -> None:
        audit(
            s,
            now=now,
            actor_id=who.contact_id,
            actor_name=who.name,
            action=action,
            detail=detail + self.c.t("audit_from", address=self.c.address(request)),
        )

    def _push(
        self, s, request: Request, who, alert: Alert, *, deadline: datetime | None, again: bool, to: str = ""
    ) -> PushOutcome:
        """push_alert as the chat's _push calls it, with the chosen deadline (None: the default) and where the push
        came from."""
        return push_alert(
            s,
            alert,
            now=self.c.clock(),
            actor_id=who.contact_id,
            actor_name=who.name,
            settings=self.c.settings,
            texts=self.c.texts,
            again=again,
            again_command=self.t("again_command"),
            deadline=deadline,
            audit_note=self.c.t("audit_from", address=self.c.address(request)),
            target=to,
        )

    def _result(self, who, message: str, *, status: int, again: dict[str, str] | None = None, earlier=None):
        return self.c.page(
            "push_new_result.html", status, who=who, message=message, again=again, earlier=earlier, nav="push_new"
        )

    # -- 新推送 --

    async def new(self, request: Request, who, form: dict[str, str]) -> Response:
        q = request.query_params
        case = q.get("case", "").strip()[:50]
        url = q.get("link", "").strip()[:MAX_URL]
        title = q.get("title", "").strip()[:MAX_TITLE]
        when = q.get("deadline", "").strip()[:100]
        to = q.get("to", "").strip()[:200]
        item = self.library.find(case) if case else None
        error = self.t("unknown_type", name=case) if case and item is None else ""
        if url and not is_http_url(url):
            error, url = self.t("bad_link"), ""
        preview = await self._link_preview(url, title) if url and not item else None

        def work(s) -> dict:
            now = self.c.clock()
            n = next_number(s)
            deadline, why = self._deadline(s, when, now, n)
            shown = deadline or self._default_deadline(s, now)
            alert = None
            if item is not None:
                alert = library_alert(item, now=now)
            elif preview is not None and preview.title:
                alert = self._link_alert(preview, now)
            label, target_error = "", ""
            units: tuple[str, ...] = ()
            try:
                aimed = targets.resolve(s, to or (default_target(self.c.settings, alert.case_type) if alert else ""))
            except targets.TargetError as exc:
                aimed, target_error = None, unknown_target_text(s, self.c.texts, exc)
            if aimed is not None:
                label, units = aimed.label, aimed.names
            text = (
                compose.push_text(self.c.texts, n=n, alert=alert, deadline=shown, tz=self.tz, target=label, units=units)
                if alert
                else ""
            )
            earlier = same_push_today(s, alert, aimed, now=now, tz=self.tz) if alert else None
            return {
                "n": n,
                "text": text,
                "target_error": target_error,
                "deadline_value": picker_value(shown, self.tz),
                "deadline_error": why,
                "earlier": earlier.id if earlier else None,
                "earlier_at": f"{earlier.created_at.astimezone(self.tz):%H:%M}" if earlier else "",
            }

        data = await self.c.db(work)
        return self.c.page(
            "push_new.html",
            who=who,
            nav="push_new",
            library=self.library.alerts,
            case=item.case_type if item else "",
            url=url,
            title=title,
            to=to,
            preview=preview,
            error=error,
            **data,
        )

    async def send(self, request: Request, who, form: dict[str, str]) -> Response:
        """发送: 推送 <案件类型> or 推送 <链接> [标题 <标题>], with 确认 as the second button."""
        case = form.get("case", "").strip()[:50]
        url = form.get("link", "").strip()[:MAX_URL]
        title = form.get("title", "").strip()[:MAX_TITLE]
        when = form.get("deadline", "").strip()[:100]
        again = form.get("again") == "1"
        to = form.get("to", "").strip()[:200]
        fields = {"case": case, "link": url, "title": title, "deadline": when, "to": to}
        item = self.library.find(case) if case else None
        if case and item is None:
            return self._result(who, self.t("unknown_type", name=case), status=400)
        if not case and not is_http_url(url):
            return self._result(who, self.t("nothing_chosen"), status=400)
        preview = await self._link_preview(url, title) if item is None else None

        def work(s) -> tuple[int, str, int | None]:
            now = self.c.clock()
            deadline, why = self._deadline(s, when, now, next_number(s))
            if deadline is None:
                return 0, why, None
            if item is not None:
                alert = library_alert(item, now=now)
            else:
                assert preview is not None
                alert = self._link_alert(preview, now)
                if not alert.title and not title_from_earlier(s, alert, now=now, tz=self.tz, again=again):
                    self._audit(s, who, request, "push_untitled", url[:200], now)
                    s.commit()
                    return 0, self.t("need_title", why=preview.why_untitled), None
            outcome = self._push(s, request, who, alert, deadline=deadline, again=again, to=to)
            if outcome.push is None:
                s.commit()  # the push_repeat audit row, if any
                return 0, outcome.message, outcome.earlier.id if outcome.earlier else None
            if alert.link_url:  # as the chat: the same link sent privately before is no longer a draft
                release_link_drafts(s, contact_id=who.contact_id, url=alert.link_url)
            s.commit()
            return int(outcome.push.id or 0), outcome.message, None

        push_id, message, earlier = await self.c.db(work)
        if push_id:
            self.c.flash(who, message)  # the chat's reply, e.g. 已推送 #N …, on the push's page
            return RedirectResponse(f"/pushes/{push_id}", 303)
        if earlier:
            return self._result(who, message, status=409, again={"action": "/pushes/new", **fields}, earlier=earlier)
        return self._result(who, message, status=400)

    # -- 素材 --

    async def feeds(self, request: Request, who, form: dict[str, str]) -> Response:
        urls = list(self.c.settings.feeds)

        def work(s) -> tuple[list[FeedRow], list[FeedHealth]]:
            return feed_rows(s, tz=self.tz), feed_health(s, urls, tz=self.tz)

        rows, health = await self.c.db(work)
        return self.c.page("feed_list.html", who=who, nav="feeds", rows=rows, health=health)

    async def push_candidate(self, request: Request, who, form: dict[str, str]) -> Response:
        """推送 候选N (handlers/office.py _push_candidate)."""
        raw = request.path_params["item_id"]
        if not raw.isascii() or not raw.isdigit() or len(raw) > 12:
            return self._result(who, self.c.texts.t("feeds.unknown", n=raw[:20]), status=404)
        n = int(raw)
        again = form.get("again") == "1"

        def work(s) -> tuple[int, str, int | None]:
            outcome = push_candidate(
                s,
                n,
                now=self.c.clock(),
                texts=self.c.texts,
                push=lambda alert: self._push(s, request, who, alert, deadline=None, again=again),
            )
            s.commit()  # the push, or the push_repeat audit row
            if outcome.push is not None:
                return int(outcome.push.id or 0), outcome.message, None
            return (0 if outcome.found else -1), outcome.message, outcome.earlier.id if outcome.earlier else None

        push_id, message, earlier = await self.c.db(work)
        if push_id > 0:
            self.c.flash(who, message)
            return RedirectResponse(f"/pushes/{push_id}", 303)
        if earlier:
            return self._result(who, message, status=409, again={"action": f"/feeds/{n}/push"}, earlier=earlier)
        return self._result(who, message, status=404 if push_id < 0 else 400)


def routes(console) -> list[BaseRoute]:
    pages = PushPages(console)
    g = console.guarded
    return [
        Route("/pushes/new", g(pages.new), methods=["GET"]),
        Route("/pushes/new", g(pages.send, act=True), methods=["POST"]),
        Route("/feeds", g(pages.feeds), methods=["GET"]),
        Route("/feeds/{item_id}/push", g(pages.push_candidate, act=True), methods=["POST"]),
    ]
