"""Database tables. Times are stored in UTC; nothing here is SQLite-only."""

from __future__ import annotations

import enum
import functools
from datetime import UTC, date, datetime
from typing import Protocol

from sqlalchemy import Column, DateTime, Index, LargeBinary, Text, TypeDecorator, UniqueConstraint, event
from sqlalchemy.orm import Mapper
from sqlmodel import Field, SQLModel


class UTCDateTime(TypeDecorator):
    """A timezone-aware datetime stored as UTC; SQLite drops the offset, so it is put back on read."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database; pass an aware one")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def _utc_field(*, nullable: bool = False, index: bool = False):
    return Field(default=None, sa_column=Column(UTCDateTime(), nullable=nullable, index=index))


@event.listens_for(Mapper, "before_insert")
@event.listens_for(Mapper, "before_update")
def _fit_lengths(_mapper: Mapper, _conn, row) -> None:
    """Cut text to its column's length: SQLite ignores VARCHAR(n) but PostgreSQL refuses the whole row.

    The texts that reach these columns (names, titles, error messages, feed fields, OCR snippets) come from
    outside; a 10 000-character WeChat nickname must not make a confirmation fail to save.
    """
    for key, length in _bounded_columns(row.__table__):
        value = getattr(row, key, None)
        if isinstance(value, str) and len(value) > length:
            setattr(row, key, value[:length])


@functools.cache
def _bounded_columns(table) -> tuple[tuple[str, int], ...]:
    """(attribute, length) of a table's VARCHAR(n) columns (sqlmodel's AutoString(n) too; Text has no length):
    worked out once per table, since the hook above runs on every write."""
    return tuple((c.key, c.type.length) for c in table.columns if getattr(c.type, "length", None))


class UnitKind(str, enum.Enum):
    TOWN = "镇街"
    DEPARTMENT = "区直单位"
    SECTOR = "行业"
    OTHER = "其他"


class Role(str, enum.Enum):
    MAIN = "主"
    BACKUP = "备"


class GroupKind(str, enum.Enum):
    LIAISON = "liaison"
    OFFICE = "office"
    # A unit's own internal group (issue 15 item 6): the bot only watches it for the forwarded alert.
    UNIT = "unit"
    # The city's office group (issue 16, `city_office_group`): only the city admins' city commands are taken there.
    CITY = "city"
    NONE = "none"


class PushState(str, enum.Enum):
    OPEN = "open"
    WITHDRAWN = "withdrawn"
    CLOSED = "closed"


class EvidenceVerdict(str, enum.Enum):
    """A screenshot's verdict (stored as Confirmation.verdict; "" while it waits for the check)."""

    VERIFIED = "已核验"  # the push's title was found in the unit's own group
    UNVERIFIED = "未核验"  # kept for a person to look at: no OCR, OCR failed or timed out, expired
    DOUBTFUL = "存疑"  # unreadable, reused, the liaison group itself, or the title not found


class ConfirmMethod(str, enum.Enum):
    TEXT = "text"
    QUOTE = "quote"
    IMAGE = "image"
    NOTE = "note"  # an entry in a 群接龙 (WeChat group note)
    ANSWER = "answer"  # a short yes to the bot's question "是否已转发 #N？"
    OFFICE = "office"  # 补登: recorded by an admin on the unit's behalf (e.g. confirmed by phone)
    OBSERVED = "observed"  # the bot saw the alert forwarded in one of the unit's own groups


class OutboxState(str, enum.Enum):
    PENDING = "pending"
    SENDING = "sending"  # handed to the transport; a crash now leaves it unknown whether it arrived
    # A report's text or file whose files are still being made outside the unit of work (bot/runtime/renderer.py):
    # not sent, and holding back the later rows of its chat, until the renderer attaches the files.
    RENDERING = "rendering"
    SENT = "sent"
    FAILED = "failed"


