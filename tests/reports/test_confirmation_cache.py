"""The web console keeps each push's confirmations between report builds (bot/reports/build.py ConfirmationCache)
and reads again only the pushes whose revision a database trigger moved (migration 0007).

A report built with a cache that lived through changes must be the very report built from nothing; and the
trigger must see every kind of change, whoever makes it: the ORM, plain SQL, the office's corrections.
"""

from __future__ import annotations

import dataclasses
from datetime import date, datetime, time, timedelta

import pytest
from sqlalchemy import text
from sqlmodel import col, select

from bot.domain.corrections import add_confirmation, revoke
from bot.domain.escalation import Ladder
from bot.reports.build import ConfirmationCache, build_report
from bot.storage.db import session
from bot.storage.models import Confirmation, ConfirmMethod, Liaison, Push, PushState, Unit
from tests.conftest import TZ
from tests.reports.test_build_equivalence import ADMIN_ID, ADMIN_NAME, make_month

LADDER = Ladder(2, 3, 2)
NOVEMBER = dict(kind="month", start=date(2026, 11, 1), end=date(2026, 11, 30))
NOW = datetime(2026, 12, 1, 9, tzinfo=TZ)


def _build(engine, cache: ConfirmationCache | None, period=None):
    with session(engine) as s:
        return build_report(s, **(period or NOVEMBER), now=NOW, tz=TZ, ladder=LADDER, cache=cache)


def _same(engine, cache: ConfirmationCache, period=None) -> None:
    got, fresh = _build(engine, cache, period), _build(engine, None, period)
    for field in dataclasses.fields(fresh):  # field by field first, for a readable failure
        assert getattr(got, field.name) == getattr(fresh, field.name), field.name
    assert got == fresh


def _revision(engine, push_id: int) -> int:
    with session(engine) as s:
        return s.get_one(Push, push_id).revision


def _november_pushes(engine) -> list[Push]:
    with session(engine) as s:
        return list(
            s.exec(
                select(Push)
                .where(Push.state != PushState.WITHDRAWN.value, col(Push.deadline) >= datetime(2026, 11, 2, tzinfo=TZ))
                .where(col(Push.deadline) < datetime(2026, 11, 29, tzinfo=TZ))
                .order_by(col(Push.id))
            )
        )


def test_a_kept_report_reads_only_the_pushes_that_changed_and_equals_a_fresh_one(engine, tmp_path):
    make_month(engine, 4, tmp_path)
    cache = ConfirmationCache()
    _same(engine, cache)
    first = cache.read_pushes
    assert first > 20
    _same(engine, cache)
    assert cache.read_pushes == first  # nothing changed: nothing read again

    pushes = _november_pushes(engine)
    a, b, c, d = pushes[2], pushes[5], pushes[8], pushes[11]
    with session(engine) as s:
        units = list(s.exec(select(Unit).where(Unit.active == True).order_by(col(Unit.id))))  # noqa: E712
        args = dict(session=s, by_id=ADMIN_ID, by_name=ADMIN_NAME, now=NOW, evidence_dir=tmp_path)
        # push a: a confirmation taken back (撤销) — a delete
        confirmed_a = s.exec(select(Confirmation).where(Confirmation.push_id == a.id)).first()
        assert confirmed_a is not None
        revoke(push=s.get_one(Push, a.id), unit=s.get_one(Unit, confirmed_a.unit_id), reason="误记", **args)
        # push b: a 补登 for a unit that had not confirmed — an insert
        confirmed_b = set(s.exec(select(Confirmation.unit_id).where(Confirmation.push_id == b.id)))
        missing_b = next(u for u in units if u.id not in confirmed_b)
        add_confirmation(push=s.get_one(Push, b.id), unit=missing_b, reason="电话确认", **{
            k: v for k, v in args.items() if k != "evidence_dir"
        })  # fmt: skip
        s.commit()
    with session(engine) as s:
        # push c: a verdict given by a person — an update of a column the report shows (evidence)
        shot = s.exec(select(Confirmation).where(Confirmation.push_id == c.id)).first()
        assert shot is not None
        shot.verdict, shot.verdict_reason = "存疑", "办公室驳回：陈静"
        s.add(shot)
        s.commit()
    # push d: a late flag changed by plain SQL, as an office's own script might — the trigger sees it too
    with engine.begin() as conn:
        conn.execute(text("UPDATE confirmation SET late = NOT late WHERE push_id = :p"), {"p": d.id})
    before = cache.read_pushes
    _same(engine, cache)
    assert cache.read_pushes - before == 4  # exactly a, b, c and d

    # A period overlapping the cached one reads only its own new pushes.
    week = dict(kind="week", start=date(2026, 11, 30), end=date(2026, 12, 6))
    _same(engine, cache, week)


