"""Storage faults: a full disk, and an SQLite file replaced or deleted under the running bot; the database's
identity and the marker kept beside it, so a bot never starts on an empty database where one existed before.

- `is_storage_full(exc)`: SQLite's SQLITE_FULL, PostgreSQL's DiskFull (53100), or ENOSPC from a file write.
- `watch_file(engine)`: from now on every commit of a session made by `bot.storage.db.session` first checks that
  the file at the configured path is still the one the engine opened; if not it raises `DatabaseReplaced`
  and the transaction is rolled back (nothing more goes into a deleted file, nothing is acknowledged).
- `ensure_identity`, `check_identity`, `write_marker`: the database id (BotState "database_id") and the marker
  file holding it with a few counts from the last clean run.
- `free_space(path)`: the free bytes of the filesystem holding `path`.
"""

from __future__ import annotations

import errno
import json
import os
import secrets
import shutil
import sqlite3
import weakref
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.request import pathname2url

from sqlalchemy import event, func
from sqlalchemy.engine import Engine, make_url
from sqlmodel import Session, select

from bot.storage.models import BotState, Confirmation, Liaison, Push, Unit

DATABASE_ID = "database_id"
SQLITE_FULL = 13
PG_DISK_FULL = "53100"


class StorageFault(RuntimeError):
    """A write could not be stored: the disk is full, or the database file is not the one the bot opened."""

    reason = "full"


class DatabaseReplaced(StorageFault):
    """The SQLite file at the configured path is no longer the file the bot opened (deleted or replaced)."""

    reason = "replaced"


def is_storage_full(exc: BaseException | None) -> bool:
    """Whether `exc` (or what caused it) says the disk or the database is full."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
            return True
        if isinstance(exc, sqlite3.OperationalError) and (
            getattr(exc, "sqlite_errorcode", None) == SQLITE_FULL or "database or disk is full" in str(exc)
        ):
            return True
        if getattr(exc, "sqlstate", None) == PG_DISK_FULL or getattr(exc, "pgcode", None) == PG_DISK_FULL:
            return True
        exc = getattr(exc, "orig", None) or exc.__cause__ or exc.__context__
    return False


def storage_fault(exc: BaseException) -> StorageFault | None:
    """`exc` as a StorageFault if it is one (or a full disk underneath), else None."""
    if isinstance(exc, StorageFault):
        return exc
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, StorageFault):
            return cause
        cause = cause.__cause__ or cause.__context__
    if is_storage_full(exc):
        fault = StorageFault(str(getattr(exc, "orig", None) or exc).splitlines()[0])
        fault.__cause__ = exc
        return fault
    return None


# ---- the file under the engine -------------------------------------------------------------------


def sqlite_path(url: str) -> Path | None:
    """The file of an SQLite URL; None for PostgreSQL and in-memory databases."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database or "")


@dataclass(frozen=True)
class FileIdentity:
    """Which file the engine opened: the path and its device and inode at the time."""

    path: Path
    dev: int
    ino: int

    def problem(self) -> str:
        """ "" while the path still names the opened file; else what happened, for the log."""
        try:
            now = os.stat(self.path)
        except FileNotFoundError:
            return f"{self.path} was deleted"
        except OSError as exc:
            return f"{self.path} cannot be read ({exc})"
        if (now.st_dev, now.st_ino) != (self.dev, self.ino):
            return f"{self.path} was replaced by another file"
        return ""


_watched: weakref.WeakKeyDictionary[Engine, FileIdentity] = weakref.WeakKeyDictionary()


def watch_file(engine: Engine) -> FileIdentity | None:
    """Remember the SQLite file `engine` uses now; every later commit checks it (see `check_before_commit`)."""
    path = sqlite_path(str(engine.url))
    if path is None or not path.exists():
        return None
    st = os.stat(path)
    identity = FileIdentity(path, st.st_dev, st.st_ino)
    if engine not in _watched:
        event.listen(engine, "do_connect", _open_existing_only)
    _watched[engine] = identity
    return identity


def _open_existing_only(_dialect, _record, cargs, cparams) -> None:
    """A new connection of a watched engine opens the file read-write but never creates it: after the file was
    deleted, SQLite would otherwise make an empty database at the path and the bot would carry on in it."""
    if cargs and isinstance(cargs[0], str) and not cargs[0].startswith("file:"):
        cargs[0] = "file:" + pathname2url(os.path.abspath(cargs[0])) + "?mode=rw"
        cparams["uri"] = True


