"""What the running bot does while it cannot store anything (issue 12 items 8 and 9).

A storage outage starts when a unit of work fails because the disk is full or the database file was replaced
(bot/storage/guard.py). Then:

- the second channel (webhook robot, which needs no disk) is told once per outage;
- each incoming message that could not be recorded is kept in memory, in arrival order, with the moment it
  arrived (its unit of work is replayed with that `now`, so a confirmation counts when it was said); at most
  `storage_keep_max` are kept, the rest are counted and reported;
- each chat whose message was kept hears once per outage, straight through the transport (the outbox cannot be
  written), that it was kept ("暂存": memory is lost on a restart, so never "已记录");
- the kept messages are replayed through the normal dispatch every `storage_retry_seconds` and before each new
  message, in order, each exactly once; after the first full replay the office hears "存储已恢复，补记 N 条".
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from bot.storage.guard import StorageFault
from bot.transport.base import ChatKind, Incoming, LinkCard, Outgoing

if TYPE_CHECKING:
    from bot.content import Texts
    from bot.runtime.alerter import SecondChannel
    from bot.transport.base import Transport

log = logging.getLogger(__name__)


class StorageUnavailable(RuntimeError):
    """A unit of work could not store what it did (the outage is recorded in the StorageWatch)."""

    def __init__(self, fault: StorageFault) -> None:
        super().__init__(str(fault))
        self.fault = fault


@dataclass
class Kept:
    """A message that could not be recorded, with the moment it arrived and its link previews."""

    msg: Incoming
    at: datetime
    previews: dict[str, LinkCard] = field(default_factory=dict)


class StorageWatch:
    """The state of a storage outage and the messages kept during it. Runs on the bot's event loop."""

    def __init__(self, texts: Texts, *, keep_max: int = 10_000) -> None:
        self.texts = texts
        self.keep_max = keep_max
        self.alerter: SecondChannel | None = None  # set when the bot is built
        self.transport: Transport | None = None
        self.replay: Callable[[], Awaitable[int]] | None = None  # the bot's replay of the kept messages
        self.office: Callable[[], str | None] | None = None  # the office group's room id, read (not written)
        self.retry_seconds = 30.0
        self.down_since: datetime | None = None
        self.reason = ""
        self.kept: deque[Kept] = deque()
        self.dropped = 0
        self.replayed = 0  # kept messages recorded so far in this outage
        self._told: set[str] = set()
        self._overflow_told = False
        self._retry: asyncio.Task | None = None
        self._tasks: set[asyncio.Task] = set()

    @property
    def down(self) -> bool:
        return self.down_since is not None

    def failed(self, fault: StorageFault, now: datetime) -> None:
        """A write failed: start the outage (alert once) and make sure something retries."""
        if self.down_since is None:
            self.down_since, self.reason = now, fault.reason
            log.error("storage outage (%s): %s; keeping incoming messages in memory", fault.reason, fault)
            self._alert(self.texts.t(f"storage.alert_{fault.reason}", error=str(fault)[:200]))
        elif fault.reason == "replaced" and self.reason != "replaced":
            self.reason = "replaced"  # the graver cause wins, and is told
            self._alert(self.texts.t("storage.alert_replaced", error=str(fault)[:200]))
        self._start_retry()

    def _alert(self, text: str) -> None:
        """The second channel, and the office group straight through the transport (the outbox cannot be
        written); both once per outage."""
        if self.alerter is not None:
            try:
                self.alerter.alert(text)
            except RuntimeError:  # no running loop (a unit of work run outside the bot)
                log.warning("second channel not reachable from here: %s", text)
        try:
            task = asyncio.get_running_loop().create_task(self._tell_office(text))
        except RuntimeError:
            return
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _tell_office(self, text: str) -> None:
        if self.transport is None or self.office is None:
            return
        try:
            room_id = self.office()
            if room_id:
                await self.transport.send(Outgoing(ChatKind.ROOM, room_id, text=text))
        except Exception as exc:
            log.warning("could not tell the office group about the storage outage: %s", exc)

    def keep(self, msg: Incoming, at: datetime, previews: dict[str, LinkCard] | None = None) -> bool:
        """Keep `msg` for replay; False when the memory bound is reached (it is only counted then)."""
        if len(self.kept) >= self.keep_max:
            self.dropped += 1
            if not self._overflow_told:
                self._overflow_told = True
                log.error("storage outage: %d messages kept, dropping further ones", len(self.kept))
                self._alert(self.texts.t("storage.alert_overflow", kept=len(self.kept)))
            return False
        self.kept.append(Kept(msg, at, previews or {}))
        return True

    async def tell_chat(self, msg: Incoming) -> None:
        """Tell the chat `msg` came from, once per outage, that its message was kept."""
        if msg.chat_id in self._told or self.transport is None:
            return
        self._told.add(msg.chat_id)
        text = self.texts.t(f"storage.kept_{self.reason or 'full'}")
        try:
            await self.transport.send(Outgoing(msg.chat_kind, msg.chat_id, text=text))
        except Exception as exc:  # the chat may be down too; the second channel has been told
            log.warning("could not tell %s that its message was kept: %s", msg.chat_id, exc)

    def recovered(self) -> None:
        """The outage is over (everything kept was recorded and the office told): start afresh."""
        self.down_since, self.reason, self.dropped, self.replayed = None, "", 0, 0
        self._told.clear()
        self._overflow_told = False

    def _start_retry(self) -> None:
        if self.replay is None or (self._retry is not None and not self._retry.done()):
            return
        try:
            self._retry = asyncio.get_running_loop().create_task(self._retry_loop())
        except RuntimeError:
            self._retry = None

    async def _retry_loop(self) -> None:
        """Replay every `retry_seconds` until the outage is over (a new message also replays first)."""
        while self.down and self.replay is not None:
            await asyncio.sleep(self.retry_seconds)
            try:
                await self.replay()
            except Exception:
                log.exception("replaying the kept messages failed; trying again later")

    async def close(self) -> None:
        """Stop retrying (the bot stops; what is kept in memory is lost, as the chats were told)."""
        if self._retry is not None:
            self._retry.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._retry
        if self.kept:
            log.error("stopping with %d messages kept in memory that could not be recorded", len(self.kept))
