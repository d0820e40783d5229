"""One liaison confirmation through the whole pipeline vs a bare SQLite insert-and-commit of one row.

Pipeline: a liaison's "已转发" arrives at RelayBot.on_message (in-memory transport, a real SQLite file in WAL
mode), is recognised, stored and committed, exactly as in the running bot. Baseline: one INSERT of a row into a
table like `confirmation` and a COMMIT, with the stdlib sqlite3 module, on a file database in the same folder
with the pragmas the bot's engine has (WAL, the same `synchronous`). The two are run in alternating blocks so
that load from other processes hits both alike.
"""

from __future__ import annotations

import asyncio
import cProfile
import pstats
import sqlite3
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from benchmarks.common import (
    ADMIN_ID,
    ADMIN_NAME,
    LIAISON_ROOM,
    LIAISON_ROOM_NAME,
    OFFICE_ROOM,
    OFFICE_ROOM_NAME,
    ROOT,
    Result,
    add_open_pushes,
    district,
    import_people,
    summary,
)

NAME = "pipeline"
TEXT = "已转发"

_BARE_TABLE = """
CREATE TABLE confirmation (
    id INTEGER NOT NULL PRIMARY KEY,
    push_id INTEGER NOT NULL,
    unit_id INTEGER NOT NULL,
    liaison_id INTEGER NOT NULL,
    at DATETIME NOT NULL,
    method VARCHAR(10) NOT NULL,
    room_id VARCHAR(200) NOT NULL,
    evidence_message_id VARCHAR(200) NOT NULL,
    evidence_text VARCHAR(500) NOT NULL,
    late BOOLEAN NOT NULL,
    acked_at DATETIME,
    evidence_file VARCHAR(100) NOT NULL,
    evidence_at DATETIME,
    evidence_hash VARCHAR(80) NOT NULL,
    verdict VARCHAR(10) NOT NULL,
    verdict_reason VARCHAR(100) NOT NULL,
    UNIQUE (push_id, unit_id)
);
CREATE INDEX ix_confirmation_push_id ON confirmation (push_id);
CREATE INDEX ix_confirmation_unit_id ON confirmation (unit_id);
"""
_BARE_INSERT = (
    "INSERT INTO confirmation (push_id, unit_id, liaison_id, at, method, room_id, evidence_message_id, evidence_text,"
    " late, acked_at, evidence_file, evidence_at, evidence_hash, verdict, verdict_reason)"
    " VALUES (?, ?, ?, ?, 'text', ?, ?, ?, 0, NULL, '', NULL, '', '', '')"
)


class BareTable:
    """The baseline: one row inserted and committed per call, nothing else."""

    def __init__(self, path: Path, pragmas: dict[str, str], units: int) -> None:
        self.conn = sqlite3.connect(path, timeout=15, check_same_thread=False)
        for name, value in pragmas.items():
            self.conn.execute(f"PRAGMA {name}={value}")
        self.conn.executescript(_BARE_TABLE)
        self.units = units
        self.n = 0

    def insert_one(self) -> None:
        push_id, unit_id = divmod(self.n, self.units)
        self.n += 1
        at = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
        self.conn.execute(_BARE_INSERT, (push_id + 1, unit_id + 1, unit_id + 1, at, LIAISON_ROOM, f"in-{self.n}", TEXT))
        self.conn.commit()

    def count(self) -> int:
        return self.conn.execute("SELECT count(*) FROM confirmation").fetchone()[0]

    def pragma(self, name: str) -> str:
        return str(self.conn.execute(f"PRAGMA {name}").fetchone()[0])

    def close(self) -> None:
        self.conn.close()


def engine_pragmas(engine) -> dict[str, str]:
    """The pragmas a connection of the bot's engine ends up with (whatever bot/storage/db.py sets)."""
    with engine.connect() as c:
        return {
            name: str(c.exec_driver_sql(f"PRAGMA {name}").scalar())
            for name in ("journal_mode", "synchronous", "foreign_keys", "busy_timeout")
        }


async def _new_bot(workdir: Path, units: int):
    """A started RelayBot on a fresh SQLite file in `workdir` with `units` units, the in-memory transport."""
    from bot.config import Settings
    from bot.runtime.app import build_bot
    from bot.storage.db import create_schema, make_engine
    from bot.transport.base import Member
    from bot.transport.memory import MemoryTransport

    db_path = workdir / "pipeline.db"
    engine = make_engine(f"sqlite:///{db_path}")
    create_schema(engine)
    people = district(units)
    import_people(engine, people)
    members = [Member(p.contact_id, p.wechat_name, "") for p in people]
    admin = Member(ADMIN_ID, ADMIN_NAME, "")
    transport = MemoryTransport(bot_id="bot-self")
    transport.add_room(LIAISON_ROOM, LIAISON_ROOM_NAME, [admin, *members])
    transport.add_room(OFFICE_ROOM, OFFICE_ROOM_NAME, [admin])
    settings = Settings(
        database_url=f"sqlite:///{db_path}",
        evidence_dir=str(workdir / "evidence"),
        cache_dir=str(workdir / "cache"),
        admin_ids=[ADMIN_ID],
        liaison_groups=[LIAISON_ROOM_NAME],
        office_group=OFFICE_ROOM_NAME,
    )
    bot = build_bot(settings, transport, engine=engine, send_loop=False)
    await bot.start()
    await bot.send_pending()  # the start-up notices, so that nothing else is pending
    return bot, transport, members


