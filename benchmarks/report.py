"""The monthly report for 300 units and 400 pushes: the figures, the text and the .xlsx; the chart separately.

The month (November 2026) is written straight into a SQLite file: 300 units with a liaison each, the liaison and
office groups, 400 closed pushes on the 21 working days (about 19 a day, deadline 18:00), confirmations for
about 85 % of the unit/push pairs (each unit has its own rate; about 8 % of confirmations come after the
deadline), a miss for every pair not confirmed by the deadline, and a screenshot verdict on 10 % of the
confirmations. The report is then made as the bot makes it on the 1st at 09:00 (bot.operations.agenda.queue_report):
build_report, compose.report_text, render_xlsx, render_chart; the last two are timed here in this process, and
once more as the bot runs them, in a child process (bot.reports.worker.render_in_child: a new Python, its imports,
both files, the bytes back through a pipe).
"""

from __future__ import annotations

import random
import tempfile
import time
from datetime import date, datetime, timedelta
from pathlib import Path

from benchmarks.common import (
    LIAISON_ROOM,
    LIAISON_ROOM_NAME,
    OFFICE_ROOM,
    OFFICE_ROOM_NAME,
    TZ,
    Result,
    district,
    import_people,
    summary,
)

NAME = "report"
MONTH_START = date(2026, 11, 1)
GENERATED_AT = datetime(2026, 12, 1, 9, 0, tzinfo=TZ)
CONFIRM_RATE = 0.85
LATE_SHARE = 0.08
EVIDENCE_SHARE = 0.10


def working_days(start: date) -> list[date]:
    import chinese_calendar

    days, day = [], start
    while day.month == start.month:
        if chinese_calendar.is_workday(day):
            days.append(day)
        day += timedelta(days=1)
    return days


