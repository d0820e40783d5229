"""Clocks and how times are shown. The running bot reads its injected clock once per unit of work (real, or
shifted by the settings: `clock_from`); command-line tools read the real clock; tests move a FakeClock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

_WEEKDAYS = "一二三四五六日"


def real_clock() -> datetime:
    """Now, in UTC."""
    return datetime.now(UTC)


class FakeClock:
    """A clock that only moves when told to."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("FakeClock needs an aware datetime")
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        """Move forward by timedelta(**delta)."""
        self.now += timedelta(**delta)
        return self.now


def show(moment: datetime, tz: ZoneInfo) -> str:
    """A time as people read it on a phone: 11月28日(周六) 18:00."""
    local = moment.astimezone(tz)
    return f"{local.month}月{local.day}日(周{_WEEKDAYS[local.weekday()]}) {local:%H:%M}"


class ShiftedClock:
    """Real time moved by `offset` and running `speed` times as fast: for trying the schedule."""

    def __init__(self, offset: timedelta = timedelta(0), speed: float = 1.0) -> None:
        self._real_start = real_clock()
        self._fake_start = self._real_start + offset
        self.speed = speed

    def __call__(self) -> datetime:
        return self._fake_start + (real_clock() - self._real_start) * self.speed


def clock_from(offset_seconds: float, speed: float):
    """The real clock, or a shifted one when the settings ask for it."""
    if not offset_seconds and speed == 1.0:
        return real_clock
    return ShiftedClock(timedelta(seconds=offset_seconds), speed)