class Priority(int, enum.Enum):
    NOTICE = -1  # the bot's own warnings to the office: not held back by the daily budget
    REPLY = 0  # answers to a person
    BROADCAST = 1  # pushes, reminders and acknowledgements in liaison groups
    # Help, refusals and "not understood" answers to anyone but an admin: after everything else, and outside
    # the daily budget (they have their own small cap), so a stranger cannot spend the office's sends.
    COURTESY = 2


class Unit(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(index=True, unique=True, max_length=100)
    kind: str = Field(default=UnitKind.OTHER.value, max_length=20)
    active: bool = True
    # The roster's 标签 (学校, 医院, 银行 ...), "、"-joined: a push can be aimed at units by tag (migration 0008).
    tags: str = Field(default="", max_length=200, sa_column_kwargs={"server_default": ""})


class Liaison(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    unit_id: int = Field(foreign_key="unit.id", index=True)
    name: str = Field(max_length=50)
    role: str = Field(default=Role.MAIN.value, max_length=4)
    contact_id: str | None = Field(default=None, index=True, max_length=200)
    wechat_name: str = Field(default="", max_length=100)
    group_nickname: str = Field(default="", max_length=100)
    phone: str = Field(default="", max_length=30)
    active: bool = True
    bound_at: datetime | None = _utc_field(nullable=True)


class Group(SQLModel, table=True):
    """A WeChat room the bot knows; `kind` says whether it serves it and how."""

    id: int | None = Field(default=None, primary_key=True)
    room_id: str = Field(index=True, unique=True, max_length=200)
    name: str = Field(default="", max_length=200)
    kind: str = Field(default=GroupKind.NONE.value, max_length=20)
    # "config" or "admin": an admin's in-chat setting outlives a restart; the config file's does not override it.
    set_by: str = Field(default="", max_length=10)
    # The liaison_groups/office_group entry this room was matched to (by id, or by its name the first time): once
    # set, that entry means this room only, so a stranger's room renamed to the name is never promoted.
    config_entry: str = Field(default="", max_length=200)
    # A unit group's unit (kind "unit"); None for every other kind, and for a unit group no unit was named for yet.
    unit_id: int | None = Field(default=None)


class ReachSighting(SQLModel, table=True):
    """A push's alert seen forwarded in a unit group, with the group's member count then (覆盖人数). Nothing else
    from a unit group is ever stored."""

    __table_args__ = (UniqueConstraint("push_id", "room_id"),)
    id: int | None = Field(default=None, primary_key=True)
    push_id: int = Field(foreign_key="push.id", index=True)
    unit_id: int = Field(foreign_key="unit.id", index=True)
    room_id: str = Field(max_length=200)
    member_count: int = 0  # the group's members other than the bot
    at: datetime = _utc_field(index=True)


class Membership(SQLModel, table=True):
    """Someone seen in a room (member list, join, or speaking), with the names they had then."""

    __table_args__ = (UniqueConstraint("room_id", "contact_id"),)
    id: int | None = Field(default=None, primary_key=True)
    room_id: str = Field(index=True, max_length=200)
    contact_id: str = Field(index=True, max_length=200)
    name: str = Field(default="", max_length=100)
    group_nickname: str = Field(default="", max_length=100)
    seen_at: datetime = _utc_field()


class Unbinding(SQLModel, table=True):
    """A binding by name the office undid (认错): this contact is never bound to this roster entry by name again.

    `liaison_id` has no foreign key on purpose: a roster import may delete the entry, and that must not fail.
    """

    __table_args__ = (UniqueConstraint("liaison_id", "contact_id"),)
    id: int | None = Field(default=None, primary_key=True)
    liaison_id: int = Field(index=True)
    contact_id: str = Field(index=True, max_length=200)
    by_id: str = Field(default="", max_length=200)
    by_name: str = Field(default="", max_length=100)
    at: datetime = _utc_field()


class Alert(SQLModel, table=True):
    """Content that can be pushed: a library alert, or an item an admin sent the bot."""

    id: int | None = Field(default=None, primary_key=True)
    case_type: str = Field(default="", max_length=50)
    title: str = Field(default="", max_length=200)
    text: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    link_url: str = Field(default="", max_length=2000)
    link_description: str = Field(default="", max_length=500)
    link_thumbnail: str = Field(default="", max_length=2000)
    image_name: str = Field(default="", max_length=200)
    image_data: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    # Set for an item an admin sent the bot privately and has not pushed yet.
    draft_of: str | None = Field(default=None, index=True, max_length=200)
    source_message_id: str = Field(default="", max_length=200)
    created_at: datetime = _utc_field()


class Push(SQLModel, table=True):
    """One alert sent to the liaison groups; `id` is the #N people see."""

    # Every confirmation looks up a unit's open pushes by state and deadline (migration 0002).
    __table_args__ = (Index("ix_push_state_deadline", "state", "deadline"),)
    id: int | None = Field(default=None, primary_key=True)
    alert_id: int = Field(foreign_key="alert.id")
    created_at: datetime = _utc_field(index=True)
    created_by: str = Field(default="", max_length=200)
    deadline: datetime = _utc_field()
    state: str = Field(default=PushState.OPEN.value, index=True, max_length=20)
    closed_at: datetime | None = _utc_field(nullable=True)
    # Counts every change to this push's confirmations (a database trigger adds one on each insert, update and
    # delete, migration 0007): a report built earlier knows which pushes' figures it may keep.
    revision: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    # Whom it is aimed at as the office wrote it (`推送 刷单 给 学校,医院` -> "学校、医院"); "" for every unit. The
    # units themselves are PushTarget rows (migration 0008).
    target: str = Field(default="", max_length=200, sa_column_kwargs={"server_default": ""})
    # Made from the city's push 全市第N号 (bot/operations/city.py, migration 0011); None for the district's own.
    city_no: int | None = Field(default=None, index=True)


class PushTarget(SQLModel, table=True):
    """A unit a targeted push is aimed at, fixed when it is pushed. A push with no rows is aimed at every unit."""

    __table_args__ = (UniqueConstraint("push_id", "unit_id"),)
    id: int | None = Field(default=None, primary_key=True)
    push_id: int = Field(foreign_key="push.id", index=True)
    unit_id: int = Field(foreign_key="unit.id")


class Confirmation(SQLModel, table=True):
    """A unit's confirmation that it relayed a push. One per unit and push."""

    __table_args__ = (UniqueConstraint("push_id", "unit_id"),)
    id: int | None = Field(default=None, primary_key=True)
    push_id: int = Field(foreign_key="push.id", index=True)
    unit_id: int = Field(foreign_key="unit.id", index=True)
    # None for a 补登 by the office (no liaison spoke); `recorded_by` is then the admin's contact id.
    liaison_id: int | None = Field(default=None, foreign_key="liaison.id")
    at: datetime = _utc_field()
    method: str = Field(max_length=10)
    recorded_by: str = Field(default="", max_length=200)
    room_id: str = Field(default="", max_length=200)
    evidence_message_id: str = Field(default="", max_length=200)
    evidence_text: str = Field(default="", max_length=500)
    late: bool = False
    # When the group was told; None means the acknowledgement is still owed.
    acked_at: datetime | None = _utc_field(nullable=True)
    # A screenshot as evidence: its file (a generated name inside the evidence folder; "" once deleted by
    # retention), its perceptual hash, and the verdict (已核验/未核验/存疑; "" while waiting for the check).
    evidence_file: str = Field(default="", max_length=100)
    evidence_at: datetime | None = _utc_field(nullable=True)
    evidence_hash: str = Field(default="", max_length=80)
    verdict: str = Field(default="", max_length=10)
    verdict_reason: str = Field(default="", max_length=100)


class AuditLog(SQLModel, table=True):
    """Every office action and every refused attempt."""

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = _utc_field(index=True)
    actor_id: str = Field(default="", max_length=200)
    actor_name: str = Field(default="", max_length=100)
    action: str = Field(max_length=50)
    detail: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    allowed: bool = True


class Miss(SQLModel, table=True):
    """A unit that had not confirmed a push when its deadline passed."""

    __table_args__ = (UniqueConstraint("push_id", "unit_id"),)
    id: int | None = Field(default=None, primary_key=True)
    push_id: int = Field(foreign_key="push.id", index=True)
    unit_id: int = Field(foreign_key="unit.id", index=True)
    deadline: datetime = _utc_field(index=True)


class Leave(SQLModel, table=True):
    """A unit's main liaison is away on these days (inclusive): reminders mention the backup instead."""

    id: int | None = Field(default=None, primary_key=True)
    unit_id: int = Field(foreign_key="unit.id", index=True)
    start: date
    end: date
    created_by: str = Field(default="", max_length=200)
    created_at: datetime = _utc_field()


class CalendarDay(SQLModel, table=True):
    """The office's word on one day (a holiday or a make-up working day); it wins over chinese-calendar."""

    day: date = Field(primary_key=True)
    working: bool
    set_by: str = Field(default="", max_length=200)
    set_at: datetime = _utc_field()


class ScheduledRun(SQLModel, table=True):
    """A scheduled job's occurrence that was handled (done or skipped): what makes restarts exact."""

    __table_args__ = (UniqueConstraint("job", "due_at"),)
    id: int | None = Field(default=None, primary_key=True)
    job: str = Field(max_length=50)
    due_at: datetime = _utc_field(index=True)
    state: str = Field(max_length=10)  # "done" or "skipped"
    ran_at: datetime = _utc_field()


class ScheduledPushState(str, enum.Enum):
    WAITING = "waiting"
    SENT = "sent"  # pushed at its time (the push is `push_id`)
    NOT_SENT = "not_sent"  # its time came but push_alert refused (pushed earlier that day, no groups, no units)
    CANCELLED = "cancelled"  # 取消定时
    FAILED = "failed"  # an error while pushing; logged


class ScheduledPush(SQLModel, table=True):
    """`推送 刷单 明天9:00`: an alert to push at `send_at`, made by the schedule poller as `推送` would then (the
    deadline is worked out at that moment, as for any push). `id` is the number 取消定时 takes."""

    id: int | None = Field(default=None, primary_key=True)
    alert_id: int = Field(foreign_key="alert.id")
    send_at: datetime = _utc_field(index=True)
    again: bool = False  # scheduled with 确认: pushed even if the same alert went out earlier that day
    target: str = Field(default="", max_length=200, sa_column_kwargs={"server_default": ""})  # 给 …, read when sent
    # The city's push 全市第N号 this is; one row per city push and district (migration 0011).
    city_no: int | None = Field(default=None, unique=True, index=True)
    state: str = Field(default=ScheduledPushState.WAITING.value, index=True, max_length=10)
    created_at: datetime = _utc_field()
    created_by: str = Field(default="", max_length=200)  # contact id, or "cli"
    created_by_name: str = Field(default="", max_length=100)
    # Where the office is told that it went out (the chat it was scheduled in; "" for the office group).
    chat_kind: str = Field(default="", max_length=10)
    chat_id: str = Field(default="", max_length=200)
    push_id: int | None = Field(default=None, foreign_key="push.id")
    done_at: datetime | None = _utc_field(nullable=True)  # sent, refused, failed or cancelled
    done_by: str = Field(default="", max_length=200)  # who cancelled it


class Feed(SQLModel, table=True):
    """A content feed the office follows (RSS, Atom or JSON Feed), with what the last poll learned."""

    id: int | None = Field(default=None, primary_key=True)
    url: str = Field(index=True, unique=True, max_length=2000)
    title: str = Field(default="", max_length=200)
    etag: str = Field(default="", max_length=500)
    last_modified: str = Field(default="", max_length=100)
    last_ok_at: datetime | None = _utc_field(nullable=True)
    failing_since: datetime | None = _utc_field(nullable=True)
    last_error: str = Field(default="", max_length=500)
    next_poll_at: datetime | None = _utc_field(nullable=True)


class FeedItem(SQLModel, table=True):
    """An item seen in a feed, kept once; its id is the N of 候选N."""

    __table_args__ = (UniqueConstraint("feed_id", "guid"),)
    id: int | None = Field(default=None, primary_key=True)
    feed_id: int = Field(foreign_key="feed.id", index=True)
    guid: str = Field(max_length=1000)
    title: str = Field(default="", max_length=500)
    link: str = Field(default="", max_length=2000)
    summary: str = Field(default="", max_length=1000)
    published_at: datetime | None = _utc_field(nullable=True)
    seen_at: datetime = _utc_field()
    announced: bool = False  # shown to the office group as a candidate
    push_id: int | None = Field(default=None, foreign_key="push.id")


class IncidentStat(SQLModel, table=True):
    """Police-reported fraud incidents (警情数) of one town, period and case type."""

    __table_args__ = (UniqueConstraint("town", "period_start", "period_end", "case_type"),)
    id: int | None = Field(default=None, primary_key=True)
    town: str = Field(index=True, max_length=100)
    period_start: date = Field(index=True)
    period_end: date  # inclusive
    case_type: str = Field(default="", max_length=50)
    count: int
    imported_at: datetime = _utc_field()
    source: str = Field(default="", max_length=200)


class Outbox(SQLModel, table=True):
    """A message to send. Written in the same transaction as what it reports, sent afterwards."""

    id: int | None = Field(default=None, primary_key=True)
    created_at: datetime = _utc_field()
    chat_kind: str = Field(max_length=10)
    chat_id: str = Field(index=True, max_length=200)
    text: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    mention_ids: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    alert_id: int | None = Field(default=None, foreign_key="alert.id")
    # "link" or "image": send that part of the alert before the text.
    attachment: str = Field(default="", max_length=10)
    # A file of its own (a report .xlsx or chart .png); a name ending in .png is sent as an image.
    file_name: str = Field(default="", max_length=200)
    file_data: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    push_id: int | None = Field(default=None, index=True)
    priority: int = Field(default=0, index=True)
    state: str = Field(default=OutboxState.PENDING.value, index=True, max_length=10)
    attempts: int = 0
    error: str = Field(default="", max_length=500)
    sent_at: datetime | None = _utc_field(nullable=True)


class BotState(SQLModel, table=True):
    """A small fact the bot must remember across restarts, e.g. until when sending is paused."""

    key: str = Field(primary_key=True, max_length=50)
    value: str = Field(default="", max_length=500)
    updated_at: datetime = _utc_field()


class Notice(SQLModel, table=True):
    """A one-time notice already given (e.g. telling an unregistered person how to register)."""

    __table_args__ = (UniqueConstraint("kind", "key"),)
    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=30)
    key: str = Field(max_length=300)
    at: datetime = _utc_field()


class CorrectionKind(str, enum.Enum):
    ADD = "补登"  # a confirmation recorded on the unit's behalf
    REVOKE = "撤销"  # a confirmation (or an exemption) removed because it was recorded by mistake
    EXEMPT = "免转"  # the unit is not expected to relay this push


class Exemption(SQLModel, table=True):
    """A unit that is not expected to relay one push (免转): not reminded, not missed, not ranked down."""

    __table_args__ = (UniqueConstraint("push_id", "unit_id"),)
    id: int | None = Field(default=None, primary_key=True)
    push_id: int = Field(foreign_key="push.id", index=True)
    unit_id: int = Field(foreign_key="unit.id", index=True)
    reason: str = Field(default="", max_length=200)
    by_id: str = Field(default="", max_length=200)
    by_name: str = Field(default="", max_length=100)
    at: datetime = _utc_field()


class Correction(SQLModel, table=True):
    """The office's corrections of the record (补登, 撤销, 免转): who, when, why; shown in 进度, 通报 and 单位."""

    id: int | None = Field(default=None, primary_key=True)
    push_id: int = Field(foreign_key="push.id", index=True)
    unit_id: int = Field(foreign_key="unit.id", index=True)
    kind: str = Field(max_length=10)  # CorrectionKind
    reason: str = Field(default="", max_length=200)
    by_id: str = Field(default="", max_length=200)
    by_name: str = Field(default="", max_length=100)
    at: datetime = _utc_field(index=True)


class NoteKind(str, enum.Enum):
    ASK = "ask"  # 是否已转发 #N？ (a message about relaying that was neither clearly yes nor no)
    WHICH = "which"  # a bare confirmation from a unit that owes several pushes: which one?
    RECALL = "recall"  # a liaison recalled the message that confirmed
    HINT = "hint"  # a liaison referred to a push but did not confirm: how to confirm
    MOVED = "moved"  # a bare confirmation landed on an older push than the newest


class ChatNote(SQLModel, table=True):
    """A line owed to a liaison group in its next coalesced message (with the acknowledgements).

    Questions (ASK, WHICH) stay open for a short answer from `contact_id` until `answered_at` is set.
    """

    id: int | None = Field(default=None, primary_key=True)
    room_id: str = Field(index=True, max_length=200)
    at: datetime = _utc_field()
    kind: str = Field(max_length=10)  # NoteKind
    contact_id: str = Field(default="", index=True, max_length=200)
    unit_id: int | None = Field(default=None, foreign_key="unit.id")
    push_ids: str = Field(default="", max_length=200)  # "3" or "3,4": the pushes the line is about
    text: str = Field(default="", max_length=500)  # the line, rendered when the note was made
    source_message_id: str = Field(default="", max_length=200)
    sent_at: datetime | None = _utc_field(nullable=True)  # None: still owed
    answered_at: datetime | None = _utc_field(nullable=True)


class WebSession(SQLModel, table=True):
    """A signed-in browser of the web console (bot/web/). The cookie carries a random token; only its SHA-256 is
    stored, so a copy of the database signs nobody in."""

    id: int | None = Field(default=None, primary_key=True)
    token_hash: str = Field(index=True, unique=True, max_length=64)
    contact_id: str = Field(max_length=200)
    name: str = Field(default="", max_length=100)
    csrf: str = Field(max_length=64)  # the token every form of this session carries
    created_at: datetime = _utc_field()
    expires_at: datetime = _utc_field(index=True)
    ended_at: datetime | None = _utc_field(nullable=True)  # signed out
    address: str = Field(default="", max_length=100)  # where the sign-in came from


class WebCode(SQLModel, table=True):
    """A one-time sign-in secret: a 6-digit code sent to the person's WeChat private chat (kind "code"), or a link
    printed by `relaybot web --login-link` (kind "link"). Stored as SHA-256; valid until `expires_at`, once."""

    id: int | None = Field(default=None, primary_key=True)
    contact_id: str = Field(index=True, max_length=200)
    kind: str = Field(max_length=10)
    secret_hash: str = Field(index=True, max_length=64)
    created_at: datetime = _utc_field()
    expires_at: datetime = _utc_field()
    used_at: datetime | None = _utc_field(nullable=True)


class WebAttempt(SQLModel, table=True):
    """One sign-in attempt with a code, right or wrong: wrong ones lock sign-in for that id for a while."""

    id: int | None = Field(default=None, primary_key=True)
    contact_id: str = Field(index=True, max_length=200)
    at: datetime = _utc_field(index=True)
    ok: bool = False
    address: str = Field(default="", max_length=100)


class _HasId(Protocol):
    id: int | None


def pk(row: _HasId) -> int:
    """The id of a row that is in the database (read from it, or added and flushed): never None there, unlike the
    `int | None` its field declares for rows not yet flushed."""
    if row.id is None:
        raise ValueError(f"{type(row).__name__} has no id yet: it was never flushed")
    return row.id