async def _measure(workdir: Path, *, units: int, pushes: int, block: int) -> Result:
    from sqlmodel import func, select

    from bot.storage.db import session
    from bot.storage.models import Confirmation

    result = Result(NAME)
    bot, transport, members = await _new_bot(workdir, units)
    engine = bot.engine
    # A warm-up push, then the measured ones: every op stores a new row (`已转发 #N`: a bare 已转发 would confirm
    # all the pushes at once, since they went out together).
    warm_pushes = 1
    refs = add_open_pushes(engine, warm_pushes + pushes, now=bot.clock())
    pragmas = engine_pragmas(engine)
    bare = BareTable(workdir / "bare.db", pragmas, units)
    messages = iter([(m, ref) for ref in refs for m in members])

    async def pipeline_op() -> float:
        member, ref = next(messages)
        msg = transport.incoming(member, f"{TEXT} #{ref}", room_id=LIAISON_ROOM)
        t = time.perf_counter()
        await bot.on_message(msg)
        return time.perf_counter() - t

    def bare_op() -> float:
        t = time.perf_counter()
        bare.insert_one()
        return time.perf_counter() - t

    for _ in range(units * warm_pushes):  # warm caches, compiled statements, the thread pool
        await pipeline_op()
        bare_op()
    handle_times: list[float] = []
    handle = bot._handle

    def timed_handle(*args):  # the part in the worker thread: the unit of work without the event-loop hops
        t = time.perf_counter()
        try:
            return handle(*args)
        finally:
            handle_times.append(time.perf_counter() - t)

    bot._handle = timed_handle
    # The time inside SQLite, from the dialect's hooks (no profiler: these wrappers cost about a microsecond).
    dialect = engine.dialect
    in_sqlite = {"commit": [0.0, 0], "execute": [0.0, 0]}

    def timed(kind: str, fn):
        def wrapper(*args, **kwargs):
            t = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                in_sqlite[kind][0] += time.perf_counter() - t
                in_sqlite[kind][1] += 1

        return wrapper

    originals = {name: getattr(dialect, name) for name in ("do_commit", "do_execute", "do_execute_no_params")}
    dialect.do_commit = timed("commit", originals["do_commit"])
    dialect.do_execute = timed("execute", originals["do_execute"])
    dialect.do_execute_no_params = timed("execute", originals["do_execute_no_params"])
    piped: list[float] = []
    based: list[float] = []
    total = units * pushes
    while len(piped) < total:
        n = min(block, total - len(piped))
        for _ in range(n):
            piped.append(await pipeline_op())
        for _ in range(n):
            based.append(bare_op())
    bot._handle = handle
    for name, fn in originals.items():
        setattr(dialect, name, fn)

    with session(engine) as s:
        stored = s.exec(select(func.count()).select_from(Confirmation)).one()
    expected = units * (warm_pushes + pushes)
    p, b = summary(piped), summary(based)
    result.add_timings(
        "confirmation through RelayBot.on_message", piped, note=f"{units} units, {pushes} open pushes, {len(piped)} ops"
    )
    handled = summary(handle_times)["mean"]
    commit_s, commits = in_sqlite["commit"]
    exec_s, statements = in_sqlite["execute"]
    ops = len(piped)
    result.add(
        "  unit of work in the worker thread (mean)",
        handled * 1000,
        "ms",
        "RelayBot._handle: session, dispatch, commit",
    )
    result.add("    in SQLite: COMMIT (mean)", commit_s / ops * 1000, "ms", f"{commits / ops:.1f} commits per message")
    result.add(
        "    in SQLite: running the SQL (mean)",
        exec_s / ops * 1000,
        "ms",
        f"{statements / ops:.1f} statements per message",
    )
    result.add("    Python around it: ORM, handlers (mean)", (handled - (commit_s + exec_s) / ops) * 1000, "ms")
    result.add(
        "  event loop and thread hand-off (mean)",
        (summary(piped)["mean"] - handled) * 1000,
        "ms",
        "on_message minus the unit of work",
    )
    result.add_timings(
        "bare sqlite3 INSERT + COMMIT of one row",
        based,
        note=f"journal_mode={bare.pragma('journal_mode')}, synchronous={bare.pragma('synchronous')}",
    )
    result.add("pipeline minus bare (mean)", (p["mean"] - b["mean"]) * 1000, "ms", "what the bot adds to the commit")
    result.add("ratio pipeline/bare (mean)", p["mean"] / b["mean"], "x", "aim: at most 2x")
    result.add("ratio pipeline/bare (p50)", p["p50"] / b["p50"], "x")
    result.add("pipeline throughput (1 / mean)", 1 / p["mean"], "msg/s")
    result.checks.update(stored=stored, expected=expected, bare_rows=bare.count(), bare_expected=expected)
    if stored != expected:
        result.problems.append(f"{stored} confirmations stored, {expected} expected")
    result.notes.append(f"bot engine pragmas: {pragmas}")
    await bot.stop()
    engine.dispose()
    bare.close()
    return result


