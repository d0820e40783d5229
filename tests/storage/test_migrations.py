"""Schema migrations and backups: a database from the first release keeps every row; backups are consistent.

Runs on SQLite and, in the suite's second run, on PostgreSQL (see conftest.db_url).
"""

from __future__ import annotations

import shutil
import subprocess
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import MetaData, create_engine, inspect, select, text
from sqlalchemy.engine import make_url
from sqlmodel import SQLModel

from bot.storage.db import BASELINE, alembic_config, make_engine, schema_revisions, session
from bot.storage.models import AuditLog
from tests.bot_process import relaybot
from tests.conftest import on_postgres

RELEASE_DB = Path(__file__).parent.parent / "data" / "release-0.1.0.sqlite"


def test_migrations_build_exactly_the_tables_the_code_uses(engine):
    # If someone changes bot/storage/models.py without writing a migration, this lists the difference.
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), SQLModel.metadata)
    assert diff == []
    current, head = schema_revisions(engine)
    assert current == head


def _rows(engine, tables=None) -> dict[str, set[tuple]]:
    """Every row of every table (except alembic's), as comparable tuples of (column, value)."""
    meta = MetaData()
    meta.reflect(engine)
    out = {}
    with engine.connect() as conn:
        for name, table in meta.tables.items():
            if name == "alembic_version" or (tables is not None and name not in tables):
                continue
            columns = tables[name] if tables is not None else [c.name for c in table.columns]
            out[name] = {tuple((c, _plain(row._mapping[c])) for c in columns) for row in conn.execute(select(table))}
    return out


def _plain(value):
    # SQLite hands back naive UTC datetimes, PostgreSQL aware ones; compare them as the same moment.
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        return value.isoformat()
    if isinstance(value, memoryview):
        return bytes(value)
    return value


