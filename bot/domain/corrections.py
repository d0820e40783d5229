"""The office's corrections of the record: 补登 (a confirmation recorded on a unit's behalf), 撤销 (one recorded by
mistake taken back) and 免转 (a unit not expected to relay a push). Each is a Correction row and an audit row."""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlmodel import Session, col, select

from bot.domain import evidence as evidence_store
from bot.domain.relay import aimed_at, audit
from bot.storage.models import (
    Confirmation,
    ConfirmMethod,
    Correction,
    CorrectionKind,
    Exemption,
    Miss,
    Push,
    PushState,
    Unit,
    pk,
)

# A 补登 counts as on time (the office vouches for it) unless its reason says it was late.
# 迟报 but not 非迟报 / 不算迟报 / 没有迟报.
LATE_WORD = re.compile(r"(?<![非不没无])(?<!不算)(?<!没有)迟报")
# The longest reason kept (Correction.reason and Exemption.reason): callers cut it, so that what they echo back
# is what was stored.
MAX_REASON = 200


class Outcome(str, enum.Enum):
    DONE = "done"
    WITHDRAWN = "withdrawn"  # the push was withdrawn: nothing about it counts any more
    CONFIRMED = "confirmed"  # the unit has a confirmation already (补登, 免转 change nothing)
    EXEMPTED = "exempted"  # the unit is exempted already (补登, 免转 change nothing)
    NOTHING = "nothing"  # 撤销: neither a confirmation nor an exemption to take back
    NOT_AIMED = "not_aimed"  # a targeted push aimed at other units: this unit has nothing to correct


@dataclass(frozen=True)
class Result:
    outcome: Outcome
    confirmation: Confirmation | None = None  # the one recorded (补登) or found (CONFIRMED)
    exemption: Exemption | None = None  # the one recorded (免转) or found (EXEMPTED)
    revoked: str = ""  # 撤销: "confirmation" or "exemption"
    missed: bool = False  # the unit now stands as a miss of the push (its deadline has passed)


def _confirmation(session: Session, push_id: int, unit_id: int) -> Confirmation | None:
    return session.exec(
        select(Confirmation).where(Confirmation.push_id == push_id, Confirmation.unit_id == unit_id)
    ).first()


def _exemption(session: Session, push_id: int, unit_id: int) -> Exemption | None:
    return session.exec(select(Exemption).where(Exemption.push_id == push_id, Exemption.unit_id == unit_id)).first()


def _drop_miss(session: Session, push_id: int, unit_id: int) -> None:
    for miss in session.exec(select(Miss).where(Miss.push_id == push_id, Miss.unit_id == unit_id)):
        session.delete(miss)


def _note(
    session: Session,
    kind: CorrectionKind,
    *,
    push: Push,
    unit: Unit,
    reason: str,
    by_id: str,
    by_name: str,
    now: datetime,
    action: str,
    detail: str,
    audit_note: str = "",
) -> None:
    """The Correction row (shown in 单位 and the 通报) and the audit row, in the caller's transaction."""
    session.add(
        Correction(
            push_id=pk(push), unit_id=pk(unit), kind=kind.value, reason=reason, by_id=by_id, by_name=by_name, at=now
        )
    )
    audit(
        session,
        now=now,
        actor_id=by_id,
        actor_name=by_name,
        action=action,
        detail=f"#{push.id} {unit.name} {detail}" + (f": {reason}" if reason else "") + audit_note,
    )


def add_confirmation(
    *,
    session: Session,
    push: Push,
    unit: Unit,
    reason: str,
    by_id: str,
    by_name: str,
    now: datetime,
    audit_note: str = "",
) -> Result:
    """补登: record `unit`'s confirmation of `push` on its behalf; on time unless the reason says 迟报.
    `audit_note` ends the audit row (where the action came from)."""
    if push.state == PushState.WITHDRAWN.value:
        return Result(Outcome.WITHDRAWN)
    push_id, unit_id = pk(push), pk(unit)
    if not aimed_at(session, push_id, unit_id):
        return Result(Outcome.NOT_AIMED)
    existing = _confirmation(session, push_id, unit_id)
    if existing is not None:
        return Result(Outcome.CONFIRMED, confirmation=existing)
    exemption = _exemption(session, push_id, unit_id)
    if exemption is not None:
        return Result(Outcome.EXEMPTED, exemption=exemption)
    late = bool(LATE_WORD.search(reason))
    # acked_at is set: the liaison group owes no acknowledgement for what the office recorded (and there is no
    # room to send one to).
    conf = Confirmation(
        push_id=push_id,
        unit_id=unit_id,
        liaison_id=None,
        at=now,
        method=ConfirmMethod.OFFICE.value,
        recorded_by=by_id,
        evidence_text=reason,
        late=late,
        acked_at=now,
    )
    session.add(conf)
    if not late:
        # On time by the office's word, so the deadline's miss no longer stands; a late one stays a miss, like a
        # liaison's late confirmation.
        _drop_miss(session, push_id, unit_id)
    _note(
        session,
        CorrectionKind.ADD,
        push=push,
        unit=unit,
        reason=reason,
        by_id=by_id,
        by_name=by_name,
        now=now,
        action="correction_add",
        detail="补登（迟报）" if late else "补登",
        audit_note=audit_note,
    )
    session.flush()
    return Result(Outcome.DONE, confirmation=conf)


