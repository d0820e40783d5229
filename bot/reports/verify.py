"""回访核查: what one unit was sent in the three months up to a day, and what it did with each push.

The work plan: when a victim says they never received any 防范宣传, their unit explains its work. The office's
proof is this record: every push (not withdrawn) created in the window, the unit's state under the one rule of
relay.expected_unit_ids (免转 listed as such; targeted pushes aimed at other units left out), when and how it
confirmed, and the screenshot's verdict.
"""

from __future__ import annotations

import dataclasses
import enum
import re
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlmodel import Session, col, select

from bot.content import Texts
from bot.domain.periods import DeadlineError, parse_day
from bot.domain.relay import not_expected
from bot.storage.models import (
    Alert,
    Confirmation,
    ConfirmMethod,
    Correction,
    CorrectionKind,
    Exemption,
    Liaison,
    Push,
    PushState,
    Unit,
    pk,
)
from bot.textnorm import clean

WINDOW_MONTHS = 3
# At most this many missed pushes are listed in the chat message; the .xlsx has every row.
LISTED_MISSES = 10


class VerifyState(str, enum.Enum):
    """A unit's state for one push, as the record and the .xlsx name it."""

    ON_TIME = "已转发"
    LATE = "迟报"
    ADDED = "补登"  # the office recorded the confirmation on the unit's behalf
    EXEMPT = "免转"
    MISSED = "未转发"
    PENDING = "待转"  # the deadline has not passed and the unit has not confirmed yet


class VerifyDateError(ValueError):
    """The day is unreadable (`future` False) or in the future (`future` True, `day` what it was read as)."""

    def __init__(self, text: str, *, future: bool = False, day: date | None = None) -> None:
        super().__init__(text)
        self.text, self.future, self.day = text, future, day


@dataclass(frozen=True)
class VerifyRow:
    """One push of the window and what the unit did with it."""

    push_id: int
    title: str
    pushed_at: datetime
    deadline: datetime
    state: str  # a VerifyState value
    confirmed_at: datetime | None = None
    by: str = ""  # the liaison's name, or the admin's for a 补登 / 免转
    method: str = ""  # a ConfirmMethod value ("" without a confirmation)
    verdict: str = ""  # the screenshot's verdict (EvidenceVerdict value); "" while waiting or without one
    verdict_reason: str = ""
    has_screenshot: bool = False
    note: str = ""  # the office's reason for a 补登 or 免转
    late: bool = False  # a 补登 recorded as late


@dataclass(frozen=True)
class UnitRecord:
    """A unit's record for 回访核查: plain data, so the report worker can render it in its child process."""

    unit: str
    unit_kind: str
    day: date  # the victim's day D (inclusive)
    start: date  # the first day of the window
    made_at: datetime
    tz_key: str
    rows: list[VerifyRow] = field(default_factory=list)

    def count(self, state: VerifyState) -> int:
        return sum(1 for r in self.rows if r.state == state.value)

    @property
    def missed(self) -> list[VerifyRow]:
        return [r for r in self.rows if r.state == VerifyState.MISSED.value]

    @property
    def stem(self) -> str:
        """The .xlsx file's name without its suffix."""
        return f"回访核查_{self.unit}_{self.day.isoformat()}"


def window_start(day: date) -> date:
    """The first day of the WINDOW_MONTHS months up to `day`: the same day of the month three months earlier
    (the month's last day when it has no such day, e.g. 5月31日 → 2月28日)."""
    month = day.month - WINDOW_MONTHS
    year = day.year
    while month < 1:
        month += 12
        year -= 1
    for d in (day.day, 30, 29, 28):
        try:
            return date(year, month, min(day.day, d))
        except ValueError:
            continue
    raise AssertionError("unreachable")  # every month has a 28th


_LEAP_REFERENCE = date(2028, 7, 1)


