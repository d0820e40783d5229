"""A burst of confirmations through the real Wechaty gateway into the bot running as its own process.

The Node gateway (tests/gateway) serves the puppet-service gRPC API on 127.0.0.1; `python -m bot run` connects
to it like to a real one. 100 liaisons of 100 units sit in one liaison room. One open push lets each unit
store only one confirmation, so the database has 10 open pushes and every liaison sends "已转发 #N" for each
(a bare 已转发 would confirm all ten at once, as pushes sent together are), so each of the 1 000 messages must
become one Confirmation row. The messages are said as fast as the gateway's control API takes them (from one thread).
Afterwards 20 single messages go to the idle bot, each once the previous one is stored: the latency without a
queue in front of it.

Latency is measured from just before the message is said on the gateway to the moment its row is visible in
the database (a reader polls the SQLite file every 5 ms, so it is late by at most that), and also to the row's
own `at` (the bot's clock when it started handling the message).
"""

from __future__ import annotations

import sqlite3
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

from benchmarks.common import (
    LIAISON_ROOM,
    Result,
    add_open_pushes,
    bot_env,
    district,
    import_roster_cli,
    open_gateway,
)

NAME = "burst"
TEXT = "已转发"
POLL_SECONDS = 0.005
STALL_SECONDS = 10.0


class RowWatcher(threading.Thread):
    """Polls the confirmation table and notes when each message's row first became visible."""

    def __init__(self, db_path: Path) -> None:
        super().__init__(name="row-watcher", daemon=True)
        self.conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, check_same_thread=False, timeout=15)
        self.seen: dict[str, tuple[float, str]] = {}  # message id -> (perf_counter when seen, the row's `at`)
        self.last_id = 0
        self.stopping = threading.Event()
        self.lock = threading.Lock()

    def run(self) -> None:
        while not self.stopping.is_set():
            self.poll()
            time.sleep(POLL_SECONDS)
        self.poll()

    def poll(self) -> None:
        rows = self.conn.execute(
            "SELECT id, evidence_message_id, at FROM confirmation WHERE id > ? ORDER BY id", (self.last_id,)
        ).fetchall()
        now = time.perf_counter()
        with self.lock:
            for row_id, message_id, at in rows:
                self.seen.setdefault(message_id, (now, at))
                self.last_id = max(self.last_id, row_id)

    def count(self) -> int:
        with self.lock:
            return len(self.seen)

    def stop(self) -> None:
        self.stopping.set()
        self.join(timeout=5)
        self.conn.close()


