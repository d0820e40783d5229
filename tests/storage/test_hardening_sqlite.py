"""Hardening: SQLite runs in WAL mode with a busy timeout, so the CLI and the running bot can work at the same time.

One connection holds a write transaction (BEGIN IMMEDIATE, with enough written that SQLite spills it to disk,
which in the old rollback-journal mode locks every reader out) while a reader in this process, `relaybot status`
and `relaybot push 刷单` run. The reader and `status` must finish while the write is still held; `push` must wait
for it and then succeed. These tests make their own SQLite file, so they run the same when the suite uses PostgreSQL.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

from sqlalchemy import text
from sqlmodel import func, select

from bot.storage.db import create_schema, make_engine, session
from bot.storage.models import AuditLog, Group, GroupKind, Push
from tests.bot_process import relaybot
from tests.conftest import EXAMPLE_ROSTER

ROWS = 300  # × 10 kB: far more than the writer's page cache, so the transaction spills to the database files


def _database(tmp_path) -> tuple[str, str]:
    path = tmp_path / "relay.db"
    url = f"sqlite:///{path}"
    done = relaybot("roster", "import", str(EXAMPLE_ROSTER), db_url=url, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    engine = make_engine(url)
    with session(engine) as s:
        s.add(Group(room_id="liaison@chatroom", name="全区反诈联络员群", kind=GroupKind.LIAISON.value, set_by="config"))
        s.commit()
    engine.dispose()
    return str(path), url


def test_engine_connections_use_wal_and_a_busy_timeout(tmp_path):
    url = f"sqlite:///{tmp_path / 'a.db'}"
    engine = make_engine(url)
    create_schema(engine)
    seen = []

    def pragmas():
        with engine.connect() as conn:
            seen.append(
                (conn.execute(text("PRAGMA journal_mode")).scalar(), conn.execute(text("PRAGMA busy_timeout")).scalar())
            )

    pragmas()
    worker = threading.Thread(target=pragmas)  # a second pooled connection, made in another thread
    worker.start()
    worker.join()
    engine.dispose()
    pragmas()  # a brand-new connection after the pool was emptied
    assert len(seen) == 3
    for mode, timeout_ms in seen:
        assert mode == "wal"
        assert timeout_ms >= 2000  # longer than the bot's transactions (and this test's 2 s hold)
    # WAL is recorded in the file itself: any other program opening it (sqlite3, a backup script) uses it too.
    plain = sqlite3.connect(tmp_path / "a.db")
    assert plain.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    plain.close()


class Writer(threading.Thread):
    """Holds one write transaction for `seconds`, with ROWS large rows written but not committed."""

    def __init__(self, url: str, seconds: float) -> None:
        super().__init__(daemon=True)
        self.url, self.seconds = url, seconds
        self.holding = threading.Event()
        self.released_at: float | None = None
        self.error: BaseException | None = None

    def run(self) -> None:
        engine = make_engine(self.url)
        raw = engine.raw_connection()
        try:
            con = raw.driver_connection
            con.isolation_level = None  # our own BEGIN and COMMIT
            con.execute("PRAGMA cache_size=10")  # a small cache: the write spills to disk, as a big one would
            con.execute("BEGIN IMMEDIATE")
            at = datetime(2026, 11, 26, tzinfo=UTC).isoformat(sep=" ")
            con.executemany(
                "INSERT INTO auditlog (at, actor_id, actor_name, action, detail, allowed) VALUES (?, ?, ?, ?, ?, 1)",
                [(at, "bot", "bot", "hold", "x" * 10_000) for _ in range(ROWS)],
            )
            self.holding.set()
            time.sleep(self.seconds)
            con.execute("COMMIT")
            self.released_at = time.monotonic()
        except BaseException as exc:  # reported by the test
            self.error = exc
            self.holding.set()
        finally:
            raw.close()
            engine.dispose()


def test_cli_and_a_reader_work_while_the_bot_holds_a_write_transaction(tmp_path):
    path, url = _database(tmp_path)
    # How long the CLI takes to start and answer here (shared, busy machines differ): hold the write long enough that
    # both commands certainly run into it.
    started = time.monotonic()
    warm = relaybot("status", db_url=url, cwd=tmp_path)
    assert warm.returncode == 0, warm.stderr
    startup = time.monotonic() - started
    writer = Writer(url, seconds=2.0 + 2 * startup)
    writer.start()
    assert writer.holding.wait(30) and writer.error is None, writer.error

    with ThreadPoolExecutor(max_workers=2) as pool:
        status = pool.submit(lambda: (relaybot("status", db_url=url, cwd=tmp_path), time.monotonic()))
        push = pool.submit(lambda: (relaybot("push", "刷单", db_url=url, cwd=tmp_path), time.monotonic()))

        # A reader in this process, on an engine like the bot's, while the write is held: it sees the last commit.
        reader = make_engine(url)
        read_started = time.monotonic()
        with session(reader) as s:
            held_rows = s.exec(select(func.count()).select_from(AuditLog).where(AuditLog.action == "hold")).one()
        read_seconds = time.monotonic() - read_started
        assert held_rows == 0 and read_seconds < 1.0, read_seconds
        assert writer.released_at is None, "the write ended before the reader ran: the test proves nothing"

        status_done, status_at = status.result(timeout=120)
        push_done, push_at = push.result(timeout=120)
    writer.join(30)
    assert writer.error is None, writer.error
    assert status_done.returncode == 0, status_done.stderr
    assert "进行中的推送：0 条" in status_done.stdout
    assert status_at < writer.released_at, "status had to wait for the writer: readers are blocked"
    assert push_done.returncode == 0, push_done.stderr
    assert "已推送 #1" in push_done.stdout, push_done.stdout
    assert push_at > writer.released_at  # it waited for the lock instead of failing with "database is locked"

    with session(reader) as s:
        assert s.exec(select(func.count()).select_from(AuditLog).where(AuditLog.action == "hold")).one() == ROWS
        assert [p.id for p in s.exec(select(Push))] == [1]
    reader.dispose()
    plain = sqlite3.connect(path)
    assert plain.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    plain.close()