def parse_verify_day(text: str, *, today: date) -> date:
    """The day as people type it (2026-11-20, 2026/11/20, 11月20日, 11.20, 昨天); without a year, the most recent
    such day that is not in the future. VerifyDateError if unreadable or in the future."""
    body = clean(text).replace(" ", "")
    yearless = not re.search(r"\d{4}", body) and bool(re.search(r"\d", body))
    try:
        # A year-less day is read in a leap year first, so that 2月29日 is a day; its year is chosen below.
        day = parse_day(body, today=_LEAP_REFERENCE if yearless else today)
    except DeadlineError:
        raise VerifyDateError(text) from None
    if yearless:
        # parse_day reads a year-less day as this year's or next year's; a victim's day is in the past.
        for year in range(today.year, today.year - 9, -1):
            try:
                candidate = day.replace(year=year)
            except ValueError:  # 2月29日 in a year without one
                continue
            if candidate <= today:
                day = candidate
                break
    if day > today:
        raise VerifyDateError(text, future=True, day=day)
    return day


def _title(alert: Alert) -> str:
    return alert.title or (alert.text.splitlines()[0][:30] if alert.text else "") or alert.link_url or "图片"


def build_unit_record(session: Session, *, unit: Unit, day: date, now: datetime, tz: ZoneInfo) -> UnitRecord:
    """Every push not withdrawn and created from window_start(day) 0:00 to the end of `day` (local time), with
    the unit's state, confirmation, method and screenshot verdict, oldest first."""
    unit_id = pk(unit)
    start = window_start(day)
    since = datetime.combine(start, time(0), tzinfo=tz)
    until = datetime.combine(day + timedelta(days=1), time(0), tzinfo=tz)
    pushes = list(
        session.exec(
            select(Push, Alert)
            .join(Alert, col(Alert.id) == Push.alert_id)
            .where(Push.created_at >= since, Push.created_at < until, Push.state != PushState.WITHDRAWN.value)
            .order_by(col(Push.id))
        )
    )
    ids = [pk(p) for p, _ in pushes]
    if ids:
        # A targeted push aimed at other units was never this unit's to relay: not listed (relay's rule; an
        # exemption stays listed as 免转).
        excluded = not_expected(session, ids, [unit_id])[unit_id]
        exempted = set(
            session.exec(select(Exemption.push_id).where(Exemption.unit_id == unit_id, col(Exemption.push_id).in_(ids)))
        )
        pushes = [(p, a) for p, a in pushes if pk(p) not in excluded or pk(p) in exempted]
        ids = [pk(p) for p, _ in pushes]
    confs: dict[int, Confirmation] = {}
    exemptions: dict[int, Exemption] = {}
    added_by: dict[int, Correction] = {}
    names: dict[int, str] = {}
    if ids:
        confs = {
            c.push_id: c
            for c in session.exec(
                select(Confirmation).where(Confirmation.unit_id == unit_id, col(Confirmation.push_id).in_(ids))
            )
        }
        exemptions = {
            e.push_id: e
            for e in session.exec(
                select(Exemption).where(Exemption.unit_id == unit_id, col(Exemption.push_id).in_(ids))
            )
        }
        # The newest 补登 of each push names who vouched for it and why.
        for c in session.exec(
            select(Correction)
            .where(
                Correction.unit_id == unit_id,
                Correction.kind == CorrectionKind.ADD.value,
                col(Correction.push_id).in_(ids),
            )
            .order_by(col(Correction.id))
        ):
            added_by[c.push_id] = c
        liaison_ids = {c.liaison_id for c in confs.values() if c.liaison_id is not None}
        if liaison_ids:
            names = {pk(li): li.name for li in session.exec(select(Liaison).where(col(Liaison.id).in_(liaison_ids)))}
    rows = []
    for push, alert in pushes:
        push_id = pk(push)
        pending = VerifyState.MISSED if push.deadline <= now else VerifyState.PENDING
        base = VerifyRow(push_id, _title(alert), push.created_at, push.deadline, pending.value)
        exemption = exemptions.get(push_id)
        conf = confs.get(push_id)
        if exemption is not None:  # the one rule: an exempted unit is not expected to relay the push
            rows.append(
                dataclasses.replace(
                    base,
                    state=VerifyState.EXEMPT.value,
                    by=exemption.by_name or exemption.by_id,
                    note=exemption.reason,
                )
            )
        elif conf is not None:
            office = conf.method == ConfirmMethod.OFFICE.value
            correction = added_by.get(push_id)
            if office:
                state, by = VerifyState.ADDED, (correction.by_name if correction else "") or conf.recorded_by
            else:
                state = VerifyState.LATE if conf.late else VerifyState.ON_TIME
                by = names.get(conf.liaison_id or 0, "")
            rows.append(
                dataclasses.replace(
                    base,
                    state=state.value,
                    confirmed_at=conf.at,
                    by=by,
                    method=conf.method,
                    verdict=conf.verdict,
                    verdict_reason=conf.verdict_reason,
                    has_screenshot=bool(conf.evidence_file or conf.evidence_at or conf.verdict),
                    note=(correction.reason if correction else conf.evidence_text) if office else "",
                    late=office and conf.late,
                )
            )
        else:
            rows.append(base)
    return UnitRecord(unit=unit.name, unit_kind=unit.kind, day=day, start=start, made_at=now, tz_key=tz.key, rows=rows)


