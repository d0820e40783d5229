"""Office commands about records: reports, a unit's record, leave, and the working-day calendar."""

from __future__ import annotations

import logging
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING

from sqlmodel import col, select

from bot.chat.dispatch import CommandObject, Context
from bot.chat.parsing import DeadlineError, parse_day_range
from bot.config import Settings
from bot.domain.corrections import corrections_of_unit
from bot.domain.escalation import standings
from bot.domain.records import RECORD_DAYS, liaison_labels, unit_record
from bot.domain.relay import active_units
from bot.domain.roster import kind_and_tags
from bot.operations import agenda as schedule
from bot.reports.build import period_of, previous_period
from bot.storage.models import (
    CalendarDay,
    Leave,
    Liaison,
    Role,
    Unit,
    pk,
)
from bot.textnorm import squeeze
from bot.transport.base import ChatKind, FileData, Incoming, MessageKind

if TYPE_CHECKING:
    from bot.domain.incidents import StatRow, StatsError

log = logging.getLogger(__name__)

_REPORT_KINDS = {
    "日": ("day", False),
    "今天": ("day", False),
    "周": ("week", False),
    "本周": ("week", False),
    "上周": ("week", True),
    "月": ("month", False),
    "本月": ("month", False),
    "上月": ("month", True),
    "季": ("quarter", False),
    "本季": ("quarter", False),
    "本季度": ("quarter", False),
    "上季": ("quarter", True),
    "上季度": ("quarter", True),
    "季点评": ("quarter", True),  # the review people mean is the one of the quarter just ended
}


def find_unit(ctx: Context, name: str) -> tuple[Unit | None, str]:
    """The active unit named (exactly, or as the only unit containing the text) and ""; else None and the answer
    to give."""
    key = squeeze(name)
    if not key:
        return None, ctx.t("office.unit_usage")
    units = active_units(ctx.session)
    exact = [u for u in units if squeeze(u.name) == key]
    if exact:
        return exact[0], ""
    partial = [u for u in units if key in squeeze(u.name)]
    if len(partial) == 1:
        return partial[0], ""
    if partial:
        return None, ctx.t("office.unit_ambiguous", name=name, names="、".join(u.name for u in partial))
    return None, ctx.t("office.unit_unknown", name=name)


def on_report(msg: Incoming, ctx: Context, cmd: CommandObject) -> None:
    """报表 日/周/月/季/上周/上月/上季: the report for that period so far, with its files, in this chat."""
    wanted = _REPORT_KINDS.get(squeeze(cmd.arg) or "周")
    if wanted is None:
        ctx.reply(msg, ctx.t("report.usage"))
        return
    kind, previous = wanted
    today = ctx.today
    start, end = previous_period(kind, today) if previous else period_of(kind, today)
    schedule.queue_report(
        ctx.session,
        kind=kind,
        start=start,
        end=end,
        now=ctx.now,
        settings=ctx.settings,
        texts=ctx.texts,
        chat_kind=msg.chat_kind,
        chat_id=msg.chat_id,
    )
    ctx.audit(msg, "report", f"{kind} {start}..{end}")


# At most this many corrections on a unit's card, the newest: a phone screen, not an archive (the older ones
# are counted, and each 通报's 更正记录 sheet lists those of its pushes).
_CARD_CORRECTIONS = 10


def unit_card(ctx: Context, unit: Unit) -> str:
    """A unit's last RECORD_DAYS (bot/domain/records.py, as the web console's 单位 page counts them), its run of misses and level, its liaisons and leave, and the office's corrections."""
    since = ctx.now - timedelta(days=RECORD_DAYS)
    record = unit_record(ctx.session, pk(unit), now=ctx.now)
    standing = standings(ctx.session, as_of=ctx.now, tz=ctx.tz, ladder=schedule.ladder_of(ctx.settings)).get(pk(unit))
    people = "、".join(liaison_labels(ctx.session, unit_ids=[pk(unit)]).get(pk(unit), [])) or "无"
    today = ctx.today
    leaves = ctx.session.exec(
        select(Leave).where(Leave.unit_id == unit.id, Leave.end >= today).order_by(col(Leave.start))
    ).all()
    leave = (
        ctx.t("office.unit_leave", ranges="、".join(_span(absence.start, absence.end) for absence in leaves))
        if leaves
        else ""
    )
    return ctx.t(
        "office.unit_card",
        unit=unit.name,
        kind=kind_and_tags(unit.kind, unit.tags),
        received=record.received,
        on_time=record.on_time,
        late=record.late,
        missed=record.missed,
        pending=(
            ctx.t("push_unit.pending", count=len(record.waiting), refs="、".join(f"#{p}" for p in record.waiting))
            if record.waiting
            else ""
        ),
        run=standing.run if standing else 0,
        level=(standing.level if standing and standing.level else ctx.t("office.level_none")),
        liaisons=people,
        leave=leave,
        exempt=ctx.t("office.unit_exempt_part", count=record.exempted) if record.exempted else "",
    ) + _corrections_part(ctx, unit, since=since)


