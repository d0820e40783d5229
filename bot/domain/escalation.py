"""Deadlines and the escalation ladder: misses on record, consecutive runs, and the level of each unit."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import cast
from zoneinfo import ZoneInfo

from sqlmodel import Session, col, select

from bot.domain.relay import expected_units
from bot.storage.models import Confirmation, ConfirmMethod, Exemption, Miss, Push, PushState, Unit, pk

NONE, WATCH, REMIND, INTERVIEW, WRITTEN = "", "关注", "提醒", "约谈", "书面说明"
# Levels that the office report lists, most serious first.
REPORTED_LEVELS = (WRITTEN, INTERVIEW, REMIND)


@dataclass(frozen=True)
class Ladder:
    """Consecutive misses for 提醒 and 约谈; consecutive months with misses for 书面说明."""

    remind_after: int = 2
    interview_after: int = 3
    written_months: int = 2


@dataclass(frozen=True)
class Standing:
    unit_id: int
    run: int  # pushes missed in a row, up to the latest closed one
    level: str
    missed_pushes: tuple[int, ...]  # the run's push numbers, oldest first


def close_push(session: Session, push: Push, *, now: datetime) -> list[Unit]:
    """At the deadline: put a miss on record for every expected unit that had not confirmed on time; close the push."""
    office = col(Confirmation.method) == ConfirmMethod.OFFICE.value
    # A liaison's confirmation is on time by its clock; a 补登 by the office's word (its `late`), whenever it
    # was recorded: one made after the deadline but before this job ran is no miss.
    on_time = (~office & (col(Confirmation.at) <= push.deadline)) | (office & (col(Confirmation.late) == False))  # noqa: E712
    push_id = pk(push)
    confirmed = set(session.exec(select(Confirmation.unit_id).where(Confirmation.push_id == push_id, on_time)))
    recorded = set(session.exec(select(Miss.unit_id).where(Miss.push_id == push_id)))
    missed = [u for u in expected_units(session, [push_id])[push_id] if u.id not in confirmed]
    for unit in missed:
        if unit.id not in recorded:
            session.add(Miss(push_id=push_id, unit_id=pk(unit), deadline=push.deadline))
    push.state, push.closed_at = PushState.CLOSED.value, now
    session.add(push)
    session.flush()
    return missed


def _month_index(moment: datetime, tz: ZoneInfo) -> int:
    local = moment.astimezone(tz)
    return local.year * 12 + local.month - 1


def standings(session: Session, *, as_of: datetime, tz: ZoneInfo, ladder: Ladder) -> dict[int, Standing]:
    """Each active unit's run of misses and level as of `as_of`. A push confirmed on time ends a run; a push the
    unit was exempted from (免转) neither ends nor lengthens it.

    Reads only what decides the answer, as plain values: the closed pushes' ids, the misses of those pushes
    for units still on a run (newest pushes first, until every run has ended), and which units missed
    something in the months the written-explanation rule looks at.
    """
    # Primary keys: never NULL, though the models declare `int | None` for rows not yet flushed.
    closed = cast(
        list[int],
        list(
            session.exec(
                select(Push.id)
                .where(Push.state == PushState.CLOSED.value, Push.deadline <= as_of)
                .order_by(col(Push.deadline).desc(), col(Push.id).desc())
            )
        ),
    )
    unit_ids = cast(list[int], list(session.exec(select(Unit.id).where(Unit.active == True).order_by(col(Unit.id)))))  # noqa: E712
    runs: dict[int, list[int]] = {u: [] for u in unit_ids}
    on_run = set(unit_ids)  # units whose run has not ended yet
    done, size = 0, 16
    while on_run and done < len(closed):
        batch = closed[done : done + size]
        done, size = done + len(batch), min(size * 4, 256)
        stmt = select(Miss.push_id, Miss.unit_id).where(col(Miss.push_id).in_(batch), Miss.deadline <= as_of)
        if len(on_run) <= 256:
            stmt = stmt.where(col(Miss.unit_id).in_(sorted(on_run)))
        missed: dict[int, set[int]] = defaultdict(set)
        for push_id, unit_id in session.exec(stmt):
            missed[push_id].add(unit_id)
        excused: dict[int, set[int]] = defaultdict(set)
        for push_id, unit_id in session.exec(
            select(Exemption.push_id, Exemption.unit_id).where(col(Exemption.push_id).in_(batch))
        ):
            excused[push_id].add(unit_id)
        for push_id in batch:
            on_run &= missed[push_id] | excused[push_id]
            for unit_id in on_run - excused[push_id]:
                runs[unit_id].append(push_id)
            if not on_run:
                break
    this_month = _month_index(as_of, tz)
    miss_months = _miss_months(session, as_of=as_of, tz=tz, first=this_month - max(ladder.written_months, 0))
    result: dict[int, Standing] = {}
    for unit_id in unit_ids:
        run = runs[unit_id]
        months = miss_months[unit_id]
        written = any(
            all(end - k in months for k in range(ladder.written_months)) for end in (this_month, this_month - 1)
        )
        if written:
            level = WRITTEN
        elif len(run) >= ladder.interview_after:
            level = INTERVIEW
        elif len(run) >= ladder.remind_after:
            level = REMIND
        elif run:
            level = WATCH
        else:
            level = NONE
        result[unit_id] = Standing(unit_id, len(run), level, tuple(reversed(run)))
    return result


def _miss_months(session: Session, *, as_of: datetime, tz: ZoneInfo, first: int) -> dict[int, set[int]]:
    """unit id -> the months (as _month_index) from `first` on in which it has a miss with deadline <= as_of."""
    year, month = divmod(first, 12)
    # Two days early: whatever the time zone does around midnight, no miss of month `first` is left out;
    # the month of each deadline is then decided exactly, by _month_index.
    since = datetime(year, month + 1, 1, tzinfo=tz) - timedelta(days=2)
    deadlines = session.exec(select(Miss.deadline).distinct().where(Miss.deadline >= since, Miss.deadline <= as_of))
    by_month: dict[int, list[datetime]] = defaultdict(list)
    for deadline in deadlines:
        if (m := _month_index(deadline, tz)) >= first:
            by_month[m].append(deadline)
    found: dict[int, set[int]] = defaultdict(set)
    for m, days in by_month.items():
        # Every deadline between a month's first and last one is in that month (months follow time).
        stmt = select(Miss.unit_id).distinct().where(Miss.deadline >= min(days), Miss.deadline <= max(days))
        for unit_id in session.exec(stmt):
            found[unit_id].add(m)
    return found
