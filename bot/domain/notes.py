"""Lines owed to a liaison group in its next coalesced message: questions (是否已转发 #3？), recalls, hints, and
a confirmation that landed on an older push. Questions stay open for the liaison's short answer."""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session, col, select

from bot.domain.people import first_notice
from bot.storage.models import BotState, ChatNote, Confirmation, NoteKind

# A question is answered within this long, or it lapses (the liaison can still confirm in words).
QUESTION_OPEN = timedelta(days=2)


def add(
    session: Session,
    *,
    room_id: str,
    kind: NoteKind,
    contact_id: str,
    unit_id: int | None,
    push_ids: list[int],
    now: datetime,
    message_id: str,
    text: str,
) -> ChatNote:
    """Owe `text` to the room's next coalesced message."""
    note = ChatNote(
        room_id=room_id,
        at=now,
        kind=kind.value,
        contact_id=contact_id,
        unit_id=unit_id,
        push_ids=",".join(str(p) for p in push_ids),
        text=text,
        source_message_id=message_id,
    )
    session.add(note)
    session.flush()
    return note


def open_question(session: Session, *, room_id: str, unit_ids: list[int]) -> ChatNote | None:
    """The newest unanswered question about one of these units in this room (asked or still to be asked): any
    liaison of the unit may answer it, the backup as well as the one who was asked."""
    if not unit_ids:
        return None
    return session.exec(
        select(ChatNote)
        .where(
            ChatNote.room_id == room_id,
            col(ChatNote.unit_id).in_(unit_ids),
            col(ChatNote.kind).in_([NoteKind.ASK.value, NoteKind.WHICH.value]),
            col(ChatNote.answered_at).is_(None),
        )
        .order_by(col(ChatNote.id).desc())
        .limit(1)
    ).first()


def answered(session: Session, note: ChatNote, *, now: datetime) -> None:
    """Close a question."""
    note.answered_at = now
    session.add(note)


def lapse_questions(session: Session, *, now: datetime) -> None:
    """Questions left unanswered for QUESTION_OPEN are closed."""
    for note in session.exec(
        select(ChatNote).where(
            col(ChatNote.kind).in_([NoteKind.ASK.value, NoteKind.WHICH.value]),
            col(ChatNote.answered_at).is_(None),
            ChatNote.at < now - QUESTION_OPEN,
        )
    ):
        note.answered_at = now
        session.add(note)


def new_entries(session: Session, *, room_id: str, entries: list[str], now: datetime) -> list[str]:
    """The 接龙 lines not seen in this room before (each line is remembered once seen)."""
    fresh = []
    for entry in entries:
        digest = hashlib.sha256(" ".join(entry.split()).encode()).hexdigest()[:20]
        if first_notice(session, kind="note_entry", key=f"{room_id}:{digest}", now=now):
            fresh.append(entry)
    return fresh


def _heard_key(room_id: str) -> str:
    return "coalesced:" + hashlib.sha256(room_id.encode()).hexdigest()[:32]  # BotState keys hold 50 characters


def heard(session: Session, *, room_id: str, now: datetime) -> None:
    """Remember that the room was just sent a coalesced message."""
    state = session.get(BotState, _heard_key(room_id)) or BotState(key=_heard_key(room_id))
    state.value, state.updated_at = now.isoformat(), now
    session.add(state)


def rooms_heard_lately(session: Session, *, now: datetime, within: timedelta) -> frozenset[str]:
    """Rooms sent a coalesced message less than `within` ago (their next one waits)."""
    if within <= timedelta(0):
        return frozenset()
    rooms = set(session.exec(select(ChatNote.room_id).where(col(ChatNote.sent_at).is_(None))))
    rooms |= set(session.exec(select(Confirmation.room_id).where(col(Confirmation.acked_at).is_(None))))
    lately = set()
    for room_id in rooms:
        state = session.get(BotState, _heard_key(room_id))
        if state is not None and state.updated_at > now - within:
            lately.add(room_id)
    return frozenset(lately)


@dataclass(frozen=True)
class RoomNotes:
    room_id: str
    lines: list[str]  # questions, recalls, hints: before the acknowledgements (WeChat puts the @s first)
    mention_ids: tuple[str, ...]
    after: list[str]  # remarks on the acknowledgements (a confirmation put on an older push): after them


def due(
    session: Session, *, now: datetime, quiet: timedelta, wait_rooms: frozenset[str] = frozenset()
) -> list[RoomNotes]:
    """Notes owed to rooms that have been quiet for `quiet` (no newer note, no unacknowledged confirmation);
    marks them sent."""
    owed = list(session.exec(select(ChatNote).where(col(ChatNote.sent_at).is_(None)).order_by(col(ChatNote.id))))
    by_room: dict[str, list[ChatNote]] = defaultdict(list)
    for note in owed:
        by_room[note.room_id].append(note)
    result = []
    for room_id, room_notes in by_room.items():
        if max(n.at for n in room_notes) > now - quiet or room_id in wait_rooms:
            continue
        busy = session.exec(
            select(Confirmation.id)
            .where(
                Confirmation.room_id == room_id,
                col(Confirmation.acked_at).is_(None),
                Confirmation.at > now - quiet,
            )
            .limit(1)
        ).first()
        if busy is not None:
            continue
        for note in room_notes:
            note.sent_at = now
            session.add(note)
        mentions = tuple(dict.fromkeys(n.contact_id for n in room_notes if n.contact_id))
        first = [n.text for n in room_notes if n.kind != NoteKind.MOVED.value]
        after = [n.text for n in room_notes if n.kind == NoteKind.MOVED.value]
        result.append(RoomNotes(room_id, first, mentions, after))
    return result
