"""The WeChat transport: python-wechaty 0.10 talking to a Wechaty puppet-service gateway."""

from __future__ import annotations

import asyncio
import base64
import functools
import logging
import os
import socket
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from grpclib.const import Status
from grpclib.exceptions import GRPCError, ProtocolError, StreamTerminatedError

from bot import redaction  # noqa: F401  (installs the log filter that keeps the token out of hpack's DEBUG lines)
from bot.transport import wechaty_compat
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
    SendError,
    Transport,
)

wechaty_compat.apply()

from apscheduler.schedulers.asyncio import AsyncIOScheduler  # noqa: E402
from wechaty import Wechaty, WechatyOptions  # noqa: E402
from wechaty.user.url_link import UrlLink  # noqa: E402
from wechaty.utils.async_helper import SingleIdContainer  # noqa: E402
from wechaty_puppet import FileBox, MessageType, PuppetOptions, UrlLinkPayload  # noqa: E402

log = logging.getLogger(__name__)

PUPPET_EVENTS = ("login", "logout", "scan", "error", "message", "room-join", "room-invite", "room-topic")
KINDS = {
    MessageType.MESSAGE_TYPE_TEXT: MessageKind.TEXT,
    MessageType.MESSAGE_TYPE_IMAGE: MessageKind.IMAGE,
    MessageType.MESSAGE_TYPE_URL: MessageKind.LINK,
    MessageType.MESSAGE_TYPE_ATTACHMENT: MessageKind.FILE,
    MessageType.MESSAGE_TYPE_RECALLED: MessageKind.RECALL,
    # GroupNote (10), Post (16), Unknown (0) and any number the client has no name for (compat fix).
    MessageType.MESSAGE_TYPE_UNSPECIFIED: MessageKind.UNKNOWN,
}
# The TypeScript puppet's System type, which the client maps to UNSPECIFIED like the rest.
TS_SYSTEM_TYPE = 18
# Kinds whose meaning is in the platform's text (raw XML for 群接龙 or a recall), so `text` carries it as sent.
RAW_TEXT_KINDS = frozenset({MessageKind.TEXT, MessageKind.UNKNOWN, MessageKind.SYSTEM, MessageKind.RECALL})
RECONNECT_DELAYS = (1.0, 2.0, 5.0, 10.0, 30.0)
# While the gateway's port refuses connections, it is probed this often, so that the bot reconnects within
# about this long of the gateway coming back instead of sleeping out the rest of a long back-off.
REACHABLE_POLL_SECONDS = 0.5
# Timestamps above this are milliseconds (it is 2038 in seconds), as python-wechaty assumes too.
MAX_SECONDS_TIMESTAMP = 2145888000


class WechatyStartError(ConnectionError):
    """The gateway is unreachable, refused the token, or did not log the bot in in time."""


class GatewayUnreachable(WechatyStartError):
    """Nothing accepts TCP connections at the endpoint."""


