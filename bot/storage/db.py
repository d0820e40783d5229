"""Engine and sessions."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import event, inspect
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.pool import StaticPool
from sqlmodel import Session, create_engine

from bot.districtnames import district_of, quoted
from bot.storage import models  # noqa: F401  (registers the tables)
from bot.storage.guard import check_before_commit

# A test and diagnostic knob, not a setting: the name of a file. While that file exists, every SQLite
# connection of this process behaves as on a full disk: the file is capped at its size (PRAGMA max_page_count)
# and each write also needs new pages (a TEMP trigger per table), so it fails with SQLite's own "database or
# disk is full" (SQLITE_FULL), as every commit does when the disk is full and the WAL cannot grow. Removing the
# file lifts it at the next checkout. The end-to-end tests use it to fill the "disk" of a running bot.
DIAG_FULL_FILE = "RELAYBOT_DIAG_FULL_FILE"


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
        if os.environ.get(DIAG_FULL_FILE):
            diag_full_knob(engine)
    return engine


def diag_full_knob(engine: Engine) -> None:
    """Let the file named by $RELAYBOT_DIAG_FULL_FILE fill `engine`'s "disk" (see DIAG_FULL_FILE)."""
    event.listen(engine, "checkout", _diag_full)


def _diag_full(dbapi_conn, record, _proxy) -> None:
    full = Path(os.environ.get(DIAG_FULL_FILE) or "/nonexistent").exists()
    if full == record.info.get("diag_full", False):
        return
    cur = dbapi_conn.cursor()
    if "diag_max_pages" not in record.info:
        record.info["diag_max_pages"] = cur.execute("PRAGMA max_page_count").fetchone()[0]
    if full:
        cur.execute("CREATE TABLE IF NOT EXISTS diag_fill (b BLOB)")  # before the cap: it needs a page
        dbapi_conn.commit()
        tables = [
            name
            for (name,) in cur.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
            if not name.startswith("sqlite_") and name != "diag_fill"
        ]
        cur.execute("PRAGMA max_page_count=1")  # never below the current size: the file cannot grow
        for i, name in enumerate(tables):
            for op in ("INSERT", "UPDATE", "DELETE"):
                cur.execute(
                    f'CREATE TEMP TRIGGER IF NOT EXISTS diag_full_{i}_{op} AFTER {op} ON main."{name}" '
                    "BEGIN INSERT INTO diag_fill VALUES (randomblob(1000000)); END"
                )
    else:
        for (name,) in cur.execute(
            "SELECT name FROM sqlite_temp_master WHERE type = 'trigger' AND name LIKE 'diag_full_%'"
        ).fetchall():
            cur.execute(f'DROP TRIGGER temp."{name}"')
        cur.execute(f"PRAGMA max_page_count={int(record.info['diag_max_pages'])}")
    dbapi_conn.commit()
    cur.close()
    record.info["diag_full"] = full


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    # WAL lets the CLI read while the bot writes; foreign keys are off by default in SQLite.
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA busy_timeout=15000")
    cur.close()


MIGRATIONS = Path(__file__).parent / "migrations"
# The schema of the first release (0.1.0), which created its tables without alembic.
BASELINE = "0001"


