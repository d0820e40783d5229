"""What the clock makes happen: daily reminders, deadlines, reports. The database remembers what was done."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlmodel import Session, col, select

from bot.chat import compose
from bot.clock import show
from bot.config import Settings
from bot.content import Texts
from bot.domain.escalation import INTERVIEW, REMIND, WRITTEN, Ladder, close_push, standings
from bot.domain.people import first_notice
from bot.domain.relay import expected_units, groups_of_kind
from bot.domain.workdays import WorkCalendar
from bot.operations import reporting
from bot.reports.build import period_of, previous_period
from bot.reports.quarter import build_period_report
from bot.storage import outbox
from bot.storage.models import (
    Alert,
    Confirmation,
    GroupKind,
    Leave,
    Liaison,
    Membership,
    Notice,
    Priority,
    Push,
    PushState,
    Role,
    ScheduledRun,
    Unit,
    pk,
)
from bot.transport.base import ChatKind
from scheduler import JobKind, Occurrence

log = logging.getLogger(__name__)

# Occurrences older than this are forgotten rather than reported as skipped (a bot down for a week
# should not greet the office with a list of 20 missed reminders).
LOOKBACK = timedelta(days=3)


def ladder_of(settings: Settings) -> Ladder:
    """The escalation ladder from the settings."""
    return Ladder(
        settings.escalation_remind_after, settings.escalation_interview_after, settings.escalation_written_months
    )


def schedule_epoch(session: Session, *, now: datetime) -> datetime:
    """When the schedule started on this database: nothing before it is owed."""
    first_notice(session, kind="schedule_epoch", key="start", now=now)
    return session.exec(select(Notice.at).where(Notice.kind == "schedule_epoch", Notice.key == "start")).one()


def occurrences(
    *, since: datetime, now: datetime, settings: Settings, calendar: WorkCalendar, tz: ZoneInfo
) -> list[Occurrence]:
    """Every reminder and report time in (since, now], by the settings and working days."""
    found: list[Occurrence] = []
    day = since.astimezone(tz).date()
    last = now.astimezone(tz).date()
    while day <= last:
        times: list[tuple[JobKind, time]] = []
        if calendar.is_working_day(day):
            times += [(JobKind.REMIND, t) for t in settings.reminder_times]
            times.append((JobKind.SUMMARY, settings.summary_time))
        if day.weekday() == 0:
            times.append((JobKind.WEEKLY, settings.weekly_report_time))
        if day.day == 1:
            times.append((JobKind.MONTHLY, settings.monthly_report_time))
        if is_quarter_review_day(day, calendar):
            times.append((JobKind.QUARTERLY, settings.monthly_report_time))
        for job, at in times:
            due = datetime.combine(day, at, tzinfo=tz)
            if since < due <= now:
                found.append(Occurrence(job, due))
        day += timedelta(days=1)
    return sorted(found, key=lambda o: o.due)


def is_quarter_review_day(day: date, calendar: WorkCalendar) -> bool:
    """Is `day` the first working day after a quarter ended (季点评: the quarter before is reviewed)?"""
    if day.month not in (1, 4, 7, 10):
        return False
    return day == calendar.next_working_day(day.replace(day=1) - timedelta(days=1))


def pending(session: Session, *, now: datetime, settings: Settings, calendar: WorkCalendar) -> list[Occurrence]:
    """Occurrences that are due and not yet done or skipped, oldest first; deadlines of open pushes included."""
    tz = settings.tz
    since = max(schedule_epoch(session, now=now), now - LOOKBACK)
    found = occurrences(since=since, now=now, settings=settings, calendar=calendar, tz=tz)
    for push in session.exec(select(Push).where(Push.state == PushState.OPEN.value, Push.deadline <= now)):
        found.append(Occurrence(JobKind.DEADLINE, push.deadline, push.id))
    if not found:
        return []
    handled = set(
        session.exec(
            select(ScheduledRun.job, ScheduledRun.due_at).where(ScheduledRun.due_at >= min(o.due for o in found))
        )
    )
    return sorted((o for o in found if (o.job, o.due) not in handled), key=lambda o: (o.due, o.job))


def mark(session: Session, occ: Occurrence, *, state: str, now: datetime) -> None:
    """Remember that an occurrence was handled, in the same transaction as what it sent."""
    session.add(ScheduledRun(job=occ.job, due_at=occ.due, state=state, ran_at=now))


# ---- reminders ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReminderEntry:
    unit: Unit
    refs: list[int]
    mention_ids: list[str]
    flagged: bool  # missed the previous push too


def on_leave(session: Session, unit_id: int, day: date) -> bool:
    """Is this unit's main liaison away on `day`?"""
    stmt = select(Leave.id).where(Leave.unit_id == unit_id, Leave.start <= day, Leave.end >= day)
    return session.exec(stmt).first() is not None