def build_month(engine, *, units: int, pushes: int, seed: int = 6, bulk=None) -> dict[str, int]:
    """Write the month into the database; returns how many rows of each kind. `bulk(session, model, rows)`
    writes the confirmations and misses (default: one executemany INSERT each; benchmarks/city.py uses COPY)."""
    from sqlalchemy import insert
    from sqlmodel import select

    from bot.content import load_library
    from bot.storage.db import session
    from bot.storage.models import Alert, Confirmation, Group, GroupKind, Liaison, Miss, Push, PushState, Unit

    rng = random.Random(seed)
    import_people(engine, district(units))
    library = load_library()
    items = [library.find(t) for t in library.case_types()]
    days = working_days(MONTH_START)
    counts = {"confirmations": 0, "misses": 0, "late": 0, "evidence": 0}
    with session(engine) as s:
        s.add(Group(room_id=LIAISON_ROOM, name=LIAISON_ROOM_NAME, kind=GroupKind.LIAISON.value, set_by="config"))
        s.add(Group(room_id=OFFICE_ROOM, name=OFFICE_ROOM_NAME, kind=GroupKind.OFFICE.value, set_by="config"))
        unit_rows = list(s.exec(select(Unit).order_by(Unit.id)))
        liaison_of = {li.unit_id: li.id for li in s.exec(select(Liaison))}
        # Each unit has its own habit: most are reliable, a few are not; the mean is about CONFIRM_RATE.
        rate = {u.id: min(0.995, max(0.4, rng.gauss(CONFIRM_RATE, 0.08))) for u in unit_rows}
        # The pushes spread evenly over the working days, between 09:00 and 15:30 of each day.
        on_day: dict[date, list[int]] = {}
        for i in range(pushes):
            on_day.setdefault(days[i * len(days) // pushes], []).append(i)
        push_rows = []
        for day, numbers in on_day.items():
            midnight = datetime.combine(day, datetime.min.time(), tzinfo=TZ)
            for nth, i in enumerate(numbers):
                pushed = midnight + timedelta(hours=9, minutes=nth * 390 // len(numbers))
                item = items[i % len(items)]
                alert = Alert(case_type=item.case_type, title=item.title, text=item.body, created_at=pushed)
                s.add(alert)
                s.flush()
                push = Push(
                    alert_id=alert.id,
                    created_at=pushed,
                    created_by="wxid_admin",
                    deadline=midnight + timedelta(hours=18),
                    state=PushState.CLOSED.value,
                    closed_at=midnight + timedelta(hours=18),
                )
                s.add(push)
                push_rows.append(push)
        s.flush()
        confirmations, misses = [], []
        for push in push_rows:
            for unit in unit_rows:
                if rng.random() < rate[unit.id]:
                    late = rng.random() < LATE_SHARE
                    if late:
                        at = push.deadline + timedelta(minutes=rng.uniform(10, 2 * 24 * 60))
                    else:
                        span = (push.deadline - push.created_at).total_seconds()
                        at = push.created_at + timedelta(seconds=min(span - 1, rng.expovariate(1 / 2400) + 30))
                    evidence = rng.random() < EVIDENCE_SHARE
                    confirmations.append(
                        dict(
                            push_id=push.id,
                            unit_id=unit.id,
                            liaison_id=liaison_of[unit.id],
                            at=at,
                            method="image" if evidence else "text",
                            room_id=LIAISON_ROOM,
                            evidence_message_id=f"m{push.id}-{unit.id}",
                            evidence_text="已转发",
                            late=late,
                            acked_at=at + timedelta(seconds=40),
                            evidence_file=f"{push.id}-{unit.id}.jpg" if evidence else "",
                            evidence_at=at if evidence else None,
                            evidence_hash="",
                            verdict=("已核验" if rng.random() < 0.9 else "存疑") if evidence else "",
                            verdict_reason="",
                        )
                    )
                    counts["late"] += late
                    counts["evidence"] += evidence
                    if not late:
                        continue
                misses.append(dict(push_id=push.id, unit_id=unit.id, deadline=push.deadline))
        for model, rows in ((Confirmation, confirmations), (Miss, misses)):
            if bulk is None:
                s.execute(insert(model), rows)
            else:
                bulk(s, model, rows)
        s.commit()
    counts.update(confirmations=len(confirmations), misses=len(misses), units=len(unit_rows), pushes=len(push_rows))
    return counts


def run(
    quick: bool = False,
    *,
    units: int | None = None,
    pushes: int | None = None,
    rounds: int | None = None,
    workdir: Path | None = None,
) -> Result:
    """`quick`: 30 units and 40 pushes, 2 rounds; otherwise 300 and 400, 3 rounds."""
    from bot.chat.compose import report_text
    from bot.config import Settings
    from bot.content import load_texts
    from bot.operations.agenda import ladder_of
    from bot.reports.build import build_report, previous_period
    from bot.reports.render import render_chart, render_xlsx
    from bot.reports.worker import render_in_child
    from bot.storage.db import create_schema, make_engine, session

    units = units or (30 if quick else 300)
    pushes = pushes or (40 if quick else 400)
    rounds = rounds or (2 if quick else 3)
    started = time.perf_counter()
    result = Result(NAME)
    texts, settings = load_texts(), Settings(database_url="sqlite://")
    ladder = ladder_of(settings)
    start, end = previous_period("month", GENERATED_AT.date())
    with tempfile.TemporaryDirectory(prefix="relaybot-bench-report-", dir=workdir) as tmp:
        engine = make_engine(f"sqlite:///{Path(tmp) / 'month.db'}")
        create_schema(engine)
        t = time.perf_counter()
        counts = build_month(engine, units=units, pushes=pushes)
        setup = time.perf_counter() - t
        timings: dict[str, list[float]] = {"build": [], "text": [], "xlsx": [], "chart": [], "child": []}
        for _ in range(rounds):
            with session(engine) as s:  # a fresh session each time, as the bot's scheduled job has
                t0 = time.perf_counter()
                rep = build_report(s, kind="month", start=start, end=end, now=GENERATED_AT, tz=TZ, ladder=ladder)
            t1 = time.perf_counter()
            text = report_text(texts, rep)
            t2 = time.perf_counter()
            xlsx = render_xlsx(rep, TZ)
            t3 = time.perf_counter()
            png = render_chart(rep)
            t4 = time.perf_counter()
            child = render_in_child(rep, TZ)
            t5 = time.perf_counter()
            for key, dt in (
                ("build", t1 - t0),
                ("text", t2 - t1),
                ("xlsx", t3 - t2),
                ("chart", t4 - t3),
                ("child", t5 - t4),
            ):
                timings[key].append(dt)
            if child.error or [len(d) > 0 for _, d in child.files] != [True, True]:
                result.problems.append(f"the child process made no files: {child.error} {child.detail[-300:]}")
        engine.dispose()

    report_times = [b + x + y for b, x, y in zip(timings["build"], timings["text"], timings["xlsx"], strict=True)]
    note = f"{units} units, {pushes} pushes, {counts['confirmations']:,} confirmations, {counts['misses']:,} misses"
    result.add("monthly report: figures + text + xlsx (first)", report_times[0], "s", note)
    result.add(
        "monthly report: figures + text + xlsx (mean)",
        summary(report_times)["mean"],
        "s",
        f"{rounds} rounds; aim: well under 1 s",
    )
    result.add("  figures from the database (build_report)", summary(timings["build"])["mean"], "s")
    result.add("  text (compose.report_text)", summary(timings["text"])["mean"], "s")
    result.add("  xlsx (render_xlsx)", summary(timings["xlsx"])["mean"], "s", f"{len(xlsx) / 1024:.0f} KiB")
    result.add("chart PNG (render_chart, first)", timings["chart"][0], "s", "fonts load on the first chart")
    result.add(
        "chart PNG (render_chart, mean)",
        summary(timings["chart"])["mean"],
        "s",
        f"{len(png) / 1024:.0f} KiB, {_png_size(png)}",
    )
    result.add(
        "xlsx + chart in a child process, as the bot does (mean)",
        summary(timings["child"])["mean"],
        "s",
        "bot.reports.worker: start, imports, both files, bytes back",
    )
    result.add("writing the month into the database (set-up)", setup, "s")
    relayed = sum(u.relayed for u in rep.units)
    missed = sum(u.missed for u in rep.units)
    result.checks.update(
        units=len(rep.units),
        pushes=len(rep.pushes),
        relayed=relayed,
        confirmations=counts["confirmations"],
        missed=missed,
        expected_pairs=units * pushes,
        rate_pct=round(100 * relayed / (units * pushes), 1),
    )
    if len(rep.units) != units or len(rep.pushes) != pushes:
        result.problems.append(f"the report has {len(rep.units)} units and {len(rep.pushes)} pushes")
    if relayed != counts["confirmations"] or relayed + missed != units * pushes:
        result.problems.append(f"relayed {relayed} + missed {missed} do not add up to the month's data")
    if not text or not xlsx.startswith(b"PK") or not png.startswith(b"\x89PNG"):
        result.problems.append("the report text, xlsx or png is empty or not what it should be")
    result.seconds = time.perf_counter() - started
    return result


def _png_size(png: bytes) -> str:
    width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
    return f"{width}x{height} px"
