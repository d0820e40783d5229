"""`relaybot run --console`: the bot on a terminal chat (bot/transport/console.py).

A trial clock (--clock/--speed) stands still at its start while the bot starts and until the first message is
typed, then runs on. The console ends on /quit, the end of input (Ctrl-D, a piped script) or Ctrl-C, always the
same way: no new scheduled runs, the runs in flight finish, the acknowledgements still waiting for a quiet group
and the report files are made, everything queued is sent (printed), and whatever could not be is counted.
"""

from __future__ import annotations

import asyncio
import signal
from datetime import datetime, timedelta

import typer

from bot.config import Settings


class CtrlC:
    """The one owner of Ctrl-C (SIGINT) and SIGTERM in `run --console`, from the command's start to its end.

    Before the event loop runs (the trial copy being made), a Ctrl-C interrupts at once (KeyboardInterrupt, which
    `run` turns into the console's goodbye). From the moment the loop is entered, the first Ctrl-C never raises:
    it ends the console after the lines typed before it, even when it lands while the bot is still starting (it
    is remembered until the typed lines exist). A second Ctrl-C interrupts for real (the caller says so).

    One handler (signal.signal) for the whole command, so neither asyncio.run's own SIGINT handling (which cancels
    the main task mid-start) nor a bare KeyboardInterrupt between the two can take a Ctrl-C (issue 13)."""

    def __init__(self) -> None:
        self.requested = False
        self._in_loop = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lines = None

    def install(self) -> None:
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, self._handle)

    def entering_loop(self) -> None:
        """Called just before asyncio.run: from now on the first Ctrl-C is remembered, not raised."""
        self._in_loop = True

    def attach(self, lines) -> None:
        """The typed lines exist: a Ctrl-C ends them (at once, if one came while the bot was starting)."""
        self._loop = asyncio.get_running_loop()
        self._lines = lines
        if self.requested:
            lines.interrupt()

    def _handle(self, signum, frame) -> None:
        if not self._in_loop or self.requested:
            raise KeyboardInterrupt
        self.requested = True
        if self._lines is not None and self._loop is not None:
            self._loop.call_soon_threadsafe(self._lines.interrupt)


async def run_console(
    settings: Settings, clock_start: datetime | None, *, serve, open_db, ctrl_c: CtrlC | None = None
) -> None:
    """Build the console's rooms and people from the roster, then serve the bot until the console ends."""
    from sqlmodel import select

    from bot.clock import ShiftedClock, real_clock
    from bot.content import load_texts
    from bot.storage.db import session
    from bot.storage.models import Liaison
    from bot.transport.base import Member, RoomInfo
    from bot.transport.console import ConsoleTransport, StdinLines

    texts = load_texts()
    lines = StdinLines()
    if ctrl_c is None:  # called without `run` (which owns Ctrl-C from its start)
        ctrl_c = CtrlC()
        ctrl_c.install()
        ctrl_c.entering_loop()
    ctrl_c.attach(lines)  # first: a Ctrl-C while the bot starts ends the console the same clean way

    liaison_name = settings.liaison_groups[0] if settings.liaison_groups else "联络员群（控制台）"
    office_name = settings.office_group or "反诈办工作群（控制台）"
    admin_id = settings.admin_ids[0] if settings.admin_ids else "console-admin"
    settings = settings.model_copy(
        update={
            "liaison_groups": [liaison_name],
            "office_group": office_name,
            "admin_ids": list({*settings.admin_ids, admin_id}),
            "send_spacing_seconds": 0.0,
        }
    )
    engine = open_db(settings)
    with session(engine) as s:
        people = [
            Member(liaison.contact_id or f"console-{liaison.id}", liaison.wechat_name or liaison.name, "")
            for liaison in s.exec(select(Liaison).where(Liaison.active == True))  # noqa: E712
        ]
    admin = Member(admin_id, "反诈办管理员", "")
    stranger = Member("console-stranger", "路人甲", "")

    if clock_start is None and (settings.clock_offset_seconds or settings.clock_speed != 1.0):
        clock_start = real_clock() + timedelta(seconds=settings.clock_offset_seconds)  # moved by the settings
    clock = (
        real_clock
        if clock_start is None
        else ShiftedClock.starting_at(clock_start, settings.clock_speed, held=True)  # runs from the first message
    )
    transport = ConsoleTransport(
        [
            (RoomInfo("console-office@chatroom", office_name), [admin]),
            (RoomInfo("console-liaison@chatroom", liaison_name), [admin, *people, stranger]),
        ],
        clock=clock,
        tz=settings.tz,
        speed=settings.clock_speed,
        texts=texts,
    )
    if not people:
        from bot.content import EXAMPLE_ROSTER  # the installed copy: a wheel has no examples/ beside it

        typer.echo(texts.t("console.empty_roster", path=EXAMPLE_ROSTER))

    ended = ""

    async def chat(bot) -> None:
        nonlocal ended
        ended = await transport.repl(bot, after_each=bot.send_pending, lines=lines)
        if isinstance(clock, ShiftedClock):
            clock.hold()  # what is still sent now belongs to the moment the session ended

    async def drain(bot) -> None:
        # The session is over: acknowledge what is still waiting for its group to go quiet, make the report
        # files, and send (print) everything queued.
        bot.settings = bot.settings.model_copy(update={"ack_quiet_seconds": 0, "ack_min_interval_seconds": 0})
        await bot.flush_acks()
        await bot.renderer.render_pending()
        await bot.send_pending()
        unsent = _unsent(bot)
        if ended in ("end-of-input", "interrupted"):
            typer.echo(texts.t(f"console.{ended.replace('-', '_')}"))
        if unsent:
            typer.echo(texts.t("console.unsent", n=unsent))

    await serve(settings, transport, engine, clock, chat, drain)


def _unsent(bot) -> int:
    """Rows of the outbox not sent: waiting, being rendered, or failed for good."""
    from sqlalchemy import func
    from sqlmodel import col, select

    from bot.storage.models import Outbox, OutboxState

    with bot.units.session() as s:
        return int(
            s.exec(
                select(func.count())
                .select_from(Outbox)
                .where(col(Outbox.state).in_([OutboxState.PENDING.value, OutboxState.RENDERING.value]))
            ).one()
        )
