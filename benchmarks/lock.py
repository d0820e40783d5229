"""Confirmations while the monthly report renders: nothing slow runs inside the unit-of-work lock.

A month of pushes and confirmations for 300 units (benchmarks/report.py's month) is written into a SQLite file,
plus one open push; the bot runs as its own process on the real Node Wechaty gateway. The admin says `报表 上月`
in the office group: the unit of work queues the report's text and returns, and the bot renders the .xlsx and
the chart in its child process (bot/runtime/renderer.py) outside the lock. From the moment the text row is
committed until the files are attached, liaisons say `已转发` on the gateway, one every SPACING seconds; each
must become a Confirmation row. Latency is measured from just before a message is said on the gateway to the
moment its row is visible in the database (polled every 5 ms). Target: p95 within 100 ms; printed, not asserted.
"""

from __future__ import annotations

import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from benchmarks.burst import POLL_SECONDS, RowWatcher
from benchmarks.common import (
    ADMIN_ID,
    LIAISON_ROOM,
    OFFICE_ROOM,
    TZ,
    Result,
    add_open_pushes,
    bot_env,
    district,
    open_gateway,
)

NAME = "lock"
SPACING = 0.05  # seconds between two confirmations said while the report renders
CONTROL = 20  # confirmations said the same way after the files are attached, for comparison
TARGET_MS = 100.0


def _outbox_state(conn) -> tuple[int | None, bool]:
    """(id of the monthly report's text row, whether its files are attached) as the database says now."""
    row = conn.execute(
        "SELECT id, state FROM outbox WHERE chat_id = ? AND text LIKE '📊 反诈预警转发月通报%' ORDER BY id DESC LIMIT 1",
        (OFFICE_ROOM,),
    ).fetchone()
    if row is None:
        return None, False
    return row[0], row[1] != "rendering"


def run(
    quick: bool = False, *, units: int | None = None, pushes: int | None = None, workdir: Path | None = None
) -> Result:
    """`quick`: 30 units and 40 pushes instead of 300 and 400."""
    import sqlite3

    from benchmarks import report as month
    from tests.bot_process import BotProcess

    units = units or (30 if quick else 300)
    pushes = pushes or (40 if quick else 400)
    started = time.perf_counter()
    result = Result(NAME)
    people = district(units)
    today = datetime.now(TZ).date()
    last_month = (today.replace(day=1) - timedelta(days=1)).replace(day=1)
    with tempfile.TemporaryDirectory(prefix="relaybot-bench-lock-", dir=workdir) as tmp:
        work = Path(tmp)
        db_path = work / "relay.db"
        db_url = f"sqlite:///{db_path}"
        from bot.storage.db import create_schema, make_engine

        engine = make_engine(db_url)
        create_schema(engine)
        saved = month.MONTH_START
        month.MONTH_START = last_month  # the month `报表 上月` covers, whatever today is
        try:
            counts = month.build_month(engine, units=units, pushes=pushes)
        finally:
            month.MONTH_START = saved
        ref = add_open_pushes(engine, 1, now=datetime.now(UTC))[0]
        engine.dispose()
        gw = open_gateway(people)
        bot = watcher = None
        said: dict[str, float] = {}
        after: dict[str, float] = {}
        render_seconds = float("nan")
        try:
            bot = BotProcess(bot_env(gw, db_url, work), work)
            bot.start()
            watcher = RowWatcher(db_path)
            watcher.start()
            conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=15)
            asked = time.perf_counter()
            gw.say(ADMIN_ID, "报表 上月", room=OFFICE_ROOM)
            text_id = None
            until = asked + 60
            while text_id is None and time.perf_counter() < until:
                text_id, _ = _outbox_state(conn)
                time.sleep(POLL_SECONDS)
            queued = time.perf_counter()
            attached = False
            liaisons = iter(people)
            until = queued + 240
            while not attached and time.perf_counter() < until and bot.process.poll() is None:
                person = next(liaisons, None)
                if person is not None:
                    t = time.perf_counter()
                    said[gw.say(person.contact_id, f"已转发 #{ref}", room=LIAISON_ROOM)] = t
                time.sleep(SPACING)
                attached = _outbox_state(conn)[1]
            done = time.perf_counter()
            render_seconds = done - queued
            # The same, once the files are attached: what the machine gives without a render running.
            for person in [p for p in liaisons][:CONTROL]:
                t = time.perf_counter()
                after[gw.say(person.contact_id, f"已转发 #{ref}", room=LIAISON_ROOM)] = t
                time.sleep(SPACING)
            until = time.perf_counter() + 10
            while any(m not in watcher.seen for m in [*said, *after]) and time.perf_counter() < until:
                time.sleep(0.05)
            watcher.stop()
            conn.close()
            seen = dict(watcher.seen)
            result.checks.update(text_queued=text_id is not None, files_attached=attached)
        finally:
            if watcher is not None and watcher.is_alive():
                watcher.stop()
            log = bot.log() if bot is not None else ""
            if bot is not None:
                bot.stop()
                bot.close()
            gw.stop()

    latencies = [seen[m][0] - t for m, t in said.items() if m in seen]
    note = f"{units} units, {pushes} pushes, {counts['confirmations']:,} confirmations in the month"
    result.add(
        "monthly report: text queued -> files attached",
        render_seconds,
        "s",
        note + "; the child process renders while the bot keeps handling messages",
    )
    if latencies:
        result.add_timings(
            "confirmation said during the render -> row in the database",
            latencies,
            unit="ms",
            note=f"{len(latencies)} said {SPACING * 1000:.0f} ms apart; target p95 <= {TARGET_MS:.0f} ms",
        )
        result.add("confirmation said during the render -> row in the database max", max(latencies) * 1000, "ms")
    control = [seen[m][0] - t for m, t in after.items() if m in seen]
    if control:
        result.add_timings(
            "  the same after the render (control)",
            control,
            unit="ms",
            note="the machine's latency without a render running",
        )
    errors = log.count("Traceback")
    stored = len(latencies)
    result.checks.update(
        said=len(said), stored=stored, control_said=len(after), control_stored=len(control), errors_logged=errors
    )
    if not result.checks.get("text_queued") or not result.checks.get("files_attached"):
        result.problems.append("the monthly report's text or files did not appear")
    if stored != len(said) or not said or len(control) != len(after):
        result.problems.append(f"{stored} of {len(said)} confirmations said during the render were stored")
    if errors:
        result.problems.append(f"the bot logged {errors} tracebacks")
    result.seconds = time.perf_counter() - started
    return result


if __name__ == "__main__":
    from benchmarks.common import format_table

    print(format_table([run()]))
