"""Makes the files of reports queued by units of work, outside the unit-of-work lock.

A unit of work that posts a report queues its text and placeholders (bot/operations/reporting.py) and returns
at once; `Renderer.render_pending` then has the child process of bot/reports/worker.py make the .xlsx and the
chart (waited for in a worker thread, holding no lock), and takes the lock only for the short unit of work that
attaches the files and releases the rows for sending. The rows are the record: after a restart the bot renders
whatever is still waiting.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from zoneinfo import ZoneInfo

from sqlalchemy.engine import Engine

from bot.content import Texts
from bot.operations import reporting
from bot.reports import worker as report_worker
from bot.storage.db import session as new_session

log = logging.getLogger(__name__)


class Renderer:
    """Renders waiting reports one at a time; `render_pending` may be called as often as wanted."""

    def __init__(
        self, engine: Engine, texts: Texts, lock: asyncio.Lock, *, on_attached: Callable[[], None] = lambda: None
    ) -> None:
        self.engine = engine
        self.texts = texts
        self.lock = lock  # the unit-of-work lock: held only while the files are attached
        self.on_attached = on_attached  # e.g. wakes the outbox sender
        self._running = asyncio.Lock()  # one pass at a time
        self._again = False  # rows may have been queued since the running pass looked

    async def render_pending(self) -> int:
        """Render every report waiting for its files; returns how many this call rendered. A call made while a
        pass runs waits for it, and that pass looks again before it ends, so the caller's rows are done."""
        self._again = True
        async with self._running:
            done = 0
            while self._again:
                self._again = False
                with new_session(self.engine) as s:  # a read: no lock needed
                    jobs = reporting.pending_jobs(s)
                for job in jobs:
                    await self._render(job)
                    done += 1
            return done

    def kick(self) -> asyncio.Task | None:
        """Start a pass in the background; None when one is running already (it will look again)."""
        if self._running.locked():
            self._again = True
            return None
        return asyncio.create_task(self.render_pending(), name="report-renderer")

    async def _render(self, job: reporting.RenderJob) -> None:
        if job.figures is None:
            log.error("outbox row %s waits for report files but its figures cannot be read", job.text_row_id)
            rendered = report_worker.Rendered([], "UnreadableFigures", "")
        else:
            rendered = await asyncio.to_thread(report_worker.render_files, job.figures, ZoneInfo(job.tz_key))
        async with self.lock:
            await asyncio.to_thread(self._attach, job, rendered)
        self.on_attached()

    def _attach(self, job: reporting.RenderJob, rendered: report_worker.Rendered) -> None:
        with new_session(self.engine) as s:
            reporting.attach_files(s, job, files=rendered.files, error=rendered.error, texts=self.texts)
            s.commit()
