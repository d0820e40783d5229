"""Wiring: settings -> engine -> transport -> dispatcher -> outbox sender. The only place that reads the real clock."""

from __future__ import annotations

import asyncio
import functools
import logging
import re
from pathlib import Path
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Callable
from zoneinfo import ZoneInfo

import httpx
from sqlalchemy import bindparam
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from bot.chat import compose
from bot.domain import evidence as evidence_store
from bot.domain import feeds as feed_watch
from bot.domain import notes
from bot.storage import outbox
from bot.operations import agenda as schedule
from bot.domain.workdays import load_calendar
from bot.clock import real_clock, show
from bot.config import Settings
from bot.content import load_library, load_texts
from bot.storage.db import create_schema, make_engine
from bot.storage.db import session as new_session
from bot.chat.dispatch import Context, Dispatcher
from bot.adapters.feed_fetch import fetch_feed
from bot.adapters.feed_fetch import redact as feed_redact
from bot.runtime.health import HealthMonitor
from bot.runtime.renderer import Renderer
from bot.storage.models import (
    Feed,
    Group,
    GroupKind,
    Outbox,
    OutboxState,
    Priority,
    Push,
    PushState,
)
from bot.chat.parsing import parse_command, strip_mentions
from bot.domain.people import first_notice, observe
from bot.adapters.link_preview import fetch_preview
from bot.operations.pushing import push_alert
from bot.domain.relay import audit, due_acks
from bot.reports.build import build_report
from bot.transport.base import (
    ChatKind,
    Incoming,
    LinkCard,
    Member,
    MessageKind,
    Outgoing,
    RoomInfo,
    RoomInvite,
    SendError,
    Transport,
    without_nul,
)

log = logging.getLogger(__name__)

MAX_SEND_ATTEMPTS = 5
# Run for every message from a room; built once (building a statement costs more than running it).
_GROUP_OF_ROOM = select(Group).where(Group.room_id == bindparam("room_id"))
_BARE_URL = re.compile(r"^https?://\S+$")


def _log_failure(task: asyncio.Task) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("rendering report files failed", exc_info=task.exception())


