"""Engine and sessions."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.pool import StaticPool
from sqlmodel import Session, SQLModel, create_engine

from bot import models  # noqa: F401  (registers the tables)


def make_engine(url: str) -> Engine:
    """An engine for `url`; for an SQLite file, its folder is created and WAL is switched on."""
    parsed = make_url(url)
    kwargs: dict = {}
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if database in ("", ":memory:"):
            kwargs.update(connect_args={"check_same_thread": False}, poolclass=StaticPool)
        else:
            Path(database).parent.mkdir(parents=True, exist_ok=True)
            kwargs.update(connect_args={"check_same_thread": False, "timeout": 15})
    engine = create_engine(url, **kwargs)
    if parsed.get_backend_name() == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    # WAL lets the CLI read while the bot writes; foreign keys are off by default in SQLite.
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA busy_timeout=15000")
    cur.close()


def create_schema(engine: Engine) -> None:
    """Create missing tables."""
    SQLModel.metadata.create_all(engine)


def session(engine: Engine) -> Session:
    """A new session that keeps objects usable after commit."""
    return Session(engine, expire_on_commit=False)