def _day(d: date) -> str:
    return f"{d.year}年{d.month}月{d.day}日"


def _moment(moment: datetime | None, tz: ZoneInfo) -> str:
    return moment.astimezone(tz).strftime("%Y-%m-%d %H:%M") if moment is not None else ""


def period_text(texts: Texts, record: UnitRecord) -> str:
    """The window in words, exactly: from the first day 0:00 to the last day 24:00."""
    return texts.t("verify.period", start=_day(record.start), end=_day(record.day))


def method_name(texts: Texts, method: str) -> str:
    return texts.t(f"verify.method_{method}") if method else ""


def verdict_text(texts: Texts, row: VerifyRow) -> str:
    """The screenshot's verdict as the record shows it, with its reason."""
    if not row.has_screenshot:
        return texts.t("verify.no_screenshot") if row.confirmed_at is not None else ""
    verdict = row.verdict or texts.t("verify.verdict_waiting")
    return f"{verdict}（{row.verdict_reason}）" if row.verdict_reason else verdict


def summary_text(texts: Texts, record: UnitRecord) -> str:
    """The chat's (and the CLI's) answer: the window, the counts, and the missed pushes listed."""
    tz = ZoneInfo(record.tz_key)
    head = texts.t("verify.head", unit=record.unit, period=period_text(texts, record))
    if not record.rows:
        return head + "\n" + texts.t("verify.none")
    lines = [
        head,
        texts.t(
            "verify.summary",
            sent=len(record.rows),
            on_time=record.count(VerifyState.ON_TIME),
            late=record.count(VerifyState.LATE),
            missed=record.count(VerifyState.MISSED),
            added=record.count(VerifyState.ADDED),
            exempt=record.count(VerifyState.EXEMPT),
        ),
    ]
    pending = record.count(VerifyState.PENDING)
    if pending:
        lines.append(texts.t("verify.pending", count=pending))
    missed = record.missed
    if missed:
        lines.append(texts.t("verify.missed_head", count=len(missed)))
        for row in missed[:LISTED_MISSES]:
            lines.append(
                texts.t("verify.missed_line", n=row.push_id, title=row.title, pushed=_moment(row.pushed_at, tz))
            )
        if len(missed) > LISTED_MISSES:
            lines.append(texts.t("verify.missed_more", count=len(missed) - LISTED_MISSES))
    else:
        lines.append(texts.t("verify.no_missed"))
    return "\n".join(lines)
