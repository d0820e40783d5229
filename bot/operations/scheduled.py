"""Scheduled pushes (`推送 刷单 明天9:00`, `relaybot push --at`): stored as rows, pushed by the schedule poller.

At its time a scheduled push is made by push_alert, as `推送` would make it then: its deadline is the default
one worked out at that moment (a push made on a day off or late in the day gets the next working day's), and
the same alert pushed earlier that day stops it unless it was scheduled with 确认. The row's state changes in
the same transaction as the push and its outbox rows, so a restart neither loses nor repeats it; a bot that was
down at the time pushes it when it is back, once, and tells the office how late it was.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session, col, select

from bot.chat import compose
from bot.clock import show
from bot.config import Settings
from bot.content import Texts
from bot.domain.relay import audit, office_group
from bot.domain.workdays import load_calendar
from bot.operations.pushing import push_alert
from bot.storage import outbox
from bot.storage.models import Alert, ScheduledPush, ScheduledPushState, pk
from bot.transport.base import ChatKind

MAX_AHEAD = timedelta(days=30)  # farther ahead is more likely a slip than a plan
LATE_NOTICE = timedelta(minutes=5)  # pushed later than this after its time: the office is told why


@dataclass(frozen=True)
class Scheduled:
    row: ScheduledPush
    message: str  # the answer to whoever scheduled it


def too_far(send_at: datetime, *, now: datetime) -> bool:
    """Whether `send_at` is further ahead than a push may be scheduled."""
    return send_at - now > MAX_AHEAD


def again_command(texts: Texts, alert: Alert) -> str:
    """What to send to push the same alert again the same day (named when a scheduled push is refused)."""
    if alert.case_type:
        return texts.t("push_repeat.chat", what=alert.case_type)
    if alert.link_url:
        return texts.t("push_repeat.chat", what=alert.link_url)
    return texts.t("push_repeat.chat_draft")


def schedule_push(
    session: Session,
    alert: Alert,
    *,
    send_at: datetime,
    now: datetime,
    actor_id: str,
    actor_name: str,
    again: bool,
    chat_kind: str,
    chat_id: str,
    settings: Settings,
    texts: Texts,
    target: str = "",
) -> Scheduled:
    """Store `alert` to be pushed at `send_at` (checked by the caller: in the future, not too far) and audit it.
    `target` (给 学校): checked by the caller; its units are read when it is sent."""
    alert.draft_of = None  # a draft scheduled is not pushed again by a bare 推送
    session.add(alert)
    session.flush()
    row = ScheduledPush(
        alert_id=pk(alert),
        send_at=send_at,
        again=again,
        created_at=now,
        created_by=actor_id,
        created_by_name=actor_name,
        chat_kind=chat_kind,
        chat_id=chat_id,
        target=target[:200],
    )
    session.add(row)
    session.flush()
    title = compose.push_title(alert)
    audit(
        session,
        now=now,
        actor_id=actor_id,
        actor_name=actor_name,
        action="push_scheduled",
        detail=f"定时{row.id} {send_at.astimezone(settings.tz).isoformat()} {alert.case_type} {title}{' 给 ' + target if target else ''}{' 确认' if again else ''}",
    )
    calendar = load_calendar(session, official=settings.official_calendar)
    day_off = not calendar.is_working_day(send_at.astimezone(settings.tz).date())
    key = "scheduled.saved_day_off" if day_off else "scheduled.saved"
    title += texts.t("targets.progress", target=target) if target else ""
    return Scheduled(row, texts.t(key, when=show(send_at, settings.tz), title=title, n=row.id))


def waiting(session: Session) -> list[ScheduledPush]:
    """The scheduled pushes still to go out, soonest first."""
    return list(
        session.exec(
            select(ScheduledPush)
            .where(ScheduledPush.state == ScheduledPushState.WAITING.value)
            .order_by(col(ScheduledPush.send_at), col(ScheduledPush.id))
        )
    )


def due(session: Session, *, now: datetime) -> list[int]:
    """The ids of the scheduled pushes whose time has come, oldest first."""
    stmt = (
        select(ScheduledPush)
        .where(ScheduledPush.state == ScheduledPushState.WAITING.value, col(ScheduledPush.send_at) <= now)
        .order_by(col(ScheduledPush.send_at), col(ScheduledPush.id))
    )
    return [pk(row) for row in session.exec(stmt)]


def list_text(session: Session, *, texts: Texts, settings: Settings, foot: str = "scheduled.list_foot") -> str:
    """`定时` and `relaybot scheduled`: the waiting scheduled pushes, one line each, then how to cancel one (`foot`:
    the chat's way, or the command line's)."""
    rows = waiting(session)
    if not rows:
        return texts.t("scheduled.list_none")
    lines = [texts.t("scheduled.list_head", count=len(rows))]
    for row in rows:
        alert = session.get_one(Alert, row.alert_id)
        lines.append(
            texts.t(
                "scheduled.list_line",
                n=row.id,
                when=show(row.send_at, settings.tz),
                title=compose.push_title(alert)
                + (texts.t("targets.progress", target=row.target) if row.target else ""),
                again=texts.t("scheduled.list_again") if row.again else "",
                by=row.created_by_name or row.created_by,
            )
        )
    lines.append(texts.t(foot))
    return "\n".join(lines)


def cancel(
    session: Session, n: int, *, now: datetime, actor_id: str, actor_name: str, texts: Texts, settings: Settings
) -> tuple[bool, str]:
    """取消定时 N: (True, the answer) when it was waiting and is now cancelled (audited), else (False, why not)."""
    row = session.get(ScheduledPush, n)
    if row is None:
        return False, texts.t("scheduled.cancel_unknown", n=n)
    if row.state != ScheduledPushState.WAITING.value:
        return False, texts.t("scheduled.cancel_done_already", n=n, state=texts.t(f"scheduled.state_{row.state}"))
    row.state, row.done_at, row.done_by = ScheduledPushState.CANCELLED.value, now, actor_id
    session.add(row)
    alert = session.get_one(Alert, row.alert_id)
    title = compose.push_title(alert)
    audit(
        session,
        now=now,
        actor_id=actor_id,
        actor_name=actor_name,
        action="push_schedule_cancel",
        detail=f"定时{row.id} {row.send_at.astimezone(settings.tz).isoformat()} {title}",
    )
    return True, texts.t("scheduled.cancelled", n=row.id, when=show(row.send_at, settings.tz), title=title)


def _tell(session: Session, row: ScheduledPush, text: str, *, now: datetime) -> None:
    """Tell the chat it was scheduled in (the office group when scheduled from the CLI), if any."""
    if row.chat_id:
        kind, chat_id = ChatKind(row.chat_kind), row.chat_id
    else:
        office = office_group(session)
        if office is None:
            return
        kind, chat_id = ChatKind.ROOM, office.room_id
    outbox.queue(session, now=now, chat_kind=kind, chat_id=chat_id, text=text, push_id=row.push_id)


def send_due(session: Session, row: ScheduledPush, *, now: datetime, settings: Settings, texts: Texts) -> bool:
    """Push a scheduled push whose time has come, in the caller's transaction; True if it was pushed."""
    alert = session.get_one(Alert, row.alert_id)
    outcome = push_alert(
        session,
        alert,
        now=now,
        actor_id=row.created_by,
        actor_name=row.created_by_name,
        settings=settings,
        texts=texts,
        again=row.again,
        again_command=again_command(texts, alert),
        audit_note=f"（定时{row.id}）" if row.city_no is None else f"（全市第{row.city_no}号）",
        target=row.target,
        city_no=row.city_no,
    )
    pushed = outcome.push is not None
    row.state = ScheduledPushState.SENT.value if pushed else ScheduledPushState.NOT_SENT.value
    row.push_id = outcome.push.id if outcome.push is not None else None
    row.done_at = now
    session.add(row)
    when = show(row.send_at, settings.tz)
    lines = [texts.t("scheduled.went_out" if pushed else "scheduled.not_sent", n=row.id, when=when) + outcome.message]
    late = now - row.send_at
    if pushed and late > LATE_NOTICE:
        lines.append(texts.t("scheduled.late", minutes=int(late.total_seconds() // 60), now=show(now, settings.tz)))
    _tell(session, row, "\n".join(lines), now=now)
    return pushed


def mark_failed(session: Session, n: int, *, now: datetime, settings: Settings, texts: Texts) -> None:
    """A scheduled push whose pushing raised: not tried again (it could repeat), and the office is told."""
    row = session.get(ScheduledPush, n)
    if row is None or row.state != ScheduledPushState.WAITING.value:
        return
    row.state, row.done_at = ScheduledPushState.FAILED.value, now
    session.add(row)
    _tell(session, row, texts.t("scheduled.failed", n=row.id, when=show(row.send_at, settings.tz)), now=now)
