"""APScheduler wiring: jobs that look at the database and act. They keep no state of their own."""

from __future__ import annotations

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot.app import RelayBot


def build_scheduler(bot: RelayBot) -> AsyncIOScheduler:
    """The bot's periodic jobs, in the configured timezone (start it inside the running event loop)."""
    scheduler = AsyncIOScheduler(timezone=bot.settings.timezone)
    scheduler.add_job(
        bot.flush_acks,
        "interval",
        seconds=bot.settings.ack_check_seconds,
        id="flush_acks",
        max_instances=1,
        coalesce=True,
    )
    return scheduler
