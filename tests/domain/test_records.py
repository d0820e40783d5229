"""bot/domain/records.py: a unit's record over the last 30 days, counted once for the chat's `单位` card and the web
console's 单位 page; and roster_lines, the rows of the CLI's `roster show` and the console's 名单."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlmodel import col, select

from bot.domain.records import RECORD_DAYS, Record, liaison_labels, unit_record, unit_records
from bot.domain.relay import create_push
from bot.domain.roster import roster_lines
from bot.storage.db import session
from bot.storage.models import (
    Alert,
    Confirmation,
    ConfirmMethod,
    Exemption,
    Group,
    GroupKind,
    Liaison,
    Membership,
    PushState,
    Unit,
)
from tests.conftest import LIAISON_ROOM, TZ, WANG

NOW = datetime(2026, 11, 30, 9, 0, tzinfo=TZ)


def _push(s, *, deadline: datetime, state: str = PushState.OPEN.value) -> int:
    alert = Alert(title="刷单", created_at=NOW)
    push = create_push(s, alert, now=deadline - timedelta(hours=8), by="admin", deadline=deadline)
    push.state = state
    s.add(push)
    s.flush()
    return int(push.id or 0)


def test_unit_records_count_received_on_time_late_missed_waiting_and_exempted(engine, roster):
    with session(engine) as s:
        a, b, c = [int(u.id or 0) for u in s.exec(select(Unit).order_by(col(Unit.id)))][:3]
        old = _push(s, deadline=NOW - timedelta(days=RECORD_DAYS + 1))  # outside the 30 days
        p1 = _push(s, deadline=NOW - timedelta(days=3))
        p2 = _push(s, deadline=NOW - timedelta(days=2))
        p3 = _push(s, deadline=NOW + timedelta(hours=5))  # still open: waiting, not missed
        gone = _push(s, deadline=NOW - timedelta(days=1), state=PushState.WITHDRAWN.value)
        for push_id, unit_id, late, method in (
            (old, a, False, "text"),
            (p1, a, False, "text"),
            (p2, a, True, "text"),
            (gone, a, False, "text"),
            (p1, b, False, ConfirmMethod.OFFICE.value),
        ):
            s.add(Confirmation(push_id=push_id, unit_id=unit_id, at=NOW, method=method, late=late))
        s.add(Exemption(push_id=p2, unit_id=b, reason="停业", by_id="admin", at=NOW))
        s.commit()
        records = unit_records(s, now=NOW)
        assert records[a] == Record(received=3, on_time=1, late=1, missed=0, waiting=[p3], exempted=0)
        assert records[b] == Record(received=2, on_time=1, late=0, missed=0, waiting=[p3], exempted=1)
        assert records[c] == Record(received=3, on_time=0, late=0, missed=2, waiting=[p3], exempted=0)
        assert set(records) == {int(u or 0) for u in s.exec(select(Unit.id))}
        # one unit, or a few, counted alone give the same as all at once
        assert unit_record(s, b, now=NOW) == records[b]
        assert unit_records(s, now=NOW, unit_ids=[c, a]) == {c: records[c], a: records[a]}


def test_unit_records_without_pushes_are_empty_records(engine, roster):
    with session(engine) as s:
        records = unit_records(s, now=NOW)
        assert records and all(r == Record() for r in records.values())


def test_liaison_labels_main_before_backup_and_unrecognised_marked(engine, roster):
    with session(engine) as s:
        unit = s.exec(select(Unit).where(Unit.name == "城关镇")).one()
        labels = liaison_labels(s)[int(unit.id or 0)]
        assert labels == ["王芳（主）", "赵磊（备，未识别）"]
        assert liaison_labels(s, unit_ids=[int(unit.id or 0)]) == {int(unit.id or 0): labels}


def test_roster_lines_carry_what_the_web_page_shows(engine, roster):
    with session(engine) as s:
        s.add(Group(room_id=LIAISON_ROOM, name="联络员群", kind=GroupKind.LIAISON.value))
        s.add(Group(room_id="other@chatroom", name="别的群", kind=GroupKind.NONE.value))
        s.add(Membership(room_id=LIAISON_ROOM, contact_id=WANG.contact_id, name=WANG.name, seen_at=NOW))
        s.add(Membership(room_id="other@chatroom", contact_id="wxid_liqiang", name="李强", seen_at=NOW))
        s.commit()
        lines = roster_lines(s)
        assert roster_lines(s, [LIAISON_ROOM]) == lines  # by default: every liaison group
        wang = next(line for line in lines if line.liaison == "王芳")
        liaison = s.exec(select(Liaison).where(Liaison.name == "王芳")).one()
        assert (wang.unit, wang.unit_id, wang.liaison_id, wang.contact_id, wang.phone) == (
            "城关镇",
            liaison.unit_id,
            liaison.id,
            WANG.contact_id,
            "13800000001",
        )
        assert wang.recognised and wang.in_group
        li = next(line for line in lines if line.liaison == "李强")
        assert li.recognised and not li.in_group  # seen only in a group that is no liaison group
        zhao = next(line for line in lines if line.liaison == "赵磊")
        assert not zhao.recognised and zhao.contact_id == ""
