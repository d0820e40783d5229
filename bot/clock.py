"""Clocks and how times are shown. The running bot reads its injected clock once per unit of work (real, or
shifted by the settings: `clock_from`); command-line tools read the real clock; tests move a FakeClock."""

from __future__ import annotations

from collections.abc import Callable
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
    """Real time moved by `offset` and running `speed` times as fast: for trying the schedule.

    A held clock stands still at its start until `start()`: a trial console holds it while the bot starts up and
    until the first message is typed, so a schedule tried from 09:00 begins at 09:00, however slow the machine."""

    def __init__(
        self,
        offset: timedelta = timedelta(0),
        speed: float = 1.0,
        *,
        held: bool = False,
        real: Callable[[], datetime] = real_clock,
    ) -> None:
        self._real = real
        self._real_start = real()
        self._fake_start = self._real_start + offset
        self.speed = speed
        self.held = held

    @classmethod
    def starting_at(
        cls, moment: datetime, speed: float = 1.0, *, held: bool = False, real: Callable[[], datetime] = real_clock
    ) -> ShiftedClock:
        """A clock that shows `moment` now (and, when held, until started)."""
        clock = cls(speed=speed, held=held, real=real)
        clock._fake_start = moment
        return clock

    def __call__(self) -> datetime:
        if self.held:
            return self._fake_start
        return self._fake_start + (self._real() - self._real_start) * self.speed

    def hold(self) -> None:
        """Stand still at the moment it shows now (until `start()`)."""
        self._fake_start = self()
        self.held = True

    def start(self) -> bool:
        """Let a held clock run on from where it stands, for good; False when it was running already."""
        if not self.held:
            return False
        self._real_start = self._real()
        self.held = False
        return True


def clock_from(offset_seconds: float, speed: float):
    """The real clock, or a shifted one when the settings ask for it."""
    if not offset_seconds and speed == 1.0:
        return real_clock
    return ShiftedClock(timedelta(seconds=offset_seconds), speed)
