"""The figures of a report, computed by bot/reports/build.py and rendered by bot/reports/render.py."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime


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
class Report:
    """A daily, weekly or monthly report."""

    kind: str  # "day" | "week" | "month"
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
