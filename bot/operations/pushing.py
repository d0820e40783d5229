"""Pushing an alert to every liaison group: used by the office command and by `relaybot push`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session

from bot.chat import compose
from bot.clock import show
from bot.config import Settings
from bot.content import Texts
from bot.domain.relay import active_units, audit, create_push, default_deadline, groups_of_kind
from bot.domain.workdays import load_calendar
from bot.storage import outbox
from bot.storage.models import Alert, GroupKind, Priority, Push, pk
from bot.transport.base import ChatKind


@dataclass(frozen=True)
class PushOutcome:
    push: Push | None
    message: str  # what to tell whoever asked: the confirmation, or why nothing was pushed


def push_alert(
    session: Session, alert: Alert, *, now: datetime, actor_id: str, actor_name: str, settings: Settings, texts: Texts
) -> PushOutcome:
    """Create a push of `alert` and queue it for every liaison group; nothing changes if it cannot be pushed."""
    groups = groups_of_kind(session, GroupKind.LIAISON)
    if not groups:
        return PushOutcome(None, texts.t("push.no_groups"))
    units = active_units(session)
    if not units:
        return PushOutcome(None, texts.t("push.no_units"))
    tz = settings.tz
    deadline = default_deadline(
        now,
        tz=tz,
        deadline_time=settings.deadline_time,
        late_push_after=settings.late_push_after,
        calendar=load_calendar(session, official=settings.official_calendar),
    )
    alert.draft_of = None
    push = create_push(session, alert, now=now, by=actor_id, deadline=deadline)
    text = compose.push_text(texts, n=pk(push), alert=alert, deadline=deadline, tz=tz)
    attachment = "link" if alert.link_url else "image" if alert.image_data else ""
    for group in groups:
        outbox.queue(
            session,
            now=now,
            chat_kind=ChatKind.ROOM,
            chat_id=group.room_id,
            text=text,
            alert_id=alert.id,
            attachment=attachment,
            push_id=push.id,
            priority=Priority.BROADCAST,
        )
    title = compose.push_title(alert)
    audit(
        session,
        now=now,
        actor_id=actor_id,
        actor_name=actor_name,
        action="push",
        detail=f"#{push.id} {alert.case_type} {title}",
    )
    return PushOutcome(
        push,
        texts.t("push.sent", n=push.id, title=title, groups=len(groups), units=len(units), deadline=show(deadline, tz)),
    )
