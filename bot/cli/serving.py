"""Stopping the running bot in order: the scheduler's jobs finish before the bot and its database go.

APScheduler's AsyncIOExecutor cancels the job tasks still running when the scheduler shuts down (it cannot wait
for them). A cancelled unit of work (`asyncio.to_thread`) leaves its thread running on with its session while the
unit-of-work lock is released and the bot stops around it: that was the CancelledError, and the SQLAlchemy
IllegalStateChangeError, printed when a console session ended (issue 13). So the pollers are wrapped to count
the runs in flight, and a stop pauses the scheduler (no new runs), waits for those runs, and only then shuts it
down.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging

from scheduler import Poller

log = logging.getLogger("relaybot")

JOBS_GRACE = (
    8.0  # seconds a stop waits for the jobs in flight; with the sender's 20 s within systemd's TimeoutStopSec=30
)


class JobsInFlight:
    """Counts the pollers' runs in flight; `idle()` waits until there are none."""

    def __init__(self) -> None:
        self.running = 0
        self._idle = asyncio.Event()
        self._idle.set()

    def track(self, poller: Poller) -> Poller:
        """The same poller, counted while it runs."""
        run = poller.run

        async def counted() -> object:
            self.running += 1
            self._idle.clear()
            try:
                return await run()
            finally:
                self.running -= 1
                if not self.running:
                    self._idle.set()

        return dataclasses.replace(poller, run=counted)

    async def idle(self) -> None:
        """Wait until no run is in flight."""
        await self._idle.wait()


async def stop_scheduler(scheduler, jobs: JobsInFlight, *, grace: float = JOBS_GRACE) -> None:
    """Pause `scheduler`, let the runs in flight finish (up to `grace` seconds), then shut it down."""
    scheduler.pause()
    # A run submitted just before the pause is a task that has not started yet: one pass of the event loop lets
    # it begin (and be counted) before we look.
    await asyncio.sleep(0)
    try:
        async with asyncio.timeout(grace):
            await jobs.idle()
    except TimeoutError:
        log.warning("%d scheduled job(s) still running after %.0f s: stopping them", jobs.running, grace)
    scheduler.shutdown(wait=False)