def revoke(
    *,
    session: Session,
    push: Push,
    unit: Unit,
    reason: str,
    by_id: str,
    by_name: str,
    now: datetime,
    evidence_dir: Path,
) -> Result:
    """撤销: take back `unit`'s confirmation of `push` (or, if it has none, its exemption); after the deadline
    the unit becomes a miss of the push, as the deadline job would have made it."""
    if push.state == PushState.WITHDRAWN.value:
        return Result(Outcome.WITHDRAWN)
    push_id, unit_id = pk(push), pk(unit)
    if not aimed_at(session, push_id, unit_id):
        return Result(Outcome.NOT_AIMED)
    conf = _confirmation(session, push_id, unit_id)
    if conf is not None:
        if conf.evidence_file:
            evidence_store.delete_after_commit(session, evidence_dir, conf.evidence_file)
        session.delete(conf)
        revoked = "confirmation"
    else:
        exemption = _exemption(session, push_id, unit_id)
        if exemption is None:
            return Result(Outcome.NOTHING)
        session.delete(exemption)
        revoked = "exemption"
    missed = now > push.deadline
    if missed and session.exec(select(Miss.id).where(Miss.push_id == push_id, Miss.unit_id == unit_id)).first() is None:
        session.add(Miss(push_id=push_id, unit_id=unit_id, deadline=push.deadline))
    _note(
        session,
        CorrectionKind.REVOKE,
        push=push,
        unit=unit,
        reason=reason,
        by_id=by_id,
        by_name=by_name,
        now=now,
        action="correction_revoke",
        detail=f"撤销{'确认' if revoked == 'confirmation' else '免转'}",
    )
    session.flush()
    return Result(Outcome.DONE, revoked=revoked, missed=missed)


def exempt(
    *,
    session: Session,
    push: Push,
    unit: Unit,
    reason: str,
    by_id: str,
    by_name: str,
    now: datetime,
    audit_note: str = "",
) -> Result:
    """免转: `unit` is not expected to relay `push`: not reminded, not missed, not counted or ranked for it.
    `audit_note` ends the audit row (where the action came from)."""
    if push.state == PushState.WITHDRAWN.value:
        return Result(Outcome.WITHDRAWN)
    push_id, unit_id = pk(push), pk(unit)
    if not aimed_at(session, push_id, unit_id):
        return Result(Outcome.NOT_AIMED)
    conf = _confirmation(session, push_id, unit_id)
    if conf is not None:
        return Result(Outcome.CONFIRMED, confirmation=conf)
    existing = _exemption(session, push_id, unit_id)
    if existing is not None:
        return Result(Outcome.EXEMPTED, exemption=existing)
    exemption = Exemption(push_id=push_id, unit_id=unit_id, reason=reason, by_id=by_id, by_name=by_name, at=now)
    session.add(exemption)
    _drop_miss(session, push_id, unit_id)  # exempted after the deadline: the miss no longer stands
    _note(
        session,
        CorrectionKind.EXEMPT,
        push=push,
        unit=unit,
        reason=reason,
        by_id=by_id,
        by_name=by_name,
        now=now,
        action="correction_exempt",
        detail="免转",
        audit_note=audit_note,
    )
    session.flush()
    return Result(Outcome.DONE, exemption=exemption)


def corrections_of_unit(*, session: Session, unit_id: int, since: datetime) -> list[Correction]:
    """The unit's corrections made since `since`, oldest first."""
    return list(
        session.exec(
            select(Correction)
            .where(Correction.unit_id == unit_id, Correction.at >= since)
            .order_by(col(Correction.at), col(Correction.id))
        )
    )
