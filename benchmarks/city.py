"""The city's month report (全市通报) for 10 districts x 300 units x 400 pushes on PostgreSQL.

A new database on the server of RELAYBOT_BENCH_DATABASE_URL (else RELAYBOT_TEST_DATABASE_URL): ten districts made
as `relaybot district add` makes them (a schema and a role each, the tables by the migrations), each filled with
the month of benchmarks/report.py (build_month: 300 units, 400 closed pushes, about 85 % confirmed, 8 % of them
late) through the district's own URL, the confirmations and misses by COPY. Then the city's report as
`relaybot city report` makes it, on the city's connection: the figures (one statement per district, under its
role), the text and the .xlsx. Without a PostgreSQL URL it prints why and measures nothing. The database and the
roles are dropped at the end.
"""

from __future__ import annotations

import os
import secrets
import time
from datetime import datetime

from benchmarks.common import TZ, Result, summary

NAME = "city"
GENERATED_AT = datetime(2026, 12, 1, 9, 0, tzinfo=TZ)
DISTRICTS = ["海湖区", "城东区", "城西区", "山南区", "北港区", "江北新区", "高新区", "临河县", "青山县", "白沙县"]


def postgres_url() -> str:
    """The server to use: RELAYBOT_BENCH_DATABASE_URL, else the test server's URL; "" for none."""
    for key in ("RELAYBOT_BENCH_DATABASE_URL", "RELAYBOT_TEST_DATABASE_URL"):
        url = os.environ.get(key, "")
        if url.startswith("postgresql"):
            return url
    return ""