def test_every_kind_of_change_moves_the_revision_of_its_push_and_only_its_push(engine, tmp_path):
    make_month(engine, 5, tmp_path, units=4)
    pushes = _november_pushes(engine)
    p, q = pushes[0].id, pushes[1].id
    assert p is not None and q is not None
    seen = {p: _revision(engine, p), q: _revision(engine, q)}

    def moved(push_id: int) -> bool:
        now = _revision(engine, push_id)
        changed = now != seen[push_id]
        seen[push_id] = now
        return changed

    with session(engine) as s:
        unit = s.exec(select(Unit).order_by(col(Unit.id))).first()
        assert unit is not None
        liaison = s.exec(select(Liaison).where(Liaison.unit_id == unit.id)).first()
        for conf in s.exec(select(Confirmation).where(Confirmation.push_id == p, Confirmation.unit_id == unit.id)):
            s.delete(conf)
        s.commit()
    assert moved(p) and not moved(q)  # delete
    with session(engine) as s:
        s.add(
            Confirmation(
                push_id=p,
                unit_id=unit.id,
                liaison_id=liaison.id if liaison else None,
                at=NOW - timedelta(days=20),
                method=ConfirmMethod.TEXT.value,
            )
        )
        s.commit()
    assert moved(p) and not moved(q)  # insert
    with engine.begin() as conn:
        conn.execute(
            text("UPDATE confirmation SET method = 'image' WHERE push_id = :p AND unit_id = :u"), {"p": p, "u": unit.id}
        )
    assert moved(p) and not moved(q)  # update by plain SQL
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM confirmation WHERE push_id = :q AND unit_id = :u"), {"q": q, "u": unit.id})
    assert moved(q) and not moved(p)  # delete by plain SQL
    with engine.begin() as conn:  # a confirmation moved from one push to another: both pushes change
        conn.execute(
            text("UPDATE confirmation SET push_id = :q WHERE push_id = :p AND unit_id = :u"),
            {"p": p, "q": q, "u": unit.id},
        )
    assert moved(p) and moved(q)


def test_a_cache_is_bounded(engine, tmp_path):
    make_month(engine, 6, tmp_path, units=3)
    cache = ConfirmationCache(max_pushes=5)
    _same(engine, cache)
    assert len(cache._pushes) == 5  # the most recently used pushes only
    _same(engine, cache, dict(kind="week", start=date(2026, 11, 23), end=date(2026, 11, 29)))


@pytest.mark.parametrize("hour", [9, 18])
def test_a_new_push_in_the_period_is_read_and_counted(engine, tmp_path, hour):
    make_month(engine, 7, tmp_path, units=3)
    cache = ConfirmationCache()
    _same(engine, cache)
    with session(engine) as s:
        push = s.exec(select(Push).order_by(col(Push.id))).first()
        assert push is not None
        new = Push(
            alert_id=push.alert_id,
            created_at=datetime(2026, 11, 20, hour, tzinfo=TZ),
            deadline=datetime.combine(date(2026, 11, 20), time(20), tzinfo=TZ),
        )
        s.add(new)
        s.commit()
    _same(engine, cache)
