"""Resident memory of the running bot (a real process on the real gateway) after a simulated working day.

The bot runs as `python -m bot run` with its clock moved to Thursday 2026-11-26 08:00 and sped up 1 200x
(RELAYBOT_CLOCK_OFFSET_SECONDS / RELAYBOT_CLOCK_SPEED, what `relaybot run --clock ... --speed ...` sets).
Through the gateway the office pushes six alerts during the morning and early afternoon; about 85 % of the
100 units confirm each (some after the 18:00 deadline), the office asks for progress twice, and the bot does
what the clock brings: acknowledgements, the 10:00 and 16:00 reminders, the deadline with its list of misses,
and the 18:30 daily summary with its .xlsx and chart. No screenshots are sent, so OCR must never load; the
benchmark checks that no onnxruntime/rapidocr library is mapped into the process, nor matplotlib (the report's
files are rendered in a short-lived child process, bot/reports/worker.py).

VmRSS is read from /proc/PID/status right after start and after the summary has been sent; VmHWM is the peak.
"""

from __future__ import annotations

import random
import sqlite3
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from benchmarks.common import (
    ADMIN_ID,
    LIAISON_ROOM,
    OFFICE_ROOM,
    TZ,
    Result,
    bot_env,
    district,
    import_roster_cli,
    mapped_files,
    open_gateway,
    proc_memory_kb,
)

NAME = "memory"
DAY = datetime(2026, 11, 26, tzinfo=TZ)  # a Thursday, a working day
CLOCK_START = DAY.replace(hour=8)  # the bot needs a moment to log in: its clock runs meanwhile
SUMMARY_AT = DAY.replace(hour=18, minute=30)  # the default summary_time
END = DAY.replace(hour=18, minute=40)
CONFIRM_RATE = 0.85
LATE_SHARE = 0.05
CASE_TYPES = ["刷单", "公检法", "征信", "投资", "客服", "杀猪盘"]
OCR_LIBRARIES = ("onnxruntime", "rapidocr")
# The report's files are rendered in a child process: matplotlib's native modules must never be in the bot.
CHART_LIBRARIES = ("matplotlib",)
TARGET_MB = 150


@dataclass(order=True)
class Event:
    at: datetime
    seq: int
    frm: str
    room: str
    text: str


def day_script(units: list, pushes: list[datetime], rng: random.Random) -> tuple[list[Event], int]:
    """The day's messages, in bot time; returns them and how many confirmations they must store."""
    events: list[Event] = []
    seq = 0

    def say(at: datetime, frm: str, room: str, text: str) -> None:
        nonlocal seq
        seq += 1
        events.append(Event(at, seq, frm, room, text))

    expected = 0
    deadline = DAY.replace(hour=18)
    for n, at in enumerate(pushes, start=1):
        say(at, ADMIN_ID, OFFICE_ROOM, f"推送 {CASE_TYPES[(n - 1) % len(CASE_TYPES)]}")
        for i, person in enumerate(units):
            if rng.random() >= CONFIRM_RATE:
                continue
            if rng.random() < LATE_SHARE:
                when = deadline + timedelta(minutes=rng.uniform(5, 25))
            else:
                when = min(at + timedelta(minutes=3 + rng.expovariate(1 / 40)), deadline - timedelta(minutes=2))
            text = (
                f"{person.unit} 已转 #{n} 👍"
                if i % 5 == 0
                else f"已转发 #{n}"
                if i % 5 != 1
                else f"已转发到本单位群 #{n}"
            )
            say(when, person.contact_id, LIAISON_ROOM, text)
            expected += 1
    say(DAY.replace(hour=12), ADMIN_ID, OFFICE_ROOM, "进度")
    say(DAY.replace(hour=12, minute=5), units[1].contact_id, LIAISON_ROOM, "请问截图发哪里？")
    say(DAY.replace(hour=17), ADMIN_ID, OFFICE_ROOM, "进度")
    return sorted(events), expected


