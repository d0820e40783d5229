"""The city's anti-fraud centre over its districts: one push to every district, and its progress per district.

A city push is one row in the city's schema (its id is the city's number, 全市第N号) and, in the same transaction,
one scheduled push due at once in every district's schema, written under that district's role. Each district's
bot pushes it with its schedule poller as any scheduled push: numbered in the district's own sequence, sent to its
own liaison groups at its own pace, once (the row's state changes in the transaction that makes the push). A
district bot that is down pushes it when it is back.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, insert, select, text
from sqlalchemy.engine import Connection
from sqlmodel import Session, col
from sqlmodel import select as select_rows

from bot.chat import compose
from bot.clock import show
from bot.config import Settings
from bot.content import LibraryAlert, Texts
from bot.domain.relay import progress
from bot.operations.pushing import library_alert
from bot.operations.scheduled import schedule_push
from bot.storage.districts import District, city_push_table, districts, use_district
from bot.storage.models import Push, ScheduledPush, ScheduledPushState


class CityError(ValueError):
    """A city command cannot be done; str() is the message for people (Chinese)."""


class CityRepeat(Exception):
    """The same type was pushed to the city today (全市第`number`号 at `at`); `recent`: a moment ago by the same
    person, the same message read twice."""

    def __init__(self, number: int, at: datetime, recent: bool) -> None:
        super().__init__(number)
        self.number, self.at, self.recent = number, at, recent


def repeat_text(texts: Texts, repeat: CityRepeat, *, case: str, tz, how: str = "city.again_chat") -> str:
    """What a repeated city push is answered with (Chinese); `how`: the text key saying how to push it again
    where it was asked (chat's 确认, the command line's --yes, the console's box)."""
    if repeat.recent:
        return texts.t("city.just_pushed", n=repeat.number)
    again = texts.t(how, case=case)
    return texts.t("city.pushed_today", n=repeat.number, at=show(repeat.at, tz), case=case, how=again)


CITY_PUSH_LOCK = 0x52454C4159434954  # "RELAYCIT": the advisory lock city pushes take one at a time
RECENT = timedelta(minutes=2)


@dataclass(frozen=True)
class CityPush:
    number: int  # 全市第N号
    title: str
    districts: list[District]


def _session(conn: Connection) -> Session:
    """An ORM session in `conn`'s transaction (inside use_district: it sees that district only). A session per
    district: the districts' ids overlap, so one identity map cannot hold two districts' rows."""
    return Session(bind=conn, expire_on_commit=False)


def push_to_city(
    conn: Connection,
    item: LibraryAlert,
    *,
    now: datetime,
    actor_id: str,
    actor_name: str,
    settings: Settings,
    texts: Texts,
    again: bool = False,
    read_twice: bool = False,
) -> CityPush:
    """The city push of the library alert `item` (a new Alert in every district), in the caller's transaction.
    The same type pushed to the city earlier today is pushed again only with `again` (确认), and (`read_twice`:
    from chat) never twice by one person within RECENT, since two district bots in the city's group both read the
    same message: CityRepeat."""
    every = districts(conn)
    if not every:
        raise CityError(texts.t("city.no_districts"))
    first = library_alert(item, now=now)
    # One city push at a time, so the check below sees the one made a moment ago by another bot.
    conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": CITY_PUSH_LOCK})
    day_start = now.astimezone(settings.tz).replace(hour=0, minute=0, second=0, microsecond=0).astimezone(now.tzinfo)
    earlier = conn.execute(
        select(city_push_table.c.id, city_push_table.c.created_at, city_push_table.c.created_by)
        .where(city_push_table.c.case_type == first.case_type, city_push_table.c.created_at >= day_start)
        .order_by(city_push_table.c.id.desc())
    ).first()
    if earlier is not None:
        recent = read_twice and earlier.created_by == actor_id and now - earlier.created_at < RECENT
        if recent or not again:
            raise CityRepeat(int(earlier.id), earlier.created_at, recent)
    number = conn.execute(
        insert(city_push_table)
        .values(
            case_type=first.case_type,
            title=compose.push_title(first),
            created_at=now,
            created_by=actor_id,
            created_by_name=actor_name,
            districts=len(every),
        )
        .returning(city_push_table.c.id)
    ).scalar_one()
    for district in every:
        with use_district(conn, district):
            s = _session(conn)
            try:
                scheduled = schedule_push(
                    s,
                    library_alert(item, now=now),
                    send_at=now,
                    now=now,
                    actor_id=actor_id,
                    actor_name=f"市反诈中心 {actor_name}",
                    again=True,  # the city decided: pushed even if the district pushed the same case today
                    chat_kind="",  # the district's office group is told when it goes out
                    chat_id="",
                    settings=settings,
                    texts=texts,
                )
                scheduled.row.city_no = number
                s.add(scheduled.row)
                s.flush()
            finally:
                s.close()
    return CityPush(int(number), compose.push_title(first), every)


@dataclass(frozen=True)
class DistrictProgress:
    district: District
    state: str  # "sent", "waiting" (its bot has not pushed it yet), "not_sent", "failed", "cancelled", "missing"
    push_no: int | None = None  # the district's own #N
    confirmed: int = 0
    total: int = 0
    late: int = 0


@dataclass(frozen=True)
class CityProgress:
    number: int
    title: str
    created_at: datetime
    districts: list[DistrictProgress]

    @property
    def confirmed(self) -> int:
        return sum(d.confirmed for d in self.districts)

    @property
    def total(self) -> int:
        return sum(d.total for d in self.districts)


def latest_number(conn: Connection) -> int | None:
    """The newest city push's number; None when the city has pushed nothing."""
    return conn.execute(select(func.max(city_push_table.c.id))).scalar()


def city_progress(conn: Connection, number: int, *, texts: Texts) -> CityProgress:
    """Per district, whether the city push `number` went out there and how many of its units confirmed it."""
    row = conn.execute(select(city_push_table).where(city_push_table.c.id == number)).first()
    if row is None:
        raise CityError(texts.t("city.no_such_push", n=number))
    out = []
    for district in districts(conn):
        with use_district(conn, district):
            s = _session(conn)
            try:
                out.append(_district_progress(s, district, number))
            finally:
                s.close()
    return CityProgress(number, row.title, row.created_at, out)


def _district_progress(s: Session, district: District, number: int) -> DistrictProgress:
    scheduled = s.exec(select_rows(ScheduledPush).where(col(ScheduledPush.city_no) == number)).first()
    if scheduled is None:
        return DistrictProgress(district, "missing")  # added to the city after this push
    if scheduled.push_id is None:
        state = {ScheduledPushState.WAITING.value: "waiting"}.get(scheduled.state, scheduled.state)
        return DistrictProgress(district, state)
    push = s.get_one(Push, scheduled.push_id)
    p = progress(s, push)
    return DistrictProgress(district, "sent", push.id, len(p.confirmed), p.total, p.late)


def progress_text(texts: Texts, p: CityProgress, *, tz) -> str:
    """`进度 全市 #N`: the city's totals and one short line per district."""
    sent = any(d.state == "sent" for d in p.districts)
    lines = [
        texts.t("city.progress_head", n=p.number, title=p.title, at=show(p.created_at, tz)),
        texts.t("city.progress_total", done=p.confirmed, total=p.total) if sent else texts.t("city.progress_none"),
    ]
    for d in p.districts:
        if d.state == "sent":
            late = texts.t("city.progress_late", late=d.late) if d.late else ""
            lines.append(
                texts.t("city.progress_line", district=d.district.name, n=d.push_no, done=d.confirmed, total=d.total)
                + late
            )
        else:
            lines.append(texts.t(f"city.progress_{d.state}", district=d.district.name))
    return "\n".join(lines)
