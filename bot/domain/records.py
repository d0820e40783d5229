"""A unit's record over the last RECORD_DAYS: the chat's `单位 <名>` card and the web console's 单位 page count it
the same way, here."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlmodel import Session, col, select

from bot.domain.relay import not_expected
from bot.storage.models import Confirmation, Exemption, Liaison, Push, PushState, Unit

RECORD_DAYS = 30


@dataclass
class Record:
    """One unit's pushes whose deadline is in the last RECORD_DAYS (withdrawn ones left out)."""

    received: int = 0  # every push it is expected to relay, those still before their deadline too
    on_time: int = 0
    late: int = 0
    missed: int = 0  # past the deadline, not confirmed
    waiting: list[int] = field(default_factory=list)  # before the deadline, not confirmed yet (待转)
    exempted: int = 0  # 免转: neither received nor missed


def unit_records(
    session: Session, *, now: datetime, unit_ids: Sequence[int] | None = None, days: int = RECORD_DAYS
) -> dict[int, Record]:
    """Per unit id (every unit, or those in `unit_ids`), its record of the pushes whose deadline is in the last
    `days`: three queries whatever the number of units."""
    since = now - timedelta(days=days)
    rows = list(
        session.exec(
            select(Push.id, Push.deadline)
            .where(Push.deadline >= since, Push.state != PushState.WITHDRAWN.value)
            .order_by(col(Push.id))
        )
    )
    pushes = [push_id for push_id, _ in rows if push_id is not None]
    due = {push_id for push_id, deadline in rows if deadline <= now}
    if unit_ids is None:
        units = [unit_id for unit_id in session.exec(select(Unit.id)) if unit_id is not None]
    else:
        units = list(dict.fromkeys(unit_ids))
    exempt: dict[int, set[int]] = defaultdict(set)
    confs: dict[int, dict[int, bool]] = defaultdict(dict)
    if pushes and units:
        exemptions = select(Exemption.push_id, Exemption.unit_id).where(col(Exemption.push_id).in_(pushes))
        confirmations = select(Confirmation.push_id, Confirmation.unit_id, Confirmation.late).where(
            col(Confirmation.push_id).in_(pushes)
        )
        if unit_ids is not None:
            exemptions = exemptions.where(col(Exemption.unit_id).in_(units))
            confirmations = confirmations.where(col(Confirmation.unit_id).in_(units))
        for push_id, unit_id in session.exec(exemptions):
            exempt[unit_id].add(push_id)
        for push_id, unit_id, was_late in session.exec(confirmations):
            confs[unit_id][push_id] = bool(was_late)
    out: dict[int, Record] = {}
    # relay's expected rule seen from each unit: exempted (免转) or aimed at other units (a targeted push).
    excluded = not_expected(session, pushes, units)
    for unit_id in units:
        exempted = exempt.get(unit_id, set())
        mine = [p for p in pushes if p not in excluded[unit_id]]
        done = confs.get(unit_id, {})
        confirmed = {p: was_late for p, was_late in done.items() if p not in excluded[unit_id]}
        late_count = sum(1 for was_late in confirmed.values() if was_late)
        out[unit_id] = Record(
            received=len(mine),
            on_time=len(confirmed) - late_count,
            late=late_count,
            missed=sum(1 for p in mine if p not in confirmed and p in due),
            waiting=[p for p in mine if p not in confirmed and p not in due],
            exempted=len(exempted),
        )
    return out


def unit_record(session: Session, unit_id: int, *, now: datetime) -> Record:
    """One unit's record (unit_records for one)."""
    return unit_records(session, now=now, unit_ids=[unit_id])[unit_id]


def liaison_labels(session: Session, *, unit_ids: Sequence[int] | None = None) -> dict[int, list[str]]:
    """Per unit id, its active liaisons as the 单位 card and page show them: 姓名（角色）, ，未识别 when the bot does
    not know their WeChat contact yet; main before backup."""
    stmt = select(Liaison).where(Liaison.active == True)  # noqa: E712
    if unit_ids is not None:
        stmt = stmt.where(col(Liaison.unit_id).in_(list(unit_ids)))
    out: dict[int, list[str]] = defaultdict(list)
    for liaison in session.exec(stmt.order_by(col(Liaison.role), col(Liaison.id))):
        out[liaison.unit_id].append(f"{liaison.name}（{liaison.role}{'' if liaison.contact_id else '，未识别'}）")
    return dict(out)
