"""Routers, filters and the per-message context handlers receive."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlmodel import Session, select

from bot.chat.parsing import parse_command, parse_quote
from bot.config import Settings
from bot.content import AlertLibrary, Texts
from bot.domain.relay import audit, office_group
from bot.domain.workdays import WorkCalendar, load_calendar
from bot.storage import outbox
from bot.storage.models import Group, GroupKind, Priority
from bot.transport.base import ChatKind, Incoming, MessageKind

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CommandObject:
    """A command parsed once per message, handed to its handler (aiogram's CommandObject)."""

    name: str
    arg: str  # the rest of the line, cleaned
    quoted: str = ""  # the quoted message's text when the command was typed under a quote (`推送` under a draft)


@dataclass
class Context:
    """What a handler gets besides the message: one unit of work and the clock read once."""

    session: Session
    now: datetime
    settings: Settings
    texts: Texts
    library: AlertLibrary
    bot_id: str = ""
    # Rooms whose member list the app should fetch after this unit of work (a group just became served).
    refresh_rooms: set[str] = field(default_factory=set)
    # Link cards the app fetched for URLs in this message (handlers do no network I/O).
    previews: dict = field(default_factory=dict)
    # What the app read from a file in this message before the unit of work, outside its lock (reading a workbook
    # takes seconds), by message id: see handlers/office_records.py `read_admin_file`.
    files: dict = field(default_factory=dict)
    # Groups this unit of work has already loaded, by room id (the session's own objects, so changes made in
    # this unit of work show): the room a message came from is read once, not by every filter.
    groups: dict[str, Group] = field(default_factory=dict)
    # WeChat's silent "发送消息过于频繁" notice arrived: the app pauses sending as for a refused send.
    rate_limit_notice: str = ""
    # The city's database (a district of a city, issue 16): the login that reads and writes every district, for
    # the city admins' commands (handlers/city.py); None for a district alone.
    city: Any = None
    # The message's command, parsed on first use (None: parsed, there is none).
    _command: dict[str, CommandObject | None] = field(default_factory=dict, repr=False)

    @property
    def tz(self) -> ZoneInfo:
        return self.settings.tz

    @property
    def today(self) -> date:
        """Today in the office's timezone, by the clock this unit of work read."""
        return self.now.astimezone(self.settings.tz).date()

    def t(self, key: str, **values: object) -> str:
        """A sentence from content/."""
        return self.texts.t(key, **values)

    def calendar(self) -> WorkCalendar:
        """Working days, with the office's own entries."""
        return load_calendar(self.session, official=self.settings.official_calendar)

    def is_admin(self, contact_id: str) -> bool:
        """Office admins are known by contact id only, never by name."""
        return bool(contact_id) and contact_id in self.settings.admin_ids

    def group_kind(self, room_id: str) -> GroupKind:
        """How the bot serves this room."""
        group = self.groups.get(room_id)
        kind: str | None
        if group is not None:
            kind = group.kind
        else:
            kind = self.session.exec(select(Group.kind).where(Group.room_id == room_id)).first()
        return GroupKind(kind) if kind else GroupKind.NONE

    def command(self, msg: Incoming) -> CommandObject | None:
        """The command in this message (under a quote too), parsed once however many filters ask."""
        if msg.message_id not in self._command:
            self._command[msg.message_id] = _parse_command_of(msg)
        return self._command[msg.message_id]

    def office_group(self) -> Group | None:
        """The office group, if one is set."""
        return office_group(self.session)

    def audit(self, msg: Incoming, action: str, detail: str = "", *, allowed: bool = True) -> None:
        """One audit row for what the message's sender did (or was refused), in this unit of work."""
        audit(
            self.session,
            now=self.now,
            actor_id=msg.sender.contact_id,
            actor_name=msg.sender.name,
            action=action,
            detail=detail,
            allowed=allowed,
        )

    def send(self, chat_kind: ChatKind, chat_id: str, text: str = "", **extra) -> None:
        """Queue a message in this unit of work; it goes out after commit."""
        outbox.queue(self.session, now=self.now, chat_kind=chat_kind, chat_id=chat_id, text=text, **extra)
        self.session.flush()

    def reply(
        self,
        msg: Incoming,
        text: str,
        mention_ids: tuple[str, ...] = (),
        *,
        courtesy: bool | None = None,
        given_once: bool = False,
    ) -> None:
        """Answer in the chat the message came from.

        An answer to anyone but an admin is a courtesy (help, a refusal, "not understood") unless the handler
        says `courtesy=False` (say, about a confirmation it recorded): at most one per person per
        `stranger_reply_interval_minutes` (later ones are dropped, not folded: the next one says the same),
        sent after pushes and admin replies, and from its own daily cap, so nobody can spend the office's budget
        or hold up its sends by writing to the bot. `given_once`: the handler gives this answer once per person
        ever (a first notice), so it is not dropped, only sent as a courtesy."""
        if courtesy is None:
            courtesy = not self.is_admin(msg.sender.contact_id)
        if not courtesy:
            self.send(msg.chat_kind, msg.chat_id, text, mention_ids=mention_ids)
            return
        if not given_once and not outbox.courtesy_allowed(
            self.session,
            contact_id=msg.sender.contact_id,
            now=self.now,
            interval=timedelta(minutes=self.settings.stranger_reply_interval_minutes),
            daily_cap=self.settings.stranger_reply_budget,
            tz=self.settings.tz,
        ):
            log.info("no answer to %s: answered within the interval, or today's cap is reached", msg.sender.contact_id)
            return
        self.send(msg.chat_kind, msg.chat_id, text, mention_ids=mention_ids, priority=Priority.COURTESY)

    def to_office(self, text: str, priority: Priority = Priority.REPLY) -> bool:
        """Tell the office group, if there is one."""
        office = self.office_group()
        if office is None:
            log.warning("no office group for: %s", text)
            return False
        self.send(ChatKind.ROOM, office.room_id, text, priority=priority)
        return True


def _parse_command_of(msg: Incoming) -> CommandObject | None:
    if msg.kind != MessageKind.TEXT:
        return None
    quote = parse_quote(msg.text)
    text, quoted = (quote.reply, quote.quoted) if quote is not None else (msg.text, "")
    cmd = parse_command(text)
    return CommandObject(cmd.name, cmd.arg, quoted) if cmd is not None else None


# A filter says whether a route takes the message; it may hand data on to the handler as a dict of keyword
# arguments (the command filter hands on `cmd`), so nothing is parsed twice.
Filter = Callable[[Incoming, Context], "bool | dict[str, Any]"]


# A route's handler: `fn(msg, ctx, **data)` with what its filters handed on; False passes the message on.
HandlerFn = Callable[..., "bool | None"]


@dataclass(frozen=True)
class Route:
    filters: tuple[Filter, ...]
    handler: HandlerFn


def command_filter(*names: str) -> Filter:
    """Takes a text message whose command is one of `names` (any command if none), handing on `cmd`."""

    def check(msg: Incoming, ctx: Context) -> bool | dict[str, Any]:
        cmd = ctx.command(msg)
        if cmd is None or (names and cmd.name not in names):
            return False
        return {"cmd": cmd}

    return check


# An office command's handler: the message, the context and the parsed command.
CommandHandler = Callable[[Incoming, Context, CommandObject], None]


@dataclass(frozen=True)
class CommandSpec:
    names: tuple[str, ...]
    usage: str  # key under [commands] in content/messages.toml, or "section.key": the lines `帮助` shows
    handler: Callable[..., Any] | None  # None: listed in help, answered elsewhere


class CommandRegistry:
    """Commands by name, each with its handler and usage text; `帮助` lists them in registration order, so the
    help cannot drift from what is dispatched."""

    def __init__(self) -> None:
        self.specs: list[CommandSpec] = []
        self._by_name: dict[str, CommandSpec] = {}

    def add(self, names: tuple[str, ...], handler: Callable[..., Any] | None, *, usage: str) -> None:
        """Register `handler` for `names`, shown in help under `commands.<usage>`."""
        spec = CommandSpec(tuple(names), usage, handler)
        for name in spec.names:
            if name in self._by_name:
                raise ValueError(f"command {name!r} is registered twice")
            self._by_name[name] = spec
        self.specs.append(spec)

    def command(self, *names: str, usage: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Decorator form of `add`."""

        def register(fn: Callable[..., Any]) -> Callable[..., Any]:
            self.add(names, fn, usage=usage)
            return fn

        return register

    def extend(self, other: CommandRegistry) -> CommandRegistry:
        """Add every registration of `other`, after this one's; returns self."""
        for spec in other.specs:
            self.add(spec.names, spec.handler, usage=spec.usage)
        return self

    def get(self, name: str) -> CommandSpec | None:
        """The registration of a command name."""
        return self._by_name.get(name)

    def names(self) -> tuple[str, ...]:
        """Every registered name, in registration order."""
        return tuple(self._by_name)

    def help_text(self, texts: Texts, *, head: str, foot: str = "") -> str:
        """The head, every registration's usage lines in order, and the foot."""
        lines = [head, *(texts.t(usage_key(spec.usage)) for spec in self.specs)]
        return "\n".join(lines + ([foot] if foot else []))


def usage_key(usage: str) -> str:
    """A usage under [commands] by its key, or any "section.key" (a feature's own messages file)."""
    return usage if "." in usage else f"commands.{usage}"


class Router:
    """Handlers with their filters, tried in the order they were registered."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.routes: list[Route] = []
        self.commands = CommandRegistry()  # this router's commands, for `帮助`

    def message(self, *filters: Filter) -> Callable[[HandlerFn], HandlerFn]:
        """Register a handler that runs when all filters pass; it may return False to pass the message on."""

        def register(fn: HandlerFn) -> HandlerFn:
            self.routes.append(Route(filters, fn))
            return fn

        return register

    def command(
        self, *names: str, usage: str, who: Filter, where: Filter
    ) -> Callable[[CommandHandler], CommandHandler]:
        """One route per command: `fn(msg, ctx, cmd)` runs for `names` typed by `who` in `where`; the command is
        listed in `帮助` under `commands.<usage>`, in registration order."""

        def register(fn: CommandHandler) -> CommandHandler:
            self.commands.add(names, fn, usage=usage)
            self.routes.append(Route((who, where, command_filter(*names)), fn))
            return fn

        return register


class Dispatcher:
    """Feeds a message to the first handler that takes it; routers in priority order."""

    def __init__(self, routers: list[Router]) -> None:
        self.routers = routers

    def feed(self, msg: Incoming, ctx: Context) -> str | None:
        """Run the first matching handler; returns its name, or None if nobody took the message."""
        for router in self.routers:
            for route in router.routes:
                data = _passes(route.filters, msg, ctx)
                if data is not None and route.handler(msg, ctx, **data) is not False:
                    return f"{router.name}.{route.handler.__name__}"
        return None


def _passes(filters: tuple[Filter, ...], msg: Incoming, ctx: Context) -> dict[str, Any] | None:
    """The data the filters hand on when all pass, else None."""
    data: dict[str, Any] = {}
    for check in filters:
        result = check(msg, ctx)
        if not result:
            return None
        if isinstance(result, dict):
            data.update(result)
    return data
