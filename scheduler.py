"""APScheduler wiring: jobs that look at the database and act. They keep no state of their own."""

from __future__ import annotations

from datetime import datetime, timezone

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot.app import RelayBot


def build_scheduler(bot: RelayBot) -> AsyncIOScheduler:
    """The bot's periodic jobs, in the configured timezone (start it inside the running event loop).

    Reminders, deadlines and reports are not APScheduler jobs of their own: one poller asks the database
    what is due by the bot's clock, so a restart, a moved clock or a changed setting needs no job store.
    """
    scheduler = AsyncIOScheduler(timezone=bot.settings.timezone)
    scheduler.add_job(
        bot.flush_acks,
        "interval",
        seconds=bot.settings.ack_check_seconds,
        id="flush_acks",
        max_instances=1,
        coalesce=True,
    )
    scheduler.add_job(
        bot.poll_feeds,
        "interval",
        seconds=60,
        id="poll_feeds",
        max_instances=1,
        coalesce=True,
        next_run_time=datetime.now(timezone.utc),
    )
    # The backlog of screenshots left by a restart, and the retention of old ones.
    scheduler.add_job(bot.check_evidence, "interval", minutes=5, id="check_evidence", max_instances=1, coalesce=True,
                      next_run_time=datetime.now(timezone.utc))
    scheduler.add_job(bot.expire_evidence, "interval", hours=6, id="expire_evidence", max_instances=1, coalesce=True,
                      next_run_time=datetime.now(timezone.utc))
    scheduler.add_job(
        bot.run_schedule,
        "interval",
        seconds=bot.settings.schedule_check_seconds,
        id="run_schedule",
        max_instances=1,
        coalesce=True,
        next_run_time=datetime.now(timezone.utc),  # catch up at once after a restart
    )
    return scheduler
