"""Trial runs (`run --console`, `--clock`, `--speed`) on a throwaway database, so nothing reaches the real one.

The real database is copied into a temporary SQLite file that is deleted at the end: SQLite with the backup API
(one consistent moment, safe while the bot runs), PostgreSQL table by table in one repeatable-read transaction.
The copy gets its own evidence folder, and the second channel (WeCom/DingTalk robot) is switched off: a trial's
alerts and daily summary must not reach the real office.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import typer
from sqlalchemy.engine import make_url

from bot.cli.database import database_url_problem, shown_url
from bot.config import Settings
from bot.content import load_texts


@contextmanager
def trial_database(settings: Settings) -> Iterator[Settings]:
    """Settings on a temporary copy of the configured database; the copy is deleted on leaving."""
    texts = load_texts()
    problem = database_url_problem(settings.database_url)
    if problem is not None:
        typer.echo(problem, err=True)
        raise typer.Exit(2)
    folder = Path(tempfile.mkdtemp(prefix="relaybot-trial-"))
    try:
        target = folder / "relaybot-trial.db"
        try:
            note = _copy(settings.database_url, target, texts)
        except Exception as exc:
            from bot.storage.db import describe_error

            typer.echo(texts.t("trial.copy_failed", error=describe_error(exc)), err=True)
            raise typer.Exit(1) from None
        typer.echo(note)
        yield settings.model_copy(
            update={
                "database_url": f"sqlite:///{target}",
                "evidence_dir": str(folder / "evidence"),
                "notify_url": "",
                "notify_secret": "",
            }
        )
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _copy(url: str, target: Path, texts) -> str:
    """Fill `target` from the database at `url`; returns the sentence that says what the trial runs on."""
    from bot.storage.db import backup

    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        real = parsed.database or ""
        if real in ("", ":memory:") or not Path(real).is_file():
            return texts.t("trial.empty", path=target) + texts.t("trial.empty_missing", real=real or ":memory:")
        backup(url, target)  # the SQLite backup API: reads the real file, writes only the copy
        return texts.t("trial.copied", path=target, real=real)
    if not _copy_tables(url, target):
        return texts.t("trial.empty", path=target) + texts.t("trial.empty_old_schema", real=shown_url(url))
    return texts.t("trial.copied", path=target, real=shown_url(url))


def _copy_tables(url: str, target: Path) -> bool:
    """Every table's rows from another database (PostgreSQL) into a new SQLite file at the newest schema;
    False (and an empty copy) when the source is not at the newest schema."""
    from sqlmodel import SQLModel

    from bot.storage.db import create_schema, make_engine, schema_revisions

    source = make_engine(url)
    copy = make_engine(f"sqlite:///{target}")
    try:
        current, head = schema_revisions(source)
        create_schema(copy)
        if current != head:  # an older schema's rows do not fit the newest tables: the trial starts empty
            return False
        with source.connect().execution_options(isolation_level="REPEATABLE READ") as read, copy.begin() as write:
            for table in SQLModel.metadata.sorted_tables:  # parents before children (foreign keys)
                rows = [dict(row._mapping) for row in read.execute(table.select())]
                if rows:
                    write.execute(table.insert(), rows)
        return True
    finally:
        source.dispose()
        copy.dispose()
