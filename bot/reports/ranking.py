"""The ranking rule, written once: how units are ordered, when they share a rank, and who is on the 红榜 and 黑榜.

A unit's leader must be able to check his place from the figures alone, so nothing else decides it: not the
roster file's order, not the database ids. Units with equal figures share a rank (competition ranking: 1, 2, 2,
4), and a list that ends inside such a tie takes the whole tie, or, when that is too long to name in a chat, names
the units above the tie and counts the tied ones. The sentence that states the rule to the office is
`rank.rule` in content/messages_rank.toml: change both together (tests/reports/test_ranking.py checks them).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Protocol, TypeVar

BOARD_SIZE = 3  # units on each list, when there is no tie at its end
# A tie at a list's end is named in full as long as the list stays this short; beyond it the tied units are
# counted in the chat text ("另有 29 个单位并列……") and named in the .xlsx.
BOARD_MAX_NAMED = 2 * BOARD_SIZE


class Figures(Protocol):
    """What ranking reads of a unit."""

    @property
    def unit(self) -> str: ...
    @property
    def received(self) -> int: ...
    @property
    def on_time(self) -> int: ...
    @property
    def late(self) -> int: ...
    @property
    def missed(self) -> int: ...
    @property
    def median_minutes(self) -> float | None: ...


class Ranked(Protocol):
    """A unit with its rank."""

    @property
    def unit(self) -> str: ...
    @property
    def rank(self) -> int: ...


T = TypeVar("T", bound=Figures)
R = TypeVar("R", bound=Ranked)


def rank_key(u: Figures) -> tuple[Fraction, int, int, float]:
    """Smaller is better: highest share on time, then fewest missed, fewest late, fastest median.

    The share, not the count, because a count would rank a unit down for pushes it was exempted from (免转); with
    no exemptions every unit received the same pushes and the share orders them as the count did. A Fraction, so
    that 1/3 and 2/6 are equal. A unit that received nothing counts as all on time. The median is compared as
    reported (to 0.1 minute); no median (nothing relayed by the unit itself) comes after any median.
    """
    share = Fraction(u.on_time, u.received) if u.received else Fraction(1)
    median = u.median_minutes if u.median_minutes is not None else float("inf")
    return (-share, u.missed, u.late, median)


def ranked_order(units: Sequence[T]) -> list[tuple[int, T]]:
    """The units best first with their shared ranks (1, 2, 2, 4); tied units in the order of their names."""
    ordered = sorted(units, key=lambda u: (rank_key(u), u.unit))
    out: list[tuple[int, T]] = []
    for i, u in enumerate(ordered):
        if i and rank_key(u) == rank_key(ordered[i - 1]):
            out.append((out[-1][0], u))
        else:
            out.append((i + 1, u))
    return out


def on_red_list(u: Figures) -> bool:
    """Eligible for the 红榜: received at least one push and relayed every one on time."""
    return u.received > 0 and u.missed == 0 and u.late == 0


def on_black_list(u: Figures) -> bool:
    """Eligible for the 黑榜: missed or was late at least once (never true of a unit eligible for the 红榜)."""
    return u.missed > 0 or u.late > 0


@dataclass(frozen=True)
class Board:
    """A 红榜 or 黑榜: every unit on it, in list order, and how many of them the chat text names.

    The units after `named` (if any) are one group tied at the list's end, too many to name in a chat."""

    units: list[str]
    named: int


def draw_board(ranked: Sequence[R], *, eligible: Callable[[R], bool], worst_first: bool) -> Board:
    """The list of `ranked` (best first, with shared ranks) among the eligible units: the best (or the worst)
    BOARD_SIZE, with every unit tied with the last of them. A tie that would make the list longer than
    BOARD_MAX_NAMED is counted, not named."""
    groups: list[list[R]] = []
    for u in ranked:
        if not eligible(u):
            continue
        if groups and groups[-1][0].rank == u.rank:
            groups[-1].append(u)
        else:
            groups.append([u])
    if worst_first:
        groups.reverse()  # the tied units within a group stay in name order
    taken: list[str] = []
    for group in groups:
        if len(taken) >= BOARD_SIZE:
            break
        names = [u.unit for u in group]
        if len(taken) + len(names) > BOARD_MAX_NAMED:
            return Board(taken + names, named=len(taken))
        taken += names
    return Board(taken, named=len(taken))
