"""`relaybot roster import`: read and check the file, show how it was read, preview or apply the change.

An import that would deactivate units (units missing from the file) is shown and not applied unless `--yes`;
`--dry-run` shows the change and writes nothing: both ask the import for its report without applying it.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable
from pathlib import Path

import typer

from bot.domain.roster import (
    RosterError,
    confirm_command_line,
    import_roster,
    outcome_lines,
    read_roster_path,
    refusal_lines,
)
from bot.storage.db import session

# Characters that make a path need quoting in a shell command the clerk copies.
_SHELL_SPECIAL = re.compile(r"[\s'\"$`\\;&|<>()*?!#~{}\[\]]")


def run_import(file: Path, *, sheet: str | None, dry_run: bool, yes: bool, open_engine: Callable[[], object]) -> int:
    """Import (or preview) the roster file; prints what happened and returns the exit code."""
    try:
        read = read_roster_path(file, sheet=sheet)
    except RosterError as exc:
        for note in exc.notes:
            typer.echo(note, err=True)
        typer.echo(exc.failure(), err=True)
        return 1
    engine = open_engine()
    with session(engine) as s:  # type: ignore[arg-type]
        report = import_roster(s, read.rows, columns=read.columns, apply=False)
        if dry_run:
            _echo(outcome_lines(read, report, preview=True))
            return 0
        if report.deactivated_units and not yes:
            _echo(refusal_lines(read, report))
            typer.echo(confirm_command_line(_command(file, sheet)))
            return 1
        report = import_roster(s, read.rows, columns=read.columns)
        s.commit()
    _echo(outcome_lines(read, report, preview=False))
    return 0


def _echo(lines: list[str]) -> None:
    for line in lines:
        typer.echo(line)


def _command(file: Path, sheet: str | None) -> str:
    parts = ["relaybot", "roster", "import", _quoted(str(file))]
    if sheet:
        parts += ["--sheet", _quoted(sheet)]
    return " ".join([*parts, "--yes"])


def _quoted(text: str) -> str:
    return shlex.quote(text) if _SHELL_SPECIAL.search(text) else text
