"""A console transport: type lines as a chosen member in a chosen group, see what the bot sends."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import threading
from collections.abc import Awaitable, Callable
from typing import TextIO, TypeVar

from bot.clock import show
from bot.content import Texts, load_texts
from bot.textnorm import squeeze
from bot.transport.base import EventSink, Image, LinkCard, Member, Outgoing, RoomInfo
from bot.transport.memory import MemoryTransport

T = TypeVar("T")

# What the line source hands the console besides typed lines.
END_OF_INPUT = "end-of-input"
INTERRUPTED = "interrupted"

# Console commands that only look around or choose who speaks where: they do not start a held trial clock.
_NAVIGATION = ("/help", "/who", "/as", "/room", "/private")


class StdinLines:
    """Typed lines from standard input, read by a daemon thread, for the event loop.

    The thread reads the raw file descriptor (not sys.stdin, whose buffer lock a blocked daemon thread would
    hold at interpreter exit), so a Ctrl-C while it waits for a line ends the console at once: nothing waits for
    the thread. `interrupt()` (from a signal handler) and the end of input reach the console as items of the
    same queue, after the lines typed before them."""

    def __init__(self, fd: int | None = None) -> None:
        self.fd = sys.stdin.fileno() if fd is None else fd
        self.queue: asyncio.Queue[str | tuple[str]] = asyncio.Queue()
        self.interrupted = asyncio.Event()  # also ends a /wait in progress
        self._loop = asyncio.get_running_loop()
        threading.Thread(target=self._read, name="console-stdin", daemon=True).start()

    async def get(self) -> str | tuple[str]:
        """The next typed line (without its newline), or (END_OF_INPUT,) / (INTERRUPTED,)."""
        return await self.queue.get()

    def interrupt(self) -> None:
        """Ctrl-C or a stop signal: the console ends after the lines before it."""
        self.queue.put_nowait((INTERRUPTED,))
        self.interrupted.set()

    def _put(self, item: str | tuple[str]) -> bool:
        try:
            self._loop.call_soon_threadsafe(self.queue.put_nowait, item)
            return True
        except RuntimeError:  # the event loop is closed: the console is over
            return False

    def _read(self) -> None:
        pending = b""
        while True:
            try:
                chunk = os.read(self.fd, 4096)
            except OSError:
                chunk = b""
            if not chunk:
                if pending:
                    self._put(pending.decode("utf-8", errors="replace"))
                self._put((END_OF_INPUT,))
                return
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for line in lines:
                if not self._put(line.decode("utf-8", errors="replace").rstrip("\r")):
                    return


def pick(wanted: str, options: list[tuple[T, tuple[str, ...]]]) -> list[T]:
    """The options whose names match `wanted`: exactly, else by the start, else anywhere in the name; compared
    without case, width, spaces and punctuation. One item: found; several: ambiguous; none: not found."""
    key = squeeze(wanted)
    if not key:
        return []
    for matches in (str.__eq__, str.startswith, str.__contains__):
        found: list[T] = []
        for item, names in options:
            if any(matches(squeeze(name), key) for name in names if name) and item not in found:
                found.append(item)
        if found:
            return found
    return []


class ConsoleTransport(MemoryTransport):
    """The in-memory transport driven from a terminal; the bot's sends are printed as they happen.

    With a held trial clock (bot.clock.ShiftedClock(held=True)) the clock stands still until the first message
    is typed (or /start, /wait), then runs on."""

    def __init__(
        self,
        rooms: list[tuple[RoomInfo, list[Member]]],
        *,
        out: TextIO = sys.stdout,
        clock=None,
        tz=None,
        speed: float = 1.0,
        texts: Texts | None = None,
    ) -> None:
        super().__init__(bot_id="console-bot")
        self.clock, self.tz, self.speed = clock, tz, speed
        self.texts = texts or load_texts()
        for room, members in rooms:
            self.add_room(room.room_id, room.name, members)
        self.out = out
        self.speaker: Member = rooms[0][1][0]
        self.room_id: str | None = rooms[0][0].room_id
        self._interrupted = asyncio.Event()  # the line source's, once repl() runs

    def _say(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    def t(self, key: str, **kw: object) -> str:
        return self.texts.t(f"console.{key}", **kw)

    async def send(self, out: Outgoing) -> str | None:
        result = await super().send(out)
        stamp = f"{self.clock().astimezone(self.tz):%m-%d %H:%M} " if self.clock else ""
        self._say(stamp + self.render(out))
        return result

    def _people(self) -> list[Member]:
        seen: dict[str, Member] = {}
        for members in self.members.values():
            for m in members:
                seen.setdefault(m.contact_id, m)
        return list(seen.values())

    def prompt(self) -> str:
        where = self.room_name(self.room_id) if self.room_id else self.t("private")
        return f"[{where}] {self.speaker.name}> "

    # ---- the trial clock -------------------------------------------------------------------------------

    def clock_held(self) -> bool:
        return bool(getattr(self.clock, "held", False))

    def _speed_text(self) -> str:
        for seconds, unit in ((3600, "hour"), (60, "minute")):
            if self.speed == seconds:
                return self.t(f"speed_{unit}")
        return self.t("speed_times", speed=f"{self.speed:g}")

    def welcome(self) -> str:
        """The lines shown when the console starts: the commands, and where a trial clock stands."""
        lines = [self.t("help")]
        if self.clock_held():
            lines.append(self.t("clock_held", now=show(self.clock(), self.tz), speed=self._speed_text()))
        return "\n".join(lines)

    def start_clock(self) -> None:
        """Let a held trial clock run (once); says so."""
        if self.clock_held() and self.clock.start():
            self._say(self.t("clock_started", now=show(self.clock(), self.tz), speed=self._speed_text()))

    # ---- typed lines -----------------------------------------------------------------------------------

    async def handle_line(self, line: str) -> bool:
        """Act on one typed line; False means quit."""
        line = line.strip()
        if not line:
            return True
        command, _, rest = line.partition(" ")
        rest = rest.strip()
        if command in ("/quit", "/exit"):
            return False
        if command not in _NAVIGATION:
            self.start_clock()
        if command == "/help":
            self._say(self.welcome())
        elif command == "/start":
            if not self.clock_held():
                self._say(self.t("clock_running"))
        elif command == "/who":
            for m in self._people():
                self._say(f"  {m.name}（{m.contact_id}）{m.group_nickname}")
        elif command == "/as":
            self._choose_speaker(rest)
        elif command == "/room":
            self._choose_room(rest)
        elif command == "/wait":
            try:
                seconds = float(rest or "1")
            except ValueError:
                self._say(self.t("wait_number", wanted=rest))
                return True
            with contextlib.suppress(TimeoutError):  # a Ctrl-C does not wait for the end of a /wait
                async with asyncio.timeout(min(max(seconds, 0.0), 3600.0)):
                    await self._interrupted.wait()
        elif command == "/private":
            self.room_id = None
        elif command == "/image":
            await self.send_image(
                self.speaker, Image("screenshot.jpg", b"\xff\xd8\xff console screenshot"), room_id=self.room_id
            )
        elif command == "/link":
            if not rest:
                self._say(self.t("link_usage"))
                return True
            parts = rest.split(maxsplit=1)
            await self.send_link(
                self.speaker, LinkCard(parts[0], parts[1] if len(parts) > 1 else parts[0]), room_id=self.room_id
            )
        else:
            await self.say(self.speaker, line, room_id=self.room_id)
        return True

    def _choose_speaker(self, wanted: str) -> None:
        people = self._people()
        if not wanted:
            self._say(self.t("as_usage"))
            return
        found = pick(wanted, [(m, (m.name, m.contact_id, m.group_nickname)) for m in people])
        if len(found) == 1:
            self.speaker = found[0]
        elif found:
            names = "、".join(f"{m.name}（{m.contact_id}）" for m in found)
            self._say(self.t("many_people", wanted=wanted, n=len(found), names=names))
        else:
            self._say(self.t("no_person", wanted=wanted, names="、".join(m.name for m in people)))

    def _choose_room(self, wanted: str) -> None:
        if not wanted:
            self._say(self.t("room_usage", names="、".join(r.name for r in self.room_list)))
            return
        found = pick(wanted, [(r, (r.name, r.room_id)) for r in self.room_list])
        if len(found) == 1:
            self.room_id = found[0].room_id
        elif found:
            self._say(self.t("many_rooms", wanted=wanted, n=len(found), names="、".join(r.name for r in found)))
        else:
            self._say(self.t("no_room", wanted=wanted, names="、".join(r.name for r in self.room_list)))

    async def repl(
        self,
        sink: EventSink,
        after_each: Callable[[], Awaitable[object]] | None = None,
        *,
        lines: StdinLines | None = None,
    ) -> str:
        """Read typed lines until /quit, the end of input or an interrupt; returns which of the three ended it
        ("quit", END_OF_INPUT or INTERRUPTED)."""
        self._say(self.welcome())
        source = lines or StdinLines()
        self._interrupted = source.interrupted
        while True:
            print(self.prompt(), end="", file=self.out, flush=True)
            item = await source.get()
            if isinstance(item, tuple):
                print(file=self.out)  # the prompt's line ends
                return item[0]
            if not await self.handle_line(item):
                return "quit"
            if after_each is not None:
                await after_each()
