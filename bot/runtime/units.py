"""The unit-of-work runner: one unit of work at a time, each in its own session with the clock read once."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime
from typing import TypeVar

from sqlalchemy.engine import Engine
from sqlmodel import Session

from bot.chat.dispatch import Context
from bot.config import Settings
from bot.content import AlertLibrary, Texts
from bot.runtime.storage_watch import StorageUnavailable, StorageWatch
from bot.storage.db import make_engine
from bot.storage.db import session as new_session
from bot.storage.guard import DatabaseReplaced, replaced_problem, storage_fault
from bot.storage.models import Priority

T = TypeVar("T")


class UnitOfWork:
    """Runs the bot's units of work one at a time (SQLite has one writer anyway), off the event loop.

    A unit of work opens a session, reads the clock once, does its work and commits before anything it queued
    can be sent. Afterwards `outbox_changed` is set, so the outbox sender looks at once.
    """

    def __init__(
        self,
        *,
        engine: Engine,
        clock: Callable[[], datetime],
        settings: Settings,
        texts: Texts,
        library: AlertLibrary,
        outbox_changed: asyncio.Event,
    ) -> None:
        self.engine = engine
        self.clock = clock
        self.settings = settings
        self.texts = texts
        self.library = library
        self.outbox_changed = outbox_changed
        self.lock = asyncio.Lock()
        self.bot_id = ""  # the bot's own contact id, once logged in
        # A full disk or a replaced database file (issue 12 items 8, 9): see storage_watch.py.
        self.storage = StorageWatch(texts, keep_max=settings.storage_keep_max)
        # A district of a city: the city's own login (no district path or role) for the city admins' commands.
        self.city: Engine | None = (
            make_engine(settings.city_database_url) if settings.district and settings.city_database_url else None
        )

    def session(self) -> Session:
        """A session for reading outside the lock (or inside a unit of work that holds it)."""
        return new_session(self.engine)

    def context(self, s: Session, now: datetime) -> Context:
        """The context a handler or a job gets for one unit of work."""
        return Context(
            session=s,
            now=now,
            settings=self.settings,
            texts=self.texts,
            library=self.library,
            bot_id=self.bot_id,
            city=self.city,
        )

    async def run(self, work: Callable[..., T], *args: object) -> T:
        """Run `work(*args)` in a worker thread while holding the lock; wake the sender afterwards.

        A failure to store (disk full, database file replaced) starts or continues the storage outage (the
        second channel hears once) and is raised as StorageUnavailable; the work's transaction was rolled back.
        """
        async with self.lock:
            try:
                result = await asyncio.to_thread(work, *args)
            except Exception as exc:
                fault = storage_fault(exc)
                problem = "" if fault is not None else replaced_problem(self.engine)
                if problem:  # whatever failed, it failed on a database file that is gone or replaced
                    fault = DatabaseReplaced(problem)
                if fault is None:
                    raise
                self.storage.failed(fault, self.clock())
                raise StorageUnavailable(fault) from exc
        self.outbox_changed.set()
        return result

    async def tell_office(self, text: str, *, priority: Priority = Priority.NOTICE) -> None:
        """Queue one sentence for the office group in a unit of work of its own."""

        def work() -> None:
            with self.session() as s:
                self.context(s, self.clock()).to_office(text, priority=priority)
                s.commit()

        await self.run(work)