def run(
    quick: bool = False,
    *,
    units: int | None = None,
    speed: float | None = None,
    workdir: Path | None = None,
    env: dict[str, str] | None = None,
) -> Result:
    """`quick`: 20 units, 3 pushes, the day at 5 000x; otherwise 100 units, 6 pushes at 1 200x."""
    from tests.bot_process import BotProcess
    from tests.gateway_harness import wait_until

    units = units or (20 if quick else 100)
    speed = speed or (5000.0 if quick else 1200.0)
    push_times = (
        [DAY.replace(hour=9), DAY.replace(hour=11), DAY.replace(hour=14)]
        if quick
        else [DAY.replace(hour=h, minute=m) for h, m in ((9, 0), (9, 30), (10, 30), (11, 30), (14, 0), (15, 0))]
    )
    started = time.perf_counter()
    result = Result(NAME)
    people = district(units)
    events, expected = day_script(people, push_times, random.Random(26))
    with tempfile.TemporaryDirectory(prefix="relaybot-bench-memory-", dir=workdir) as tmp:
        work = Path(tmp)
        db_path = work / "relay.db"
        db_url = f"sqlite:///{db_path}"
        import_roster_cli(people, db_url, work)
        gw = open_gateway(people)
        bot = None
        try:
            offset = (CLOCK_START - datetime.now(UTC)).total_seconds()
            bot = BotProcess(
                bot_env(
                    gw,
                    db_url,
                    work,
                    RELAYBOT_CLOCK_OFFSET_SECONDS=str(offset),
                    RELAYBOT_CLOCK_SPEED=str(speed),
                    RELAYBOT_SCHEDULE_CHECK_SECONDS=str(max(0.2, 30 / speed)),  # as `run --speed` sets it
                    RELAYBOT_ACK_CHECK_SECONDS="0.5",
                    **(env or {}),
                ),
                work,
            )
            bot.start()
            pid = bot.process.pid
            at_start = proc_memory_kb(pid)
            # The bot's clock, from when it wrote its schedule epoch at start-up.
            with sqlite3.connect(f"file:{db_path}?mode=ro", uri=True) as conn:
                epoch = conn.execute("SELECT at FROM notice WHERE kind = 'schedule_epoch'").fetchone()[0]
            epoch_real = time.perf_counter()
            bot_epoch = datetime.fromisoformat(epoch).replace(tzinfo=UTC)

            def bot_now() -> datetime:
                return bot_epoch + timedelta(seconds=(time.perf_counter() - epoch_real) * speed)

            script_start = bot_now()
            # On a slow machine the bot may log in after the first planned push: then the day's messages move later.
            shift = max(timedelta(0), script_start + timedelta(minutes=2) - events[0].at)
            if shift:
                result.notes.append(
                    f"the bot was ready at {script_start.astimezone(TZ):%H:%M} bot time: "
                    f"the day's messages were said {shift.total_seconds() / 60:.0f} min later"
                )
            peak_rss = at_start["VmRSS"]

            def sleep_until(moment: datetime, sample: bool = True) -> None:  # bot time; samples the RSS meanwhile
                nonlocal peak_rss
                while (left := (moment - bot_now()).total_seconds() / speed) > 0:
                    time.sleep(min(0.2, left))
                    if sample:
                        peak_rss = max(peak_rss, proc_memory_kb(pid)["VmRSS"])

            for ev in events:
                sleep_until(ev.at + shift)
                gw.say(ev.frm, ev.text, room=ev.room)
                peak_rss = max(peak_rss, proc_memory_kb(pid)["VmRSS"])
            sleep_until(SUMMARY_AT - timedelta(minutes=3))
            before_summary = proc_memory_kb(pid)["VmRSS"]  # the deadline is done, the daily report not yet made
            sleep_until(END, sample=False)

            def summary_sent(items) -> bool:
                return any(
                    i["conversation_id"] == OFFICE_ROOM and i["kind"] == "image" and "日报" in i["file_name"]
                    for i in items
                )

            sent = wait_until(gw.sent, summary_sent, 60, "the daily summary with its chart")
            time.sleep(1.0)  # let the sender and the scheduler settle
            after = proc_memory_kb(pid)
            mapped = mapped_files(pid)
            ocr_loaded = sorted(p for p in mapped if any(lib in p.lower() for lib in OCR_LIBRARIES))
            charts_loaded = sorted(p for p in mapped if any(f"/{lib}/" in p.lower() for lib in CHART_LIBRARIES))
            with sqlite3.connect(f"file:{db_path}?mode=ro", uri=True) as conn:
                stored = conn.execute("SELECT count(*) FROM confirmation").fetchone()[0]
                misses = conn.execute("SELECT count(*) FROM miss").fetchone()[0]
                pushes_closed = conn.execute("SELECT count(*) FROM push WHERE state = 'closed'").fetchone()[0]
                outbox = conn.execute("SELECT count(*), sum(state = 'sent') FROM outbox").fetchone()
            log = bot.log()
        finally:
            if bot is not None:
                bot.stop()
                bot.close()
            gw.stop()

    mb = 1 / 1024
    texts = [i for i in sent if i["kind"] == "text"]
    reminders = sum(1 for i in texts if "转发提醒" in i["text"])
    acks = sum(1 for i in texts if i["text"].startswith("✅"))
    result.add("VmRSS right after start", at_start["VmRSS"] * mb, "MB", f"{units} units, logged in, groups read")
    result.add(
        "VmRSS at 18:27, before the daily summary",
        before_summary * mb,
        "MB",
        "after the messages, reminders and the deadline",
    )
    result.add(
        "VmRSS after the day",
        after["VmRSS"] * mb,
        "MB",
        f"after the 18:30 summary (text, xlsx, chart); aim: under {TARGET_MB} MB",
    )
    result.add("VmHWM (peak RSS) over the day", after["VmHWM"] * mb, "MB")
    result.add("  highest VmRSS sampled before the summary", peak_rss * mb, "MB", "sampled after every message")
    result.add(
        "day simulated at",
        speed,
        "x",
        f"bot clock {script_start.astimezone(TZ):%H:%M} -> {END:%H:%M}, {len(events)} messages said",
    )
    result.checks.update(
        confirmations=stored,
        expected=expected,
        pushes_closed=pushes_closed,
        misses=misses,
        reminders=reminders,
        acks=acks,
        outbox_sent=outbox[1] or 0,
        outbox_rows=outbox[0],
        ocr_libraries_mapped=len(ocr_loaded),
        matplotlib_libraries_mapped=len(charts_loaded),
    )
    result.checks["errors_logged"] = log.count("Traceback")
    if stored != expected:
        result.problems.append(f"{stored} confirmations stored, {expected} expected")
    if pushes_closed != len(push_times):
        result.problems.append(f"{pushes_closed} of {len(push_times)} pushes closed at the deadline")
    if ocr_loaded:
        result.problems.append("OCR was loaded: " + ", ".join(ocr_loaded[:3]))
    if charts_loaded:
        result.problems.append("matplotlib was loaded into the bot: " + ", ".join(charts_loaded[:3]))
    if result.checks["errors_logged"]:
        result.problems.append(f"the bot logged {result.checks['errors_logged']} tracebacks")
    result.seconds = time.perf_counter() - started
    return result
