"""One running bot per database: a lock taken before the bot connects to the gateway, held for the process's life.

Two bots on one database and one gateway knock each other off the event stream and both write the outbox, so
the second one must not start. The lock is one the operating system or the database server releases by itself
when the process ends, kill -9 included, so a crash never leaves a stale lock behind that blocks the restart:

- SQLite: `flock` on `<database>.lock` beside the database file. The file stays after the bot stops (deleting
  it while another process may be opening it would let two processes lock two different files); what it says
  (pid, host, since when) only means something while it is locked.
- PostgreSQL: a session-level advisory lock (`pg_try_advisory_lock`) on one dedicated connection. The
  connection's application_name carries the pid and host, so the second instance can name the first from
  pg_stat_activity. Advisory locks belong to one database, so two bots on two databases of one server are fine.
- An in-memory SQLite database cannot be shared: no lock.

Read-only commands (status, doctor, report, units) and the CLI commands that only queue work for the running bot
(roster import, push, stats import) never take the lock. `holder()` looks without taking it, for `doctor`.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import socket
import time
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.pool import NullPool

from bot.storage.guard import sqlite_path

log = logging.getLogger(__name__)

# The advisory lock's key: fixed, derived from a constant, the same for every release.
LOCK_NAME = b"relaybot single instance"
ADVISORY_KEY = int.from_bytes(hashlib.sha256(LOCK_NAME).digest()[:8], "big", signed=True)
APP_NAME_PREFIX = "relaybot run"
# A probe (`relaybot doctor`) holds the SQLite lock file's shared lock for a moment; a bot starting in that moment
# tries again for this long before it believes that another bot runs.
RETRY_SECONDS = 1.0


class AlreadyRunning(RuntimeError):
    """Another bot process holds the lock of this database. `holder` names it as far as it is known."""

    def __init__(self, holder: str) -> None:
        super().__init__(holder)
        self.holder = holder


def describe_self() -> str:
    """What the lock says about this process: pid, host and start time (UTC)."""
    since = datetime.now(UTC).replace(microsecond=0).isoformat()
    return f"pid={os.getpid()} host={socket.gethostname()} since={since}"


def lock_path(database_url: str) -> Path | None:
    """The SQLite lock file for `database_url`; None when the database is not an SQLite file."""
    path = sqlite_path(database_url)
    return None if path is None else Path(f"{path}.lock")


class InstanceLock:
    """The held lock; `release()` (or the end of the process) frees it."""

    def __init__(
        self,
        *,
        fd: int | None = None,
        conn: Connection | None = None,
        engine: Engine | None = None,
        key: int = ADVISORY_KEY,
    ):
        self._fd = fd
        self._conn = conn
        self._engine = engine
        self._key = key

    @property
    def held(self) -> bool:
        return self._fd is not None or self._conn is not None

    def release(self) -> None:
        """Give the lock up now (a clean stop; the kernel or the server does it after a crash)."""
        if self._fd is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": self._key})
            with contextlib.suppress(Exception):
                self._conn.close()
            self._conn = None
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None


def acquire(database_url: str, *, retry_seconds: float = RETRY_SECONDS) -> InstanceLock:
    """Take the single-instance lock of `database_url`, or raise AlreadyRunning naming the holder."""
    backend = make_url(database_url).get_backend_name()
    if backend == "sqlite":
        path = lock_path(database_url)
        return InstanceLock() if path is None else _acquire_file(path, retry_seconds)
    if backend == "postgresql":
        return _acquire_advisory(database_url)
    log.warning("no single-instance lock for a %s database", backend)
    return InstanceLock()


def holder(database_url: str) -> str | None:
    """Who holds the lock right now ("pid=… host=… since=…", or "" when it is held by someone unnamed); None when
    nobody does. Never creates the lock file; never blocks a bot that is starting for more than a moment."""
    backend = make_url(database_url).get_backend_name()
    if backend == "postgresql":
        engine = create_engine(database_url, poolclass=NullPool)
        try:
            with engine.connect() as conn:
                return _advisory_holder(conn, _advisory_key(conn))
        finally:
            engine.dispose()
    path = lock_path(database_url) if backend == "sqlite" else None
    if path is None or not path.exists():
        return None
    fd = os.open(path, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _read_holder(fd)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


# ---- SQLite: a lock file ------------------------------------------------------------------------------------


def _acquire_file(path: Path, retry_seconds: float) -> InstanceLock:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o640)  # not inherited by child processes (O_CLOEXEC)
    deadline = time.monotonic() + retry_seconds
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            if time.monotonic() >= deadline:
                name = _read_holder(fd)
                os.close(fd)
                raise AlreadyRunning(name) from None
            time.sleep(0.05)
        except OSError:
            os.close(fd)
            raise
    os.ftruncate(fd, 0)
    os.pwrite(fd, (describe_self() + "\n").encode(), 0)
    log.info("single-instance lock taken: %s", path)
    return InstanceLock(fd=fd)


def _read_holder(fd: int) -> str:
    try:
        return os.pread(fd, 300, 0).decode(errors="replace").strip()
    except OSError:
        return ""


# ---- PostgreSQL: an advisory lock ----------------------------------------------------------------------------


def _acquire_advisory(database_url: str) -> InstanceLock:
    # A connection of its own (no pool), in autocommit: an idle session holding the lock, not an open transaction.
    name = f"{APP_NAME_PREFIX} {describe_self()}"[:63]  # PostgreSQL keeps 63 bytes of application_name
    engine = create_engine(
        database_url, poolclass=NullPool, connect_args={"application_name": name}, isolation_level="AUTOCOMMIT"
    )
    try:
        conn = engine.connect()
    except Exception:
        engine.dispose()
        raise
    try:
        key = _advisory_key(conn)
        got = conn.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": key}).scalar()
        if not got:
            raise AlreadyRunning(_advisory_holder(conn, key) or "")
    except BaseException:
        conn.close()
        engine.dispose()
        raise
    log.info("single-instance lock taken: PostgreSQL advisory lock %d", key)
    return InstanceLock(conn=conn, engine=engine, key=key)


def _advisory_key(conn: Connection) -> int:
    """The lock of this bot's data: the database's, or for one district of a city (its schema first on the
    path, bot/districtnames.py) that district's, so the districts' bots on one database run side by side."""
    schema = conn.execute(text("SELECT current_schema()")).scalar() or "public"
    if schema == "public":
        return ADVISORY_KEY
    return int.from_bytes(hashlib.sha256(LOCK_NAME + b"\n" + schema.encode()).digest()[:8], "big", signed=True)


def _advisory_holder(conn: Connection, key: int) -> str | None:
    """The holder of the advisory lock from pg_locks and pg_stat_activity; None when nobody holds it."""
    # A bigint key is stored as (classid = high 32 bits, objid = low 32 bits, objsubid = 1).
    unsigned = key & 0xFFFFFFFFFFFFFFFF
    row = conn.execute(
        text(
            "SELECT a.application_name, a.client_addr, l.pid FROM pg_locks l "
            "LEFT JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE l.locktype = 'advisory' AND l.granted AND l.database = "
            "(SELECT oid FROM pg_database WHERE datname = current_database()) "
            "AND l.classid = CAST(:high AS oid) AND l.objid = CAST(:low AS oid) AND l.objsubid = 1"
        ),
        {"high": unsigned >> 32, "low": unsigned & 0xFFFFFFFF},
    ).first()
    if row is None:
        return None
    app_name, client, backend_pid = row
    if app_name and str(app_name).startswith(APP_NAME_PREFIX):
        return str(app_name)[len(APP_NAME_PREFIX) :].strip()
    return f"postgres-backend={backend_pid}" + (f" client={client}" if client else "")