def liaisons_to_mention(session: Session, unit: Unit, day: date) -> list[Liaison]:
    """Main and backup liaisons; only the backups while the main one is on leave (if there are any)."""
    liaisons = list(
        session.exec(
            select(Liaison)
            .where(Liaison.unit_id == unit.id, Liaison.active == True, col(Liaison.contact_id).is_not(None))  # noqa: E712
            .order_by(col(Liaison.role), col(Liaison.id))
        )
    )
    if on_leave(session, pk(unit), day):
        backups = [liaison for liaison in liaisons if liaison.role == Role.BACKUP.value]
        return backups or liaisons
    return liaisons


def open_pushes_at(session: Session, at: datetime) -> list[Push]:
    """Pushes that were running at `at`."""
    return list(
        session.exec(
            select(Push)
            .where(Push.state == PushState.OPEN.value, Push.created_at <= at, Push.deadline > at)
            .order_by(col(Push.id))
        )
    )


@dataclass(frozen=True)
class RemindResult:
    messages: int
    groups: int
    units: int
    people: int


def queue_reminders(
    session: Session, pushes: list[Push], *, at: datetime, now: datetime, settings: Settings, texts: Texts
) -> RemindResult:
    """One consolidated reminder per liaison group for these pushes (split when long)."""
    tz = settings.tz
    nothing = RemindResult(0, 0, 0, 0)
    if not pushes:
        return nothing
    expected = expected_units(session, [pk(p) for p in pushes])
    units = sorted({pk(u): u for us in expected.values() for u in us}.values(), key=pk)
    # A unit is owed a push that expects it and that it has not confirmed (an exempted one is not expected).
    owed: dict[int, set[int]] = {push_id: {pk(u) for u in us} for push_id, us in expected.items()}
    for conf in session.exec(select(Confirmation).where(col(Confirmation.push_id).in_(list(owed)))):
        owed[conf.push_id].discard(conf.unit_id)
    missing = [(u, [pk(p) for p in pushes if pk(u) in owed[pk(p)]]) for u in units]
    missing = [(u, refs) for u, refs in missing if refs]
    if not missing:
        return nothing
    runs = standings(session, as_of=at, tz=tz, ladder=ladder_of(settings))
    day = at.astimezone(tz).date()
    # liaisons_to_mention only returns liaisons with a contact id: the `is not None` only tells the type checker.
    mention_of = {
        pk(u): [
            liaison.contact_id for liaison in liaisons_to_mention(session, u, day) if liaison.contact_id is not None
        ]
        for u, _ in missing
    }
    groups = groups_of_kind(session, GroupKind.LIAISON)
    members = {
        g.room_id: set(session.exec(select(Membership.contact_id).where(Membership.room_id == g.room_id)))
        for g in groups
    }
    everywhere = {pk(u) for u, _ in missing if not any(set(mention_of[pk(u)]) & m for m in members.values())}
    deadlines = "；".join(f"#{p.id} {show(p.deadline, tz)}" for p in pushes if any(p.id in r for _, r in missing))
    sent, reached = 0, 0
    people: set[str] = set()
    for group in groups:
        entries = [
            ReminderEntry(
                u,
                refs,
                [i for i in mention_of[pk(u)] if i in members[group.room_id]],
                runs.get(pk(u)) is not None and runs[pk(u)].run > 0,
            )
            for u, refs in missing
        ]
        entries = [e for e in entries if e.mention_ids or pk(e.unit) in everywhere]
        chunks = _chunk(entries, settings.reminder_max_mentions)
        reached += bool(chunks)
        for index, chunk in enumerate(chunks, start=1):
            part = f"（{index}/{len(chunks)}）" if len(chunks) > 1 else ""
            lines = [texts.t("schedule.reminder_head", part=part)]
            for e in chunk:
                refs = "、".join(f"#{n}" for n in e.refs)
                mark_text = texts.t("schedule.reminder_mark") if e.flagged else ""
                lines.append(texts.t("schedule.reminder_line", unit=e.unit.name, refs=refs, mark=mark_text))
            lines.append(texts.t("schedule.reminder_foot", deadlines=deadlines))
            if any(e.flagged for e in chunk):
                lines.append(texts.t("schedule.reminder_mark_note"))
            ids = tuple(dict.fromkeys(i for e in chunk for i in e.mention_ids))
            people.update(ids)
            outbox.queue(
                session,
                now=now,
                chat_kind=ChatKind.ROOM,
                chat_id=group.room_id,
                text="\n".join(lines),
                mention_ids=ids,
                push_id=pushes[0].id if len(pushes) == 1 else None,
                priority=Priority.BROADCAST,
            )
            sent += 1
    return RemindResult(sent, reached, len(missing), len(people))


