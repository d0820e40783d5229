"""Outage notices: the liaison groups hear once which window the bot could not hear.

While no bot is connected (a crash before the restart, a stop, the gateway away) nobody reads the groups and
the gateway keeps no backlog, so a "已转发" said then is lost. The bot keeps a heartbeat, BotState
"heard_until": until when it was connected. It is written at most once a minute while connected
(`HEARTBEAT_SECONDS`), when the link drops, and at a clean stop; a kill -9 leaves the last one, so the window
after a crash starts at most a minute early, never late.

When the bot is connected again (at start, or when the gateway comes back) and the window since "heard_until"
is longer than `outage_notice_minutes`, each liaison group gets one line through the outbox, first in the queue:
`09:12–09:20 机器人离线，这段时间的“已转发”请重发`. The line is queued in the same transaction that moves
"heard_until" to now, so a restart never announces the same window twice, and a crash before it is sent keeps it.

Which windows are announced: one that overlaps working hours (`WORK_START`–`WORK_END`, local time) of a working
day (the office's calendar, bot/domain/workdays.py), or one in which a push was open for confirmations (made
before the window's end, its deadline after the window's start, not withdrawn). A night or a weekend without an
open push is not announced: nobody was expected to say anything.
"""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlmodel import Session, col, select

from bot.content import Texts
from bot.domain.relay import groups_of_kind
from bot.domain.workdays import load_calendar
from bot.runtime.units import UnitOfWork
from bot.storage import outbox
from bot.storage.models import BotState, GroupKind, Priority, Push, PushState
from bot.transport.base import ChatKind

log = logging.getLogger(__name__)

HEARD_UNTIL = "heard_until"
HEARTBEAT_SECONDS = 60.0
WORK_START = time(8, 0)
WORK_END = time(20, 0)


def outage_window(heard_until: datetime | None, now: datetime, *, minutes: float) -> tuple[datetime, datetime] | None:
    """(from, to) when the bot was last heard more than `minutes` ago; None for a first start or a short gap."""
    if heard_until is None or minutes <= 0 or now - heard_until < timedelta(minutes=minutes):
        return None
    return heard_until, now


def worth_announcing(
    s: Session, start: datetime, end: datetime, *, tz: ZoneInfo, official_calendar: bool = True
) -> bool:
    """Whether someone may have confirmed in the window: working hours of a working day, or a push was open."""
    open_push = s.exec(
        select(Push.id).where(
            col(Push.created_at) < end, col(Push.deadline) > start, Push.state != PushState.WITHDRAWN.value
        )
    ).first()
    if open_push is not None:
        return True
    calendar = load_calendar(s, official=official_calendar)
    first, last = start.astimezone(tz).date(), end.astimezone(tz).date()
    day: date = first
    while day <= last and (day - first).days <= 60:
        if calendar.is_working_day(day):
            opens = datetime.combine(day, WORK_START, tzinfo=tz)
            closes = datetime.combine(day, WORK_END, tzinfo=tz)
            if start < closes and end > opens:
                return True
        day += timedelta(days=1)
    return False


def window_text(start: datetime, end: datetime, tz: ZoneInfo) -> str:
    """09:12–09:20, or 11月26日 18:05–11月27日 09:20 when the window spans days."""
    a, b = start.astimezone(tz), end.astimezone(tz)
    if a.date() == b.date():
        return f"{a:%H:%M}–{b:%H:%M}"
    return f"{a.month}月{a.day}日 {a:%H:%M}–{b.month}月{b.day}日 {b:%H:%M}"


def announce(s: Session, start: datetime, end: datetime, *, now: datetime, texts: Texts, tz: ZoneInfo) -> int:
    """Queue the notice for each liaison group (in the caller's transaction); returns how many were queued."""
    line = texts.t("outage.notice", window=window_text(start, end, tz))
    groups = groups_of_kind(s, GroupKind.LIAISON)
    for group in groups:
        outbox.queue(s, now=now, chat_kind=ChatKind.ROOM, chat_id=group.room_id, text=line, priority=Priority.NOTICE)
    return len(groups)


def read_heard_until(s: Session) -> datetime | None:
    """The heartbeat: until when the bot was last known to be connected."""
    row = s.get(BotState, HEARD_UNTIL)
    if row is None or not row.value:
        return None
    try:
        moment = datetime.fromisoformat(row.value)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _save(s: Session, now: datetime) -> None:
    row = s.get(BotState, HEARD_UNTIL) or BotState(key=HEARD_UNTIL)
    row.value, row.updated_at = now.astimezone(UTC).isoformat(), now
    s.add(row)


class OutageWatch:
    """The running bot's heartbeat and outage notices. The bot calls on_connected() when it is connected (ready,
    or the link restored), on_lost() when the link drops, tick() from its health round, and stop() at the end."""

    def __init__(self, units: UnitOfWork) -> None:
        self.units = units
        self._connected = False
        self._saved: datetime | None = None

    async def on_connected(self) -> int:
        """Connected: announce the window since the bot was last heard, if it is worth it; returns the number of
        notices queued. Heartbeats start."""
        self._connected = True
        try:
            return await self.units.run(self._connected_work)
        except Exception:  # the notice is a nicety: it must not stop the bot from starting or reconnecting
            log.exception("could not check for an outage to announce")
            return 0

    def _connected_work(self) -> int:
        now = self.units.clock()
        settings = self.units.settings
        queued = 0
        with self.units.session() as s:
            window = outage_window(read_heard_until(s), now, minutes=settings.outage_notice_minutes)
            if window is not None:
                start, end = window
                if worth_announcing(s, start, end, tz=settings.tz, official_calendar=settings.official_calendar):
                    queued = announce(s, start, end, now=now, texts=self.units.texts, tz=settings.tz)
                    log.warning("not connected %s to %s: told %d liaison groups", start, end, queued)
                else:
                    log.info("not connected %s to %s, outside working hours with no open push: not announced", *window)
            _save(s, now)
            s.commit()
        self._saved = now
        return queued

    async def on_lost(self) -> None:
        """The link dropped: the bot heard the groups until now."""
        if self._connected:
            self._connected = False
            await self._beat()

    async def tick(self) -> None:
        """A heartbeat while connected, at most every HEARTBEAT_SECONDS."""
        if not self._connected:
            return
        now = self.units.clock()
        if self._saved is None or now - self._saved >= timedelta(seconds=HEARTBEAT_SECONDS) or now < self._saved:
            await self._beat()

    async def stop(self) -> None:
        """A clean stop: the bot heard the groups until now."""
        if self._connected:
            self._connected = False
            await self._beat()

    async def _beat(self) -> None:
        def work() -> None:
            now = self.units.clock()
            with self.units.session() as s:
                _save(s, now)
                s.commit()
            self._saved = now

        try:
            await self.units.run(work)
        except Exception:  # tried again at the next health round
            log.exception("could not write the heartbeat")
