"""Targeted pushes (精准滴灌): `推送 刷单 给 学校,医院` aims a push at some units only.

A target is written as people type it: tags from the roster's 标签 column (学校, 医院, 银行 ...), a 类别 (镇街,
区直单位, 行业), or unit names, separated by commas, 、 or spaces. The units are fixed when the push is made
(PushTarget rows); relay's expected rule then counts only them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlmodel import Session, col, select

from bot.domain.roster import KINDS, name_key, tag_list
from bot.storage.models import Unit, pk

# Words that mean every unit: `推送 刷单 给 全部` is a push to everyone (overrides a library default target).
EVERYONE = frozenset(("全部", "全体", "所有", "全区", "所有单位", "全部单位", "各单位", "全体单位", "所有人"))
MAX_TARGET = 200  # Push.target


@dataclass(frozen=True)
class Target:
    label: str  # as shown to people: "学校、医院"
    unit_ids: tuple[int, ...]  # the active units aimed at, in roster order
    names: tuple[str, ...] = ()  # their names, in the same order


class TargetError(ValueError):
    """Words of a target that name no tag, 类别 or active unit."""

    def __init__(self, unknown: list[str], ambiguous: dict[str, list[str]] | None = None) -> None:
        super().__init__("、".join(unknown))
        self.unknown = unknown  # every word that named no unit, the ambiguous ones too
        self.ambiguous = ambiguous or {}  # a part of several units' names -> those names


def is_everyone(spec: str) -> bool:
    """No target, or one that says every unit (全部)."""
    words = tag_list(spec)
    return not words or any(w in EVERYONE for w in words)


def _kind(word: str) -> str | None:
    kind = KINDS.get(re.sub(r"\s+", "", word))
    return kind.value if kind is not None else None


def resolve(session: Session, spec: str) -> Target | None:
    """The units `spec` aims at; None for every unit (no target, or 全部). Raises TargetError naming the words
    that match nothing. A word is, in this order: a tag of some active unit, a 类别, a unit's name, or a part of
    exactly one unit's name (`教育局` for 区教育局)."""
    if is_everyone(spec):
        return None
    words = tag_list(spec)
    units = list(session.exec(select(Unit).where(Unit.active == True).order_by(col(Unit.id))))  # noqa: E712
    chosen: set[int] = set()
    unknown: list[str] = []
    ambiguous: dict[str, list[str]] = {}
    for word in words:
        key = name_key(word)
        hits = [u for u in units if key in {name_key(t) for t in tag_list(u.tags)}]
        if not hits and (kind := _kind(word)) is not None:
            hits = [u for u in units if u.kind == kind]
        if not hits:
            hits = [u for u in units if name_key(u.name) == key]
        if not hits:
            parts = [u for u in units if key and key in name_key(u.name)]
            hits = parts if len(parts) == 1 else []
            if len(parts) > 1:
                ambiguous[word] = [u.name for u in parts]
        if not hits:
            unknown.append(word)
        chosen.update(pk(u) for u in hits)
    if unknown:
        raise TargetError(unknown, ambiguous)
    aimed = [u for u in units if pk(u) in chosen]
    return Target("、".join(words)[:MAX_TARGET], tuple(pk(u) for u in aimed), tuple(u.name for u in aimed))


def known_tags(session: Session) -> list[str]:
    """Every tag the active units carry, most used first (for the answer to a target that names nothing)."""
    counts: dict[str, int] = {}
    for tags in session.exec(select(Unit.tags).where(Unit.active == True, Unit.tags != "")):  # noqa: E712
        for tag in tag_list(tags):
            counts[tag] = counts.get(tag, 0) + 1
    return sorted(counts, key=lambda t: (-counts[t], t))
