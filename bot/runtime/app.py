"""The running bot: its collaborators are built in one place (`build_bot`) and handed to `RelayBot`, which is
the transport's event sink and starts and stops the rest (python-telegram-bot's ApplicationBuilder/Application).

- UnitOfWork (units.py): one unit of work at a time, a session and the clock read once, commit before sending.
- OutboxSender (sender.py): the paced sender; SecondChannel (alerter.py): the webhook robot.
- RoomBook (rooms.py): rooms, member lists, recognising liaisons. EvidenceChecker: screenshots.
- FeedPoller and Web (feed_poller.py): feeds, link previews. AgendaRunner and AckFlusher (agenda_runner.py).
- HealthMonitor (health.py): self-check, receive check, connection alerts.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from bot.adapters.webhooks import Notifier
from bot.chat.dispatch import Dispatcher, Router
from bot.clock import real_clock
from bot.config import Settings
from bot.content import load_library, load_texts
from bot.domain import feeds as feed_watch
from bot.domain import reach
from bot.domain.people import observe
from bot.domain.relay import audit
from bot.operations import agenda
from bot.operations.reporting import RENDER_QUEUED
from bot.runtime.agenda_runner import AckFlusher, AgendaRunner
from bot.runtime.alerter import SecondChannel
from bot.runtime.evidence_checker import EvidenceChecker
from bot.runtime.feed_poller import FeedPoller, Web, link_previews
from bot.runtime.health import HealthMonitor
from bot.runtime.outage import OutageWatch
from bot.runtime.renderer import Renderer
from bot.runtime.rooms import RoomBook
from bot.runtime.sender import OutboxSender
from bot.runtime.storage_watch import StorageUnavailable
from bot.runtime.units import UnitOfWork
from bot.storage.db import create_schema, make_engine
from bot.storage.guard import unwatch_file, watch_file
from bot.storage.models import Group, GroupKind, Priority, Unit, pk
from bot.transport.base import (
    ChatKind,
    Incoming,
    LinkCard,
    Member,
    MessageKind,
    RoomInfo,
    RoomInvite,
    Transport,
    without_nul,
)
from handlers import ROUTERS, office_records
from scheduler import Poller, PollerKind

log = logging.getLogger(__name__)


@dataclass
class BotParts:
    """Everything the running bot is made of, built by `build_bot`."""

    transport: Transport
    units: UnitOfWork
    dispatcher: Dispatcher
    alerter: SecondChannel
    sender: OutboxSender
    health: HealthMonitor
    rooms: RoomBook
    evidence: EvidenceChecker
    web: Web
    feeds: FeedPoller
    agenda: AgendaRunner
    acks: AckFlusher
    renderer: Renderer  # report files, made after the unit of work that queued the report, outside its lock
    outage: OutageWatch  # the heartbeat, and the liaison groups told what the bot could not hear
    # False: tests that move a fake clock drive sending (send_due / send_pending) and the screenshot checks
    # (check_evidence) themselves.
    background: bool = True


def build_bot(
    settings: Settings,
    transport: Transport,
    *,
    engine: Engine | None = None,
    clock: Callable[[], datetime] = real_clock,
    send_loop: bool = True,
    notifier: Notifier | None = None,
    routers: list[Router] | None = None,
) -> RelayBot:
    """Build the bot's collaborators and the bot: the one place where they are made and wired."""
    if routers is None:
        routers = ROUTERS
    engine = engine or make_engine(settings.database_url)
    create_schema(engine)
    outbox_changed = asyncio.Event()
    units = UnitOfWork(
        engine=engine,
        clock=clock,
        settings=settings,
        texts=load_texts(),
        library=load_library(),
        outbox_changed=outbox_changed,
    )
    alerter = SecondChannel(notifier)
    _wire_storage_watch(units, alerter, transport)
    link_up = asyncio.Event()  # set while the chat link is up: the sender waits for it, health sets it
    sender = OutboxSender(units, transport, alerter, link_up=link_up)
    web = Web(settings)
    parts = BotParts(
        transport=transport,
        units=units,
        dispatcher=Dispatcher(routers),
        alerter=alerter,
        sender=sender,
        health=HealthMonitor(units, transport, sender, alerter, link_up=link_up),
        rooms=RoomBook(units, transport),
        evidence=EvidenceChecker(units),
        web=web,
        feeds=FeedPoller(units, web, alerter),
        agenda=AgendaRunner(units, alerter),
        acks=AckFlusher(units),
        renderer=Renderer(engine, units.texts, units.lock, on_attached=outbox_changed.set),
        outage=OutageWatch(units),
        background=send_loop,
    )
    return RelayBot(parts)


