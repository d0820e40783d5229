"""Chinese working days: chinese-calendar where it knows the year, Monday-Friday otherwise."""

from __future__ import annotations

import logging
from datetime import date, timedelta

import chinese_calendar

log = logging.getLogger(__name__)


def is_working_day(day: date) -> bool:
    """True on an official working day (make-up Saturdays included, public holidays excluded)."""
    try:
        return chinese_calendar.is_workday(day)
    except NotImplementedError:
        # The package does not know this year yet: fall back to Monday-Friday.
        return day.weekday() < 5


def next_working_day(day: date) -> date:
    """The first working day after `day`."""
    nxt = day + timedelta(days=1)
    while not is_working_day(nxt):
        nxt += timedelta(days=1)
    return nxt