class WechatyTransport(Transport):
    """A Transport over a Wechaty puppet-service gateway (plaintext gRPC, token auth)."""

    def __init__(
        self,
        endpoint: str,
        token: str,
        *,
        cache_dir: str | Path,
        plugin_port: int | None = None,
        login_timeout: float = 60.0,
    ) -> None:
        self.endpoint = endpoint
        self._token = token
        self.cache_dir = Path(cache_dir)
        self.plugin_port = plugin_port or _free_port()
        self.login_timeout = login_timeout
        self.bot_id = ""
        self._logged_in = False
        self._bot: Wechaty | None = None
        self._sink: EventSink | None = None
        self._events: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        self._ready: asyncio.Future[str] | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._reconnects = 0
        self._stream_up = False  # logged in and the event stream is open; False from the moment it fails

    async def start(self, sink: EventSink) -> None:
        """Connect, wait for the bot's login, call sink.on_ready once; raises WechatyStartError on failure."""
        if self._bot is not None:
            raise RuntimeError("WechatyTransport already started")
        self._configure_environment()
        await self._check_reachable()
        self._sink = sink
        self._events = asyncio.Queue()
        self._ready = asyncio.get_running_loop().create_future()
        # A fresh PuppetOptions: the class-level default in WechatyOptions is shared and mutated (compat fix 3).
        # The plugin web server is never started (we bridge puppet events ourselves), but it needs a port.
        self._bot = Wechaty(
            WechatyOptions(
                puppet_options=PuppetOptions(),
                host="127.0.0.1",
                port=self.plugin_port,
                scheduler=AsyncIOScheduler(),
            )
        )
        await self._bot.init_puppet()
        # Our own bridge instead of Wechaty.start(): on failure that stops the event loop or sleeps 60 s, it
        # never re-fires login after a reconnect, and it handles each event in its own task, out of order.
        puppet = self._bot.puppet
        for event in PUPPET_EVENTS:
            puppet.on(event, functools.partial(self._enqueue, event))
        self._tasks = [asyncio.create_task(self._consume()), asyncio.create_task(self._run(puppet))]
        try:
            await asyncio.wait_for(asyncio.shield(self._ready), self.login_timeout)
        except TimeoutError:
            await self.stop()
            raise WechatyStartError(
                f"the Wechaty gateway at {self.endpoint} did not log the bot in within {self.login_timeout:.0f} s "
                "(is a login QR code waiting to be scanned?)"
            ) from None
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        """Disconnect without logging the bot out of the gateway."""
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._bot is not None and self._bot._puppet is not None:
            channel = getattr(self._bot._puppet, "channel", None)
            if channel is not None:
                channel.close()
        self._bot = None
        self._logged_in = False
        self._stream_up = False

    async def send(self, out: Outgoing) -> str | None:
        """Send a link, then an image, then the text (with mentions in rooms); returns the text's message id.

        A SendError raised because the gateway connection is down (not WeChat refusing the message) carries
        `disconnected = True`, so that the caller can wait for the connection instead of pausing for a limit.
        """
        if not (out.text or out.link or out.image or out.file):
            raise SendError("nothing to send")
        try:
            bot = self._connected_bot()
            target: Any
            if out.chat_kind is ChatKind.ROOM:
                target = bot.Room.load(out.chat_id)
            else:
                target = bot.Contact.load(out.chat_id)
            await target.ready()
            message_ids = []
            if out.link:
                payload = UrlLinkPayload(
                    url=out.link.url,
                    title=out.link.title,
                    description=out.link.description,
                    thumbnailUrl=out.link.thumbnail_url,
                )
                message_ids.append(await _say(target, UrlLink(payload)))
            for attachment in (out.image, out.file):
                if attachment:
                    box = FileBox.from_base64(base64.b64encode(attachment.data), name=attachment.name)
                    message_ids.append(await _say(target, box))
            if out.text:
                mention_ids = list(out.mention_ids) if out.chat_kind is ChatKind.ROOM and out.mention_ids else None
                message_ids.append(await _say(target, out.text, mention_ids))
        except Exception as e:
            rate_limited = isinstance(e, GRPCError) and e.status is Status.RESOURCE_EXHAUSTED
            raise SendError(
                self._scrub(f"sending to {out.chat_id} failed: {e!r}"),
                rate_limited=rate_limited,
                disconnected=not self._stream_up or _is_connection_error(e),
            ) from e
        return message_ids[-1]

    async def rooms(self) -> list[RoomInfo]:
        """Rooms the bot is in, with fresh topics."""
        bot = self._connected_bot()
        rooms = [bot.Room.load(room_id) for room_id in await bot.puppet.room_list()]
        await asyncio.gather(*(room.ready(force_sync=True) for room in rooms))
        return [RoomInfo(room_id=room.room_id, name=room.payload.topic) for room in rooms]

    async def room_members(self, room_id: str) -> list[Member]:
        """Members of a room other than the bot, with their group nicknames."""
        bot = self._connected_bot()
        member_ids = await bot.puppet.room_members(room_id)
        return list(await asyncio.gather(*(self._member(room_id, m) for m in member_ids if m != self.bot_id)))

    async def room_member_count(self, room_id: str) -> int:
        """Members of a room other than the bot, counted from the id list (no member payloads read)."""
        member_ids = await self._connected_bot().puppet.room_members(room_id)
        return sum(1 for m in member_ids if m != self.bot_id)

    async def leave_room(self, room_id: str) -> bool:
        """Quit a room."""
        await self._connected_bot().puppet.room_quit(room_id)
        return True

    async def accept_invite(self, invitation_id: str) -> None:
        """Accept a room invitation; the room-join event follows when the bot is in."""
        await self._connected_bot().puppet.room_invitation_accept(invitation_id)

    def _configure_environment(self) -> None:
        # python-wechaty reads its connection and cache settings from the environment.
        for name in ("TOKEN", "token", "ENDPOINT", "endpoint"):
            os.environ.pop(name, None)
        os.environ["WECHATY_PUPPET_SERVICE_ENDPOINT"] = self.endpoint
        os.environ["WECHATY_PUPPET_SERVICE_TOKEN"] = self._token
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        os.environ["CACHE_DIR"] = str(self.cache_dir)

    async def _check_reachable(self) -> None:
        # The library's own check blocks the event loop for up to 3 s and reports nothing useful.
        parts = urlsplit(f"//{self.endpoint}")
        try:
            if not parts.hostname or not parts.port:
                raise ValueError("expected HOST:PORT")
            _, writer = await asyncio.wait_for(asyncio.open_connection(parts.hostname, parts.port), 5)
        except (TimeoutError, OSError, ValueError) as e:
            raise GatewayUnreachable(f"cannot reach the Wechaty gateway at {self.endpoint}: {e!r}") from e
        writer.close()

    async def _wait_to_reconnect(self, delay: float, unreachable: bool) -> None:
        """Sleep out the back-off; while the port refuses connections, end it as soon as the port opens."""
        if not unreachable:
            await asyncio.sleep(delay)
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + delay
        while (left := deadline - loop.time()) > 0:
            await asyncio.sleep(min(REACHABLE_POLL_SECONDS, left))
            try:
                await self._check_reachable()
            except GatewayUnreachable:
                continue
            log.info("the Wechaty gateway at %s accepts connections again: reconnecting now", self.endpoint)
            return

    def _scrub(self, text: str) -> str:
        """`text` without the token: the gateway's own refusal message repeats it."""
        return text.replace(self._token, "***") if self._token else text

    def _connected_bot(self) -> Wechaty:
        # Usable from on_ready on, which runs before start() returns.
        if self._bot is None or not self._logged_in:
            raise ConnectionError("the Wechaty transport is not started")
        return self._bot

    def _enqueue(self, event: str, payload: Any) -> None:
        # Called synchronously by the puppet's emitter, so the queue keeps the gateway's event order.
        self._events.put_nowait((event, payload))

    async def _run(self, puppet: Any) -> None:
        """Run the event stream; before login a failure fails start(), after it we reconnect."""
        assert self._ready is not None
        while True:
            error: BaseException | None = None
            try:
                if self._reconnects:
                    await self._check_reachable()
                await puppet.start()  # Stop + Start RPCs, then reads the event stream until it ends
            except Exception as e:
                error = e
            if not self._ready.done():
                self._ready.set_exception(WechatyStartError(self._scrub(_start_failure(self.endpoint, error))))
                return
            self._stream_up = False
            delay = RECONNECT_DELAYS[min(self._reconnects, len(RECONNECT_DELAYS) - 1)]
            self._reconnects += 1
            log.error(
                "lost the Wechaty event stream from %s (%s); reconnecting in %.0f s",
                self.endpoint,
                self._scrub(repr(error)),
                delay,
            )
            if self._reconnects == 1:
                await self._notify("on_connection", "lost", self._scrub(repr(error)))
            if puppet.channel is not None:
                puppet.channel.close()
            await self._wait_to_reconnect(delay, isinstance(error, GatewayUnreachable))

    async def _consume(self) -> None:
        """Handle events one at a time in arrival order; a failure is logged and the stream goes on."""
        while True:
            event, payload = await self._events.get()
            try:
                await self._handle(event, payload)
            except Exception:
                log.exception("failed to handle the Wechaty %s event %s", event, payload)

    async def _handle(self, event: str, payload: Any) -> None:
        assert self._bot is not None and self._ready is not None
        if event == "login":
            self._reconnects = 0
            self._stream_up = True
            if self._ready.done():
                log.info("the bot %s logged in again", payload.contact_id)
                await self._notify("on_connection", "restored", "")
                return
            self.bot_id = payload.contact_id
            self._logged_in = True
            await self._notify("on_ready", self.bot_id)
            self._ready.set_result(self.bot_id)
        elif event == "logout":
            log.warning("the bot %s was logged out of the gateway: %s", payload.contact_id, payload.data)
            await self._notify("on_connection", "logged_out", str(payload.data or ""))
        elif event == "scan":
            log.warning("login needs a QR code scan (status %s): %s", payload.status, payload.qrcode)
        elif event == "error":
            log.error("the Wechaty gateway reported an error: %s", payload)
        elif event == "message":
            await self._on_message(payload.message_id)
        elif event == "room-join":
            await self._on_room_join(payload.room_id, payload.invited_ids, payload.inviter_id)
        elif event == "room-invite":
            invitation = await self._bot.puppet.room_invitation_payload(payload.room_invitation_id)
            await self._notify(
                "on_room_invite",
                RoomInvite(
                    invitation_id=payload.room_invitation_id,
                    inviter_id=invitation.inviter_id,
                    room_topic=invitation.topic,
                ),
            )
        elif event == "room-topic":
            # Later messages must carry the new topic (needs compat fix 8).
            room = self._bot.Room.load(payload.room_id)
            await room.ready(force_sync=True)
            if hasattr(self._sink, "on_room_topic"):  # a test's sink may not want renames
                await self._notify("on_room_topic", RoomInfo(room_id=room.room_id, name=room.payload.topic))

    async def _on_message(self, message_id: str) -> None:
        # Real gateways sometimes deliver a message twice.
        if SingleIdContainer.instance().exist(message_id):
            return
        assert self._bot is not None
        msg = self._bot.Message.load(message_id)
        await msg.ready()
        if msg.is_self():
            # The gateway echoes everything the bot sends: proof that the event stream delivers (the self-check
            # looks for its own echo). A sink without on_echo (a test's) does not want them.
            payload = msg.payload
            if hasattr(self._sink, "on_echo"):
                await self._notify(
                    "on_echo", msg.message_id, payload.room_id or payload.to_id or "", payload.text or ""
                )
            return
        await self._notify("on_message", await self._to_incoming(msg))

    async def _to_incoming(self, msg: Any) -> Incoming:
        talker, room, payload = msg.talker(), msg.room(), msg.payload
        kind = _kind(payload)
        if room is not None:
            chat_kind, chat_id, chat_name = ChatKind.ROOM, room.room_id, room.payload.topic
            nickname = await self._nickname(room.room_id, talker.contact_id)
        else:
            chat_kind, chat_id, chat_name = ChatKind.PRIVATE, talker.contact_id, talker.name
            nickname = ""
        link = image = file = None
        try:
            if kind is MessageKind.LINK:
                card = await msg.to_url_link()
                link = LinkCard(
                    url=card.url, title=card.title, description=card.description, thumbnail_url=card.thumbnailUrl
                )
            elif kind is MessageKind.IMAGE:
                box = await msg.to_file_box()
                image = Image(name=box.name, data=base64.b64decode(box.base64))
            elif kind is MessageKind.FILE:
                box = await msg.to_file_box()
                file = FileData(name=box.name, data=base64.b64decode(box.base64))
        except Exception:
            # Deliver the message anyway: a handler can still see that an image or link came in.
            log.exception("could not fetch the %s content of message %s", kind.value, msg.message_id)
        return Incoming(
            message_id=msg.message_id,
            chat_kind=chat_kind,
            chat_id=chat_id,
            chat_name=chat_name,
            sender=Member(contact_id=talker.contact_id, name=talker.name, group_nickname=nickname),
            kind=kind,
            # The payload's text as sent: python-wechaty's to_recalled() would take a recall's XML for a message id.
            text=(payload.text or "") if kind in RAW_TEXT_KINDS else "",
            mention_ids=tuple(payload.mention_ids or ()),
            link=link,
            image=image,
            file=file,
            sent_at=_utc(payload.timestamp),
        )

    async def _on_room_join(self, room_id: str, joined_ids: list[str], inviter_id: str) -> None:
        assert self._bot is not None
        room = self._bot.Room.load(room_id)
        await room.ready(force_sync=True)  # the member list and maybe the topic changed
        joined = await asyncio.gather(*(self._member(room_id, contact_id) for contact_id in joined_ids))
        await self._notify("on_room_join", RoomInfo(room_id=room_id, name=room.payload.topic), list(joined), inviter_id)

    async def _nickname(self, room_id: str, contact_id: str) -> str:
        try:
            return (await self._member(room_id, contact_id)).group_nickname
        except Exception:
            # A sender who has just left the room has no member payload: the message still counts.
            log.warning("no member payload for %s in %s", contact_id, room_id, exc_info=True)
            return ""

    async def _member(self, room_id: str, contact_id: str) -> Member:
        assert self._bot is not None
        payload = await self._bot.puppet.room_member_payload(room_id, contact_id)
        return Member(contact_id=contact_id, name=payload.name, group_nickname=payload.room_alias)

    async def _notify(self, method: str, *args: Any) -> None:
        """Call the sink; its exceptions are logged so that one bad handler cannot stop the event stream."""
        try:
            await getattr(self._sink, method)(*args)
        except Exception:
            log.exception("sink.%s failed", method)