def _chunk(entries: list[ReminderEntry], max_mentions: int) -> list[list[ReminderEntry]]:
    chunks: list[list[ReminderEntry]] = []
    current: list[ReminderEntry] = []
    count = 0
    for entry in entries:
        if current and count + len(entry.mention_ids) > max_mentions:
            chunks.append(current)
            current, count = [], 0
        current.append(entry)
        count += len(entry.mention_ids)
    if current:
        chunks.append(current)
    return chunks


# ---- deadlines ---------------------------------------------------------------------------------


def run_deadline(
    session: Session, push: Push, *, now: datetime, settings: Settings, texts: Texts, office_room: str | None
) -> None:
    """Close the push, put misses on record, tell the office, and nudge units that keep missing."""
    tz = settings.tz
    missed = close_push(session, push, now=now)
    push_id = pk(push)
    total = len(expected_units(session, [push_id])[push_id])
    alert = session.get_one(Alert, push.alert_id)  # a push's alert is never deleted
    lines = [
        texts.t(
            "schedule.deadline_final", n=push.id, title=compose.push_title(alert), done=total - len(missed), total=total
        )
    ]
    if missed:
        lines.append(texts.t("schedule.deadline_missed", count=len(missed), names="、".join(u.name for u in missed)))
    else:
        lines.append(texts.t("schedule.deadline_all_done"))
    runs = standings(session, as_of=now, tz=tz, ladder=ladder_of(settings))
    for level in (WRITTEN, INTERVIEW, REMIND):
        names = [f"{u.name}（连续{runs[pk(u)].run}次）" for u in missed if runs[pk(u)].level == level]
        if names:
            lines.append(texts.t("schedule.escalated", level=level, names="、".join(names)))
    if office_room:
        outbox.queue(
            session, now=now, chat_kind=ChatKind.ROOM, chat_id=office_room, text="\n".join(lines), push_id=push.id
        )
    for unit in missed:
        standing = runs[pk(unit)]
        if standing.run < settings.escalation_remind_after:
            continue
        refs = "、".join(f"#{n}" for n in standing.missed_pushes)
        text = texts.t("schedule.private_remind", unit=unit.name, run=standing.run, refs=refs)
        for liaison in session.exec(
            select(Liaison).where(
                Liaison.unit_id == unit.id,
                Liaison.active == True,  # noqa: E712
                col(Liaison.contact_id).is_not(None),
            )
        ):
            assert liaison.contact_id is not None  # the query selects only liaisons with one
            outbox.queue(session, now=now, chat_kind=ChatKind.PRIVATE, chat_id=liaison.contact_id, text=text)


# ---- reports -----------------------------------------------------------------------------------


def report_period(occ: Occurrence, tz: ZoneInfo) -> tuple[str, date, date]:
    """The report kind and period a scheduled report covers."""
    kind = occ.kind.report_kind
    if kind is None:
        raise ValueError(f"{occ.job} is not a report")
    day = occ.due.astimezone(tz).date()
    start, end = period_of(kind, day) if kind == "day" else previous_period(kind, day)
    return kind, start, end


def queue_report(
    session: Session,
    *,
    kind: str,
    start: date,
    end: date,
    now: datetime,
    settings: Settings,
    texts: Texts,
    chat_kind: ChatKind,
    chat_id: str,
) -> str:
    """Build a report and queue its text for one chat, and its .xlsx and chart to follow; returns the short text.

    The files are not made here, inside the unit of work: bot/operations/reporting.py holds the rows until the
    renderer (bot/runtime/renderer.py) has made them in a child process (bot/reports/worker.py); if that fails,
    the text goes out without them and says so. A period without pushes gets its text alone.
    """
    tz = settings.tz
    report = build_period_report(session, kind=kind, start=start, end=end, now=now, tz=tz, ladder=ladder_of(settings))
    return reporting.queue_relay_report(
        session, report=report, now=now, texts=texts, tz_key=tz.key, chat_kind=chat_kind, chat_id=chat_id
    )


def job_label(texts: Texts, occ: Occurrence, tz: ZoneInfo) -> str:
    """How a skipped occurrence is named to the office."""
    return texts.t(f"schedule.job_{occ.kind.value}", time=show(occ.due, tz))
