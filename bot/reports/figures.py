"""The figures of a report, computed by bot/reports/build.py and rendered by bot/reports/render.py."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from fractions import Fraction


@dataclass(frozen=True)
class UnitRow:
    """One unit's figures for the period. `rank` 1 is best; units with equal figures share it (1, 2, 2, 4)."""

    unit: str
    kind: str  # 镇街 / 区直单位 / 行业 / 其他
    received: int  # pushes whose deadline fell in the period and that expected the unit (not exempted: 免转)
    relayed: int  # confirmed at any time (on_time + late)
    on_time: int
    late: int
    missed: int  # never confirmed (received - relayed)
    median_minutes: float | None  # median minutes from push to confirmation; None if nothing relayed
    level: str  # "" or 提醒 / 约谈 / 书面说明 (escalation level now)
    rank: int
    added: int = 0  # confirmations the office recorded on the unit's behalf (补登), counted in `relayed`
    exempted: int = 0  # pushes of the period the unit was exempted from (免转), not in `received`
    reached: int = 0  # 覆盖人数: people in the unit's own groups where an alert of the period was seen

    @property
    def on_time_rate(self) -> float:
        """Share of received pushes relayed on time, 0..1 (1 when nothing was received)."""
        return self.on_time / self.received if self.received else 1.0


@dataclass(frozen=True)
class PushRow:
    """One push of the period."""

    n: int
    title: str
    pushed_at: datetime  # timezone-aware
    deadline: datetime  # timezone-aware
    confirmed: int
    total: int  # the units expected to relay it
    missing_units: list[str]
    added_units: list[str] = field(default_factory=list)  # 补登
    exempted_units: list[str] = field(default_factory=list)  # 免转


@dataclass(frozen=True)
class EvidenceRow:
    """A screenshot's verdict, for the 截图核验 sheet."""

    n: int
    unit: str
    verdict: str  # 已核验 / 未核验 / 存疑, or "" while waiting for the check
    reason: str


@dataclass(frozen=True)
class CorrectionRow:
    """One of the office's corrections (补登/撤销/免转) of a push of the period, for the 更正记录 sheet."""

    n: int
    unit: str
    kind: str  # 补登 / 撤销 / 免转
    reason: str
    by: str  # the admin's name (or contact id when the name is unknown)
    at: datetime  # timezone-aware


@dataclass(frozen=True)
class TrendRow:
    """One unit's quarter against the quarter before (季点评): its on-time rate (按时率, the share the ranking
    uses) in both, and the change in percentage points. A rate is None when the unit received nothing then."""

    unit: str
    kind: str
    rank: int  # this quarter's rank
    received: int
    on_time: int
    missed: int
    previous_received: int
    previous_on_time: int
    previous_missed: int

    @property
    def rate(self) -> float | None:
        """This quarter's on-time share, 0..1; None when nothing was received."""
        return self.on_time / self.received if self.received else None

    @property
    def previous_rate(self) -> float | None:
        """The previous quarter's on-time share, 0..1; None when nothing was received then."""
        return self.previous_on_time / self.previous_received if self.previous_received else None

    @property
    def change(self) -> float | None:
        """The change in percentage points, to 0.1; None unless the unit had pushes in both quarters."""
        if not self.received or not self.previous_received:
            return None
        # Exact shares (a Fraction), so that 1/3 and 2/6 make no difference and rounding is the same everywhere.
        points = (Fraction(self.on_time, self.received) - Fraction(self.previous_on_time, self.previous_received)) * 100
        return float(round(points, 1))

    @property
    def trend(self) -> str:
        """↑ / ↓ / 持平, 新 (no pushes last quarter), or "" (none this quarter)."""
        if self.rate is None:
            return ""
        if self.change is None:
            return "新"
        return "↑" if self.change > 0 else "↓" if self.change < 0 else "持平"


@dataclass(frozen=True)
class QuarterTrend:
    """What a quarterly review (季点评) adds to a report: every unit's trend and the lists drawn from it."""

    previous_start: date
    previous_end: date
    previous_pushes: int
    rows: list[TrendRow]  # in the report's ranking order
    # Best change first / worst change first; the chat names the first `*_named`, and counts a tie after them.
    improved: list[str] = field(default_factory=list)  # 进步最大: the largest rises
    improved_named: int = 0
    fallen: list[str] = field(default_factory=list)  # 下滑最多: the largest falls
    fallen_named: int = 0

    @property
    def rate(self) -> float | None:
        """The whole district's on-time share this quarter."""
        received = sum(r.received for r in self.rows)
        return sum(r.on_time for r in self.rows) / received if received else None

    @property
    def previous_rate(self) -> float | None:
        """The whole district's on-time share the quarter before (the units on the roster now)."""
        received = sum(r.previous_received for r in self.rows)
        return sum(r.previous_on_time for r in self.rows) / received if received else None


@dataclass(frozen=True)
class Report:
    """A daily, weekly, monthly or quarterly report."""

    kind: str  # "day" | "week" | "month" | "quarter"
    title: str  # e.g. 反诈预警转发周通报（2026年11月23日—11月29日）
    period_start: date
    period_end: date  # inclusive
    generated_at: datetime  # timezone-aware
    units: list[UnitRow]  # sorted by rank
    pushes: list[PushRow]  # in push order
    # The lists as bot/reports/ranking.py draws them: every unit on the list (all those tied at its end), best
    # first on the 红榜 and worst first on the 黑榜. The chat text names the first `*_named` (None: all) and counts
    # the rest, one group of tied units; the .xlsx names them all.
    red: list[str] = field(default_factory=list)  # 红榜: best units
    black: list[str] = field(default_factory=list)  # 黑榜: worst units
    escalations: dict[str, list[str]] = field(default_factory=dict)  # level -> unit names
    evidence: list[EvidenceRow] = field(default_factory=list)  # screenshots of the period's pushes
    corrections: list[CorrectionRow] = field(default_factory=list)  # of the period's pushes, in the order made
    red_named: int | None = None
    black_named: int | None = None
    trend: QuarterTrend | None = None  # a quarterly review's comparison with the quarter before