def _kind(payload: Any) -> MessageKind:
    kind = KINDS.get(payload.type, MessageKind.OTHER)
    if kind is MessageKind.UNKNOWN and wechaty_compat.original_message_type(payload) == TS_SYSTEM_TYPE:
        return MessageKind.SYSTEM
    return kind


async def _say(target: Any, content: Any, mention_ids: list[str] | None = None) -> str | None:
    message = await (target.say(content, mention_ids) if mention_ids else target.say(content))
    return message.message_id if message is not None else None


def _is_connection_error(error: BaseException) -> bool:
    """The gateway connection failed (as opposed to the gateway or WeChat refusing the request)."""
    if isinstance(error, GRPCError):
        return error.status is Status.UNAVAILABLE
    return isinstance(error, (ConnectionError, StreamTerminatedError, ProtocolError))


def _start_failure(endpoint: str, error: BaseException | None) -> str:
    if isinstance(error, GRPCError) and error.status is Status.UNAUTHENTICATED:
        return f"the Wechaty gateway at {endpoint} rejected the token (UNAUTHENTICATED)"
    if error is None:
        return f"the Wechaty gateway at {endpoint} closed the event stream before the bot logged in"
    return f"could not connect to the Wechaty gateway at {endpoint}: {error!r}"


def _utc(timestamp: int) -> datetime | None:
    if not timestamp:
        return None
    seconds = timestamp / 1000 if timestamp > MAX_SECONDS_TIMESTAMP else timestamp
    return datetime.fromtimestamp(seconds, tz=UTC)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