def _corrections_part(ctx: Context, unit: Unit, *, since: datetime) -> str:
    """The card's lines about the office's corrections of this unit's record in the last 30 days."""
    rows = corrections_of_unit(session=ctx.session, unit_id=pk(unit), since=since)
    if not rows:
        return ""
    more = len(rows) - _CARD_CORRECTIONS
    lines = [ctx.t("office.unit_corrections_more", count=more)] if more > 0 else []
    for c in rows[-_CARD_CORRECTIONS:]:
        local = c.at.astimezone(ctx.tz)
        key = "office.unit_correction" if c.reason else "office.unit_correction_bare"
        lines.append(
            ctx.t(
                key,
                day=f"{local.month}月{local.day}日",
                n=c.push_id,
                kind=c.kind,
                reason=c.reason,
                by=c.by_name or c.by_id,
            )
        )
    return ctx.t("office.unit_corrections", count=len(rows), lines="\n".join(lines))


def _span(start, end) -> str:
    first = f"{start.month}月{start.day}日"
    return first if start == end else f"{first}至{end.month}月{end.day}日"


def on_unit(msg: Incoming, ctx: Context, cmd: CommandObject) -> None:
    """单位 <名称>: a unit's record and level."""
    unit, error = find_unit(ctx, cmd.arg)
    ctx.reply(msg, unit_card(ctx, unit) if unit is not None else error)


def on_leave(msg: Incoming, ctx: Context, cmd: CommandObject) -> None:
    """请假 <单位> <日期[至日期]>: the main liaison is away, remind the backup."""
    name, _, when = cmd.arg.rpartition(" ")
    if not name or not when:
        ctx.reply(msg, ctx.t("office.leave_usage"))
        return
    unit, error = find_unit(ctx, name)
    if unit is None:
        ctx.reply(msg, error)
        return
    try:
        start, end = parse_day_range(when, today=ctx.today)
    except DeadlineError:
        ctx.reply(msg, ctx.t("office.leave_bad_date", text=when))
        return
    ctx.session.add(Leave(unit_id=pk(unit), start=start, end=end, created_by=msg.sender.contact_id, created_at=ctx.now))
    backups = ctx.session.exec(
        select(Liaison.name).where(
            Liaison.unit_id == unit.id,
            Liaison.role == Role.BACKUP.value,
            Liaison.active == True,  # noqa: E712
        )
    ).all()
    ctx.audit(msg, "leave", f"{unit.name} {start}..{end}")
    ctx.reply(
        msg,
        ctx.t(
            "office.leave_set",
            unit=unit.name,
            start=_span(start, start),
            until="" if start == end else f"至{end.month}月{end.day}日",
            backups=("（" + "、".join(backups) + "）") if backups else ctx.t("office.leave_no_backup"),
        ),
    )


def on_leave_end(msg: Incoming, ctx: Context, cmd: CommandObject) -> None:
    """销假 <单位>: the main liaison is back."""
    unit, error = find_unit(ctx, cmd.arg)
    if unit is None:
        ctx.reply(msg, error)
        return
    today = ctx.today
    rows = ctx.session.exec(select(Leave).where(Leave.unit_id == unit.id, Leave.end >= today)).all()
    for row in rows:
        if row.start < today:
            row.end = today - timedelta(days=1)  # keep the past part on record
            ctx.session.add(row)
        else:
            ctx.session.delete(row)
    ctx.audit(msg, "leave_end", unit.name)
    ctx.reply(msg, ctx.t("office.leave_cleared", unit=unit.name, count=len(rows)))


def on_calendar(msg: Incoming, ctx: Context, cmd: CommandObject) -> None:
    """休息日 / 工作日 <日期[至日期]>: the office's own holidays and make-up days; they win over chinese-calendar."""
    working = cmd.name == "工作日"
    try:
        start, end = parse_day_range(cmd.arg, today=ctx.today)
    except DeadlineError:
        ctx.reply(msg, ctx.t("office.calendar_usage"))
        return
    day = start
    while day <= end:
        row = ctx.session.get(CalendarDay, day) or CalendarDay(day=day, working=working)
        row.working, row.set_by, row.set_at = working, msg.sender.contact_id, ctx.now
        ctx.session.add(row)
        day += timedelta(days=1)
    ctx.audit(msg, "calendar", f"{start}..{end} {'work' if working else 'off'}")
    what = ctx.t("office.calendar_working" if working else "office.calendar_off")
    ctx.reply(msg, ctx.t("office.calendar_set", days=_span(start, end), what=what))


