"""The job table: what the clock makes happen, typed, and the APScheduler pollers that look for it.

Two kinds of entries:
- Occurrences (`JobKind`): a reminder, a deadline or a report that is due at a moment. They are not APScheduler
  jobs of their own: one poller (`run_schedule`) asks the database what is due by the bot's clock, so a restart,
  a moved clock or a changed setting needs no job store. `Occurrence.key` is how a handled occurrence is stored
  (ScheduledRun.job), so nothing is done twice.
- Pollers (`PollerKind`): the periodic jobs the running bot registers with APScheduler. They keep no state of
  their own, so a run skipped while the previous one is still busy loses nothing.
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from apscheduler.schedulers.asyncio import AsyncIOScheduler


class JobKind(enum.StrEnum):
    """What a due occurrence does."""

    REMIND = "remind"  # the daily reminder of units that have not relayed
    SUMMARY = "summary"  # the day's summary (a day report) on working days
    WEEKLY = "weekly"  # Monday: the week before
    MONTHLY = "monthly"  # the 1st: the month before
    QUARTERLY = "quarterly"  # the first working day of a quarter: the quarter before (季点评)
    DEADLINE = "deadline"  # one push's deadline passed

    @property
    def report_kind(self) -> str | None:
        """The report period this job makes ("day", "week", "month", "quarter"), or None for a job that is not a report."""
        return _REPORT_KINDS.get(self)


_REPORT_KINDS = {
    JobKind.SUMMARY: "day",
    JobKind.WEEKLY: "week",
    JobKind.MONTHLY: "month",
    JobKind.QUARTERLY: "quarter",
}


@dataclass(frozen=True)
class Occurrence:
    """One due moment of a job; a deadline names its push."""

    kind: JobKind
    due: datetime
    push_id: int | None = None

    def __post_init__(self) -> None:
        if (self.kind == JobKind.DEADLINE) != (self.push_id is not None):
            raise ValueError("a deadline occurrence, and only one, names its push")

    @property
    def job(self) -> str:
        """The stored name: "remind", "summary", "weekly", "monthly", "quarterly" or "deadline:<push id>"."""
        return f"{self.kind.value}:{self.push_id}" if self.push_id is not None else self.kind.value

    @classmethod
    def from_job(cls, job: str, due: datetime) -> Occurrence:
        """The occurrence a stored name stands for."""
        kind, _, push_id = job.partition(":")
        return cls(JobKind(kind), due, int(push_id) if push_id else None)


class PollerKind(enum.StrEnum):
    """The running bot's periodic jobs."""

    ACKS = "flush_acks"  # acknowledge confirmations in groups that went quiet
    FEEDS = "poll_feeds"
    EVIDENCE = "check_evidence"  # the backlog of screenshots a restart left
    EVIDENCE_EXPIRY = "expire_evidence"
    SCHEDULE = "run_schedule"  # the occurrences above
    HEALTH = "check_health"  # self-check, echo, connection alerts


@dataclass(frozen=True)
class Poller:
    kind: PollerKind
    run: Callable[[], Awaitable[object]]
    every_seconds: float
    at_start: bool  # run once at start too (catch up at once after a restart)


def build_scheduler(pollers: list[Poller], *, timezone_name: str) -> AsyncIOScheduler:
    """An APScheduler with the pollers, in the configured timezone (start it inside the running event loop)."""
    now = datetime.now(UTC)
    scheduler = AsyncIOScheduler(timezone=timezone_name)
    for poller in pollers:
        scheduler.add_job(
            poller.run,
            "interval",
            seconds=poller.every_seconds,
            id=poller.kind.value,
            max_instances=1,
            coalesce=True,
            **({"next_run_time": now} if poller.at_start else {}),
        )
    return scheduler
