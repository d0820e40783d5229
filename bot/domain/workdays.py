"""Working days: the office's own entries first, then chinese-calendar, then Monday-Friday."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

import chinese_calendar
from sqlmodel import Session, select

from bot.storage.models import CalendarDay


@dataclass
class WorkCalendar:
    """Which days are working days. `official` switches chinese-calendar (holidays and make-up days) on."""

    official: bool = True
    overrides: dict[date, bool] = field(default_factory=dict)

    def is_working_day(self, day: date) -> bool:
        """True on a working day: an office entry wins, then the State Council schedule, then Mon-Fri."""
        if day in self.overrides:
            return self.overrides[day]
        if self.official:
            try:
                return chinese_calendar.is_workday(day)
            except NotImplementedError:
                pass  # the package does not know this year yet
        return day.weekday() < 5

    def next_working_day(self, day: date) -> date:
        """The first working day after `day`."""
        nxt = day + timedelta(days=1)
        for _ in range(60):  # more days off in a row than any real schedule has means bad entries
            if self.is_working_day(nxt):
                return nxt
            nxt += timedelta(days=1)
        return nxt

    def knows_year(self, year: int) -> bool:
        """False when the official schedule is on but neither chinese-calendar nor the office knows `year`."""
        if not self.official or any(d.year == year for d in self.overrides):
            return True
        try:
            chinese_calendar.is_workday(date(year, 6, 1))
            return True
        except NotImplementedError:
            return False


def load_calendar(session: Session, *, official: bool = True) -> WorkCalendar:
    """The calendar with the office's entries from the database."""
    overrides = {row.day: row.working for row in session.exec(select(CalendarDay))}
    return WorkCalendar(official=official, overrides=overrides)