async def _profile(workdir: Path, *, units: int) -> list[str]:
    """cProfile of 2 x `units` confirmations on a fresh bot (after a warm-up push), and the SQL of one."""
    from sqlalchemy import event

    workdir.mkdir()
    bot, transport, members = await _new_bot(workdir, units)
    engine = bot.engine
    refs = add_open_pushes(engine, 3, now=bot.clock())
    messages = iter([(m, f"{TEXT} #{ref}") for ref in refs for m in members])

    def next_message():
        member, text = next(messages)
        return transport.incoming(member, text, room_id=LIAISON_ROOM)

    for _ in range(units):
        await bot.on_message(next_message())

    profiler = cProfile.Profile()
    handle = bot._handle

    def profiled(*args):  # enabled inside the worker thread, where the unit of work runs
        profiler.enable()
        try:
            return handle(*args)
        finally:
            profiler.disable()

    statements: list[str] = []

    def record_sql(conn, cursor, statement, parameters, context, executemany):
        statements.append(" ".join(statement.split()))

    bot._handle = profiled
    ops = 2 * units
    for i in range(ops):
        if i == ops - 1:
            event.listen(engine, "before_cursor_execute", record_sql)
        await bot.on_message(next_message())
    event.remove(engine, "before_cursor_execute", record_sql)
    bot._handle = handle
    await bot.stop()
    engine.dispose()
    return profile_lines(profiler, ops, statements)


def profile_lines(profiler: cProfile.Profile, ops: int, statements: list[str]) -> list[str]:
    """Where one confirmation's time goes: SQLite itself vs the Python around it, the top functions, the SQL."""
    stats = pstats.Stats(profiler)
    total = sum(v[2] for v in stats.stats.values())  # tottime of everything
    buckets: Counter[str] = Counter()
    calls: Counter[str] = Counter()
    for (filename, _line, func), (_cc, nc, tt, _ct, _callers) in stats.stats.items():
        if func == "<method 'commit' of 'sqlite3.Connection' objects>":
            key = "sqlite3 COMMIT (WAL append + fsync)"
        elif func in (
            "<method 'execute' of 'sqlite3.Cursor' objects>",
            "<method 'executemany' of 'sqlite3.Cursor' objects>",
        ):
            key = "sqlite3 execute (running the SQL)"
        elif "sqlite3" in func:
            key = "sqlite3 other (fetch, cursor, rollback)"
        elif "/sqlalchemy/" in filename or "/sqlmodel/" in filename:
            key = "SQLAlchemy/SQLModel Python (ORM, Core, rows)"
        elif "/bot/" in filename or "/handlers/" in filename:
            key = "bot/ and handlers/ code itself"
        else:
            key = "other Python (stdlib, re, unicodedata, ...)"
        buckets[key] += tt
        calls[key] += nc
    lines = [
        (
            f"profile of {ops} confirmations (cProfile of RelayBot._handle in the worker thread; "
            f"{total / ops * 1000:.2f} ms per confirmation under the profiler):"
        )
    ]
    for key, tt in buckets.most_common():
        lines.append(
            f"  {tt / total * 100:5.1f} %  {tt / ops * 1000:6.3f} ms/op  {calls[key] / ops:7.0f} calls/op  {key}"
        )
    lines.append("  bot/ and handlers/ functions by cumulative time (ms per confirmation, calls per confirmation):")
    st = pstats.Stats(profiler)
    rows = [
        (ct, nc, f"{Path(fn).relative_to(ROOT) if fn.startswith(str(ROOT)) else fn}:{line} {func}")
        for (fn, line, func), (_cc, nc, _tt, ct, _c) in st.stats.items()
        if "/bot/" in fn or "/handlers/" in fn
    ]
    for ct, nc, where in sorted(rows, reverse=True)[:20]:
        lines.append(f"    {ct / ops * 1000:6.3f} ms  {nc / ops:5.1f}x  {where}")
    lines.append(f"  SQL statements of one confirmation ({len(statements)}):")
    lines += [f"    {s[:150]}" for s in statements]
    return lines


def run(quick: bool = False, *, profile: bool = False, workdir: Path | None = None) -> Result:
    """Measure; `quick` uses 20 units x 3 pushes instead of 100 units x 10 pushes. Profiles when the ratio
    is above 2x, or when asked."""
    units, pushes, block = (20, 3, 20) if quick else (100, 10, 50)
    t = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="relaybot-bench-pipeline-", dir=workdir) as tmp:
        result = asyncio.run(_measure(Path(tmp), units=units, pushes=pushes, block=block))
        if profile or (not quick and result.value("ratio pipeline/bare (mean)") > 2.0):
            result.notes += asyncio.run(_profile(Path(tmp) / "profile", units=units))
    result.seconds = time.perf_counter() - t
    return result