def _epoch(at: str) -> float:
    """A stored UTC time ('2026-11-26 01:00:00.123456') as seconds since the epoch."""
    moment = datetime.fromisoformat(at)
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def run(
    quick: bool = False, *, units: int | None = None, pushes: int | None = None, workdir: Path | None = None
) -> Result:
    """`quick`: 20 units x 5 pushes = 100 messages instead of 100 x 10 = 1 000."""
    from tests.bot_process import BotProcess

    units = units or (20 if quick else 100)
    pushes = pushes or (5 if quick else 10)
    n = units * pushes
    probe_count = min(units, 5 if quick else 20)
    started = time.perf_counter()
    result = Result(NAME)
    people = district(units)
    with tempfile.TemporaryDirectory(prefix="relaybot-bench-burst-", dir=workdir) as tmp:
        work = Path(tmp)
        db_path = work / "relay.db"
        db_url = f"sqlite:///{db_path}"
        import_roster_cli(people, db_url, work)
        gw = open_gateway(people)
        bot = None
        watcher = None
        try:
            bot = BotProcess(bot_env(gw, db_url, work), work)
            bot.start()
            from bot.storage.db import make_engine

            engine = make_engine(db_url)
            # One more push than the burst uses: its confirmations are the one-at-a-time probes afterwards.
            refs = add_open_pushes(engine, pushes + 1, now=datetime.now(UTC), deadline=None)
            engine.dispose()
            watcher = RowWatcher(db_path)
            watcher.start()

            said: dict[str, tuple[float, float]] = {}  # message id -> (perf_counter, epoch) just before saying it
            order = [(p.contact_id, refs[k]) for k in range(pushes) for p in people]
            for contact_id, ref in order:
                t, wall = time.perf_counter(), time.time()
                said[gw.say(contact_id, f"{TEXT} #{ref}", room=LIAISON_ROOM)] = (t, wall)
            last_said = time.perf_counter()
            deadline = last_said + (60 if quick else 240)
            progress, progress_at = watcher.count(), time.perf_counter()
            while watcher.count() < n and time.perf_counter() < deadline and bot.process.poll() is None:
                time.sleep(0.05)
                if watcher.count() != progress:
                    progress, progress_at = watcher.count(), time.perf_counter()
                elif time.perf_counter() - progress_at > STALL_SECONDS:
                    break  # nothing stored for a while: the rest is lost, not late
            # Then single messages into an idle bot, each after the previous one is stored: latency without a queue.
            probes: dict[str, tuple[float, float]] = {}
            if watcher.count() >= n:
                for person in people[:probe_count]:
                    time.sleep(0.1)
                    t, wall = time.perf_counter(), time.time()
                    message_id = gw.say(person.contact_id, f"{TEXT} #{refs[-1]}", room=LIAISON_ROOM)
                    probes[message_id] = (t, wall)
                    until = time.perf_counter() + 10
                    while message_id not in watcher.seen and time.perf_counter() < until:
                        time.sleep(POLL_SECONDS / 5)
            time.sleep(0.2)  # anything beyond what was said would be a duplicate: let it show up
            watcher.stop()
            seen = dict(watcher.seen)
        finally:
            if watcher is not None and watcher.is_alive():
                watcher.stop()
            log = bot.log() if bot is not None else ""
            if bot is not None:
                bot.stop()
                bot.close()
            gw.stop()

    stored = sum(1 for m in said if m in seen)
    first_said = min(t for t, _ in said.values())
    latencies = [seen[m][0] - said[m][0] for m in said if m in seen]
    to_handling = [_epoch(seen[m][1]) - said[m][1] for m in said if m in seen]
    if latencies:
        last_seen = max(seen[m][0] for m in said if m in seen)
        first_seen = min(seen[m][0] for m in said if m in seen)
        result.add(
            "stored confirmations per second",
            stored / (last_seen - first_said),
            "msg/s",
            f"{n} messages from {units} liaisons, first said -> last row stored",
        )
        result.add(
            "  bot service rate (first row -> last row)", (stored - 1) / max(last_seen - first_seen, 1e-9), "msg/s"
        )
        result.add(
            "  messages said per second on the gateway",
            n / max(last_said - first_said, 1e-9),
            "msg/s",
            "how fast the burst arrived",
        )
        result.add_timings(
            "latency said -> row in the database",
            latencies,
            unit="s",
            note=f"polled every {POLL_SECONDS * 1000:.0f} ms",
        )
        result.add_timings(
            "latency said -> bot starts handling",
            to_handling,
            unit="s",
            note="the row's `at` (bot clock) minus the send time",
        )
    idle = [seen[m][0] - probes[m][0] for m in probes if m in seen]
    if idle:
        result.add_timings(
            "latency of one message into an idle bot",
            idle,
            unit="ms",
            note=f"{len(probes)} single messages after the burst, each after the previous was stored",
        )
    errors = log.count("Traceback")
    probes_stored = sum(1 for m in probes if m in seen)
    result.checks.update(
        messages=n, stored=stored, expected=n, probes=probe_count, probes_stored=probes_stored, rows_in_db=len(seen)
    )
    result.checks["errors_logged"] = errors
    if stored != n:
        result.problems.append(f"{stored} of {n} burst messages stored as confirmations")
    if probes_stored != probe_count or len(seen) != n + probe_count:
        result.problems.append(
            f"{probes_stored} of {probe_count} single messages stored; {len(seen)} rows in the "
            f"database, {n + probe_count} expected"
        )
    if errors:
        result.problems.append(f"the bot logged {errors} tracebacks")
    result.seconds = time.perf_counter() - started
    return result