def unwatch_file(engine: Engine) -> None:
    """Stop checking `engine`'s file (tests that replace it on purpose, and a bot that stops)."""
    _watched.pop(engine, None)


def replaced_problem(engine: Engine) -> str:
    """What is wrong with `engine`'s watched file ("" if nothing is, or it is not watched)."""
    identity = _watched.get(engine)
    return identity.problem() if identity is not None else ""


def check_before_commit(session: Session) -> None:
    """A session's before_commit hook: refuse to commit into a file that is no longer the configured one."""
    if not _watched:
        return
    bind = session.get_bind()
    engine = getattr(bind, "engine", bind)
    problem = replaced_problem(engine)  # type: ignore[arg-type]
    if problem:
        raise DatabaseReplaced(problem)


# ---- the database's identity and the marker beside it --------------------------------------------


@dataclass(frozen=True)
class Marker:
    """What the marker file says about the database the bot last ran on."""

    database_id: str
    units: int = 0
    liaisons: int = 0
    confirmations: int = 0
    last_push: int = 0
    written_at: str = ""


def marker_path(url: str, state_dir: Path) -> Path:
    """Beside an SQLite file (`relaybot.db.marker`); for PostgreSQL in `state_dir`."""
    path = sqlite_path(url)
    if path is not None:
        return path.with_name(path.name + ".marker")
    return state_dir / "database.marker"


def read_marker(path: Path) -> Marker | None:
    """The marker at `path`, or None when there is none (or it is not readable as one)."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return None
    if not isinstance(raw, dict) or not raw.get("database_id"):
        return None
    fields = Marker.__dataclass_fields__
    return Marker(**{k: v for k, v in raw.items() if k in fields})


def database_id(s: Session) -> str:
    """The id stored in the database ("" for a database that has none yet, or has no tables)."""
    try:
        row = s.get(BotState, DATABASE_ID)
    except Exception:  # no BotState table: an empty database
        s.rollback()
        return ""
    return row.value if row is not None else ""


def ensure_identity(s: Session, *, now: datetime) -> str:
    """The database's id, made and stored (not committed) if it has none."""
    current = database_id(s)
    if current:
        return current
    new = secrets.token_hex(8)
    s.add(BotState(key=DATABASE_ID, value=new, updated_at=now))
    return new


def current_marker(s: Session, ident: str, *, now: datetime) -> Marker:
    """The marker for the database `s` reads, with its id `ident`."""

    def count(model) -> int:
        return int(s.exec(select(func.count()).select_from(model)).one())

    last = s.exec(select(func.max(Push.id))).one()
    return Marker(
        database_id=ident,
        units=count(Unit),
        liaisons=count(Liaison),
        confirmations=count(Confirmation),
        last_push=int(last or 0),
        written_at=now.astimezone(UTC).isoformat(timespec="seconds"),
    )


def write_marker(path: Path, marker: Marker) -> None:
    """Write the marker atomically (a half-written marker would stop the next start)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(marker.__dict__, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    os.replace(partial, path)


def identity_problem(marker: Marker | None, found_id: str) -> str:
    """Why the database is not the one the marker remembers ("" if it is, or there is no marker): "missing"
    (no database id: a new, empty or never-run database) or "different"."""
    if marker is None:
        return ""
    if not found_id:
        return "missing"
    return "" if found_id == marker.database_id else "different"


# ---- free space ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Space:
    """Free and total bytes of the filesystem holding `path`."""

    path: Path
    free: int
    total: int
    dev: int  # the filesystem's device: two paths on one filesystem are one warning

    def low(self, min_free_mb: float, min_free_percent: float) -> bool:
        """Below `min_free_mb` MB free, or below `min_free_percent` % of the filesystem."""
        if self.free < min_free_mb * 1024 * 1024:
            return True
        return self.total > 0 and self.free * 100 < min_free_percent * self.total


def free_space(path: Path) -> Space | None:
    """The space of the filesystem holding `path` (or its nearest existing parent); None if none exists."""
    probe = Path(path).absolute()
    while not probe.exists():
        if probe.parent == probe:
            return None
        probe = probe.parent
    usage = shutil.disk_usage(probe)
    return Space(Path(path), usage.free, usage.total, os.stat(probe).st_dev)


def human_size(n: float) -> str:
    """Bytes as people read them: 312 MB, 1.5 GB."""
    if n >= 1 << 30:
        return f"{n / (1 << 30):.1f} GB"
    return f"{n / (1 << 20):.0f} MB"