def on_incidents(msg: Incoming, ctx: Context, cmd: CommandObject) -> None:
    """警情 [周期]: the incident 通报 of the latest (or the named) period."""
    from bot.domain.incidents import latest_period, parse_period
    from bot.operations.reporting import queue_stats_report

    today = ctx.today
    period = parse_period(cmd.arg, today=today) if cmd.arg else latest_period(ctx.session)
    if period is None:
        ctx.reply(msg, ctx.t("stats.usage") if cmd.arg else ctx.t("stats.no_period"))
        return
    queue_stats_report(
        ctx.session,
        period=period,
        now=ctx.now,
        texts=ctx.texts,
        library=ctx.library,
        chat_kind=msg.chat_kind,
        chat_id=msg.chat_id,
        checkpoints=ctx.settings.checkpoint_days,
    )


def reads_file(msg: Incoming, settings: Settings) -> bool:
    """Does `on_incident_file` (the incident figures, or a roster) want this message's file read ahead of its unit
    of work (an admin's file)?"""
    return msg.kind == MessageKind.FILE and msg.file is not None and msg.sender.contact_id in settings.admin_ids


def read_admin_file(file: FileData, *, today: date) -> object:
    """What the app reads ahead from an admin's file: the roster (a RosterRead or RosterError) if its header says
    it is one, else the incident figures (see `read_incident_file`)."""
    from handlers.roster_chat import read_roster_upload

    roster = read_roster_upload(file)
    return roster if roster is not None else read_incident_file(file, today=today)


def read_incident_file(file: FileData, *, today: date) -> list[StatRow] | StatsError:
    """The slow part of importing an incident file, which the app runs in a worker thread before the unit of work
    and outside its lock: the rows, or why the file cannot be imported."""
    from bot.content import load_texts
    from bot.domain.incidents import StatsError, read_stats_bytes

    try:
        return read_stats_bytes(file.name, file.data, today=today)
    except StatsError as exc:
        return exc
    except Exception:  # a reader's bug must not lose the admin's file silently in a background task
        log.exception("reading the incident file %r failed", file.name)
        return StatsError(load_texts().t("stats.xlsx_broken"))


def on_incident_file(msg: Incoming, ctx: Context) -> None:
    """An admin sends the incident spreadsheet: import it all or nothing, then post the 通报 to the office group.
    A roster sent the same way (told by its header) goes to handlers/roster_chat.py."""
    from bot.domain.incidents import StatsError, import_stats
    from bot.domain.roster import RosterError, RosterRead
    from bot.operations.reporting import queue_stats_report
    from handlers.roster_chat import on_roster_file

    if msg.file is None:  # the transport could not fetch the attachment
        ctx.reply(msg, ctx.t("stats.file_not_received"))
        return
    read = ctx.files.get(msg.message_id)
    if read is None:  # not read ahead (the app reads every admin's file ahead; a caller of its own may not)
        read = read_admin_file(msg.file, today=ctx.today)
    if isinstance(read, (RosterRead, RosterError)):
        on_roster_file(msg, ctx, read)
        return
    rows: list[StatRow] | StatsError = read  # type: ignore[assignment]
    if isinstance(rows, StatsError):
        ctx.reply(msg, ctx.t("stats.import_failed", error=str(rows)))
        return
    report = import_stats(ctx.session, rows, now=ctx.now, source=f"chat:{msg.sender.contact_id}:{msg.file.name}")
    ctx.audit(msg, "stats_import", f"{msg.file.name}: {len(rows)} rows")
    ctx.reply(msg, ctx.t("stats.imported", rows=len(rows), summary="；".join(report.lines(ctx.texts))))
    office = ctx.office_group()
    target = (ChatKind.ROOM, office.room_id) if office else (msg.chat_kind, msg.chat_id)
    for period in filter(None, [report.period_to_post()]):  # the newest period the file covered, if not a back-fill
        queue_stats_report(
            ctx.session,
            period=period,
            now=ctx.now,
            texts=ctx.texts,
            library=ctx.library,
            chat_kind=target[0],
            chat_id=target[1],
            checkpoints=ctx.settings.checkpoint_days,
        )
