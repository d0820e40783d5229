"""Routers, filters and the per-message context handlers receive."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Callable, Protocol
from zoneinfo import ZoneInfo

from sqlmodel import Session, select

from bot.storage import outbox
from bot.domain.workdays import WorkCalendar, load_calendar
from bot.config import Settings
from bot.content import AlertLibrary, Texts
from bot.storage.models import Group, GroupKind, Priority
from bot.chat.parsing import Command
from bot.transport.base import ChatKind, Incoming

log = logging.getLogger(__name__)


@dataclass
class Context:
    """What a handler gets besides the message: one unit of work and the clock read once."""

    session: Session
    now: datetime
    settings: Settings
    texts: Texts
    library: AlertLibrary
    bot_id: str = ""
    sent: list[int] = field(default_factory=list)
    # Rooms whose member list the app should fetch after this unit of work (a group just became served).
    refresh_rooms: set[str] = field(default_factory=set)
    # Link cards the app fetched for URLs in this message (handlers do no network I/O).
    previews: dict = field(default_factory=dict)
    # Groups this unit of work has already loaded, by room id (the session's own objects, so changes made in
    # this unit of work show): the room a message came from is read once, not by every filter.
    groups: dict[str, Group] = field(default_factory=dict)
    # WeChat's silent "发送消息过于频繁" notice arrived: the app pauses sending as for a refused send.
    rate_limit_notice: str = ""

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.settings.timezone)

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
        if group is not None:
            kind = group.kind
        else:
            kind = self.session.exec(select(Group.kind).where(Group.room_id == room_id)).first()
        return GroupKind(kind) if kind else GroupKind.NONE

    def send(self, chat_kind: ChatKind, chat_id: str, text: str = "", **extra) -> None:
        """Queue a message in this unit of work; it goes out after commit."""
        row = outbox.queue(self.session, now=self.now, chat_kind=chat_kind, chat_id=chat_id, text=text, **extra)
        self.session.flush()
        self.sent.append(row.id)

    def reply(self, msg: Incoming, text: str, mention_ids: tuple[str, ...] = ()) -> None:
        """Answer in the chat the message came from."""
        self.send(msg.chat_kind, msg.chat_id, text, mention_ids=mention_ids)

    def to_office(self, text: str, priority: Priority = Priority.REPLY) -> bool:
        """Tell the office group, if there is one."""
        office = self.session.exec(select(Group).where(Group.kind == GroupKind.OFFICE.value)).first()
        if office is None:
            log.warning("no office group for: %s", text)
            return False
        self.send(ChatKind.ROOM, office.room_id, text, priority=priority)
        return True


Filter = Callable[[Incoming, Context], bool]


class HandlerFn(Protocol):
    def __call__(self, msg: Incoming, ctx: Context) -> bool | None: ...


@dataclass(frozen=True)
class Route:
    filters: tuple[Filter, ...]
    handler: HandlerFn


class Router:
    """Handlers with their filters, tried in the order they were registered."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.routes: list[Route] = []

    def message(self, *filters: Filter) -> Callable[[HandlerFn], HandlerFn]:
        """Register a handler that runs when all filters pass; it may return False to pass the message on."""

        def register(fn: HandlerFn) -> HandlerFn:
            self.routes.append(Route(filters, fn))
            return fn

        return register


# An office command's handler: the message, the context, the parsed command and the quoted text ("" if none).
CommandHandler = Callable[[Incoming, Context, Command, str], None]


@dataclass(frozen=True)
class CommandSpec:
    names: tuple[str, ...]
    usage: str  # key under [commands] in content/messages.toml: the lines `帮助` shows for these names
    handler: CommandHandler | None  # None: answered by another router (e.g. group settings, inside the room)


class CommandRegistry:
    """Commands by name, each with its handler and usage text; `帮助` lists them in registration order, so the
    help cannot drift from what is dispatched."""

    def __init__(self) -> None:
        self.specs: list[CommandSpec] = []
        self._by_name: dict[str, CommandSpec] = {}

    def add(self, names: tuple[str, ...], handler: CommandHandler | None, *, usage: str) -> None:
        """Register `handler` for `names`, shown in help under `commands.<usage>`."""
        spec = CommandSpec(tuple(names), usage, handler)
        for name in spec.names:
            if name in self._by_name:
                raise ValueError(f"command {name!r} is registered twice")
            self._by_name[name] = spec
        self.specs.append(spec)

    def command(self, *names: str, usage: str) -> Callable[[CommandHandler], CommandHandler]:
        """Decorator form of `add`."""

        def register(fn: CommandHandler) -> CommandHandler:
            self.add(names, fn, usage=usage)
            return fn

        return register

    def get(self, name: str) -> CommandSpec | None:
        """The registration of a command name."""
        return self._by_name.get(name)

    def names(self) -> tuple[str, ...]:
        """Every registered name, in registration order."""
        return tuple(self._by_name)

    def help_text(self, texts: Texts, *, head: str, foot: str = "") -> str:
        """The head, every registration's usage lines in order, and the foot."""
        lines = [head, *(texts.t(f"commands.{spec.usage}") for spec in self.specs)]
        return "\n".join(lines + ([foot] if foot else []))


class Dispatcher:
    """Feeds a message to the first handler that takes it; routers in priority order."""

    def __init__(self, routers: list[Router]) -> None:
        self.routers = routers

    def feed(self, msg: Incoming, ctx: Context) -> str | None:
        """Run the first matching handler; returns its name, or None if nobody took the message."""
        for router in self.routers:
            for route in router.routes:
                if all(f(msg, ctx) for f in route.filters):
                    if route.handler(msg, ctx) is not False:
                        return f"{router.name}.{route.handler.__name__}"
        return None