def _wire_storage_watch(units: UnitOfWork, alerter: SecondChannel, transport: Transport) -> None:
    """Storage outages (issue 12 items 8, 9): watch the SQLite file from now on; alert and tell chats."""
    watch_file(units.engine)
    units.storage.alerter, units.storage.transport = alerter, transport
    units.storage.retry_seconds = units.settings.storage_retry_seconds


def _log_failure(task: asyncio.Task) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("rendering report files failed", exc_info=task.exception())


class RelayBot:
    """The running bot: receives events from a transport, handles each message in one unit of work, and starts
    and stops its collaborators."""

    def __init__(self, parts: BotParts) -> None:
        self.parts = parts
        self.transport = parts.transport
        self.units = parts.units
        self.engine = parts.units.engine
        self.clock = parts.units.clock
        self.texts = parts.units.texts
        self.library = parts.units.library
        self.dispatcher = parts.dispatcher
        self.alerter = parts.alerter
        self.sender = parts.sender
        self.health = parts.health
        self.rooms = parts.rooms
        self.evidence = parts.evidence
        self.web = parts.web
        self.renderer = parts.renderer
        self.ready = asyncio.Event()
        self._background: set[asyncio.Task] = set()
        self._reading = asyncio.Lock()  # one workbook read at a time, so its memory limits hold for the bot
        self._replaying = asyncio.Lock()
        self.units.storage.replay = self.replay_kept
        self.units.storage.office = self._office_room
        self._office_id: str | None = None
        # The unit groups' room ids, known without the database: a storage outage tells no unit group anything.
        self._unit_rooms: set[str] = set()
        # Who invited the bot, by room topic, for the accepted invitations: a puppet may send the bot's own join
        # without an inviter.
        self._invited_by: dict[str, str] = {}

    @property
    def settings(self) -> Settings:
        return self.units.settings

    @settings.setter
    def settings(self, value: Settings) -> None:
        """Changed settings reach every collaborator: they all read them from the unit-of-work runner."""
        self.units.settings = value

    # The webhook robot and the HTTP client are set by the CLI and by tests after building.
    @property
    def notifier(self) -> Notifier | None:
        return self.alerter.notifier

    @notifier.setter
    def notifier(self, value: Notifier | None) -> None:
        self.alerter.notifier = value

    @property
    def http(self):
        return self.web.client

    @http.setter
    def http(self, client) -> None:
        self.web.client = client

    @property
    def bot_id(self) -> str:
        return self.units.bot_id

    def pollers(self) -> list[Poller]:
        """The periodic jobs for the scheduler (scheduler.py)."""
        st = self.settings
        return [
            Poller(PollerKind.ACKS, self.flush_acks, st.ack_check_seconds, False),
            Poller(PollerKind.FEEDS, self.poll_feeds, 60, True),
            Poller(PollerKind.EVIDENCE, self.check_evidence, 5 * 60, True),
            Poller(PollerKind.EVIDENCE_EXPIRY, self.expire_evidence, 6 * 3600, True),
            Poller(PollerKind.SCHEDULE, self.run_schedule, st.schedule_check_seconds, True),
            Poller(PollerKind.HEALTH, self.check_health, st.health_check_seconds, False),
        ]

    # ---- lifecycle -------------------------------------------------------------------------------

    async def start(self) -> None:
        """Connect the transport and start the outbox sender."""
        from bot.storage import outbox

        with self.units.session() as s:
            for row in outbox.recover_interrupted(s):
                log.warning("outbox row %s was being sent when the bot stopped: sending it again", row.id)
            s.commit()
        self.web.open()
        if self.parts.background:
            self.sender.start(self.ready)
        await self.render_reports()  # what a restart interrupted
        await self.transport.start(self)

    async def stop(self) -> None:
        """Stop sending and disconnect."""
        await self.sender.stop()
        await self.transport.stop()
        try:
            await self.health.flush()
        except StorageUnavailable:
            log.error("could not save the health state at stop: storage unavailable")
        await self.units.storage.close()
        await self.parts.outage.stop()
        unwatch_file(self.engine)
        await self.web.close()
        self.evidence.shutdown()

    # ---- EventSink -------------------------------------------------------------------------------

    async def on_ready(self, bot_id: str) -> None:
        """Logged in: learn the rooms, apply the configured group kinds, read member lists."""
        self.units.bot_id = bot_id
        await self.health.on_ready()
        rooms = await self.transport.rooms()

        def work() -> None:
            with self.units.session() as s:
                self.rooms.sync_configured(s, rooms)
                feed_watch.sync_feeds(s, self.settings.feeds)
                agenda.schedule_epoch(s, now=self.clock())  # nothing scheduled before the first start is owed
                self._unit_rooms = {g.room_id for g, _ in reach.unit_groups(s)}
                s.commit()

        await self.units.run(work)
        await self.parts.outage.on_connected()  # after the configured groups are known
        for room in rooms:
            await self.rooms.refresh_members(room.room_id)
        self._office_id = None
        self._office_room()  # known before a storage outage can make it unreadable
        self.ready.set()
        log.info("ready as %s in %d rooms", bot_id, len(rooms))
        self.sender.wake.set()

    async def on_message(self, msg: Incoming) -> None:
        """Handle one message in one unit of work."""
        self.health.note_receive()
        msg = without_nul(msg)
        if msg.sender.contact_id == self.bot_id:
            return
        if self.parts.background and office_records.reads_file(msg, self.settings):
            # Reading a workbook takes seconds: the transport's next events are not held up behind it.
            task = asyncio.create_task(self._on_message(msg))
            self._background.add(task)
            task.add_done_callback(self._background.discard)
            return
        await self._on_message(msg)

    async def _read_files(self, msg: Incoming) -> dict[str, object]:
        """An admin's file read ahead, in a worker thread and outside the unit-of-work lock (issue 12 item 5),
        one file at a time: the unit of work only stores what was read."""
        if not office_records.reads_file(msg, self.settings):
            return {}
        assert msg.file is not None
        today = self.clock().astimezone(self.settings.tz).date()
        async with self._reading:
            read = await asyncio.to_thread(office_records.read_admin_file, msg.file, today=today)
        return {msg.message_id: read}

    async def _on_message(self, msg: Incoming) -> None:
        try:
            previews = await link_previews(self.web, self.settings, msg)
        except Exception:  # a preview is a nicety: the message itself must still be handled
            log.exception("link preview for message %s failed", msg.message_id)
            previews = {}
        arrived = self.clock()
        storage = self.units.storage
        if storage.kept:  # an outage: this message waits behind the kept ones, then all are tried in order
            await self._keep(msg, arrived, previews)
            await self.replay_kept()
            return
        files = await self._read_files(msg)
        try:
            done = await self.units.run(self._handle, msg, previews, files)
        except StorageUnavailable:
            await self._keep(msg, arrived, previews)
            return
        except Exception:
            log.exception("handling message %s failed; nothing was recorded", msg.message_id)
            return
        await self._after_handle(msg, *done)

    async def _after_handle(
        self, msg: Incoming, refresh: set[str], alerts: list[str], render: bool, sightings: list[int]
    ) -> None:
        """What follows a message's committed unit of work: alerts, member lists, report files, screenshots, and
        the member count of a unit group where an alert was just seen."""
        self.alerter.alert_all(alerts)
        if sightings:
            await self._count_members(msg.chat_id, sightings)
        for room_id in refresh:
            await self.rooms.refresh_members(room_id)
        if render:
            await self.render_reports()
        if msg.kind == MessageKind.IMAGE and self.parts.background:
            task = asyncio.create_task(self.check_evidence())
            self._background.add(task)
            task.add_done_callback(self._background.discard)

    async def _count_members(self, room_id: str, sightings: list[int]) -> None:
        """Store the unit group's member count on its new sightings (read from the chat outside the lock)."""
        try:
            count = await self.transport.room_member_count(room_id)
        except Exception:
            log.exception("could not count the members of unit group %s", room_id)
            return

        def work() -> None:
            with self.units.session() as s:
                reach.set_member_count(s, sightings, count)
                s.commit()

        await self.units.run(work)

    def _office_room(self) -> str | None:
        """The office group's room id, for a storage outage: as read when the bot was ready (a deleted database
        file may not be readable any more), else read now."""
        if self._office_id is None:
            with self.units.session() as s:
                office = self.units.context(s, self.clock()).office_group()
                self._office_id = office.room_id if office is not None else None
        return self._office_id

    async def _keep(self, msg: Incoming, arrived: datetime, previews: dict[str, LinkCard]) -> None:
        """Storage outage: keep `msg` for replay and tell its chat once (only if it was kept)."""
        if self.units.storage.keep(msg, arrived, previews):
            log.warning("message %s kept in memory: storage unavailable", msg.message_id)
            if msg.chat_id not in self._unit_rooms:
                await self.units.storage.tell_chat(msg)
        else:
            log.error("message %s dropped: storage unavailable and the memory bound reached", msg.message_id)

    async def replay_kept(self) -> int:
        """Handle the messages kept during a storage outage, in order, each exactly once, with the time each
        arrived; then, if the outage is over, tell the office. Returns how many were recorded now."""
        storage = self.units.storage
        done = 0
        async with self._replaying:
            if not storage.down and not storage.kept:
                return 0
            while storage.kept:
                kept = storage.kept[0]
                try:
                    result = await self.units.run(self._handle, kept.msg, kept.previews, None, kept.at)
                except StorageUnavailable:
                    if done:
                        log.warning("storage outage: %d kept messages recorded, then it failed again", done)
                    storage.replayed += done
                    return done
                except Exception:
                    log.exception("replaying message %s failed; nothing was recorded", kept.msg.message_id)
                    storage.kept.popleft()
                    continue
                storage.kept.popleft()
                done += 1
                await self._after_handle(kept.msg, *result)
            storage.replayed += done
            n, dropped = storage.replayed, storage.dropped
            key = "storage.restored_lost" if dropped else "storage.restored"
            try:
                await self.units.tell_office(self.texts.t(key, n=n, dropped=dropped))
            except StorageUnavailable:
                return done  # still (or again) down: the office line waits for the next success
            storage.recovered()
            log.warning("storage outage over: %d kept messages recorded, %d dropped", n, dropped)
            self.alerter.alert(self.texts.t(key, n=n, dropped=dropped))
        return done

    def _handle(
        self,
        msg: Incoming,
        previews: dict[str, LinkCard] | None = None,
        files: dict[str, object] | None = None,
        arrived: datetime | None = None,
    ) -> tuple[set[str], list[str], bool, list[int]]:
        """The unit of work of one message (in a worker thread): the rooms whose members to read afterwards,
        the alerts for the second channel, whether it queued report files to render, and the sightings made in a
        unit group. `arrived`: when a message kept during a storage outage arrived (it counts then, not when it
        is replayed)."""
        now = arrived or self.clock()
        alerts: list[str] = []
        with self.units.session() as s:
            ctx = self.units.context(s, now)
            ctx.previews = previews or {}
            ctx.files = files or {}
            if msg.chat_kind == ChatKind.ROOM:
                group = ctx.groups[msg.chat_id] = self.rooms.remember(s, msg.chat_id, msg.chat_name)
                if group.kind == GroupKind.UNIT.value:
                    self._unit_rooms.add(msg.chat_id)
                    return set(), [], False, self._watch_unit_group(s, msg, group, now)
                self._unit_rooms.discard(msg.chat_id)
                observed = observe(s, room_id=msg.chat_id, members=[msg.sender], now=now)
                self.rooms.report_people(ctx, observed, msg.chat_name)
            handled = self.dispatcher.feed(msg, ctx)
            if ctx.rate_limit_notice:
                alert = self.sender.rate_limited(s, now, ctx.rate_limit_notice)
                if alert:
                    alerts.append(alert)
            s.commit()  # what the replies say is recorded is committed before they can be sent
            if handled:
                log.info("message %s handled by %s", msg.message_id, handled)
            return ctx.refresh_rooms, alerts, bool(s.info.get(RENDER_QUEUED)), []

    def _watch_unit_group(self, s: Session, msg: Incoming, group: Group, now: datetime) -> list[int]:
        """A message in a unit group: only the forwarded alert of a push counts, and nothing else of it is kept;
        nobody is answered there, not even an admin (the office works from its own group)."""
        link = msg.link
        seen = reach.Seen(text=msg.text, link_url=link.url if link else "", link_title=link.title if link else "")
        sightings = reach.observe_forward(s, group=group, seen=seen, now=now, message_id=msg.message_id)
        s.commit()
        if sightings:
            log.info("unit group %s: alert of %s seen", group.room_id, ",".join(f"#{x.push_id}" for x in sightings))
        return [pk(x) for x in sightings]

    async def on_room_join(self, room: RoomInfo, joined: list[Member], inviter_id: str) -> None:
        """New members: remember them and try to recognise them. The bot itself brought in by a liaison: the room
        becomes the liaison's unit group; by anyone but a liaison or an admin: it records nothing and leaves."""
        self.health.note_receive()
        room, joined = without_nul(room), without_nul(joined)
        bot_joined = any(m.contact_id == self.bot_id for m in joined)
        joined = [m for m in joined if m.contact_id != self.bot_id]
        if bot_joined:
            inviter_id = inviter_id or self._invited_by.pop(room.name, "")
            outcome = await self.units.run(self._bot_joined, room, inviter_id)
            if outcome == "leave":
                log.info("brought into %s by %s (not a liaison or an admin): leaving", room.room_id, inviter_id)
                try:
                    await self.transport.leave_room(room.room_id)
                except Exception:
                    log.exception("could not leave room %s", room.room_id)
                return
            if outcome == "unit":
                self.sender.wake.set()
                return
        await self.units.run(self.rooms.observe, room, joined)

    def _bot_joined(self, room: RoomInfo, inviter_id: str) -> str:
        """One unit of work: "unit" (made the inviting liaison's unit group), "leave", or "" (as any room)."""
        now = self.clock()
        with self.units.session() as s:
            ctx = self.units.context(s, now)
            group = s.exec(select(Group).where(Group.room_id == room.room_id)).first()
            if group is not None and group.kind != GroupKind.NONE.value:
                return "unit" if group.kind == GroupKind.UNIT.value else ""  # back in a room it serves
            if ctx.is_admin(inviter_id):
                return ""
            liaison = reach.inviting_liaison(s, inviter_id)
            if liaison is None:
                return "leave"
            unit = s.get_one(Unit, liaison.unit_id)
            reach.make_unit_group(s, room_id=room.room_id, name=room.name, unit_id=pk(unit))
            self._unit_rooms.add(room.room_id)
            audit(
                s,
                now=now,
                actor_id=inviter_id,
                actor_name=liaison.name,
                action="unit_group",
                detail=f"{room.room_id} {room.name}: {unit.name}",
            )
            ctx.send(ChatKind.ROOM, room.room_id, self.texts.t("reach_group.intro"), priority=Priority.BROADCAST)
            ctx.to_office(
                self.texts.t("reach_group.office_joined", who=liaison.name, unit=unit.name, name=room.name or "?"),
                priority=Priority.NOTICE,
            )
            s.commit()
            return "unit"

    async def on_room_topic(self, room: RoomInfo) -> None:
        """A room was renamed: remember the name; a room taking a served group's name is reported, not promoted."""
        self.health.note_receive()
        room = without_nul(room)

        def work() -> None:
            with self.units.session() as s:
                self.rooms.remember(s, room.room_id, room.name)
                s.commit()

        await self.units.run(work)

    async def on_room_invite(self, invite: RoomInvite) -> None:
        """Accept invitations from office admins only."""
        self.health.note_receive()
        invite = without_nul(invite)
        now = self.clock()
        async with self.units.lock:
            with self.units.session() as s:
                ctx = self.units.context(s, now)
                admin = ctx.is_admin(invite.inviter_id)
                # A liaison may bring the bot into the unit's own group (it becomes a unit group on joining).
                allowed = admin or reach.inviting_liaison(s, invite.inviter_id) is not None
                audit(
                    s,
                    now=now,
                    actor_id=invite.inviter_id,
                    actor_name="",
                    action="room_invite",
                    detail=invite.room_topic,
                    allowed=allowed,
                )
                if allowed:
                    await self.transport.accept_invite(invite.invitation_id)
                    self._invited_by[invite.room_topic] = invite.inviter_id
                    if admin:
                        ctx.to_office(self.texts.t("groups.joined", name=invite.room_topic or "?"))
                else:
                    log.info("ignored a room invitation from %s (not an admin or a liaison)", invite.inviter_id)
                s.commit()
        self.sender.wake.set()

    async def on_connection(self, state: str, detail: str) -> None:
        """The chat link dropped ("lost", "logged_out") or came back ("restored"): sending waits for the link;
        the office hears of an outage once it lasts `connection_alert_minutes` (see HealthMonitor)."""
        await self.health.on_connection(state, detail)
        if state == "restored":
            await self.parts.outage.on_connected()
        elif state in ("lost", "logged_out"):
            await self.parts.outage.on_lost()

    async def on_echo(self, message_id: str, chat_id: str, text: str) -> None:
        """The gateway echoed a message the bot sent (an optional sink method the Wechaty transport calls)."""
        await self.health.on_echo(message_id, chat_id, text)

    # ---- the jobs, by name (the scheduler's pollers; tests and the demo call them directly) -----------

    async def check_health(self) -> None:
        """The periodic health round: self-check, receive check, connection alert."""
        await self.parts.outage.tick()
        await self.health.tick()

    async def flush_acks(self) -> int:
        """Acknowledge confirmations in groups that have gone quiet; returns how many messages were queued."""
        return await self.parts.acks.flush()

    async def run_schedule(self) -> int:
        """Do every reminder, deadline and report that is due; returns how many occurrences were handled."""
        count = await self.parts.agenda.run()
        await self.render_reports()
        return count

    async def render_reports(self) -> None:
        """Make the files of reports the units of work queued, outside the lock: in the background when the bot
        runs its own send loop, awaited here when a test drives sending itself."""
        if not self.parts.background:
            await self.renderer.render_pending()
            return
        task = self.renderer.kick()
        if task is None:
            return
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        task.add_done_callback(_log_failure)

    async def poll_feeds(self) -> int:
        """Poll the feeds that are due; returns how many were polled."""
        return await self.parts.feeds.poll()

    async def check_evidence(self) -> int:
        """Check waiting screenshots; returns how many got a verdict."""
        return await self.evidence.check_waiting()

    async def expire_evidence(self) -> int:
        """Delete screenshots past the retention period (their verdicts stay)."""
        return await self.evidence.expire()

    async def send_pending(self) -> int:
        """Send everything in the outbox now (no pacing); returns how many were sent."""
        return await self.sender.send_pending()

    async def send_due(self) -> float:
        """Send the next message if pacing allows; returns the seconds to wait before asking again."""
        return await self.sender.send_due()