def _release_database_at(db_url: str, tmp_path: Path) -> None:
    """Make the database at db_url what the first release left behind: its tables, its rows, no alembic."""
    if not on_postgres():
        Path(make_url(db_url).database).unlink()
        shutil.copyfile(RELEASE_DB, make_url(db_url).database)
        return
    engine = make_engine(db_url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
        config = alembic_config()
        config.attributes["connection"] = conn
        command.upgrade(config, BASELINE)  # 0.1.0's tables (its create_all made the same ones)
        conn.execute(text("DROP TABLE alembic_version"))
    old = create_engine(f"sqlite:///{RELEASE_DB}")
    source, target = MetaData(), MetaData()
    source.reflect(old)
    target.reflect(engine)
    with old.connect() as src, engine.begin() as dst:
        for table in target.sorted_tables:  # parents before children, for the foreign keys
            rows = [dict(r._mapping) for r in src.execute(select(source.tables[table.name]))]
            if rows:
                dst.execute(table.insert(), rows)
            if "id" in table.c:
                dst.execute(
                    text(
                        f"SELECT setval(pg_get_serial_sequence('\"{table.name}\"', 'id'), "
                        f'COALESCE((SELECT MAX(id) FROM "{table.name}"), 0) + 1, false)'
                    )
                )
    old.dispose()
    engine.dispose()


def test_upgrading_a_first_release_database_keeps_every_row(db_url, tmp_path):
    _release_database_at(db_url, tmp_path)
    old_engine = create_engine(f"sqlite:///{RELEASE_DB}")
    before = _rows(old_engine)
    old_engine.dispose()
    assert len(before) == 18 and all(before.values()), "the release database should have rows in every table"

    result = relaybot("db", "upgrade", db_url=db_url, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    head = schema_revisions(make_engine(db_url))[1]
    assert f"数据库已从版本 {BASELINE} 升级到 {head}" in result.stdout  # real migrations ran, not just a stamp

    engine = make_engine(db_url)
    columns = {name: [c for c, _ in next(iter(rows))] for name, rows in before.items()}
    after = _rows(engine, columns)
    assert after == before
    current, head = schema_revisions(engine)
    assert current == head
    with engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == head
    engine.dispose()

    # The upgraded database works: the CLI reads the release's units, and new rows get new ids.
    units = relaybot("units", db_url=db_url, cwd=tmp_path)
    assert units.returncode == 0, units.stderr
    assert "城关镇" in units.stdout
    pushed = relaybot("push", "刷单", db_url=db_url, cwd=tmp_path)
    assert pushed.returncode == 0, pushed.stderr
    engine = make_engine(db_url)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM push")).scalar() == 2
    engine.dispose()


def test_a_database_from_a_newer_release_is_left_alone(db_url, tmp_path):
    engine = make_engine(db_url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999_future'"))
    engine.dispose()
    result = relaybot("db", "upgrade", db_url=db_url, cwd=tmp_path)
    assert result.returncode == 1
    assert "9999_future" in result.stderr and "新版本" in result.stderr
    # Every other command, and the bot itself, refuses the same way instead of crashing.
    for args in (("status",), ("units",), ("run",)):
        refused = relaybot(
            *args,
            db_url=db_url,
            cwd=tmp_path,
            WECHATY_PUPPET_SERVICE_ENDPOINT="127.0.0.1:9",
            WECHATY_PUPPET_SERVICE_TOKEN="t",
        )
        assert refused.returncode == 1 and "9999_future" in refused.stderr, args
        assert "Traceback" not in refused.stderr
    engine = make_engine(db_url)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == "9999_future"
        assert "unit" in inspect(conn).get_table_names()
    engine.dispose()


def test_upgrade_on_an_empty_database_creates_it(tmp_path):
    url = f"sqlite:///{tmp_path / 'new' / 'relaybot.db'}"
    first = relaybot("db", "upgrade", db_url=url, cwd=tmp_path)
    assert first.returncode == 0 and "已新建数据库" in first.stdout, first.stderr
    again = relaybot("db", "upgrade", db_url=url, cwd=tmp_path)
    assert again.returncode == 0 and "无需升级" in again.stdout, again.stderr


def test_a_backup_taken_while_the_bot_writes_is_one_consistent_moment(db_url, tmp_path):
    engine = make_engine(db_url)
    stop = threading.Event()
    written, errors = [], []

    def writer():
        # Each transaction adds a pair of rows: a consistent copy always holds an even number.
        try:
            while not stop.is_set():
                with session(engine) as s:
                    for half in ("a", "b"):
                        s.add(AuditLog(at=datetime.now(UTC), action="pair", detail=half))
                    s.commit()
                written.append(1)
        except Exception as exc:  # surfaced by the main thread
            errors.append(exc)
            raise

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while len(written) < 20 and not errors and time.monotonic() < deadline:
            time.sleep(0.01)
        assert not errors and len(written) >= 20, errors
        target = tmp_path / "backup" / "relaybot-2026-11-28.db"
        result = relaybot("db", "backup", str(target), db_url=db_url, cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        assert "已备份到" in result.stdout
        time.sleep(0.1)
    finally:
        stop.set()
        thread.join()
    assert not list(target.parent.glob("*.partial"))

    if on_postgres():
        restored = _restore_postgres(target, db_url)
    else:
        restored = create_engine(f"sqlite:///{target}")
        with restored.connect() as conn:
            assert conn.execute(text("PRAGMA integrity_check")).scalar() == "ok"
            assert conn.execute(text("PRAGMA journal_mode")).scalar() == "delete"  # one self-contained file
    with restored.connect() as conn:
        copied = conn.execute(text("SELECT COUNT(*) FROM auditlog WHERE action = 'pair'")).scalar()
    restored.dispose()
    with engine.connect() as conn:
        total = conn.execute(text("SELECT COUNT(*) FROM auditlog WHERE action = 'pair'")).scalar()
    engine.dispose()
    assert copied % 2 == 0 and 40 <= copied <= total

    # An existing file is never overwritten.
    again = relaybot("db", "backup", str(target), db_url=db_url, cwd=tmp_path)
    assert again.returncode == 1 and "已存在" in again.stderr


def _restore_postgres(dump: Path, db_url: str):
    """Restore a pg_dump file into a new database on the same server; returns an engine on it."""
    url = make_url(db_url)
    name = url.database + "_restored"
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {name}"))
    admin.dispose()
    dsn = url.set(drivername="postgresql", database=name).render_as_string(hide_password=False)
    done = subprocess.run(["pg_restore", "--no-owner", f"--dbname={dsn}", str(dump)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return create_engine(url.set(database=name))
