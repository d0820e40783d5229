"""Loads content/: the alert library and every sentence the bot says."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from pathlib import Path

from bot.textnorm import squeeze

# content/ is a package of its own (package data in the wheel), found wherever it is installed. A wheel installs
# as plain files, so it is a real directory and a Path.
CONTENT_DIR = Path(str(files("content")))
EXAMPLE_ROSTER = CONTENT_DIR / "examples" / "roster_example.csv"


class Texts:
    """User-facing sentences by dotted key, e.g. `t("push.sent", n=3)`."""

    def __init__(self, data: dict) -> None:
        self._data = data

    def t(self, key: str, **values: object) -> str:
        """The sentence under `key` with its placeholders filled."""
        node: object = self._data
        for part in key.split("."):
            if not isinstance(node, dict) or part not in node:
                raise KeyError(f"no text for {key!r} in content/messages.toml")
            node = node[part]
        if not isinstance(node, str):
            raise KeyError(f"{key!r} is a section, not a sentence")
        return node.format(**values) if values else node


@dataclass(frozen=True)
class LibraryAlert:
    case_type: str
    aliases: tuple[str, ...]
    title: str
    body: str


class AlertLibrary:
    """The alerts per case type, found by name or alias."""

    def __init__(self, alerts: list[LibraryAlert]) -> None:
        self.alerts = alerts
        self._index: dict[str, LibraryAlert] = {}
        for alert in alerts:
            for name in (alert.case_type, *alert.aliases):
                key = squeeze(name)
                if key in self._index:
                    raise ValueError(f"alert name {name!r} is used twice in content/alerts")
                self._index[key] = alert

    def names(self) -> tuple[str, ...]:
        """Every case type and alias, squeezed (how they are matched)."""
        return tuple(self._index)

    def find(self, name: str) -> LibraryAlert | None:
        """The alert whose case type or alias is `name` (spaces, punctuation and width ignored)."""
        key = squeeze(name)
        if key in self._index:
            return self._index[key]
        # "刷单返利类" or "刷单诈骗" typed loosely: accept when exactly one known name is contained in it.
        hits = {a.case_type: a for k, a in self._index.items() if len(k) >= 2 and k in key}
        return next(iter(hits.values())) if len(hits) == 1 else None

    def case_types(self) -> list[str]:
        """Canonical case type names, in library order."""
        return [a.case_type for a in self.alerts]


@cache
def load_texts(directory: Path = CONTENT_DIR) -> Texts:
    """The sentences from content/messages.toml and content/messages_*.toml (one section per topic)."""
    data: dict = {}
    for path in [directory / "messages.toml", *sorted(directory.glob("messages_*.toml"))]:
        with path.open("rb") as fh:
            part = tomllib.load(fh)
        clash = set(part) & set(data)
        if clash:
            raise ValueError(f"{path.name} repeats the section(s) {sorted(clash)} of another messages file")
        data.update(part)
    return Texts(data)


@cache
def load_library(directory: Path = CONTENT_DIR) -> AlertLibrary:
    """The alert library from content/alerts/*.toml, sorted by file name."""
    alerts = []
    for path in sorted((directory / "alerts").glob("*.toml")):
        with path.open("rb") as fh:
            data = tomllib.load(fh)
        alerts.append(
            LibraryAlert(
                case_type=data["case_type"].strip(),
                aliases=tuple(a.strip() for a in data.get("aliases", [])),
                title=data["title"].strip(),
                body=data["body"].strip(),
            )
        )
    return AlertLibrary(alerts)