class RelayBot:
    """The running bot: receives events from a transport, handles them in one unit of work, sends the outbox."""

    def __init__(
        self,
        settings: Settings,
        transport: Transport,
        *,
        engine: Engine | None = None,
        clock: Callable[[], datetime] = real_clock,
        send_loop: bool = True,
    ) -> None:
        from handlers import (
            ROUTERS,  # handlers import the domain; importing them here keeps bot/ free of cycles
        )

        self.settings = settings
        self.transport = transport
        self.engine = engine or make_engine(settings.database_url)
        create_schema(self.engine)
        self.clock = clock
        # Tests that move a fake clock drive sending themselves (send_due / send_pending) instead of the loop;
        # the same tests run the screenshot checks themselves (check_evidence).
        self.send_loop = send_loop
        self.evidence_worker = send_loop
        self.texts = load_texts()
        self.library = load_library()
        self.dispatcher = Dispatcher(ROUTERS)
        self.bot_id = ""
        self._lock = asyncio.Lock()  # one unit of work at a time: SQLite has one writer anyway
        self._wake = asyncio.Event()
        self._send_lock = asyncio.Lock()  # the loop and send_pending() must never send the same row twice
        self._sender: asyncio.Task | None = None
        self.ready = asyncio.Event()
        self.notifier = None  # the second channel (a webhook robot), set up by the CLI when configured
        self.health = HealthMonitor(self)  # self-check, receive check, connection alerts (bot/runtime/health.py)
        self._link_dropped = False  # the last send failed because the gateway connection is down
        self._background: set[asyncio.Task] = set()
        self.http: httpx.AsyncClient | None = None  # feeds and link previews
        self._ocr = None  # loaded on the first screenshot; False when no OCR is installed
        self._evidence_lock = asyncio.Lock()  # one OCR at a time: it keeps both cores busy
        self._ocr_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ocr")
        # Report files are made after the unit of work that queued the report, outside the lock (renderer.py).
        self.renderer = Renderer(self.engine, self.texts, self._lock, on_attached=self._wake.set)

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.settings.timezone)

    # ---- lifecycle -------------------------------------------------------------------------------

    async def start(self) -> None:
        """Connect the transport and start the outbox sender."""
        with new_session(self.engine) as s:
            for row in outbox.recover_interrupted(s):
                log.warning("outbox row %s was being sent when the bot stopped: sending it again", row.id)
            s.commit()
        self.http = httpx.AsyncClient()
        if self.send_loop:
            self._sender = asyncio.create_task(self._send_loop(), name="outbox-sender")
        await self.render_reports()  # what a restart interrupted
        await self.transport.start(self)

    async def stop(self) -> None:
        """Stop sending and disconnect."""
        if self._sender is not None:
            self._sender.cancel()
            try:
                await self._sender
            except asyncio.CancelledError:
                pass
        await self.transport.stop()
        await self.health.flush()
        if self.http is not None:
            await self.http.aclose()
        self._ocr_thread.shutdown(wait=False, cancel_futures=True)

    # ---- EventSink -------------------------------------------------------------------------------

    async def on_ready(self, bot_id: str) -> None:
        """Logged in: learn the rooms, apply the configured group kinds, read member lists."""
        self.bot_id = bot_id
        await self.health.on_ready()
        rooms = await self.transport.rooms()
        async with self._lock:
            with new_session(self.engine) as s:
                self._sync_groups(s, rooms)
                feed_watch.sync_feeds(s, self.settings.feeds)
                schedule.schedule_epoch(s, now=self.clock())  # nothing scheduled before the first start is owed
                s.commit()
        for room in rooms:
            await self._refresh_members(room.room_id)
        self.ready.set()
        log.info("ready as %s in %d rooms", bot_id, len(rooms))
        self._wake.set()

    async def on_message(self, msg: Incoming) -> None:
        """Handle one message in one unit of work."""
        self.health.note_receive()
        msg = without_nul(msg)
        if msg.sender.contact_id == self.bot_id:
            return
        try:
            previews = await self._link_previews(msg)
        except Exception:  # a preview is a nicety: the message itself must still be handled
            log.exception("link preview for message %s failed", msg.message_id)
            previews = {}
        self._loop = asyncio.get_running_loop()  # _handle runs in a worker thread and may alert the second channel
        async with self._lock:
            try:
                refresh = await asyncio.to_thread(self._handle, msg, previews)
            except Exception:
                log.exception("handling message %s failed; nothing was recorded", msg.message_id)
                return
        for room_id in refresh:
            await self._refresh_members(room_id)
        self._wake.set()
        await self.render_reports()
        if msg.kind == MessageKind.IMAGE and self.evidence_worker:
            task = asyncio.create_task(self.check_evidence())
            self._background.add(task)
            task.add_done_callback(self._background.discard)

    async def on_room_join(self, room: RoomInfo, joined: list[Member], inviter_id: str) -> None:
        """New members: remember them and try to recognise them."""
        self.health.note_receive()
        room, joined, inviter_id = without_nul(room), without_nul(joined), without_nul(inviter_id)
        joined = [m for m in joined if m.contact_id != self.bot_id]
        async with self._lock:
            await asyncio.to_thread(self._observe, room, joined)
        self._wake.set()

    async def on_room_invite(self, invite: RoomInvite) -> None:
        """Accept invitations from office admins only."""
        self.health.note_receive()
        invite = without_nul(invite)
        now = self.clock()
        async with self._lock:
            with new_session(self.engine) as s:
                ctx = self._context(s, now)
                allowed = ctx.is_admin(invite.inviter_id)
                audit(s, now=now, actor_id=invite.inviter_id, actor_name="", action="room_invite",
                      detail=invite.room_topic, allowed=allowed)
                if allowed:
                    await self.transport.accept_invite(invite.invitation_id)
                    ctx.to_office(self.texts.t("groups.joined", name=invite.room_topic or "?"))
                else:
                    log.info("ignored a room invitation from %s (not an admin)", invite.inviter_id)
                s.commit()
        self._wake.set()

    async def on_connection(self, state: str, detail: str) -> None:
        """The chat link dropped ("lost", "logged_out") or came back ("restored"): sending waits for the link;
        the office hears of an outage once it lasts `connection_alert_minutes` (see HealthMonitor)."""
        await self.health.on_connection(state, detail)

    async def on_echo(self, message_id: str, chat_id: str, text: str) -> None:
        """The gateway echoed a message the bot sent (an optional sink method the Wechaty transport calls)."""
        await self.health.on_echo(message_id, chat_id, text)

    async def check_health(self) -> None:
        """The periodic health round: self-check, receive check, connection alert (a scheduler job)."""
        await self.health.tick()

    # ---- units of work ---------------------------------------------------------------------------

    def _context(self, s: Session, now: datetime) -> Context:
        return Context(session=s, now=now, settings=self.settings, texts=self.texts, library=self.library, bot_id=self.bot_id)

    async def _link_previews(self, msg: Incoming) -> dict[str, LinkCard]:
        """For an admin's bare link (sent privately, or after 推送), the page's title and description, fetched here
        because handlers run without network access; a page that cannot be read gets its URL as the title."""
        if self.http is None or msg.kind != MessageKind.TEXT or msg.sender.contact_id not in self.settings.admin_ids:
            return {}
        cmd = parse_command(msg.text)
        text = cmd.arg if cmd is not None and cmd.name == "推送" else strip_mentions(msg.text)
        if cmd is not None and cmd.name != "推送" or not _BARE_URL.match(text):
            return {}
        preview = await fetch_preview(self.http, text, timeout=self.settings.preview_timeout_seconds)
        if preview is None:
            log.info("no preview for %s: pushing it with a plain title", text[:80])
            return {text: LinkCard(text, text)}
        return {text: LinkCard(text, preview.title, preview.description, preview.image)}

    def _handle(self, msg: Incoming, previews: dict[str, LinkCard] | None = None) -> set[str]:
        now = self.clock()
        with new_session(self.engine) as s:
            ctx = self._context(s, now)
            ctx.previews = previews or {}
            if msg.chat_kind == ChatKind.ROOM:
                ctx.groups[msg.chat_id] = self._remember_room(s, msg.chat_id, msg.chat_name)
                self._report_ambiguities(ctx, observe(s, room_id=msg.chat_id, members=[msg.sender], now=now), msg.chat_name)
            handled = self.dispatcher.feed(msg, ctx)
            if ctx.rate_limit_notice:
                self._rate_limited(s, now, ctx.rate_limit_notice)
            s.commit()  # what the replies say is recorded is committed before they can be sent
            if handled:
                log.info("message %s handled by %s", msg.message_id, handled)
            return ctx.refresh_rooms

    def _rate_limited(self, s: Session, now: datetime, notice: str) -> None:
        """WeChat said the account sends too often (after reporting the sends as done): pause, tell the office."""
        until, new_pause = outbox.start_backoff(s, now=now, pacing=self.pacing())
        log.warning("WeChat's rate-limit notice (%s): sending paused until %s", notice, until.isoformat())
        if new_pause:
            text = self.texts.t("send.rate_limited", minutes=self.settings.send_backoff_minutes, until=show(until, self.tz))
            self._context(s, now).to_office(text, priority=Priority.NOTICE)
            self._loop.call_soon_threadsafe(self._alert_second_channel, text)

    def _observe(self, room: RoomInfo, members: list[Member], complete: bool = False) -> None:
        now = self.clock()
        with new_session(self.engine) as s:
            self._remember_room(s, room.room_id, room.name)
            ambiguities = observe(s, room_id=room.room_id, members=members, now=now, complete=complete)
            self._report_ambiguities(self._context(s, now), ambiguities, room.name)
            s.commit()

    def _report_ambiguities(self, ctx: Context, ambiguities, room_name: str) -> None:
        for amb in ambiguities:
            ctx.to_office(compose.ambiguity_text(self.texts, amb, room_name=room_name))

    def _remember_room(self, s: Session, room_id: str, name: str) -> Group:
        """The room's Group, created or renamed as needed; written (flushed) only when something changed."""
        group = s.exec(_GROUP_OF_ROOM, params={"room_id": room_id}).first()
        if group is None:
            group = Group(room_id=room_id, name=name)
        elif name and group.name != name:
            group.name = name
        else:
            return group
        s.add(group)
        s.flush()
        return group

    def _sync_groups(self, s: Session, rooms: list[RoomInfo]) -> None:
        """Apply the configured liaison/office groups (by id or name), unless an admin changed them in chat."""
        wanted_liaison = set(self.settings.liaison_groups)
        office = self.settings.office_group
        for room in rooms:
            group = self._remember_room(s, room.room_id, room.name)
            if group.set_by == "admin":
                continue
            if office and office in (room.room_id, room.name):
                group.kind, group.set_by = GroupKind.OFFICE.value, "config"
            elif wanted_liaison & {room.room_id, room.name}:
                group.kind, group.set_by = GroupKind.LIAISON.value, "config"
            elif group.set_by == "config":
                group.kind, group.set_by = GroupKind.NONE.value, ""
            s.add(group)

    async def _refresh_members(self, room_id: str) -> None:
        try:
            members = await self.transport.room_members(room_id)
        except Exception:
            log.exception("could not read the member list of %s", room_id)
            return
        name = ""
        with new_session(self.engine) as s:
            group = s.exec(select(Group).where(Group.room_id == room_id)).first()
            name = group.name if group else ""
        async with self._lock:
            await asyncio.to_thread(self._observe, RoomInfo(room_id, name), members, True)

    # ---- periodic work ---------------------------------------------------------------------------

    async def flush_acks(self) -> int:
        """Acknowledge confirmations in groups that have gone quiet; returns how many messages were queued."""
        async with self._lock:
            count = await asyncio.to_thread(self._flush_acks)
        if count:
            self._wake.set()
        return count

    def _flush_acks(self) -> int:
        now = self.clock()
        quiet = timedelta(seconds=self.settings.ack_quiet_seconds)
        with new_session(self.engine) as s:
            notes.lapse_questions(s, now=now)
            wait = notes.rooms_heard_lately(s, now=now, within=timedelta(seconds=self.settings.ack_min_interval_seconds))
            # One coalesced message per room: questions, recalls and hints, then the acknowledgements.
            lines: dict[str, list[str]] = {}
            mentions: dict[str, tuple[str, ...]] = {}
            # The questions go first: WeChat puts the @ of the people asked at the start of the message.
            after: dict[str, list[str]] = {}
            for room in notes.due(s, now=now, quiet=quiet, wait_rooms=wait):
                lines.setdefault(room.room_id, []).extend(room.lines)
                after[room.room_id] = room.after
                mentions[room.room_id] = room.mention_ids
            for ack in due_acks(s, now=now, quiet=quiet, wait_rooms=wait):
                lines.setdefault(ack.room_id, []).append(compose.ack_text(self.texts, ack))
            for room_id, remarks in after.items():
                lines[room_id].extend(remarks)
            for room_id, room_lines in lines.items():
                outbox.queue(s, now=now, chat_kind=ChatKind.ROOM, chat_id=room_id, text="\n".join(room_lines),
                             mention_ids=mentions.get(room_id, ()), priority=Priority.BROADCAST)
                notes.heard(s, room_id=room_id, now=now)
            s.commit()
            return len(lines)

    async def run_schedule(self) -> int:
        """Do every reminder, deadline and report that is due; returns how many occurrences were handled."""
        self._loop = asyncio.get_running_loop()  # _run_schedule runs in a worker thread
        async with self._lock:
            count = await asyncio.to_thread(self._run_schedule)
        if count:
            self._wake.set()
        await self.render_reports()
        return count

    async def render_reports(self) -> None:
        """Make the files of reports the units of work queued, outside the lock: in the background when the bot
        runs its own send loop, awaited here when a test drives sending itself."""
        if not self.send_loop:
            await self.renderer.render_pending()
            return
        task = self.renderer.kick()
        if task is None:
            return
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        task.add_done_callback(_log_failure)

    def _run_schedule(self) -> int:
        now = self.clock()
        tz = self.tz
        grace = timedelta(minutes=self.settings.schedule_grace_minutes)
        with new_session(self.engine) as s:
            calendar = load_calendar(s, official=self.settings.official_calendar)
            ctx = self._context(s, now)
            year = now.astimezone(tz).year
            if not calendar.knows_year(year) and first_notice(s, kind="calendar_unknown", key=str(year), now=now):
                log.warning("chinese-calendar does not know %s: using Monday-Friday", year)
                ctx.to_office(self.texts.t("schedule.calendar_unknown", year=year))
            due = schedule.pending(s, now=now, settings=self.settings, calendar=calendar)
            overdue = [o for o in due if not o.job.startswith("deadline:") and now - o.due > grace]
            for occ in overdue:
                schedule.mark(s, occ, state="skipped", now=now)
                log.warning("skipped %s due %s: %s late, beyond the grace period", occ.job, occ.due, now - occ.due)
            if overdue:
                items = "、".join(schedule.job_label(self.texts, o, tz) for o in overdue)
                ctx.to_office(self.texts.t("schedule.skipped", grace=self.settings.schedule_grace_minutes, items=items))
            s.commit()
        handled = len(overdue)
        for occ in (o for o in due if o not in overdue):
            try:
                with new_session(self.engine) as s:
                    summary = self._run_occurrence(s, occ, now, calendar)
                    schedule.mark(s, occ, state="done", now=now)
                    s.commit()  # what it queued and the mark that it ran: together or not at all
            except Exception:
                log.exception("scheduled %s due %s failed", occ.job, occ.due)
                with new_session(self.engine) as s:
                    schedule.mark(s, occ, state="failed", now=now)
                    s.commit()
            else:
                if occ.job == "summary" and summary:
                    # The daily summary also goes to the webhook robot, so the office sees it off WeChat too.
                    self._loop.call_soon_threadsafe(self._alert_second_channel, summary)
            handled += 1
        return handled

    def _run_occurrence(self, s: Session, occ: schedule.Occurrence, now: datetime, calendar) -> str | None:
        """Do one occurrence in the caller's transaction; returns a report's short text, if it made one."""
        office = s.exec(select(Group).where(Group.kind == GroupKind.OFFICE.value)).first()
        if occ.job == "remind":
            schedule.queue_reminders(s, schedule.open_pushes_at(s, occ.due), at=occ.due, now=now,
                                     settings=self.settings, texts=self.texts)
        elif occ.job.startswith("deadline:"):
            push = s.get(Push, int(occ.job.split(":", 1)[1]))
            if push is not None and push.state == PushState.OPEN.value and push.deadline == occ.due:
                schedule.run_deadline(s, push, now=now, settings=self.settings, texts=self.texts,
                                      office_room=office.room_id if office else None)
        else:
            kind, start, end = schedule.report_period(occ.job, occ.due, self.tz)
            if office is not None:
                return schedule.queue_report(s, kind=kind, start=start, end=end, now=now, settings=self.settings,
                                             texts=self.texts, chat_kind=ChatKind.ROOM, chat_id=office.room_id)
            if occ.job == "summary" and self.notifier is not None:  # no office group: the robot still hears
                report = build_report(s, kind=kind, start=start, end=end, now=now, tz=self.tz,
                                      ladder=schedule.ladder_of(self.settings))
                return compose.report_text(self.texts, report)
        return None

    async def poll_feeds(self) -> int:
        """Poll the feeds that are due; returns how many were polled. Network waits happen outside the lock."""
        now = self.clock()
        with new_session(self.engine) as s:
            due = [(f.id, f.url, f.etag, f.last_modified) for f in feed_watch.due_feeds(s, self.settings.feeds, now=now)]
        if not due or self.http is None:
            return 0
        results = []
        for feed_id, url, etag, last_modified in due:
            result = await fetch_feed(self.http, url, etag=etag, last_modified=last_modified,
                                      timeout=self.settings.feed_timeout_seconds)
            if result.status == "error":
                log.warning("feed %s failed: %s", feed_redact(url), result.error)
            results.append((feed_id, result))
        async with self._lock:
            alerts = await asyncio.to_thread(self._store_polls, results, now)
        for text in alerts:
            self._alert_second_channel(text)
        self._wake.set()
        return len(results)

    def _store_polls(self, results, now: datetime) -> list[str]:
        every = timedelta(minutes=self.settings.feed_poll_minutes)
        health: list[str] = []
        with new_session(self.engine) as s:
            ctx = self._context(s, now)
            for feed_id, result in results:
                feed = s.get(Feed, feed_id)
                first_poll = feed.last_ok_at is None
                shown = feed_watch.record_poll(s, feed, result, now=now, every=every)
                for text in feed_watch.candidates_text(self.texts, shown):
                    ctx.to_office(text)
                if self.settings.feed_auto_push and not first_poll:
                    for item in reversed(shown):
                        outcome = push_alert(s, feed_watch.alert_for(item, now=now), now=now, actor_id="feed",
                                             actor_name=feed.url[:100], settings=self.settings, texts=self.texts)
                        item.push_id = outcome.push.id if outcome.push else None
                        s.add(item)
                if feed_watch.failing_for_a_day(feed, now=now) and first_notice(
                    s, kind="feed_failing", key=f"{feed.id}:{feed.failing_since.isoformat()}", now=now
                ):
                    text = self.texts.t("feeds.failing", url=feed_redact(feed.url), error=feed.last_error)
                    ctx.to_office(text, priority=Priority.NOTICE)
                    health.append(text)
            s.commit()
        return health

    async def check_evidence(self) -> int:
        """Check waiting screenshots one at a time, off the event loop; returns how many got a verdict."""
        done = 0
        async with self._evidence_lock:
            while True:
                with new_session(self.engine) as s:
                    job = evidence_store.next_check(s)
                if job is None:
                    return done
                verdict = await self._check_one(job)
                async with self._lock:
                    with new_session(self.engine) as s:
                        evidence_store.record_verdict(s, job.confirmation_id, status=verdict[0], reason=verdict[1],
                                                      phash=verdict[2])
                        s.commit()
                done += 1

    async def _check_one(self, job: evidence_store.CheckJob) -> tuple[str, str, str]:
        from bot.adapters import screenshot_check as evidence  # numpy and Pillow: loaded with the first screenshot, not at start

        folder = Path(self.settings.evidence_dir)
        try:
            data = await asyncio.to_thread(evidence_store.evidence_path(folder, job.file).read_bytes)
        except (OSError, ValueError):
            return "存疑", "截图文件不见了", ""
        if self._ocr is None:
            self._ocr = await asyncio.to_thread(evidence.load_ocr) or False
            if not self._ocr:
                log.warning("no OCR installed (pip install -e '.[ocr]'): screenshots are stored unchecked")
        check = functools.partial(evidence.check_screenshot, data, title=job.title, group_name=job.group_name,
                                  earlier=job.earlier, ocr=self._ocr or None)
        try:
            async with asyncio.timeout(self.settings.evidence_check_seconds):
                # One worker thread: a check that overran its time limit still runs there, and the next waits
                # behind it, so OCR never runs twice at once.
                verdict = await asyncio.get_running_loop().run_in_executor(self._ocr_thread, check)
        except TimeoutError:
            log.warning("OCR of %s took longer than %.0f s", job.file, self.settings.evidence_check_seconds)
            return "未核验", self.texts.t("evidence.timeout"), ""
        return verdict.status, verdict.reason, verdict.phash

    async def expire_evidence(self) -> int:
        """Delete screenshots past the retention period (their verdicts stay)."""
        now = self.clock()
        keep = timedelta(days=self.settings.evidence_retention_days)
        async with self._lock:
            with new_session(self.engine) as s:
                count = await asyncio.to_thread(evidence_store.expire, s, Path(self.settings.evidence_dir), now=now,
                                                keep=keep)
                s.commit()
        if count:
            log.info("deleted %d screenshots older than %d days", count, self.settings.evidence_retention_days)
        return count

    async def send_pending(self) -> int:
        """Send everything in the outbox now (no pacing); returns how many were sent. Used by tests and the demo."""
        sent = 0
        while True:
            with new_session(self.engine) as s:
                rows = outbox.pending(s, limit=1)
                if not rows:
                    return sent
            if await self._send_one(rows[0].id):
                sent += 1
            else:
                return sent

    def pacing(self) -> outbox.Pacing:
        """How fast the bot may send, from the settings."""
        st = self.settings
        return outbox.Pacing(st.send_spacing_seconds, st.send_jitter_seconds, st.daily_send_budget,
                             timedelta(minutes=st.send_backoff_minutes), self.tz)

    async def send_due(self) -> float:
        """Send the next message if pacing allows it now; returns the seconds (by the bot's clock) to wait before asking again."""
        now = self.clock()
        with new_session(self.engine) as s:
            nxt = outbox.next_send(s, now=now, pacing=self.pacing())
            if nxt.row_id is not None and nxt.reason == "budget" and first_notice(
                s, kind="budget", key=now.astimezone(self.tz).date().isoformat(), now=now
            ):
                log.warning("daily send budget of %d reached", self.settings.daily_send_budget)
                self._context(s, now).to_office(
                    self.texts.t("send.budget", budget=self.settings.daily_send_budget), priority=Priority.NOTICE
                )
                s.commit()
                return 0.0  # the notice itself may go now
            s.commit()
        if nxt.row_id is None:
            return 5.0
        if nxt.at > now:
            return (nxt.at - now).total_seconds()
        if not await self._send_one(nxt.row_id) and self._link_dropped:
            self._link_dropped = False
            return 1.0  # the link just dropped: do not spin on it before the transport reports it lost
        return 0.0

    async def _send_one(self, row_id: int) -> bool:
        async with self._send_lock:
            return await self._send_row(row_id)

    async def _send_row(self, row_id: int) -> bool:
        with new_session(self.engine) as s:
            row = s.get(Outbox, row_id)
            if row is None or row.state != OutboxState.PENDING.value:
                return True
            out = outbox.to_outgoing(s, row)
            outbox.mark_sending(s, row)
            s.commit()
            try:
                if out.link is not None or out.image is not None or out.file is not None:
                    await self.transport.send(
                        Outgoing(out.chat_kind, out.chat_id, link=out.link, image=out.image, file=out.file)
                    )
                if out.text:
                    await self.transport.send(
                        Outgoing(out.chat_kind, out.chat_id, text=out.text, mention_ids=out.mention_ids)
                    )
            except SendError as exc:
                self._send_failed(s, row, exc)
                return False
            outbox.mark_sent(s, row, now=self.clock())
            s.commit()
            return True

    def _send_failed(self, s: Session, row: Outbox, exc: SendError) -> None:
        """Pause all sending for the back-off period; tell the office once per pause. A send that failed because
        the gateway connection is down is not WeChat refusing it: the row waits for the link, no pause."""
        now = self.clock()
        if exc.disconnected:
            log.warning("send of outbox row %s failed, the gateway connection is down: sending it when it is back",
                        row.id)
            self._link_dropped = True
            row.attempts = max(0, row.attempts - 1)
            outbox.mark_failed(s, row, error=str(exc), give_up=False)
            s.commit()
            return
        give_up = row.attempts >= MAX_SEND_ATTEMPTS
        log.warning("send of outbox row %s failed (%s)%s", row.id, exc, "; giving up" if give_up else "")
        outbox.mark_failed(s, row, error=str(exc), give_up=give_up)
        until, new_pause = outbox.start_backoff(s, now=now, pacing=self.pacing())
        if new_pause:
            key = "send.rate_limited" if exc.rate_limited else "send.failing"
            text = self.texts.t(key, minutes=self.settings.send_backoff_minutes, until=show(until, self.tz))
            log.warning("sending paused until %s", until.isoformat())
            self._context(s, now).to_office(text, priority=Priority.NOTICE)
            self._alert_second_channel(text)
        s.commit()

    def _alert_second_channel(self, text: str) -> None:
        """Health problems also go to the office's webhook robot, if one is configured (the chat may be what is broken)."""
        if self.notifier is not None:
            task = asyncio.get_running_loop().create_task(self.notifier.send(text))
            self._background.add(task)  # the loop keeps only weak references to tasks
            task.add_done_callback(self._background.discard)

    async def _send_loop(self) -> None:
        """Send the outbox as pacing allows; wake early when new rows arrive."""
        await self.ready.wait()
        speed = getattr(self.clock, "speed", 1.0)
        while True:
            await self.health.link_up.wait()  # nothing is tried while the gateway connection is down
            try:
                wait = await self.send_due()
            except Exception:
                log.exception("the outbox sender failed; trying again shortly")
                wait = 10.0
            if wait <= 0:
                continue
            self._wake.clear()
            # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancel that races a wake-up.
            try:
                async with asyncio.timeout(min(wait / speed, 5.0)):
                    await self._wake.wait()
            except TimeoutError:
                pass
