"""Migration 0006 (scheduled pushes) goes down and up again, on SQLite and (second run) PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

from alembic import command
from sqlalchemy import inspect
from sqlmodel import select

from bot.storage.db import alembic_config, make_engine, schema_revisions, session
from bot.storage.models import Alert, ScheduledPush


def _migrate(engine, direction: str, revision: str) -> None:
    with engine.begin() as conn:
        config = alembic_config()
        config.attributes["connection"] = conn
        getattr(command, direction)(config, revision)


def test_0006_down_removes_the_table_and_up_brings_it_back_working(db_url):
    engine = make_engine(db_url)
    try:
        assert "scheduledpush" in inspect(engine).get_table_names()
        _migrate(engine, "downgrade", "0005_web")
        assert "scheduledpush" not in inspect(engine).get_table_names()
        assert schema_revisions(engine)[0] == "0005_web"
        _migrate(engine, "upgrade", "head")
        indexes = {i["name"] for i in inspect(engine).get_indexes("scheduledpush")}
        assert indexes == {"ix_scheduledpush_send_at", "ix_scheduledpush_state", "ix_scheduledpush_city_no"}
        now = datetime(2026, 11, 26, 1, 0, tzinfo=UTC)
        with session(engine) as s:
            alert = Alert(case_type="刷单返利", title="t", created_at=now)
            s.add(alert)
            s.flush()
            s.add(ScheduledPush(alert_id=alert.id, send_at=now, created_at=now))
            s.commit()
        with session(engine) as s:
            row = s.exec(select(ScheduledPush)).one()
            assert (row.send_at, row.state, row.again, row.push_id) == (now, "waiting", False, None)
    finally:
        engine.dispose()