def alembic_config():
    """Alembic's configuration for the bundled migrations (no alembic.ini needed at run time)."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


class SchemaTooNew(RuntimeError):
    """The database was upgraded by a newer release than this code: running on it could damage it."""


@dataclass(frozen=True)
class Upgrade:
    """What upgrade_schema found and did: the revision before (None: an empty database), the newest, and the
    revisions applied in order (empty when the schema was already current)."""

    before: str | None
    head: str
    applied: list[str]


def schema_revisions(engine: Engine) -> tuple[str | None, str]:
    """(the database's revision, the newest revision this code knows); None: an empty database."""
    with engine.connect() as conn:
        _, current, head = _revisions(conn)
    return current, head


def _revisions(conn) -> tuple[str | None, str | None, str]:
    """(the revision alembic recorded, the schema's revision, the newest one). A database made by 0.1.0 has
    recorded nothing but is at BASELINE. Raises SchemaTooNew for a revision this code does not know."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    scripts = ScriptDirectory.from_config(alembic_config())
    head = scripts.get_current_head() or ""
    stamped = MigrationContext.configure(conn).get_current_revision()
    current = BASELINE if stamped is None and _has_release_tables(conn) else stamped
    if current is not None and current not in {rev.revision for rev in scripts.walk_revisions()}:
        raise SchemaTooNew(
            f"数据库的结构版本是 {current}，比本程序认识的最新版本 {head} 还新：它被新版本的机器人升级过。"
            "请安装新版本，不要用旧版本打开它。"
        )
    return stamped, current, head


def upgrade_schema(engine: Engine) -> Upgrade:
    """Bring the database to the newest schema.

    A database made by 0.1.0 (tables, no alembic_version) is first recorded as the baseline revision.
    Raises SchemaTooNew for a database from a newer release. On PostgreSQL the whole upgrade is one
    transaction; SQLite's driver commits DDL as it goes, which is why the upgrade instructions back up first.
    """
    with engine.connect() as conn:
        stamped, current, head = _revisions(conn)
    if stamped == head:
        return Upgrade(current, head, [])  # the usual start: nothing to do, no write transaction
    with engine.begin() as conn:
        return upgrade_connection(conn)


def upgrade_connection(conn) -> Upgrade:
    """upgrade_schema on `conn`, in the caller's transaction (a new district is made in one: bot/storage/districts.py)."""
    from alembic import command
    from alembic.script import ScriptDirectory

    config = alembic_config()
    config.attributes["connection"] = conn
    stamped, current, head = _revisions(conn)  # again, inside the transaction that migrates
    if stamped is None and current == BASELINE:
        command.stamp(config, BASELINE)
    command.upgrade(config, "head")
    scripts = ScriptDirectory.from_config(config)
    applied = [rev.revision for rev in scripts.iterate_revisions(head, current or "base") if rev.revision != current]
    return Upgrade(current, head, applied[::-1])


def describe_error(exc: BaseException) -> str:
    """A database error in one line for people: the driver's message, without the SQL and its parameters."""
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _has_release_tables(conn) -> bool:
    names = set(inspect(conn).get_table_names())
    return {"unit", "push", "confirmation"} <= names


def create_schema(engine: Engine) -> None:
    """Create or upgrade the tables (alembic migrations); cheap when the schema is already current."""
    upgrade_schema(engine)


class GuardedSession(Session):
    """A session whose commits first check that a watched SQLite file is still in place (bot/storage/guard.py)."""


event.listen(GuardedSession, "before_commit", check_before_commit)


def session(engine: Engine) -> Session:
    """A new session that keeps objects usable after commit."""
    return GuardedSession(engine, expire_on_commit=False)


def backup(url: str, target: Path) -> Path:
    """A consistent copy of the database while the bot may be writing to it; never overwrites a file.

    SQLite: the online backup API, one read transaction, so the copy is a single moment; the result is one
    self-contained file (not WAL). PostgreSQL: pg_dump's custom format (restore with pg_restore).
    """
    target = Path(target)
    if target.exists():
        raise FileExistsError(f"{target} 已存在，不会覆盖它；请换一个文件名（例如带上日期）")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    parsed = make_url(url)
    try:
        if parsed.get_backend_name() == "sqlite":
            database = parsed.database or ""
            if database in ("", ":memory:") or not Path(database).is_file():
                raise FileNotFoundError(f"没有找到数据库文件 {database or '(内存数据库)'}")
            source = sqlite3.connect(database, timeout=15)
            copy = sqlite3.connect(partial)
            try:
                source.backup(copy)  # all pages in one step: one consistent snapshot
                copy.execute("PRAGMA journal_mode=DELETE")
                (check,) = copy.execute("PRAGMA integrity_check").fetchone()
                if check != "ok":
                    raise RuntimeError(f"备份文件校验失败：{check}")
            finally:
                copy.close()
                source.close()
        elif parsed.get_backend_name() == "postgresql":
            pg_dump = shutil.which("pg_dump")
            if pg_dump is None:
                raise FileNotFoundError(
                    "没有找到 pg_dump：请安装 PostgreSQL 客户端（Debian：apt install postgresql-client）"
                )
            env = dict(os.environ)
            if parsed.password:
                env["PGPASSWORD"] = str(parsed.password)  # not on the command line, where ps would show it
            options = parsed.query.get("options")
            if options:  # libpq's URIs do not read "+" as a space: the district's options go by PGOPTIONS
                env["PGOPTIONS"] = options if isinstance(options, str) else " ".join(options)
            query = {key: value for key, value in parsed.query.items() if key != "options"}
            dsn = parsed.set(drivername="postgresql", password=None, query=query).render_as_string(hide_password=False)
            # A district of a city (bot/districtnames.py): its own schema only, under its own role.
            district = district_of(url)
            only = [f"--schema={quoted(district)}"] if district else []
            done = subprocess.run(
                [pg_dump, "--format=custom", f"--file={partial}", f"--dbname={dsn}", *only],
                env=env,
                capture_output=True,
                text=True,
            )
            if done.returncode != 0:
                raise RuntimeError(f"pg_dump 失败：{done.stderr.strip()}")
        else:
            raise ValueError(f"不支持备份这种数据库：{parsed.get_backend_name()}")
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    return target
