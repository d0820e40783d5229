"""The outbox: every message is a row first, sent after the transaction that produced it commits.

Sending is paced from what the rows say (the last send, today's count, a pause on record), so a restart
keeps the same pace and nothing is sent twice or skipped.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import exists, func, update
from sqlalchemy.orm import aliased
from sqlmodel import Session, col, select

from bot.storage.models import Alert, BotState, Notice, Outbox, OutboxState, Priority
from bot.transport.base import ChatKind, FileData, Image, LinkCard, Outgoing

BACKOFF_KEY = "send_backoff_until"
# The Notice kind that remembers, per contact id, when that person was last given a courtesy reply.
COURTESY_KIND = "courtesy_reply"
# What counts against the office's daily budget: the bot's notices do not, courtesy replies have their own cap.
BUDGETED = (int(Priority.REPLY), int(Priority.BROADCAST))


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
    priority: Priority = Priority.REPLY,
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
        priority=int(priority),
    )
    session.add(row)
    return row


def pending(session: Session, limit: int = 50) -> list[Outbox]:
    """Unsent rows in sending order: the bot's notices, then replies, then broadcasts, then courtesy replies
    (help and refusals to non-admins); oldest first.

    A chat's rows after one still waiting for its report files to be rendered wait too: a chat gets a report's
    text, then its files, then what was queued after it."""
    held = aliased(Outbox)
    waits = exists().where(
        col(held.chat_id) == col(Outbox.chat_id),
        col(held.state) == OutboxState.RENDERING.value,
        col(held.id) < col(Outbox.id),
    )
    stmt = (
        select(Outbox)
        .where(Outbox.state == OutboxState.PENDING.value, ~waits)
        .order_by(col(Outbox.priority), col(Outbox.id))
        .limit(limit)
    )
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


def mark_sending(session: Session, row: Outbox) -> None:
    """Record that the row is being handed to the transport (committed before the send)."""
    row.state = OutboxState.SENDING.value
    row.attempts += 1
    session.add(row)


def mark_sent(session: Session, row: Outbox, *, now: datetime) -> None:
    """Record a successful send."""
    row.state = OutboxState.SENT.value
    row.sent_at = now
    session.add(row)


def mark_failed(session: Session, row: Outbox, *, error: str, give_up: bool) -> None:
    """Record a failed attempt; the row goes back to pending unless `give_up`."""
    row.error = error[:500]
    row.state = OutboxState.FAILED.value if give_up else OutboxState.PENDING.value
    session.add(row)


def recover_interrupted(session: Session) -> list[Outbox]:
    """Rows a crash left in the middle of a send: back to pending (sent again rather than maybe never)."""
    rows = list(session.exec(select(Outbox).where(Outbox.state == OutboxState.SENDING.value)))
    for row in rows:
        row.state = OutboxState.PENDING.value
        session.add(row)
    return rows


# ---- pacing ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Pacing:
    spacing: float  # seconds between two sends at least
    jitter: float  # plus up to this many seconds, different each time
    daily_budget: int  # messages per local day; the bot's own notices do not count against it
    backoff: timedelta  # pause after the transport reports a limit or a failure
    tz: ZoneInfo


@dataclass(frozen=True)
class NextSend:
    row_id: int | None  # None: nothing to send
    at: datetime  # not before this
    reason: str  # "now", "spacing", "budget" or "backoff": for the log


def backoff_until(
    session: Session, *, now: datetime | None = None, longest: timedelta | None = None
) -> datetime | None:
    """The end of the current pause in sending, if one is on record. Given `now` and the longest pause there
    can be, a record further ahead than that (the clock was set back since) is cut to end `longest` from now,
    in the record too, so the cut pause does not move on with the clock."""
    state = session.get(BotState, BACKOFF_KEY)
    until = datetime.fromisoformat(state.value) if state and state.value else None
    if state is not None and until is not None and now is not None and longest is not None and until > now + longest:
        until = now + longest
        state.value, state.updated_at = until.isoformat(), now
        session.add(state)
    return until


def start_backoff(session: Session, *, now: datetime, pacing: Pacing) -> tuple[datetime, bool]:
    """Pause sending; returns the end of the pause and whether this started a new pause (vs extending one)."""
    current = backoff_until(session)
    until = now + pacing.backoff
    state = session.get(BotState, BACKOFF_KEY) or BotState(key=BACKOFF_KEY)
    state.value, state.updated_at = until.isoformat(), now
    session.add(state)
    return until, current is None or current <= now


def sent_today(session: Session, *, now: datetime, tz: ZoneInfo) -> int:
    """Messages sent since local midnight against the office's budget: not the bot's own notices, not courtesy
    replies (they have their own cap)."""
    midnight = datetime.combine(now.astimezone(tz).date(), time(0), tzinfo=tz)
    stmt = (
        select(func.count())
        .select_from(Outbox)
        .where(
            Outbox.state == OutboxState.SENT.value,
            col(Outbox.sent_at) >= midnight,
            col(Outbox.priority).in_(BUDGETED),
        )
    )
    return session.exec(stmt).one()


def courtesy_allowed(
    session: Session, *, contact_id: str, now: datetime, interval: timedelta, daily_cap: int, tz: ZoneInfo
) -> bool:
    """Whether a courtesy reply (help, a refusal, "not understood") to this person may be queued now; if so the
    time is remembered. At most one per person per `interval`, and at most `daily_cap` a local day for everyone
    together. The record is a row, so a restart does not reset it."""
    seen = session.exec(select(Notice).where(Notice.kind == COURTESY_KIND, Notice.key == contact_id[:300])).first()
    if seen is not None and seen.at > now:
        # Answered "in the future": the clock was set back. Count it as answered now, not for the whole jump.
        seen.at = now
        session.add(seen)
        return False
    if seen is not None and now - seen.at < interval:
        return False
    midnight = datetime.combine(now.astimezone(tz).date(), time(0), tzinfo=tz)
    queued_today = session.exec(
        select(func.count())
        .select_from(Outbox)
        .where(Outbox.priority == int(Priority.COURTESY), col(Outbox.created_at) >= midnight)
    ).one()
    if queued_today >= daily_cap:
        return False
    if seen is None:
        seen = Notice(kind=COURTESY_KIND, key=contact_id[:300], at=now)
    seen.at = now
    session.add(seen)
    return True


def next_send(session: Session, *, now: datetime, pacing: Pacing) -> NextSend:
    """Which row to send next, and when that is allowed."""
    rows = pending(session, limit=1)
    if not rows:
        return NextSend(None, now, "idle")
    row = rows[0]
    at, reason = now, "now"
    until = backoff_until(session, now=now, longest=pacing.backoff)
    if until and until > at:
        at, reason = until, "backoff"
    last = session.exec(
        select(Outbox.id, Outbox.sent_at).where(col(Outbox.sent_at).is_not(None)).order_by(col(Outbox.sent_at).desc())
    ).first()
    if last is not None and last[1] is not None:  # (never None: the query keeps sent rows only)
        # The jitter is drawn from the last row's id: the same wait however often this is asked, restarts included.
        gap = pacing.spacing + random.Random(last[0]).uniform(0, pacing.jitter)
        last_at = last[1]
        if last_at > now:
            # A send "in the future": the clock was set back since. Such sends count as sent now, in their rows
            # too, so sending waits the usual spacing, not the jump, and the sends after it order after it.
            session.exec(update(Outbox).where(col(Outbox.sent_at) > now).values(sent_at=now))
            last_at = now
        if last_at + timedelta(seconds=gap) > at:
            at, reason = last_at + timedelta(seconds=gap), "spacing"
    if row.priority in BUDGETED and sent_today(session, now=now, tz=pacing.tz) >= pacing.daily_budget:
        tomorrow = datetime.combine(now.astimezone(pacing.tz).date() + timedelta(days=1), time(0), tzinfo=pacing.tz)
        at, reason = max(at, tomorrow), "budget"
    return NextSend(row.id, at, reason)


def push_delivery(session: Session, push_id: int) -> tuple[int, int]:
    """(groups that have the push, groups it is queued for)."""
    rows = session.exec(select(Outbox.state).where(Outbox.push_id == push_id, col(Outbox.alert_id).is_not(None))).all()
    return sum(1 for state in rows if state == OutboxState.SENT.value), len(rows)
