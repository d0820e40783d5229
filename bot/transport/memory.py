"""An in-memory transport for tests and the demo: messages are injected, sends are recorded."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import datetime

from bot.transport.base import (
    ChatKind,
    EventSink,
    FileData,
    Image,
    Incoming,
    LinkCard,
    Member,
    MessageKind,
    Outgoing,
    RoomInfo,
    RoomInvite,
    Transport,
)


@dataclass
class MemoryTransport(Transport):
    """A chat that lives in lists. `say`, `send_image`, `send_link` speak as a member; `sent` records the bot."""

    bot_id: str = "bot"
    bot_name: str = "反诈助手"
    room_list: list[RoomInfo] = field(default_factory=list)
    members: dict[str, list[Member]] = field(default_factory=dict)
    sent: list[Outgoing] = field(default_factory=list)
    accepted_invites: list[str] = field(default_factory=list)
    left_rooms: list[str] = field(default_factory=list)
    sink: EventSink | None = None
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1))

    async def start(self, sink: EventSink) -> None:
        self.sink = sink
        await sink.on_ready(self.bot_id)

    async def stop(self) -> None:
        self.sink = None

    @property
    def _events(self) -> EventSink:
        """The sink given to start(); events before it (or after stop()) are a mistake in the test."""
        if self.sink is None:
            raise RuntimeError("the memory transport is not started")
        return self.sink

    async def send(self, out: Outgoing) -> str | None:
        self.sent.append(out)
        return f"out-{next(self._ids)}"

    async def rooms(self) -> list[RoomInfo]:
        return list(self.room_list)

    async def room_members(self, room_id: str) -> list[Member]:
        return [m for m in self.members.get(room_id, []) if m.contact_id != self.bot_id]

    async def accept_invite(self, invitation_id: str) -> None:
        self.accepted_invites.append(invitation_id)

    async def leave_room(self, room_id: str) -> bool:
        self.left_rooms.append(room_id)
        self.room_list = [r for r in self.room_list if r.room_id != room_id]
        return True

    # ---- driving it ------------------------------------------------------------------------------

    def add_room(self, room_id: str, name: str, members: list[Member]) -> RoomInfo:
        """A room the bot is in, with these members."""
        room = RoomInfo(room_id, name)
        self.room_list.append(room)
        self.members[room_id] = list(members)
        return room

    def room_name(self, room_id: str) -> str:
        return next((r.name for r in self.room_list if r.room_id == room_id), room_id)

    def member(self, contact_id: str) -> Member | None:
        for members in self.members.values():
            for m in members:
                if m.contact_id == contact_id:
                    return m
        return None

    def incoming(
        self,
        sender: Member,
        text: str = "",
        *,
        room_id: str | None = None,
        kind: MessageKind = MessageKind.TEXT,
        link: LinkCard | None = None,
        image: Image | None = None,
        file: FileData | None = None,
        mention_ids: tuple[str, ...] = (),
        at: datetime | None = None,
    ) -> Incoming:
        """Build a message as the transport would deliver it."""
        if room_id is None:
            chat_kind, chat_id, chat_name = ChatKind.PRIVATE, sender.contact_id, sender.name
        else:
            chat_kind, chat_id, chat_name = ChatKind.ROOM, room_id, self.room_name(room_id)
            # The member's nickname in this room, as a real room would show it.
            sender = next((m for m in self.members.get(room_id, []) if m.contact_id == sender.contact_id), sender)
        return Incoming(
            message_id=f"in-{next(self._ids)}",
            chat_kind=chat_kind,
            chat_id=chat_id,
            chat_name=chat_name,
            sender=sender,
            kind=kind,
            text=text,
            mention_ids=mention_ids,
            link=link,
            image=image,
            file=file,
            sent_at=at,
        )

    async def say(self, sender: Member, text: str, *, room_id: str | None = None, **kw) -> Incoming:
        """`sender` writes `text` in a room (or privately to the bot)."""
        msg = self.incoming(sender, text, room_id=room_id, **kw)
        await self._events.on_message(msg)
        return msg

    async def send_image(self, sender: Member, image: Image, *, room_id: str | None = None) -> Incoming:
        """`sender` posts an image."""
        return await self.say(sender, "", room_id=room_id, kind=MessageKind.IMAGE, image=image)

    async def send_file(self, sender: Member, file: FileData, *, room_id: str | None = None) -> Incoming:
        """`sender` sends a file."""
        return await self.say(sender, "", room_id=room_id, kind=MessageKind.FILE, file=file)

    async def send_link(self, sender: Member, link: LinkCard, *, room_id: str | None = None) -> Incoming:
        """`sender` shares a link card."""
        return await self.say(sender, link.url, room_id=room_id, kind=MessageKind.LINK, link=link)

    async def join(self, room_id: str, members: list[Member], inviter_id: str = "") -> None:
        """Members join a room."""
        self.members.setdefault(room_id, []).extend(members)
        await self._events.on_room_join(RoomInfo(room_id, self.room_name(room_id)), members, inviter_id)

    async def invite(self, invitation_id: str, inviter_id: str, topic: str) -> None:
        """Someone invites the bot to a room."""
        await self._events.on_room_invite(RoomInvite(invitation_id, inviter_id, topic))

    def render(self, out: Outgoing) -> str:
        """One sent message as a line of a chat log."""
        where = self.room_name(out.chat_id) if out.chat_kind == ChatKind.ROOM else f"私聊 {out.chat_id}"
        names = [m.name if (m := self.member(i)) else i for i in out.mention_ids]
        mentions = "".join(f"@{n} " for n in names)
        if out.link is not None:
            body = f"[链接卡片] {out.link.title} {out.link.url}"
        elif out.image is not None:
            body = f"[图片] {out.image.name} ({len(out.image.data)} 字节)"
        elif out.file is not None:
            body = f"[文件] {out.file.name} ({len(out.file.data)} 字节)"
        else:
            body = out.text
        return f"[{where}] {self.bot_name}: {mentions}{body}"