def run(quick: bool = False, *, rounds: int | None = None) -> Result:
    """`quick`: 3 districts x 30 units x 40 pushes, 2 rounds; otherwise 10 x 300 x 400, 3 rounds."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    result = Result(NAME)
    started = time.perf_counter()
    url = postgres_url()
    if not url:
        result.notes.append(
            "skipped: no PostgreSQL (set RELAYBOT_BENCH_DATABASE_URL=postgresql+psycopg://user@host:port/db)"
        )
        print(f"  {result.notes[-1]}", flush=True)
        result.seconds = time.perf_counter() - started
        return result
    names = DISTRICTS[:3] if quick else DISTRICTS
    units, pushes = (30, 40) if quick else (300, 400)
    rounds = rounds or (2 if quick else 3)
    database = f"relaybot_bench_city_{secrets.token_hex(4)}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {database}"))
    city_url = make_url(url).set(database=database).render_as_string(hide_password=False)
    try:
        _measure(result, city_url, names, units=units, pushes=pushes, rounds=rounds)
    finally:
        _drop(admin, city_url, database)
        admin.dispose()
    result.seconds = time.perf_counter() - started
    return result


def _measure(result: Result, city_url: str, names: list[str], *, units: int, pushes: int, rounds: int) -> None:
    from benchmarks.report import build_month
    from bot.config import Settings
    from bot.content import load_texts
    from bot.districtnames import district_url
    from bot.domain.periods import previous_period
    from bot.operations.city_report import city_report
    from bot.reports.city import city_text, render_city_xlsx
    from bot.storage.db import create_schema, make_engine
    from bot.storage.districts import add_district

    texts, settings = load_texts(), Settings(database_url="sqlite://")
    period = previous_period("month", GENERATED_AT.date())
    t = time.perf_counter()
    engine = make_engine(city_url)
    with engine.begin() as conn:
        for name in names:
            add_district(conn, name, now=GENERATED_AT)
    counts = {"confirmations": 0, "misses": 0}
    for i, name in enumerate(names):
        # The city's login in the district's schema: it owns the tables, so the load may switch a trigger off.
        district_engine = make_engine(district_url(city_url, name, as_district=False))
        create_schema(district_engine)
        made = build_month(district_engine, units=units, pushes=pushes, seed=6 + i, bulk=copy_rows)
        district_engine.dispose()
        counts["confirmations"] += made["confirmations"]
        counts["misses"] += made["misses"]
    with engine.connect() as conn:
        conn.exec_driver_sql("ANALYZE")
        conn.commit()
    load = time.perf_counter() - t
    engine.dispose()

    timings: dict[str, list[float]] = {"figures": [], "text": [], "xlsx": []}
    for _ in range(rounds + 1):  # the first round is the cold one: a new engine, a new connection
        engine = make_engine(city_url)
        t0 = time.perf_counter()
        with engine.begin() as conn:
            rep = city_report(conn, period, now=GENERATED_AT, texts=texts, settings=settings)
        t1 = time.perf_counter()
        body = city_text(texts, rep)
        t2 = time.perf_counter()
        xlsx = render_city_xlsx(rep)
        t3 = time.perf_counter()
        engine.dispose()
        for key, dt in (("figures", t1 - t0), ("text", t2 - t1), ("xlsx", t3 - t2)):
            timings[key].append(dt)
    total = [f + x + y for f, x, y in zip(timings["figures"], timings["text"], timings["xlsx"], strict=True)]
    note = (
        f"{len(names)} districts x {units} units x {pushes} pushes, {counts['confirmations']:,} confirmations, "
        f"{counts['misses']:,} misses"
    )
    result.add("city month report: figures + text + xlsx (first)", total[0], "s", note)
    result.add("city month report: figures + text + xlsx (warm mean)", summary(total[1:])["mean"], "s", "aim: < 2 s")
    result.add("  figures, cold (a new connection, first run)", timings["figures"][0], "s", "one SQL per district")
    result.add("  figures, warm (mean)", summary(timings["figures"][1:])["mean"], "s", f"{rounds} rounds")
    result.add("  text (city_text)", summary(timings["text"])["mean"], "s")
    result.add("  xlsx (render_city_xlsx, mean)", summary(timings["xlsx"])["mean"], "s", f"{len(xlsx) / 1024:.0f} KiB")
    result.add("writing the month into every district (set-up)", load, "s", "build_month per district, COPY")
    relayed = sum(d.relayed for d in rep.districts)
    expected = sum(d.expected for d in rep.districts)
    result.checks.update(
        districts=len(rep.districts),
        units=sum(len(d.units) for d in rep.districts),
        pushes=rep.pushes,
        expected=expected,
        relayed=relayed,
        confirmations=counts["confirmations"],
        top_missed=len(rep.top_missed),
    )
    if expected != len(names) * units * pushes or relayed != counts["confirmations"]:
        result.problems.append(f"expected {expected} / relayed {relayed} do not add up to the month's data")
    if not body or not xlsx.startswith(b"PK") or [d.rank for d in rep.districts].count(None):
        result.problems.append("the report text or xlsx is empty, or a district is unranked")


def copy_rows(s, model, rows: list[dict]) -> None:
    """`rows` into `model`'s table with PostgreSQL's COPY, in the session's transaction. Confirmations go in with
    the revision trigger off (a row-level UPDATE of the push per confirmation is most of a plain load's time)
    and each push's revision is then set to its count, as the trigger would have left it."""
    if not rows:
        return
    table = model.__tablename__
    columns = list(rows[0])
    raw = s.connection().connection.driver_connection
    confirmations = table == "confirmation"
    with raw.cursor() as cursor:
        if confirmations:
            cursor.execute("ALTER TABLE confirmation DISABLE TRIGGER confirmation_revision")
        with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row([row[c] for c in columns])
        if confirmations:
            cursor.execute("ALTER TABLE confirmation ENABLE TRIGGER confirmation_revision")
            cursor.execute(
                "UPDATE push SET revision = revision + n FROM "
                "(SELECT push_id, count(*) AS n FROM confirmation GROUP BY push_id) AS c WHERE c.push_id = push.id"
            )


def _drop(admin, city_url: str, database: str) -> None:
    """The benchmark's database and its districts' roles (roles belong to the server, not to the database)."""
    from sqlalchemy import text

    from bot.storage.db import make_engine
    from bot.storage.districts import districts

    roles = []
    try:
        engine = make_engine(city_url)
        with engine.connect() as conn:
            roles = [d.role for d in districts(conn)]
        engine.dispose()
    finally:
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)"))
            for role in roles:
                conn.execute(text(f'DROP ROLE IF EXISTS "{role}"'))
