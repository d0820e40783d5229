"""What `relaybot run --console` (or a moved clock) left in a real database, and removing exactly that.

A console session on the real database (before trial runs used a throwaway copy, or with --real-database) binds
roster liaisons to `console-N` contact ids, adds `console-*@chatroom` groups, records confirmations in them and
queues messages to them; a `--clock` run dates rows in the future. `find_traces` only looks; `remove_traces`
undoes what can only have come from a console session and lists the rest for a person to judge:

- liaisons bound to a console- id are unbound (contact id and bound time cleared), as before the session;
- console- groups, their member sightings, confirmations, chat notes and outbox rows are deleted;
- a push whose every outbox row went to a console- chat (no real group saw it) is marked withdrawn, not deleted,
  and its misses (escalation) are deleted;
- last send / last receive health times written during the console session are reset;
- schedule bookkeeping (scheduled_run) dated in the future is deleted, so the real schedule runs when due;
  other rows dated in the future are listed, not touched: they may be real data typed with a wrong clock.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func
from sqlmodel import SQLModel, col, delete, select

from bot.runtime.health import LAST_RECEIVE, LAST_SEND_OK
from bot.storage.models import (
    AuditLog,
    BotState,
    ChatNote,
    Confirmation,
    Group,
    Liaison,
    Membership,
    Miss,
    Outbox,
    OutboxState,
    Push,
    PushState,
    ScheduledRun,
    UTCDateTime,
)

PREFIX = "console-"  # every id the console transport makes: console-N, console-admin, console-*@chatroom, ...
FUTURE_SLACK = timedelta(minutes=10)  # a server clock a few minutes off is not a moved clock
# Timestamps that are in the future by design.
FUTURE_BY_DESIGN = {("push", "deadline"), ("feed", "next_poll_at")}


@dataclass
class Traces:
    liaisons: int = 0
    groups: int = 0
    memberships: int = 0
    outbox: int = 0
    confirmations: int = 0
    notes: int = 0
    pushes: list[int] = field(default_factory=list)
    misses: int = 0
    health: list[str] = field(default_factory=list)
    future: list[tuple[str, str, int]] = field(default_factory=list)  # (table, column, rows)

    def removable(self) -> bool:
        """Anything `remove_traces` would change (future-dated rows other than the schedule's are only listed)."""
        return bool(
            self.liaisons
            or self.groups
            or self.memberships
            or self.outbox
            or self.confirmations
            or self.notes
            or self.pushes
            or self.health
            or any(table == ScheduledRun.__tablename__ for table, _, _ in self.future)
        )

    def serious(self) -> bool:
        """Traces that make the running bot do wrong: real liaisons not recognised, sends to chats that do not exist."""
        return bool(self.liaisons or self.outbox or self.pushes)

    def items(self, texts) -> list[str]:
        """One short phrase per kind of trace found (without the future-dated rows)."""
        out = [
            texts.t(f"console_traces.{name}", n=n)
            for name, n in (
                ("liaisons", self.liaisons),
                ("groups", self.groups),
                ("memberships", self.memberships),
                ("outbox", self.outbox),
                ("confirmations", self.confirmations),
                ("notes", self.notes),
            )
            if n
        ]
        if self.pushes:
            out.append(
                texts.t("console_traces.pushes", n=len(self.pushes), ids="、".join(f"#{i}" for i in self.pushes))
            )
        if self.misses:
            out.append(texts.t("console_traces.misses", n=self.misses))
        if self.health:
            out.append(texts.t("console_traces.health", keys="、".join(self.health)))
        return out

    def future_text(self, texts) -> str:
        """The future-dated rows as one phrase, or ""."""
        if not self.future:
            return ""
        parts = [texts.t("console_traces.future_item", table=t, column=c, n=n) for t, c, n in self.future]
        return texts.t("console_traces.future", items="；".join(parts))


def _console(column):
    return col(column).startswith(PREFIX, autoescape=True)


def _count(s, model, *where) -> int:
    return int(s.exec(select(func.count()).select_from(model).where(*where)).one())


def _console_only_pushes(s) -> list[int]:
    chats: dict[int, set[bool]] = {}
    for push_id, chat_id in s.exec(
        select(Outbox.push_id, Outbox.chat_id).where(col(Outbox.push_id).is_not(None))
    ).all():
        chats.setdefault(push_id, set()).add(chat_id.startswith(PREFIX))
    candidates = [push_id for push_id, kinds in chats.items() if kinds == {True}]
    if not candidates:
        return []
    return sorted(
        s.exec(select(Push.id).where(col(Push.id).in_(candidates), Push.state != PushState.WITHDRAWN.value)).all()
    )


def _parse(value: str) -> datetime | None:
    try:
        moment = datetime.fromisoformat(value)
    except (TypeError, ValueError):
        return None
    return moment if moment.tzinfo is not None else None


def _console_health(s, now: datetime) -> list[str]:
    """Health times that a console session wrote: at or after its first message, with no real send since."""
    start = s.exec(select(func.min(Outbox.created_at)).where(_console(Outbox.chat_id))).one()
    keys = []
    real_since = (
        start is not None
        and _count(
            s,
            Outbox,
            ~_console(Outbox.chat_id),
            (col(Outbox.created_at) >= start) | (col(Outbox.sent_at) >= start),
        )
        > 0
    )
    for key in (LAST_SEND_OK, LAST_RECEIVE):
        row = s.get(BotState, key)
        moment = _parse(row.value) if row is not None else None
        if moment is None:
            continue
        if moment > now + FUTURE_SLACK or (start is not None and not real_since and moment >= start):
            keys.append(key)
    return keys


def _future_rows(s, now: datetime) -> list[tuple[str, str, int]]:
    limit = now + FUTURE_SLACK
    out = []
    for table in SQLModel.metadata.sorted_tables:
        for column in table.columns:
            if not isinstance(column.type, UTCDateTime) or (table.name, column.name) in FUTURE_BY_DESIGN:
                continue
            n = s.exec(select(func.count()).select_from(table).where(column > limit)).one()
            if n:
                out.append((table.name, column.name, int(n)))
    return out


def find_traces(s, *, now: datetime) -> Traces:
    """Count what a console session or a moved clock left; changes nothing."""
    pushes = _console_only_pushes(s)
    return Traces(
        liaisons=_count(s, Liaison, _console(Liaison.contact_id)),
        groups=_count(s, Group, _console(Group.room_id)),
        memberships=_count(s, Membership, _console(Membership.room_id) | _console(Membership.contact_id)),
        outbox=_count(s, Outbox, _console(Outbox.chat_id)),
        confirmations=_count(s, Confirmation, _console(Confirmation.room_id)),
        notes=_count(s, ChatNote, _console(ChatNote.room_id)),
        pushes=pushes,
        misses=_count(s, Miss, col(Miss.push_id).in_(pushes)) if pushes else 0,
        health=_console_health(s, now),
        future=_future_rows(s, now),
    )


def remove_traces(s, *, now: datetime) -> Traces:
    """Undo the console traces found (see the module's docstring); the caller commits. Returns what was found."""
    found = find_traces(s, now=now)
    if found.health:
        latest_real = s.exec(
            select(func.max(Outbox.sent_at)).where(
                ~_console(Outbox.chat_id), Outbox.state == OutboxState.SENT.value, col(Outbox.sent_at) <= now
            )
        ).one()
        for key in found.health:
            row = s.get(BotState, key)
            if key == LAST_SEND_OK and latest_real is not None and row is not None:
                row.value, row.updated_at = latest_real.isoformat(), now
                s.add(row)
            elif row is not None:
                s.delete(row)  # the running bot writes it again with its next message
    for liaison in s.exec(select(Liaison).where(_console(Liaison.contact_id))).all():
        liaison.contact_id, liaison.bound_at = None, None
        s.add(liaison)
    if found.pushes:
        for push in s.exec(select(Push).where(col(Push.id).in_(found.pushes))).all():
            push.state, push.closed_at = PushState.WITHDRAWN.value, push.closed_at or now
            s.add(push)
        s.exec(delete(Miss).where(col(Miss.push_id).in_(found.pushes)))
    for model, where in (
        (Confirmation, _console(Confirmation.room_id)),
        (ChatNote, _console(ChatNote.room_id)),
        (Membership, _console(Membership.room_id) | _console(Membership.contact_id)),
        (Outbox, _console(Outbox.chat_id)),
        (Group, _console(Group.room_id)),
        (
            ScheduledRun,
            (col(ScheduledRun.due_at) > now + FUTURE_SLACK) | (col(ScheduledRun.ran_at) > now + FUTURE_SLACK),
        ),
    ):
        s.exec(delete(model).where(where))
    s.add(
        AuditLog(
            at=now,
            actor_id="cli",
            actor_name="relaybot doctor --fix-console-traces",
            action="console_traces_removed",
            detail=repr(found)[:2000],
        )
    )
    return found
