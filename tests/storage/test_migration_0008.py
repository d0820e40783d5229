"""Migration 0008 (targeted pushes) goes down and up again, on SQLite and (second run) PostgreSQL, and leaves the
confirmation revision triggers of 0007 working."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import inspect
from sqlmodel import select

from bot.storage.db import make_engine, schema_revisions, session
from bot.storage.models import Alert, Confirmation, Push, PushTarget, Unit
from tests.storage.test_migration_0006 import _migrate


def _columns(engine, table: str) -> set[str]:
    return {c["name"] for c in inspect(engine).get_columns(table)}


def test_0008_down_and_up_keeps_the_revision_triggers(db_url):
    engine = make_engine(db_url)
    try:
        _migrate(engine, "downgrade", "0007_revision")
        assert schema_revisions(engine)[0] == "0007_revision"
        assert "pushtarget" not in inspect(engine).get_table_names()
        assert "target" not in _columns(engine, "push") and "tags" not in _columns(engine, "unit")
        _migrate(engine, "upgrade", "head")
        assert "target" in _columns(engine, "scheduledpush") and "tags" in _columns(engine, "unit")
        now = datetime(2026, 11, 26, 1, 0, tzinfo=UTC)
        with session(engine) as s:
            unit = Unit(name="区教育局", tags="学校")
            alert = Alert(case_type="刷单返利", title="t", created_at=now)
            s.add_all([unit, alert])
            s.flush()
            push = Push(alert_id=alert.id, created_at=now, deadline=now, target="学校")
            s.add(push)
            s.flush()
            s.add(PushTarget(push_id=push.id, unit_id=unit.id))
            s.add(Confirmation(push_id=push.id, unit_id=unit.id, at=now, method="text"))
            s.commit()
        with session(engine) as s:
            push = s.exec(select(Push)).one()
            assert (push.target, push.revision) == ("学校", 1)  # the trigger still counts
            assert s.exec(select(PushTarget.unit_id)).one() == s.exec(select(Unit.id)).one()
    finally:
        engine.dispose()
