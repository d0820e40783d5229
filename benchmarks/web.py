"""The web console's heaviest pages for 300 units and 400 pushes (issue 14: each under 300 ms, server-side).

The month of benchmarks/report.py (300 units, 400 closed pushes, about 100 000 confirmations) is written into a
SQLite file; `relaybot web`'s app is served by uvicorn on 127.0.0.1 in this process, signed in as an admin, and
each page is requested `rounds` times after one warm-up request: the time from sending the request to having the
whole body (on 127.0.0.1 that is the server's work; the page's own images and scripts are not fetched).

The month report page is timed three ways: the first look after the console starts (nothing kept yet: every
confirmation of the month is read), warm (looked at again, nothing changed: the built report is shown), and cold
(before each look a liaison's confirmation changed and an office action was audited: the report is built again,
reading only the changed push's confirmations, bot/reports/build.py ConfirmationCache).
"""

from __future__ import annotations

import socket
import tempfile
import threading
import time
from pathlib import Path

from benchmarks.common import ADMIN_ID, Result, summary
from benchmarks.report import GENERATED_AT, build_month

NAME = "web"
AIM_SECONDS = 0.3


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(*, quick: bool = False, units: int = 0, pushes: int = 0, rounds: int = 0, workdir: str | None = None) -> Result:
    import httpx
    import uvicorn
    from sqlmodel import col, select

    from bot.clock import FakeClock
    from bot.config import Settings
    from bot.domain import access
    from bot.domain.relay import audit
    from bot.storage.db import create_schema, make_engine, session
    from bot.storage.models import Confirmation
    from bot.web.app import COOKIE, create_app

    units = units or (30 if quick else 300)
    pushes = pushes or (40 if quick else 400)
    rounds = rounds or (3 if quick else 10)
    started = time.perf_counter()
    result = Result(NAME)
    with tempfile.TemporaryDirectory(prefix="relaybot-bench-web-", dir=workdir) as tmp:
        url = f"sqlite:///{Path(tmp) / 'month.db'}"
        engine = make_engine(url)
        create_schema(engine)
        counts = build_month(engine, units=units, pushes=pushes)
        clock = FakeClock(GENERATED_AT)
        settings = Settings(database_url=url, admin_ids=[ADMIN_ID], evidence_dir=str(Path(tmp) / "evidence"))
        with session(engine) as s:
            token, _ = access.open_session(s, ADMIN_ID, name="陈静", now=clock(), hours=12)
            s.commit()
        port = _free_port()
        server = uvicorn.Server(
            uvicorn.Config(
                create_app(settings, engine, clock), host="127.0.0.1", port=port, log_level="warning", lifespan="off"
            )
        )
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 60
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        pages = {
            "push page (#200 of 400: every unit's state)": f"/pushes/{pushes // 2}",
            "month report page (figures, ranks, boards, tables)": "/reports?kind=month&day=2026-11-01",
            "push list (200 newest with progress)": "/pushes",
            "overview": "/",
        }
        with httpx.Client(
            base_url=f"http://127.0.0.1:{port}", cookies={COOKIE: token}, timeout=120, trust_env=False
        ) as client:
            for label, path in pages.items():
                report = "report" in label
                # The report page keeps a built report while nothing changed (bot/web/pages_reports.py): timed
                # warm (looked at again) and cold (something changed before each look: an office action).
                for temperature in ("warm", "cold") if report else ("",):
                    times, size = [], 0
                    for i in range(rounds + 1):
                        if temperature == "cold":
                            with session(engine) as s:
                                changed = s.exec(
                                    select(Confirmation)
                                    .where(Confirmation.verdict == "")
                                    .order_by(col(Confirmation.push_id).desc())
                                ).first()
                                if changed is not None:  # a screenshot's verdict: the push's revision moves
                                    changed.verdict, changed.verdict_reason = "已核验", "人工认可：陈静"
                                    s.add(changed)
                                audit(s, now=clock(), actor_id=ADMIN_ID, actor_name="陈静", action="bench")
                                s.commit()
                        t0 = time.perf_counter()
                        r = client.get(path)
                        dt = time.perf_counter() - t0
                        if r.status_code != 200:
                            result.problems.append(f"{path}: HTTP {r.status_code}")
                            break
                        size = len(r.content)
                        if i:  # the first request warms up imports and templates
                            times.append(dt)
                        elif report and temperature == "warm":
                            result.add(f"{label} (first look after start)", dt, "s", "one request; aim < 1 s")
                            result.checks["report_first_ms"] = round(dt * 1000)
                    if not times:
                        continue
                    stats = summary(times)
                    shown = f"{label} ({temperature})" if temperature else label
                    result.add(
                        f"{shown}, p50",
                        stats["p50"],
                        "s",
                        f"max {stats['max'] * 1000:.0f} ms over {rounds}; {size / 1024:.0f} KiB; aim < 300 ms",
                    )
                    key = "push_page" if "push page" in label else f"report_{temperature}" if report else ""
                    if key:
                        result.checks[f"{key}_p50_ms"] = round(stats["p50"] * 1000)
        server.should_exit = True
        thread.join(60)
        engine.dispose()
    result.notes.append(f"{units} units, {pushes} pushes, {counts['confirmations']:,} confirmations")
    result.seconds = time.perf_counter() - started
    return result
