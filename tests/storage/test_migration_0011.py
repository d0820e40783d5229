"""Migration 0011 (a push's city number) goes down and up again, on SQLite and (second run) PostgreSQL, keeping
0007's revision triggers and the one-row-per-city-push rule of a district's scheduled pushes."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import inspect
from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from bot.storage.db import make_engine, schema_revisions, session
from bot.storage.models import Alert, Confirmation, Push, ScheduledPush, Unit
from tests.storage.test_migration_0006 import _migrate
from tests.storage.test_migration_0008 import _columns


def test_0011_down_and_up(db_url):
    engine = make_engine(db_url)
    try:
        _migrate(engine, "downgrade", "0010_reach")
        assert schema_revisions(engine)[0] == "0010_reach"
        assert "city_no" not in _columns(engine, "push") and "city_no" not in _columns(engine, "scheduledpush")
        _migrate(engine, "upgrade", "head")
        assert "city_no" in _columns(engine, "push")
        assert "ix_push_city_no" in {i["name"] for i in inspect(engine).get_indexes("push")}
        now = datetime(2026, 11, 26, 1, 0, tzinfo=UTC)
        with session(engine) as s:
            unit = Unit(name="城关镇")
            alert = Alert(case_type="刷单返利", title="t", created_at=now)
            s.add_all([unit, alert])
            s.flush()
            push = Push(alert_id=alert.id, created_at=now, deadline=now, city_no=7)
            s.add(push)
            s.flush()
            s.add(Confirmation(push_id=push.id, unit_id=unit.id, at=now, method="text"))
            s.add(ScheduledPush(alert_id=alert.id, send_at=now, created_at=now, city_no=7, push_id=push.id))
            s.commit()
        with session(engine) as s:
            push = s.exec(select(Push)).one()
            assert (push.city_no, push.revision) == (7, 1)  # the trigger still counts
            s.add(ScheduledPush(alert_id=push.alert_id, send_at=now, created_at=now, city_no=7))
            with pytest.raises(IntegrityError):  # a city push is one scheduled push per district, never two
                s.commit()
    finally:
        engine.dispose()
