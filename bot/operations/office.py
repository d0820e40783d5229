"""The office's actions on a push (截止, 撤回, 提醒, 补登, 免转): one code path for the chat commands
(handlers/office.py, handlers/office_corrections.py) and the web console's buttons (bot/web/). Each function does
the whole action in the caller's unit of work (the rows, the messages queued in the outbox, the audit row) and
returns the answer the chat command gives; the caller commits. `audit_note` ends the audit row (the console says
where the action came from)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlmodel import Session

from bot.chat import compose
from bot.chat.parsing import DeadlineError, DeadlinePassed, parse_deadline
from bot.clock import show
from bot.config import Settings
from bot.content import Texts
from bot.domain import corrections
from bot.domain.corrections import Outcome
from bot.domain.relay import audit, groups_of_kind, move_deadline, progress, withdraw_push
from bot.operations.agenda import RemindResult, queue_reminders
from bot.storage import outbox
from bot.storage.models import Alert, Confirmation, ConfirmMethod, GroupKind, Push, PushState, Unit
from bot.transport.base import ChatKind


@dataclass(frozen=True)
class Actor:
    """Who acts, for the audit row: a WeChat contact id and name, and where from (the console adds its address)."""

    contact_id: str
    name: str
    note: str = ""


def _audit(session: Session, actor: Actor, *, now: datetime, action: str, detail: str) -> None:
    audit(
        session,
        now=now,
        actor_id=actor.contact_id,
        actor_name=actor.name,
        action=action,
        detail=detail + actor.note,
    )


def tell_liaison_groups(session: Session, text: str, *, now: datetime, push_id: int | None) -> int:
    """Queue `text` for every liaison group (the outbox sends it); returns how many groups."""
    groups = groups_of_kind(session, GroupKind.LIAISON)
    for group in groups:
        outbox.queue(session, now=now, chat_kind=ChatKind.ROOM, chat_id=group.room_id, text=text, push_id=push_id)
    session.flush()
    return len(groups)


# ---- 截止 ----------------------------------------------------------------------------------------------------


def read_deadline(text: str, *, now: datetime, settings: Settings, texts: Texts, n: int) -> tuple[datetime | None, str]:
    """The deadline `text` names for push #n, and ""; or None and the sentence why it cannot be used."""
    tz = settings.tz
    try:
        return parse_deadline(text, now=now, tz=tz, default_time=settings.deadline_time), ""
    except DeadlinePassed as passed:
        at = f"{passed.at.astimezone(tz):%H:%M}"
        return None, texts.t("push_deadline.passed", when=show(passed.at, tz), n=n, time=at)
    except DeadlineError:
        return None, texts.t("push.deadline_bad", text=text)


def _refused(push: Push | None, n: int, texts: Texts, *, withdrawn: str) -> str:
    if push is None:
        return texts.t("push.not_found", n=n)
    return texts.t(withdrawn, n=n) if push.state == PushState.WITHDRAWN.value else ""


def deadline_refused(push: Push | None, n: int, texts: Texts) -> str:
    """Why push #n's deadline cannot be moved ("" when it can)."""
    return _refused(push, n, texts, withdrawn="push_withdrawn.deadline")


def change_deadline(
    session: Session, push: Push, deadline: datetime, *, now: datetime, tz: ZoneInfo, texts: Texts, actor: Actor
) -> str:
    """截止 #N: move the deadline (the push reopens, its misses go, lateness is counted again), tell every
    liaison group, audit; returns the answer."""
    move_deadline(session, push, deadline=deadline)
    shown = show(deadline, tz)
    tell_liaison_groups(session, texts.t("push.deadline_changed", n=push.id, deadline=shown), now=now, push_id=push.id)
    _audit(session, actor, now=now, action="deadline", detail=f"#{push.id} -> {deadline.isoformat()}")
    return texts.t("push.deadline_set", n=push.id, deadline=shown)


# ---- 撤回 ----------------------------------------------------------------------------------------------------


def withdraw_refused(push: Push | None, n: int, texts: Texts) -> str:
    """Why push #n cannot be withdrawn ("" when it can)."""
    return _refused(push, n, texts, withdrawn="push.already_withdrawn")


