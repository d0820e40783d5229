"""The transport contract: what the bot needs from a chat platform, reduced to a few plain fields."""

from __future__ import annotations

import dataclasses
import enum
from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


class ChatKind(str, enum.Enum):
    ROOM = "room"
    PRIVATE = "private"


class MessageKind(str, enum.Enum):
    TEXT = "text"
    IMAGE = "image"
    LINK = "link"
    FILE = "file"
    # A type the platform client cannot name (WeChat's 群接龙, a 视频号 share, raw app-message XML, plain system
    # notices): `text` carries what the platform sent, for the chat layer to read.
    UNKNOWN = "unknown"
    SYSTEM = "system"  # a platform system message (e.g. "发送消息过于频繁"); `text` is its text
    RECALL = "recall"  # a recall or a pat (拍一拍): `text` is the platform's <sysmsg> XML
    OTHER = "other"  # a known type the bot does not read (voice, video, stickers, ...)


@dataclass(frozen=True)
class LinkCard:
    url: str
    title: str
    description: str = ""
    thumbnail_url: str = ""


@dataclass(frozen=True)
class Image:
    """An image as bytes; `name` is the file name shown in the chat."""

    name: str
    data: bytes


@dataclass(frozen=True)
class FileData:
    """Any file to send as a file, e.g. an .xlsx report."""

    name: str
    data: bytes


@dataclass(frozen=True)
class Member:
    """A person seen in a room: contact id, WeChat name, and group nickname (may be empty)."""

    contact_id: str
    name: str
    group_nickname: str = ""


@dataclass(frozen=True)
class RoomInfo:
    room_id: str
    name: str


@dataclass(frozen=True)
class Incoming:
    """One message as the bot sees it, whatever platform it came from."""

    message_id: str
    chat_kind: ChatKind
    chat_id: str  # room id for a room, the sender's contact id for a private chat
    chat_name: str  # room topic, or the sender's name in a private chat
    sender: Member
    kind: MessageKind
    text: str = ""
    mention_ids: tuple[str, ...] = ()
    link: LinkCard | None = None
    image: Image | None = None
    file: FileData | None = None  # a file someone sent (e.g. an .xlsx of incident figures)
    sent_at: datetime | None = None


@dataclass(frozen=True)
class RoomInvite:
    """An invitation for the bot to join a room."""

    invitation_id: str
    inviter_id: str
    room_topic: str = ""


@dataclass(frozen=True)
class Outgoing:
    """One thing to send: text (with optional @-mentions), a link card, an image or a file."""

    chat_kind: ChatKind
    chat_id: str
    text: str = ""
    mention_ids: tuple[str, ...] = ()
    link: LinkCard | None = None
    image: Image | None = None
    file: FileData | None = None


class SendError(Exception):
    """The transport could not send; `rate_limited` tells a frequency limit from other failures, and
    `disconnected` a dropped gateway connection (the message should wait for the link, not pause sending)."""

    def __init__(self, message: str, *, rate_limited: bool = False, disconnected: bool = False) -> None:
        super().__init__(message)
        self.rate_limited = rate_limited
        self.disconnected = disconnected


class EventSink(Protocol):
    """What a transport calls when something happens. Implemented by the app."""

    async def on_ready(self, bot_id: str) -> None: ...

    async def on_message(self, msg: Incoming) -> None: ...

    async def on_room_join(self, room: RoomInfo, joined: list[Member], inviter_id: str) -> None: ...

    async def on_room_invite(self, invite: RoomInvite) -> None: ...

    async def on_connection(self, state: str, detail: str) -> None:
        """The link to the platform changed: "lost", "restored" or "logged_out"."""

    async def on_echo(self, message_id: str, chat_id: str, text: str) -> None:
        """The platform echoed a message the bot itself sent (proof that events still arrive)."""

    async def on_room_topic(self, room: RoomInfo) -> None:
        """A room was renamed (`room.name` is the new topic)."""


class Transport(ABC):
    """A chat platform connection. Only implementations know the platform's objects."""

    @abstractmethod
    async def start(self, sink: EventSink) -> None:
        """Connect and start delivering events to `sink`; returns once connected."""

    @abstractmethod
    async def stop(self) -> None:
        """Disconnect."""

    @abstractmethod
    async def send(self, out: Outgoing) -> str | None:
        """Send one message; returns the platform message id if known. Raises SendError."""

    @abstractmethod
    async def rooms(self) -> list[RoomInfo]:
        """Rooms the bot is in."""

    @abstractmethod
    async def room_members(self, room_id: str) -> list[Member]:
        """Members of a room, with group nicknames."""

    @abstractmethod
    async def accept_invite(self, invitation_id: str) -> None:
        """Accept a room invitation."""

    async def room_member_count(self, room_id: str) -> int:
        """How many people besides the bot are in a room (a platform may count without reading each member)."""
        return len(await self.room_members(room_id))

    async def leave_room(self, room_id: str) -> bool:
        """Leave a room; False if this platform cannot."""
        return False


def without_nul(value):
    """`value` (an event dataclass, or a list/tuple of them) with NUL characters removed from every text field.

    WeChat text may carry U+0000; PostgreSQL refuses it in any string, so a message holding one would be lost there.
    Bytes (images, files) are left alone.
    """
    if isinstance(value, str):
        return value.replace("\x00", "") if "\x00" in value else value
    if isinstance(value, (list, tuple)):
        return type(value)(without_nul(v) for v in value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        changes = {
            f.name: without_nul(getattr(value, f.name))
            for f in dataclasses.fields(value)
            if isinstance(getattr(value, f.name), (str, list, tuple))
            or dataclasses.is_dataclass(getattr(value, f.name))
        }
        changed = {k: v for k, v in changes.items() if v is not getattr(value, k)}
        return dataclasses.replace(value, **changed) if changed else value
    return value
