"""APScheduler wiring: jobs that look at the database and act. They keep no state of their own."""

from __future__ import annotations

from datetime import datetime, timezone

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot.runtime.app import RelayBot


def build_scheduler(bot: RelayBot) -> AsyncIOScheduler:
    """The bot's periodic jobs, in the configured timezone (start it inside the running event loop).

    Reminders, deadlines and reports are not APScheduler jobs of their own: one poller asks the database
    what is due by the bot's clock, so a restart, a moved clock or a changed setting needs no job store.
    """
    settings = bot.settings
    now = datetime.now(timezone.utc)
    # (job, seconds between runs, run once at start too): all are pollers, so a run skipped while the
    # previous one is still busy loses nothing.
    jobs = [
        (bot.flush_acks, settings.ack_check_seconds, False),
        (bot.poll_feeds, 60, True),
        (bot.check_evidence, 5 * 60, True),  # the backlog of screenshots a restart left
        (bot.expire_evidence, 6 * 3600, True),
        (bot.run_schedule, settings.schedule_check_seconds, True),  # catch up at once after a restart
        (bot.check_health, settings.health_check_seconds, False),  # self-check, echo, connection alerts
    ]
    scheduler = AsyncIOScheduler(timezone=settings.timezone)
    for job, seconds, at_start in jobs:
        scheduler.add_job(job, "interval", seconds=seconds, id=job.__name__, max_instances=1, coalesce=True,
                          **({"next_run_time": now} if at_start else {}))
    return scheduler
