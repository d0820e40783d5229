"""End-to-end tests of WechatyTransport through the real Node gateway, and one test per compat fix."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import itertools
import json
import logging
import os
import subprocess
import sys
import warnings
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.transport import wechaty_compat
from bot.transport.base import ChatKind, Image, Incoming, LinkCard, MessageKind, Outgoing, RoomInvite, SendError
from bot.transport.wechaty import FileBox, MessageType, PuppetOptions, UrlLink, WechatyStartError, WechatyTransport
from tests.gateway_harness import Gateway

ROOT = Path(__file__).resolve().parents[2]
BOT_ID = "bot-self"
BIG = 20 * 1024 + 4321  # over the gateway's 20 KB limit for inline FileBoxes
_ids = itertools.count(1)


def uid(prefix: str) -> str:
    """A fresh id: the gateway keeps its state for the whole module."""
    return f"{prefix}{next(_ids)}"


def png_bytes(size: int) -> bytes:
    """Bytes that start like a PNG, with every byte value present."""
    header = b"\x89PNG\r\n\x1a\n"
    return header + bytes(i % 256 for i in range(size - len(header)))


class RecordingSink:
    """An EventSink that records everything and lets a test wait for a condition."""

    def __init__(self) -> None:
        self.ready: list[str] = []
        self.messages: list[Incoming] = []
        self.joins: list[tuple[Any, ...]] = []
        self.invites: list[RoomInvite] = []
        self.on_message_hook: Callable[[Incoming], Any] | None = None
        self._changed = asyncio.Condition()

    async def on_ready(self, bot_id: str) -> None:
        await self._record(self.ready, bot_id)

    async def on_message(self, msg: Incoming) -> None:
        await self._record(self.messages, msg)
        if self.on_message_hook:
            await self.on_message_hook(msg)

    async def on_room_join(self, room: Any, joined: list[Any], inviter_id: str) -> None:
        await self._record(self.joins, (room, joined, inviter_id))

    async def on_room_invite(self, invite: RoomInvite) -> None:
        await self._record(self.invites, invite)

    async def _record(self, items: list[Any], item: Any) -> None:
        items.append(item)
        async with self._changed:
            self._changed.notify_all()

    async def wait_for(self, predicate: Callable[[], Any], timeout: float = 5.0) -> Any:
        """Wait until predicate() is truthy and return its value."""
        async with self._changed:
            try:
                await asyncio.wait_for(self._changed.wait_for(predicate), timeout)
            except TimeoutError:
                raise AssertionError(f"timed out; messages: {self.messages!r}, joins: {self.joins!r}") from None
        return predicate()

    async def message(self, text: str, timeout: float = 5.0) -> Incoming:
        """Wait for the message with this text."""
        return await self.wait_for(lambda: next((m for m in self.messages if m.text == text), None), timeout)


@pytest.fixture(scope="module")
def gateway() -> Any:
    gw = Gateway.start()
    gw.contact("alice", "张三")
    gw.contact("bob", "李四")
    gw.contact("carol", "王五")
    yield gw
    gw.stop()


@pytest.fixture
def room(gateway: Gateway) -> str:
    room_id = uid("room") + "@chatroom"
    gateway.room(room_id, "反诈联络群", ["alice", "bob"], nicknames={"alice": "社区民警小张"})
    return room_id


async def start_transport(
    gateway: Gateway, cache_dir: Path, sink: RecordingSink | None = None, token: str | None = None
) -> tuple[WechatyTransport, RecordingSink]:
    sink = sink or RecordingSink()
    transport = WechatyTransport(gateway.endpoint, token or gateway.token, cache_dir=cache_dir, login_timeout=10)
    await transport.start(sink)
    return transport, sink


@pytest.fixture
async def connected(gateway: Gateway, tmp_path: Path) -> Any:
    transport, sink = await start_transport(gateway, tmp_path / "wechaty")
    yield transport, sink
    await transport.stop()


async def wait_sent(gateway: Gateway, predicate: Callable[[list[dict[str, Any]]], bool], since: int) -> list[dict]:
    # In a thread: the harness polls with blocking HTTP while the transport keeps running on this loop.
    return await asyncio.to_thread(gateway.wait_sent, predicate, 5.0, since)


def last_seq(gateway: Gateway) -> int:
    sent = gateway.sent()
    return sent[-1]["seq"] if sent else 0


# --- receiving -------------------------------------------------------------------------------------------------


async def test_start_logs_in_and_calls_on_ready_once(gateway: Gateway, connected: Any) -> None:
    transport, sink = connected
    assert sink.ready == [BOT_ID]
    assert transport.bot_id == BOT_ID
    assert gateway.health() == {"ok": True, "logged_in": True}


async def test_room_text_arrives_with_sender_group_nickname_and_mentions(
    gateway: Gateway, connected: Any, room: str
) -> None:
    _, sink = connected
    before = datetime.now(UTC) - timedelta(seconds=1)
    message_id = gateway.say("alice", "@反诈助手 已转发", room=room, mention_ids=[BOT_ID])

    msg = await sink.message("@反诈助手 已转发")
    assert msg.message_id == message_id
    assert (msg.chat_kind, msg.chat_id, msg.chat_name) == (ChatKind.ROOM, room, "反诈联络群")
    assert (msg.sender.contact_id, msg.sender.name, msg.sender.group_nickname) == ("alice", "张三", "社区民警小张")
    assert msg.kind is MessageKind.TEXT
    assert msg.mention_ids == (BOT_ID,)
    assert msg.sent_at is not None and msg.sent_at.tzinfo is not None
    assert before <= msg.sent_at <= datetime.now(UTC) + timedelta(seconds=1)


async def test_rooms_can_be_read_from_on_ready(gateway: Gateway, tmp_path: Path, room: str) -> None:
    class ReadsRoomsWhenReady(RecordingSink):
        async def on_ready(self, bot_id: str) -> None:
            self.rooms = await transport.rooms()
            await super().on_ready(bot_id)

    sink = ReadsRoomsWhenReady()
    transport = WechatyTransport(gateway.endpoint, gateway.token, cache_dir=tmp_path)
    await transport.start(sink)
    await transport.stop()
    assert room in [r.room_id for r in sink.rooms]


async def test_private_text_arrives_as_private_chat(gateway: Gateway, connected: Any) -> None:
    _, sink = connected
    gateway.say("bob", "你好，请问怎么报名")

    msg = await sink.message("你好，请问怎么报名")
    assert (msg.chat_kind, msg.chat_id, msg.chat_name) == (ChatKind.PRIVATE, "bob", "李四")
    assert (msg.sender.contact_id, msg.sender.name, msg.sender.group_nickname) == ("bob", "李四", "")


async def test_large_image_from_contact_arrives_with_exact_bytes(gateway: Gateway, connected: Any, room: str) -> None:
    _, sink = connected
    big, small = png_bytes(BIG), png_bytes(300)
    big_id = gateway.image("alice", "screenshot.png", big, room=room)
    small_id = gateway.image("bob", "small.png", small)

    def both_arrived() -> dict[str, Incoming] | None:
        received = {m.message_id: m for m in sink.messages}
        return received if big_id in received and small_id in received else None

    received = await sink.wait_for(both_arrived)
    assert received[big_id].kind is MessageKind.IMAGE
    assert received[big_id].image == Image(name="screenshot.png", data=big)
    assert received[small_id].image == Image(name="small.png", data=small)
    assert received[small_id].chat_kind is ChatKind.PRIVATE


async def test_link_card_from_contact_arrives(gateway: Gateway, connected: Any, room: str) -> None:
    _, sink = connected
    message_id = gateway.link(
        "alice",
        "https://example.org/alert/12",
        "警惕刷单返利",
        "刷单就是诈骗",
        thumbnail_url="https://example.org/t.png",
        room=room,
    )

    msg = await sink.wait_for(lambda: next((m for m in sink.messages if m.message_id == message_id), None))
    assert msg.kind is MessageKind.LINK
    assert msg.link == LinkCard(
        url="https://example.org/alert/12",
        title="警惕刷单返利",
        description="刷单就是诈骗",
        thumbnail_url="https://example.org/t.png",
    )


async def test_room_join_reports_new_members_with_nicknames(gateway: Gateway, connected: Any, room: str) -> None:
    _, sink = connected
    gateway.join(room, inviter="alice", member_ids=["carol"], nicknames={"carol": "网格员王五"})

    room_info, joined, inviter_id = await sink.wait_for(
        lambda: next((j for j in sink.joins if j[0].room_id == room), None)
    )
    assert room_info.name == "反诈联络群"
    assert [(m.contact_id, m.name, m.group_nickname) for m in joined] == [("carol", "王五", "网格员王五")]
    assert inviter_id == "alice"


async def test_invite_is_delivered_and_accepting_makes_the_bot_a_member(gateway: Gateway, connected: Any) -> None:
    transport, sink = connected
    room_id = uid("invited") + "@chatroom"
    invitation_id = gateway.invite("carol", room_id, "新建联络群", member_ids=["alice"])

    invite = await sink.wait_for(lambda: next((i for i in sink.invites if i.invitation_id == invitation_id), None))
    assert invite == RoomInvite(invitation_id=invitation_id, inviter_id="carol", room_topic="新建联络群")
    assert room_id not in [r.room_id for r in await transport.rooms()]

    await transport.accept_invite(invitation_id)
    _, joined, _ = await sink.wait_for(lambda: next((j for j in sink.joins if j[0].room_id == room_id), None))
    assert [m.contact_id for m in joined] == [BOT_ID]
    assert [i["accepted"] for i in gateway.invites() if i["invitation_id"] == invitation_id] == [True]
    assert (room_id, "新建联络群") in [(r.room_id, r.name) for r in await transport.rooms()]


async def test_room_members_returns_group_nicknames_without_the_bot(connected: Any, room: str) -> None:
    transport, _ = connected
    members = await transport.room_members(room)
    assert sorted((m.contact_id, m.name, m.group_nickname) for m in members) == [
        ("alice", "张三", "社区民警小张"),
        ("bob", "李四", ""),
    ]


# What puppets send for types python-wechaty cannot name, as the puppets' source code builds them.
GROUP_NOTE_XML = (
    '<msg><appmsg appid="" sdkver="0"><title>#接龙\n11月30日反诈预警转发情况\n\n1. 沙坪街道 刘洋 已转发\n'
    "2. 海湖镇 王海燕 已转发</title><type>53</type><extinfo><solitaire_info><![CDATA[<i><u>alice</u>"
    "<t>1732950000</t><r>20-12</r></i>]]></solitaire_info></extinfo></appmsg></msg>"
)
GROUP_NOTE_TITLE = "#接龙\n11月30日反诈预警转发情况\n\n1. 沙坪街道 刘洋 已转发\n2. 海湖镇 王海燕 已转发"
REVOKE_XML = (
    '<sysmsg type="revokemsg"><revokemsg><session>liaison@chatroom</session><msgid>1797356788</msgid>'
    '<newmsgid>5007192124798729796</newmsgid><replacemsg><![CDATA["张三" 撤回了一条消息]]></replacemsg>'
    "</revokemsg></sysmsg>"
)
PAT_XML = (
    '<sysmsg type="pat"><pat><fromusername>bob</fromusername><chatusername>liaison@chatroom</chatusername>'
    '<pattedusername>alice</pattedusername><template><![CDATA["${bob}" 拍了拍 "${alice}"]]></template>'
    "</pat></sysmsg>"
)
POST_XML = "<msg><appmsg><title>视频号分享</title><type>51</type></appmsg></msg>"  # 视频号 on wechatferry
QUOTE_XML = (
    '<msg><appmsg appid="" sdkver="0"><title>已转发</title><type>57</type><refermsg><type>1</type>'
    "<svrid>4719842335617230901</svrid><chatusr>admin</chatusr><displayname>陈静</displayname>"
    "<content>【反诈预警 #12】警惕刷单返利</content></refermsg></appmsg></msg>"
)


@pytest.mark.parametrize(
    "ts_type, text, kind, in_room",
    [
        pytest.param(10, GROUP_NOTE_XML, MessageKind.UNKNOWN, True, id="group-note-xml"),
        pytest.param(10, GROUP_NOTE_TITLE, MessageKind.UNKNOWN, True, id="group-note-title"),
        pytest.param(13, REVOKE_XML, MessageKind.RECALL, True, id="recalled-revokemsg"),
        pytest.param(13, PAT_XML, MessageKind.RECALL, True, id="recalled-pat"),
        pytest.param(16, POST_XML, MessageKind.UNKNOWN, True, id="post"),
        pytest.param(18, "发送消息过于频繁，可稍后再试。", MessageKind.SYSTEM, True, id="system-in-room"),
        pytest.param(18, "操作过于频繁，请稍后再试。", MessageKind.SYSTEM, False, id="system-private"),
        pytest.param(0, QUOTE_XML, MessageKind.UNKNOWN, True, id="unknown"),
        pytest.param(42, "a type number from a newer puppet", MessageKind.UNKNOWN, False, id="past-every-table"),
        pytest.param(2, "voice.silk", MessageKind.OTHER, True, id="audio-is-other"),
        pytest.param(15, "video.mp4", MessageKind.OTHER, False, id="video-is-other"),
    ],
)
async def test_messages_the_client_cannot_name_arrive_with_their_raw_text(
    gateway: Gateway, connected: Any, room: str, ts_type: int, text: str, kind: MessageKind, in_room: bool
) -> None:
    _, sink = connected
    chat = room if in_room else None
    message_id = gateway.raw("alice", ts_type, text, room=chat, mention_ids=[BOT_ID] if in_room else [])
    gateway.say("alice", f"text after type {ts_type}", room=chat)

    # Events are handled in order, so once the text that followed is in, the raw message must be too.
    await sink.message(f"text after type {ts_type}")
    received = [m for m in sink.messages if m.message_id == message_id]
    assert len(received) == 1, f"the type {ts_type} message reached the sink {len(received)} times"
    msg = received[0]
    assert msg.kind is kind
    assert msg.text == ("" if kind is MessageKind.OTHER else text)
    assert (msg.sender.contact_id, msg.sender.name) == ("alice", "张三")
    if in_room:
        assert (msg.chat_kind, msg.chat_id, msg.chat_name) == (ChatKind.ROOM, room, "反诈联络群")
        assert msg.sender.group_nickname == "社区民警小张"
        assert msg.mention_ids == (BOT_ID,)
    else:
        assert (msg.chat_kind, msg.chat_id, msg.chat_name) == (ChatKind.PRIVATE, "alice", "张三")


async def test_sink_exception_is_logged_and_events_keep_flowing(
    gateway: Gateway, connected: Any, caplog: pytest.LogCaptureFixture
) -> None:
    _, sink = connected

    async def explode(msg: Incoming) -> None:
        if msg.text == "boom":
            raise RuntimeError("handler bug")

    sink.on_message_hook = explode
    gateway.say("bob", "boom")
    gateway.say("bob", "after the boom")
    await sink.message("after the boom")
    assert any("sink.on_message failed" in r.getMessage() and r.exc_info for r in caplog.records)


# --- sending ---------------------------------------------------------------------------------------------------


async def test_room_text_with_mentions_reaches_the_gateway(gateway: Gateway, connected: Any, room: str) -> None:
    transport, sink = connected
    since = last_seq(gateway)
    message_id = await transport.send(Outgoing(ChatKind.ROOM, room, text="请转发 #12", mention_ids=("alice", "bob")))

    [sent] = gateway.sent(since)
    assert sent["message_id"] == message_id
    assert (sent["conversation_id"], sent["kind"]) == (room, "text")
    assert sent["mention_ids"] == ["alice", "bob"]
    assert sent["text"] == "@张三\u2005@李四 请转发 #12"

    # The gateway echoes the send back; the transport must not deliver the bot's own message.
    gateway.say("alice", "marker after the echo", room=room)
    await sink.message("marker after the echo")
    assert not [m for m in sink.messages if m.message_id == message_id]


async def test_private_text_is_sent_to_the_contact(gateway: Gateway, connected: Any) -> None:
    transport, _ = connected
    since = last_seq(gateway)
    await transport.send(Outgoing(ChatKind.PRIVATE, "carol", text="您好，已登记", mention_ids=("alice",)))
    [sent] = gateway.sent(since)
    assert (sent["conversation_id"], sent["text"], sent["mention_ids"]) == ("carol", "您好，已登记", [])


async def test_link_card_and_large_image_are_sent_before_the_text(gateway: Gateway, connected: Any, room: str) -> None:
    transport, _ = connected
    since = last_seq(gateway)
    card = LinkCard(
        url="https://example.org/alert/7",
        title="反诈预警 #7",
        description="冒充客服退款",
        thumbnail_url="https://example.org/7.png",
    )
    await transport.send(Outgoing(ChatKind.ROOM, room, link=card))
    poster = Image("poster.png", png_bytes(BIG))
    text_id = await transport.send(Outgoing(ChatKind.ROOM, room, text="请各位转发", image=poster))

    link, image, text = gateway.sent(since)
    assert (link["kind"], link["url"], link["title"], link["description"]) == (
        "link",
        card.url,
        card.title,
        card.description,
    )
    assert (image["kind"], image["file_name"], image["size"]) == ("image", "poster.png", BIG)
    assert (text["kind"], text["text"], text["message_id"]) == ("text", "请各位转发", text_id)


async def test_send_to_an_unknown_room_raises_send_error(connected: Any) -> None:
    transport, _ = connected
    with pytest.raises(SendError) as error:
        await transport.send(Outgoing(ChatKind.ROOM, "nobody@chatroom", text="hello"))
    assert not error.value.rate_limited


async def test_reply_round_trip(gateway: Gateway, connected: Any, room: str) -> None:
    transport, sink = connected

    async def reply(msg: Incoming) -> None:
        await transport.send(
            Outgoing(msg.chat_kind, msg.chat_id, text=f"收到：{msg.text}", mention_ids=(msg.sender.contact_id,))
        )

    sink.on_message_hook = reply
    since = last_seq(gateway)
    gateway.say("bob", "已转发 #3", room=room)
    sent = await wait_sent(gateway, lambda items: bool(items), since)
    assert sent[0]["text"].endswith("收到：已转发 #3") and sent[0]["mention_ids"] == ["bob"]


# --- connection ------------------------------------------------------------------------------------------------


async def test_wrong_token_fails_start_with_a_clear_error(gateway: Gateway, tmp_path: Path) -> None:
    with pytest.raises(WechatyStartError, match="rejected the token"):
        await start_transport(gateway, tmp_path, token="not-the-token")


async def test_unreachable_gateway_fails_start_with_a_clear_error(tmp_path: Path) -> None:
    transport = WechatyTransport("127.0.0.1:1", "token", cache_dir=tmp_path)
    with pytest.raises(WechatyStartError, match="cannot reach the Wechaty gateway at 127.0.0.1:1"):
        await transport.start(RecordingSink())


async def test_a_restarted_transport_logs_in_again_and_can_use_known_rooms(
    gateway: Gateway, tmp_path: Path, room: str
) -> None:
    first, first_sink = await start_transport(gateway, tmp_path)
    gateway.say("alice", "before the restart", room=room)
    await first_sink.message("before the restart")  # the first bot loaded this room
    await first.stop()

    # python-wechaty's object pools are process-wide: without the compat fix the new bot reuses dead objects.
    second, second_sink = await start_transport(gateway, tmp_path)
    try:
        assert second_sink.ready == [BOT_ID]
        since = last_seq(gateway)
        await second.send(Outgoing(ChatKind.ROOM, room, text="restarted"))
        assert [s["text"] for s in gateway.sent(since)] == ["restarted"]
    finally:
        await second.stop()


async def test_reconnects_after_the_gateway_restarts_grpc(gateway: Gateway, tmp_path: Path) -> None:
    transport, sink = await start_transport(gateway, tmp_path)
    try:
        gateway.stop_grpc()
        gateway.start_grpc()

        async def delivered() -> bool:
            gateway.say("carol", "after the restart")  # messages sent while we were away are lost
            try:
                await sink.message("after the restart", timeout=0.2)
                return True
            except AssertionError:
                return False

        for _ in range(50):
            if await delivered():
                break
        else:
            pytest.fail("no message arrived after the gRPC restart")
        assert sink.ready == [BOT_ID]  # on_ready is called once, not on every re-login
    finally:
        await transport.stop()


# --- compat fixes: each test fails when its fix stops applying -------------------------------------------------


def test_apply_twice_wraps_nothing_twice(monkeypatch: pytest.MonkeyPatch) -> None:
    import wechaty_puppet_service.puppet as puppet_service_module  # only after apply(): fix 1 must come first

    def patched() -> list[Any]:
        return [
            FileBox.__dict__["to_json_str"],
            FileBox.__dict__["from_json"],
            UrlLink.__dict__["create"],
            logging.getLogger("Room").filters[:],
            puppet_service_module._map_message_type,
        ]

    before = patched()
    monkeypatch.setattr(wechaty_compat, "_applied", False)
    wechaty_compat.apply()
    assert patched() == before


def test_fix3_puppet_options_can_be_a_dataclass_default() -> None:
    # What WechatyOptions does at import; Python 3.11 raises "mutable default" without the fix.
    options = dataclasses.make_dataclass("Options", [("puppet_options", PuppetOptions, PuppetOptions())])
    assert options().puppet_options is not None


def test_fix4_file_box_reads_1x_json_field_names() -> None:
    url_box = FileBox.from_json({"type": 2, "url": "https://example.org/a.png", "name": "a.png"})
    assert url_box.remoteUrl == "https://example.org/a.png"
    base64_box = FileBox.from_json(json.dumps({"type": 1, "base64": "aGk=", "name": "hi.txt"}))
    assert base64_box.base64 == b"aGk="
    with pytest.raises(ValueError, match="Download RPC"):
        FileBox.from_json({"type": 7, "uuid": "u", "name": "big.png"})


async def test_fix5_large_file_is_downloaded_with_the_streaming_rpc(gateway: Gateway, connected: Any) -> None:
    transport, sink = connected
    data = png_bytes(BIG)
    message_id = gateway.image("bob", "big.png", data)
    await sink.wait_for(lambda: any(m.message_id == message_id for m in sink.messages))

    box = await transport._bot.puppet.message_image(message_id)
    assert box.name == "big.png"
    assert base64.b64decode(box.base64) == data


def test_fix6_file_box_writes_1x_json_field_names() -> None:
    data = json.loads(FileBox.from_url("https://example.org/b.png", name="b.png").to_json_str())
    assert (data["type"], data["url"]) == (2, "https://example.org/b.png")
    assert json.loads(FileBox.from_base64(b"aGk=", name="hi.txt").to_json_str())["type"] == 1


def test_file_box_mime_type_does_not_call_the_deprecated_logger_warn() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        box = FileBox.from_url("https://example.org/c.png", name="c.png")  # sets mimeType
        assert json.loads(box.to_json_str())["mimeType"] == "image/png"  # reads it


async def test_fix7_alias_topic_and_announce_values_reach_the_gateway(connected: Any, room: str) -> None:
    transport, _ = connected
    bot = transport._bot
    contact = bot.Contact.load("carol")
    await contact.alias("王网格员")
    assert await contact.alias() == "王网格员"

    wechaty_room = bot.Room.load(room)
    await wechaty_room.topic("改名后的群")
    assert [r.name for r in await transport.rooms() if r.room_id == room] == ["改名后的群"]

    await wechaty_room.announce("本周主题：养老诈骗")
    assert await wechaty_room.announce() == "本周主题：养老诈骗"


async def test_fix8_force_sync_refreshes_a_renamed_room(gateway: Gateway, connected: Any, room: str) -> None:
    transport, sink = connected
    wechaty_room = transport._bot.Room.load(room)
    await wechaty_room.ready()
    gateway.topic(room, "第二季度联络群", changer="alice")
    # The transport refreshes on room-topic, so the next message carries the new name.
    gateway.say("alice", "after the rename", room=room)
    assert (await sink.message("after the rename")).chat_name == "第二季度联络群"
    assert wechaty_room.payload.topic == "第二季度联络群"


async def test_message_type_map_names_every_type_number_and_keeps_the_original(
    gateway: Gateway, connected: Any
) -> None:
    # Without the fix, Post (16) and System (18) raise IndexError in message_payload, and GroupNote (10) loses its
    # number.
    transport, sink = connected
    puppet = transport._bot.puppet
    for ts_type in (0, 10, 16, 18, 99):
        message_id = gateway.raw("bob", ts_type, f"type {ts_type}")
        await sink.wait_for(lambda message_id=message_id: any(m.message_id == message_id for m in sink.messages))
        payload = await puppet.message_payload(message_id)
        assert payload.type == MessageType.MESSAGE_TYPE_UNSPECIFIED
        assert wechaty_compat.original_message_type(payload) == ts_type

    # Numbers the client maps one-to-one keep their own type and carry no original number.
    for ts_type, expected in ((7, MessageType.MESSAGE_TYPE_TEXT), (13, MessageType.MESSAGE_TYPE_RECALLED)):
        message_id = gateway.raw("bob", ts_type, f"type {ts_type}")
        await sink.wait_for(lambda message_id=message_id: any(m.message_id == message_id for m in sink.messages))
        payload = await puppet.message_payload(message_id)
        assert payload.type == expected
        assert wechaty_compat.original_message_type(payload) is None


def test_fix9_url_link_create_never_fetches() -> None:
    with pytest.raises(NotImplementedError, match="UrlLinkPayload"):
        UrlLink.create("https://example.org")


async def test_room_invitation_payload_reads_the_grpc_response(gateway: Gateway, connected: Any) -> None:
    transport, sink = connected
    invitation_id = gateway.invite("alice", uid("inv") + "@chatroom", "邀请测试", member_ids=[])
    await sink.wait_for(lambda: any(i.invitation_id == invitation_id for i in sink.invites))
    payload = await transport._bot.puppet.room_invitation_payload(invitation_id)
    assert (payload.inviter_id, payload.topic) == ("alice", "邀请测试")


async def test_library_logs_go_through_logging_without_the_token(
    gateway: Gateway, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    transport, _ = await start_transport(gateway, tmp_path)
    await transport.stop()
    library = [logging.getLogger(name) for name in ("PuppetService", "Wechaty", "Room", "Message", "FileBox")]
    assert all(logger.propagate and not logger.handlers for logger in library)
    # (grpclib's own DEBUG logs show the token as the HTTP/2 authority: that is not ours to change.)
    assert not [r for r in caplog.records if r.levelno >= logging.INFO and gateway.token in r.getMessage()]


async def test_fix1_no_pyee_deprecation_warning_at_run_time(gateway: Gateway, tmp_path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        transport, _ = await start_transport(gateway, tmp_path)
        await transport.stop()


@pytest.fixture(scope="module")
def fresh_import(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess[str], Path]:
    cwd = tmp_path_factory.mktemp("import-cwd")
    env = {k: v for k, v in os.environ.items() if k != "CACHE_DIR"}
    env["PYTHONPATH"] = str(ROOT)
    code = "from bot.transport import wechaty_compat; wechaty_compat.apply(); import bot.transport.wechaty"
    result = subprocess.run(
        [sys.executable, "-W", "error::DeprecationWarning", "-c", code],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return result, cwd


def test_fix10_imports_under_deprecation_warnings_as_errors(fresh_import: Any) -> None:
    result, _ = fresh_import
    assert result.returncode == 0, result.stderr


def test_import_creates_no_wechaty_cache_in_the_working_directory(fresh_import: Any) -> None:
    result, cwd = fresh_import
    assert result.returncode == 0, result.stderr
    assert not (cwd / ".wechaty").exists()


async def test_a_file_from_a_contact_arrives_with_its_bytes(gateway: Gateway, connected: Any) -> None:
    """An attachment (an .xlsx of incident figures, say) reaches the bot as MessageKind.FILE with its bytes."""
    _, sink = connected
    data = bytes(range(256)) * 200  # over 20 KB: the Download stream path
    message_id = gateway.file("bob", "警情.xlsx", data)
    msg = await sink.wait_for(lambda: next((m for m in sink.messages if m.message_id == message_id), None))
    assert msg.kind is MessageKind.FILE
    assert msg.file is not None and msg.file.name == "警情.xlsx" and msg.file.data == data
