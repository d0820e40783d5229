"""The jobs the clock makes happen (reminders, deadlines, reports), and the coalesced acknowledgements."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlmodel import Session

from bot.chat import compose
from bot.domain import notes
from bot.domain.people import first_notice
from bot.domain.relay import due_acks, office_group
from bot.domain.workdays import WorkCalendar, load_calendar
from bot.operations import agenda, scheduled
from bot.reports.build import build_report
from bot.runtime.alerter import SecondChannel
from bot.runtime.units import UnitOfWork
from bot.storage import outbox
from bot.storage.guard import storage_fault
from bot.storage.models import Priority, Push, PushState, ScheduledPush, ScheduledPushState
from bot.transport.base import ChatKind
from scheduler import JobKind, Occurrence

log = logging.getLogger(__name__)


class AgendaRunner:
    """Does every reminder, deadline and report that is due by the bot's clock; the database remembers what
    was done, so a restart repeats nothing and a moved clock catches up."""

    def __init__(self, units: UnitOfWork, alerter: SecondChannel) -> None:
        self.units = units
        self.alerter = alerter

    @property
    def settings(self):
        return self.units.settings

    async def run(self) -> int:
        """Do what is due; returns how many occurrences were handled."""
        count, alerts = await self.units.run(self._run)
        self.alerter.alert_all(alerts)
        return count

    def _run(self) -> tuple[int, list[str]]:
        now = self.units.clock()
        tz = self.settings.tz
        texts = self.units.texts
        grace = timedelta(minutes=self.settings.schedule_grace_minutes)
        with self.units.session() as s:
            calendar = load_calendar(s, official=self.settings.official_calendar)
            ctx = self.units.context(s, now)
            year = now.astimezone(tz).year
            if not calendar.knows_year(year) and first_notice(s, kind="calendar_unknown", key=str(year), now=now):
                log.warning("chinese-calendar does not know %s: using Monday-Friday", year)
                ctx.to_office(texts.t("schedule.calendar_unknown", year=year))
            due = agenda.pending(s, now=now, settings=self.settings, calendar=calendar)
            # A late reminder or report is worse than none; a deadline is kept however late.
            overdue = [o for o in due if o.kind != JobKind.DEADLINE and now - o.due > grace]
            for occ in overdue:
                agenda.mark(s, occ, state="skipped", now=now)
                log.warning("skipped %s due %s: %s late, beyond the grace period", occ.job, occ.due, now - occ.due)
            if overdue:
                items = "、".join(agenda.job_label(texts, o, tz) for o in overdue)
                ctx.to_office(texts.t("schedule.skipped", grace=self.settings.schedule_grace_minutes, items=items))
            s.commit()
        handled = len(overdue)
        alerts: list[str] = []
        for occ in (o for o in due if o not in overdue):
            try:
                with self.units.session() as s:
                    summary = self._run_occurrence(s, occ, now, calendar)
                    agenda.mark(s, occ, state="done", now=now)
                    s.commit()  # what it queued and the mark that it ran: together or not at all
            except Exception:
                log.exception("scheduled %s due %s failed", occ.job, occ.due)
                with self.units.session() as s:
                    agenda.mark(s, occ, state="failed", now=now)
                    s.commit()
            else:
                if occ.kind == JobKind.SUMMARY and summary:
                    # The daily summary also goes to the webhook robot, so the office sees it off WeChat too.
                    alerts.append(summary)
            handled += 1
        return handled + self._push_scheduled(now), alerts

    def _push_scheduled(self, now: datetime) -> int:
        """Push the scheduled pushes whose time has come, each in its own transaction with its row's new state."""
        settings, texts = self.settings, self.units.texts
        with self.units.session() as s:
            ids = scheduled.due(s, now=now)
        for n in ids:
            try:
                with self.units.session() as s:
                    row = s.get(ScheduledPush, n)
                    if row is None or row.state != ScheduledPushState.WAITING.value:
                        continue  # cancelled meanwhile
                    scheduled.send_due(s, row, now=now, settings=settings, texts=texts)
                    s.commit()
            except Exception as exc:
                if storage_fault(exc) is not None:
                    raise  # the database cannot store: left waiting, pushed once it can
                log.exception("scheduled push %s failed", n)
                with self.units.session() as s:
                    scheduled.mark_failed(s, n, now=now, settings=settings, texts=texts)
                    s.commit()
        return len(ids)

    def _run_occurrence(self, s: Session, occ: Occurrence, now: datetime, calendar: WorkCalendar) -> str | None:
        """Do one occurrence in the caller's transaction; returns a report's short text, if it made one."""
        settings, texts = self.settings, self.units.texts
        office = office_group(s)
        if occ.kind == JobKind.REMIND:
            agenda.queue_reminders(
                s, agenda.open_pushes_at(s, occ.due), at=occ.due, now=now, settings=settings, texts=texts
            )
        elif occ.kind == JobKind.DEADLINE:
            push = s.get(Push, occ.push_id)
            if push is not None and push.state == PushState.OPEN.value and push.deadline == occ.due:
                agenda.run_deadline(
                    s, push, now=now, settings=settings, texts=texts, office_room=office.room_id if office else None
                )
        else:
            kind, start, end = agenda.report_period(occ, settings.tz)
            if office is not None:
                return agenda.queue_report(
                    s,
                    kind=kind,
                    start=start,
                    end=end,
                    now=now,
                    settings=settings,
                    texts=texts,
                    chat_kind=ChatKind.ROOM,
                    chat_id=office.room_id,
                )
            if occ.kind == JobKind.SUMMARY and self.alerter.configured:  # no office group: the robot still hears
                report = build_report(
                    s, kind=kind, start=start, end=end, now=now, tz=settings.tz, ladder=agenda.ladder_of(settings)
                )
                return compose.report_text(texts, report)
        return None


class AckFlusher:
    """One coalesced message per liaison group once it has gone quiet: questions, recalls and hints, then the
    acknowledgements, then remarks about confirmations that landed on an older push."""

    def __init__(self, units: UnitOfWork) -> None:
        self.units = units

    async def flush(self) -> int:
        """Queue the messages that are due; returns how many were queued."""
        return await self.units.run(self._flush)

    def _flush(self) -> int:
        now = self.units.clock()
        settings = self.units.settings
        quiet = timedelta(seconds=settings.ack_quiet_seconds)
        with self.units.session() as s:
            notes.lapse_questions(s, now=now)
            wait = notes.rooms_heard_lately(s, now=now, within=timedelta(seconds=settings.ack_min_interval_seconds))
            lines: dict[str, list[str]] = {}
            mentions: dict[str, tuple[str, ...]] = {}
            # The questions go first: WeChat puts the @ of the people asked at the start of the message.
            after: dict[str, list[str]] = {}
            for room in notes.due(s, now=now, quiet=quiet, wait_rooms=wait):
                lines.setdefault(room.room_id, []).extend(room.lines)
                after[room.room_id] = room.after
                mentions[room.room_id] = room.mention_ids
            for ack in due_acks(s, now=now, quiet=quiet, wait_rooms=wait):
                lines.setdefault(ack.room_id, []).append(compose.ack_text(self.units.texts, ack))
            for room_id, remarks in after.items():
                lines[room_id].extend(remarks)
            for room_id, room_lines in lines.items():
                outbox.queue(
                    s,
                    now=now,
                    chat_kind=ChatKind.ROOM,
                    chat_id=room_id,
                    text="\n".join(room_lines),
                    mention_ids=mentions.get(room_id, ()),
                    priority=Priority.BROADCAST,
                )
                notes.heard(s, room_id=room_id, now=now)
            s.commit()
            return len(lines)
