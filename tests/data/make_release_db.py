"""Make tests/data/release-0.1.0.sqlite: a database written by the first release, for the upgrade test.

Run it with the code of that release, never with newer code (the point is the old schema and old rows):
    git worktree add /tmp/rel010 v0.1.0
    PYTHONPATH=/tmp/rel010 .venv/bin/python tests/data/make_release_db.py tests/data/release-0.1.0.sqlite
It plays the demo day (pushes, confirmations, a screenshot, reminders, the deadline, the summary) and adds
rows to the tables the demo does not touch, so that every table has something to lose.
"""

from __future__ import annotations

import asyncio
import io
import shutil
import sqlite3
import sys
import tempfile
from datetime import UTC, date, datetime
from pathlib import Path

from bot.cli.demo import run_demo
from bot.storage import models
from bot.storage.db import make_engine, session


def main(target: Path) -> None:
    work = Path(tempfile.mkdtemp(prefix="release-db-"))
    db_file = asyncio.run(run_demo(io.StringIO(), work))
    engine = make_engine(f"sqlite:///{db_file}")
    at = datetime(2026, 11, 26, 3, 0, tzinfo=UTC)
    with session(engine) as s:
        unit = s.get(models.Unit, 1)
        s.add(
            models.Leave(
                unit_id=unit.id, start=date(2026, 11, 30), end=date(2026, 12, 2), created_by="admin-chen", created_at=at
            )
        )
        s.add(models.CalendarDay(day=date(2026, 12, 31), working=False, set_by="admin-chen", set_at=at))
        feed = models.Feed(url="https://example.org/fanzha.xml", title="反诈快讯", etag='"abc"', last_ok_at=at)
        s.add(feed)
        s.flush()
        s.add(
            models.FeedItem(
                feed_id=feed.id,
                guid="item-1",
                title="警惕虚假投资理财",
                link="https://example.org/1",
                summary="摘要",
                seen_at=at,
            )
        )
        s.add(
            models.IncidentStat(
                town="城关镇",
                period_start=date(2026, 11, 1),
                period_end=date(2026, 11, 30),
                case_type="刷单返利",
                count=7,
                source="11月警情.xlsx",
                imported_at=at,
            )
        )
        s.add(models.BotState(key="send_paused_until", value="2026-11-26T04:00:00+00:00", updated_at=at))
        s.commit()
    engine.dispose()
    # One self-contained file: fold the WAL back in.
    with sqlite3.connect(db_file) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.execute("PRAGMA journal_mode=DELETE")
    shutil.copyfile(db_file, target)
    shutil.rmtree(work)
    with sqlite3.connect(target) as conn:
        for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type='table' ORDER BY name"):
            print(name, conn.execute(f'SELECT COUNT(*) FROM "{name}"').fetchone()[0])


if __name__ == "__main__":
    main(Path(sys.argv[1]))
