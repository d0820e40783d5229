"""The outbox: every message is a row first, sent after the transaction that produced it commits."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session, select

from bot.models import Alert, Outbox, OutboxState
from bot.transport.base import ChatKind, FileData, Image, LinkCard, Outgoing


def queue(
    session: Session,
    *,
    now: datetime,
    chat_kind: ChatKind,
    chat_id: str,
    text: str = "",
    mention_ids: tuple[str, ...] | list[str] = (),
    alert_id: int | None = None,
    attachment: str = "",
    push_id: int | None = None,
    file_name: str = "",
    file_data: bytes | None = None,
) -> Outbox:
    """Add a message to the outbox in the caller's transaction."""
    row = Outbox(
        created_at=now,
        chat_kind=ChatKind(chat_kind).value,
        chat_id=chat_id,
        text=text,
        mention_ids="\n".join(mention_ids),
        alert_id=alert_id,
        attachment=attachment,
        push_id=push_id,
        file_name=file_name,
        file_data=file_data,
    )
    session.add(row)
    return row


def pending(session: Session, limit: int = 50) -> list[Outbox]:
    """Unsent rows, oldest first."""
    stmt = select(Outbox).where(Outbox.state == OutboxState.PENDING.value).order_by(Outbox.id).limit(limit)
    return list(session.exec(stmt))


def to_outgoing(session: Session, row: Outbox) -> Outgoing:
    """The transport message for an outbox row (its link card or image comes from the alert)."""
    link = image = file = None
    if row.file_name and row.file_data is not None:
        if row.file_name.lower().endswith(".png"):
            image = Image(row.file_name, row.file_data)
        else:
            file = FileData(row.file_name, row.file_data)
    if row.attachment and row.alert_id is not None:
        alert = session.get(Alert, row.alert_id)
        if alert is not None and row.attachment == "link" and alert.link_url:
            link = LinkCard(alert.link_url, alert.title or alert.link_url, alert.link_description, alert.link_thumbnail)
        elif alert is not None and row.attachment == "image" and alert.image_data:
            image = Image(alert.image_name or "image.jpg", alert.image_data)
    return Outgoing(
        chat_kind=ChatKind(row.chat_kind),
        chat_id=row.chat_id,
        text=row.text,
        mention_ids=tuple(m for m in row.mention_ids.split("\n") if m),
        link=link,
        image=image,
        file=file,
    )


def mark_sent(session: Session, row: Outbox, *, now: datetime) -> None:
    """Record a successful send."""
    row.state = OutboxState.SENT.value
    row.sent_at = now
    row.attempts += 1
    session.add(row)


def mark_failed(session: Session, row: Outbox, *, error: str, give_up: bool) -> None:
    """Record a failed attempt; the row stays pending unless `give_up`."""
    row.attempts += 1
    row.error = error[:500]
    if give_up:
        row.state = OutboxState.FAILED.value
    session.add(row)