def withdraw(session: Session, push: Push, *, now: datetime, texts: Texts, actor: Actor) -> str:
    """撤回 #N: the push no longer counts; every liaison group is told; audited. Returns the answer."""
    withdraw_push(session, push)
    alert = session.get_one(Alert, push.alert_id)
    text = texts.t("push.withdrawn_group", n=push.id, title=compose.push_title(alert))
    groups = tell_liaison_groups(session, text, now=now, push_id=push.id)
    _audit(session, actor, now=now, action="withdraw", detail=f"#{push.id}")
    return texts.t("push.withdrawn", n=push.id, groups=groups)


# ---- 提醒 ----------------------------------------------------------------------------------------------------


def remind(
    session: Session, push: Push, *, now: datetime, settings: Settings, texts: Texts, actor: Actor
) -> RemindResult:
    """提醒 #N (not withdrawn): the reminder queued for the groups of the units that have not confirmed, audited
    when there was anyone to remind."""
    result = queue_reminders(session, [push], at=now, now=now, settings=settings, texts=texts)
    if result.units:
        detail = f"#{push.id}: {result.units} units, {result.people} people"
        _audit(session, actor, now=now, action="remind", detail=detail)
    return result


# ---- 补登 and 免转 ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    done: bool  # False: nothing changed, `message` says why
    message: str


def _already_confirmed(texts: Texts, unit: Unit, push: Push, conf: Confirmation, tz: ZoneInfo) -> str:
    how = texts.t("corrections.how_added") if conf.method == ConfirmMethod.OFFICE.value else ""
    return texts.t("corrections.already_confirmed", unit=unit.name, n=push.id, when=show(conf.at, tz), how=how)


def correct(
    session: Session,
    push: Push,
    unit: Unit,
    reason: str,
    *,
    adding: bool,
    now: datetime,
    tz: ZoneInfo,
    texts: Texts,
    actor: Actor,
) -> Answer:
    """补登 (`adding`) or 免转 <单位> #N <理由>: the correction and the answer (why nothing changed, or the push's
    count after it)."""
    act = corrections.add_confirmation if adding else corrections.exempt
    result = act(
        session=session,
        push=push,
        unit=unit,
        reason=reason,
        by_id=actor.contact_id,
        by_name=actor.name,
        now=now,
        audit_note=actor.note,
    )
    if result.outcome == Outcome.WITHDRAWN:
        return Answer(False, texts.t("push_withdrawn.add" if adding else "push_withdrawn.exempt", n=push.id))
    if result.outcome == Outcome.NOT_AIMED:
        return Answer(False, not_aimed_text(session, texts, push, unit))
    if result.outcome == Outcome.CONFIRMED:
        assert result.confirmation is not None  # CONFIRMED comes with the confirmation found
        return Answer(False, _already_confirmed(texts, unit, push, result.confirmation, tz))
    if result.outcome == Outcome.EXEMPTED:
        if adding:
            return Answer(False, texts.t("corrections.add_exempted", unit=unit.name, n=push.id))
        assert result.exemption is not None  # EXEMPTED comes with the exemption found
        reason_before = result.exemption.reason
        return Answer(False, texts.t("corrections.already_exempted", unit=unit.name, n=push.id, reason=reason_before))
    if adding:
        assert result.confirmation is not None  # a 补登 done comes with the confirmation recorded
        key = "corrections.added_late" if result.confirmation.late else "corrections.added"
    else:
        key = "corrections.exempted"
    return Answer(True, texts.t(key, unit=unit.name, n=push.id, reason=reason, **counts(session, push)))


def not_aimed_text(session: Session, texts: Texts, push: Push, unit: Unit) -> str:
    """Why a correction of a targeted push changes nothing for a unit it is not aimed at."""
    return texts.t("targets.not_aimed", unit=unit.name, n=push.id, target=push.target)


def counts(session: Session, push: Push) -> dict[str, int]:
    """`done` and `total` of the push after a correction, for the answer."""
    p = progress(session, push)
    return {"done": len(p.confirmed), "total": p.total}
