"""Deadlines and the escalation ladder: misses on record, consecutive runs, and the level of each unit."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlmodel import Session, col, select

from bot.models import Confirmation, Miss, Push, PushState, Unit
from bot.relay import active_units

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
    """At the deadline: put a miss on record for every active unit that had not confirmed; close the push."""
    confirmed = set(
        session.exec(
            select(Confirmation.unit_id).where(Confirmation.push_id == push.id, Confirmation.at <= push.deadline)
        )
    )
    recorded = set(session.exec(select(Miss.unit_id).where(Miss.push_id == push.id)))
    missed = [u for u in active_units(session) if u.id not in confirmed]
    for unit in missed:
        if unit.id not in recorded:
            session.add(Miss(push_id=push.id, unit_id=unit.id, deadline=push.deadline))
    push.state, push.closed_at = PushState.CLOSED.value, now
    session.add(push)
    session.flush()
    return missed


def _month_index(moment: datetime, tz: ZoneInfo) -> int:
    local = moment.astimezone(tz)
    return local.year * 12 + local.month - 1


def standings(session: Session, *, as_of: datetime, tz: ZoneInfo, ladder: Ladder) -> dict[int, Standing]:
    """Each active unit's run of misses and level as of `as_of`. A push confirmed on time ends a run."""
    closed = list(
        session.exec(
            select(Push)
            .where(Push.state == PushState.CLOSED.value, Push.deadline <= as_of)
            .order_by(col(Push.deadline).desc(), col(Push.id).desc())
        )
    )
    misses: dict[int, set[int]] = defaultdict(set)
    miss_months: dict[int, set[int]] = defaultdict(set)
    for miss in session.exec(select(Miss).where(Miss.deadline <= as_of)):
        misses[miss.unit_id].add(miss.push_id)
        miss_months[miss.unit_id].add(_month_index(miss.deadline, tz))
    this_month = _month_index(as_of, tz)
    result: dict[int, Standing] = {}
    for unit in active_units(session):
        run: list[int] = []
        for push in closed:
            if push.id not in misses[unit.id]:
                break
            run.append(push.id)
        months = miss_months[unit.id]
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
        result[unit.id] = Standing(unit.id, len(run), level, tuple(reversed(run)))
    return result
