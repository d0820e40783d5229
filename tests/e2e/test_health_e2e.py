"""Runtime health end to end: the bot as a process against the real Wechaty gateway on 127.0.0.1, a real SQLite
file, and a pytest-httpserver as the office's WeCom robot."""

from __future__ import annotations

import json
import socket
import time

import pytest

from bot.runtime.health import check_gateway, health_snapshot
from bot.storage.db import make_engine, session
from tests.bot_process import ROOT, BotProcess, gateway_env, relaybot
from tests.gateway_harness import Gateway, wait_until

pytestmark = pytest.mark.e2e  # the bot as a process against the real Node gateway

ADMIN = ("wxid_admin_chen", "陈静")
WANG = ("wxid_wangfang", "王芳")
PEOPLE = [ADMIN, WANG, ("wxid_zhaolei", "赵磊"), ("filehelper", "文件传输助手")]
LIAISON_ROOM = "40001@chatroom"
OFFICE_ROOM = "40002@chatroom"
ROBOT_PATH = "/cgi-bin/webhook/send"


def start_gateway() -> Gateway:
    gw = Gateway.start()
    for contact_id, name in PEOPLE:
        gw.contact(contact_id, name)
    gw.room(LIAISON_ROOM, "全区反诈联络员群", [ADMIN[0], WANG[0], "wxid_zhaolei"])
    gw.room(OFFICE_ROOM, "反诈办工作群", [ADMIN[0]])
    return gw


@pytest.fixture
def gateway():
    gw = start_gateway()  # one per test: these tests stop its gRPC server
    yield gw
    gw.stop()


@pytest.fixture
def robot(server):
    server.expect_request(ROBOT_PATH).respond_with_json({"errcode": 0, "errmsg": "ok"})
    return server


def robot_texts(server) -> list[str]:
    return [json.loads(req.get_data())["text"]["content"] for req, _ in server.log]


@pytest.fixture
def bot_env(gateway, tmp_path, db_url):
    imported = relaybot(
        "roster", "import", str(ROOT / "content" / "examples" / "roster_example.csv"), db_url=db_url, cwd=tmp_path
    )
    assert imported.returncode == 0, imported.stderr
    return gateway_env(
        gateway,
        db_url,
        tmp_path,
        admin=ADMIN[0],
        liaison_groups="全区反诈联络员群",
        office_group=OFFICE_ROOM,
        fast=False,
        RELAYBOT_SEND_SPACING_SECONDS="0",
        RELAYBOT_SEND_JITTER_SECONDS="0",
        RELAYBOT_HEALTH_CHECK_SECONDS="0.3",
    )


def snapshot(db_url):
    engine = make_engine(db_url)
    try:
        with session(engine) as s:
            return health_snapshot(s)
    finally:
        engine.dispose()


def texts_to(items, chat_id):
    return [i["text"] for i in items if i["conversation_id"] == chat_id and i["kind"] == "text"]


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# ---- check_gateway ---------------------------------------------------------------------------------------------


async def test_check_gateway_tells_ok_a_wrong_token_and_a_closed_port_apart(gateway):
    ok = await check_gateway(gateway.endpoint, gateway.token)
    assert (ok.ok, ok.reachable, ok.token_ok) == (True, True, True) and "正常" in ok.message

    wrong = await check_gateway(gateway.endpoint, "stolen-token-123")
    assert (wrong.ok, wrong.reachable, wrong.token_ok) == (False, True, False)
    assert "拒绝了 token" in wrong.message and "stolen-token-123" not in wrong.message

    port = closed_port()
    closed = await check_gateway(f"127.0.0.1:{port}", gateway.token)
    assert (closed.ok, closed.reachable, closed.token_ok) == (False, False, None)
    assert f"连不上微信网关 127.0.0.1:{port}" in closed.message and "没有在监听" in closed.message

    bad = await check_gateway("127.0.0.1", gateway.token)
    assert (bad.ok, bad.reachable) == (False, False) and "主机:端口" in bad.message

    # Something that listens but is not a gateway: the control channel (HTTP/1.1).
    other = await check_gateway(f"127.0.0.1:{gateway.control_port}", gateway.token, timeout=2)
    assert (other.ok, other.reachable, other.token_ok) == (False, True, None)


async def test_check_gateway_is_harmless_to_a_running_bot(gateway, bot_env, tmp_path, processes):
    bot = BotProcess(bot_env, tmp_path)
    processes.append(bot)
    bot.start()
    assert (await check_gateway(gateway.endpoint, gateway.token)).ok
    mark = len(gateway.sent())
    gateway.say(ADMIN[0], "进度", room=OFFICE_ROOM)
    gateway.wait_sent(lambda items: texts_to(items, OFFICE_ROOM), since=mark, timeout=10)


# ---- the self-check and its echo -------------------------------------------------------------------------------


def test_self_check_goes_through_the_gateway_and_its_echo_comes_back(gateway, bot_env, tmp_path, robot, processes):
    bot = BotProcess(
        {
            **bot_env,
            "RELAYBOT_SELF_CHECK_TARGET": "filehelper",
            "RELAYBOT_SELF_CHECK_MINUTES": "60",
            "RELAYBOT_SELF_CHECK_ECHO_SECONDS": "5",
            "RELAYBOT_NOTIFY_URL": robot.url_for(f"{ROBOT_PATH}?key=K"),
        },
        tmp_path,
    )
    processes.append(bot)
    mark = len(gateway.sent())
    bot.start()
    sent = gateway.wait_sent(lambda items: texts_to(items, "filehelper"), since=mark, timeout=10)
    [text] = texts_to(sent, "filehelper")
    assert text.startswith("🤖 机器人自检 ")
    # The gateway echoed it back as a message event, and the bot matched the echo to its self-check.
    snap = wait_until(
        lambda: snapshot(bot_env["RELAYBOT_DATABASE_URL"]),
        lambda s: s["self_check"] is not None and s["self_check"]["echo_ok"] is not None,
        10,
        "the self-check's echo to be judged",
    )
    assert snap["self_check"]["send_ok"] is True and snap["self_check"]["echo_ok"] is True
    assert snap["self_check"]["target"] == "filehelper"
    assert snap["last_send_ok_at"] is not None and snap["last_receive_at"] is not None
    assert snap["receive_down_since"] is None and snap["send_down_since"] is None
    assert "self-check echo arrived" in bot.log()
    time.sleep(1.0)  # several health rounds: one self-check an hour, nothing for the robot
    assert len(texts_to(gateway.sent(mark), "filehelper")) == 1
    assert robot_texts(robot) == []


# ---- reconnecting, and telling the office once ------------------------------------------------------------------


def answered(gateway, timeout: float) -> float:
    """Have the admin ask 进度 until the bot answers (what is said while it is disconnected is lost); returns the
    seconds it took."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        mark = len(gateway.sent())
        gateway.say(ADMIN[0], "进度", room=OFFICE_ROOM)
        try:
            gateway.wait_sent(lambda items: texts_to(items, OFFICE_ROOM), since=mark, timeout=0.25)
            return time.monotonic() - start
        except TimeoutError:
            continue
    raise AssertionError(f"the bot did not answer within {timeout} s")


def test_the_bot_reconnects_without_a_restart_and_tells_the_robot_once_per_long_outage(
    gateway, bot_env, tmp_path, robot, processes
):
    bot = BotProcess(
        {
            **bot_env,
            "RELAYBOT_CONNECTION_ALERT_MINUTES": "0.05",  # 3 s
            "RELAYBOT_NOTIFY_URL": robot.url_for(f"{ROBOT_PATH}?key=K"),
        },
        tmp_path,
    )
    processes.append(bot)
    bot.start()
    pid = bot.process.pid

    # A blip shorter than the alert threshold: back in about a second, nobody is told.
    gateway.stop_grpc()
    gateway.start_grpc()
    answered(gateway, timeout=10)
    time.sleep(0.5)
    assert robot_texts(robot) == []

    # A long outage: told once after 3 s, not once per reconnect attempt.
    offset = len(bot.log())
    gateway.stop_grpc()
    stopped = time.monotonic()
    wait_until(lambda: robot_texts(robot), lambda texts: len(texts) == 1, 10, "the robot to hear of the outage")
    assert time.monotonic() - stopped >= 3.0
    assert "连接断开了" in robot_texts(robot)[0]
    time.sleep(6.0)  # attempts at +1, +3 and +8 s have failed by now
    assert bot.log(offset).count("reconnecting in") >= 3
    assert len(robot_texts(robot)) == 1
    assert snapshot(bot_env["RELAYBOT_DATABASE_URL"])["link_down_since"] is not None

    gateway.start_grpc()
    reconnect = answered(gateway, timeout=10)
    print(f"answered {reconnect:.2f} s after the gateway's gRPC came back")
    assert reconnect < 3.0  # not the rest of a 5 s back-off, let alone python-wechaty's 60 s
    texts = wait_until(lambda: robot_texts(robot), lambda t: len(t) >= 2, 10, "the robot to hear of the recovery")
    assert len(texts) == 2 and texts[1].startswith("✅ 与微信网关的连接已恢复（中断约 ")
    office = gateway.wait_sent(lambda items: any("连接已恢复" in t for t in texts_to(items, OFFICE_ROOM)), timeout=10)
    assert sum("连接已恢复" in t for t in texts_to(office, OFFICE_ROOM)) == 1
    assert bot.process.pid == pid and bot.process.poll() is None  # the same process throughout
    assert snapshot(bot_env["RELAYBOT_DATABASE_URL"])["link_down_since"] is None


# ---- the transport's part ---------------------------------------------------------------------------------------


class EchoSink:
    """An event sink that records echoes and connection changes."""

    def __init__(self) -> None:
        self.echoes: list[tuple[str, str, str]] = []
        self.connection: list[tuple[str, float]] = []

    async def on_ready(self, bot_id): ...

    async def on_message(self, msg): ...

    async def on_room_join(self, room, joined, inviter_id): ...

    async def on_room_invite(self, invite): ...

    async def on_connection(self, state, detail):
        self.connection.append((state, time.monotonic()))

    async def on_echo(self, message_id, chat_id, text):
        self.echoes.append((message_id, chat_id, text))


async def test_the_transport_reports_echoes_and_tells_a_dropped_link_from_a_refused_send(gateway, tmp_path):
    import asyncio

    from bot.transport.base import ChatKind, Outgoing, SendError
    from bot.transport.wechaty import WechatyTransport

    async def until(predicate, timeout=10.0):
        for _ in range(int(timeout / 0.02)):
            if predicate():
                return
            await asyncio.sleep(0.02)
        raise AssertionError("timed out")

    sink = EchoSink()
    transport = WechatyTransport(gateway.endpoint, gateway.token, cache_dir=tmp_path / "wechaty", login_timeout=10)
    await transport.start(sink)
    try:
        message_id = await transport.send(Outgoing(ChatKind.ROOM, LIAISON_ROOM, text="回显测试 a1b2"))
        await until(lambda: sink.echoes)
        assert sink.echoes == [(message_id, LIAISON_ROOM, "回显测试 a1b2")]

        # An unknown room is refused by the gateway: a real failure, not a dropped link.
        with pytest.raises(SendError) as refused:
            await transport.send(Outgoing(ChatKind.ROOM, "no-such-room@chatroom", text="x"))
        assert refused.value.disconnected is False

        await asyncio.to_thread(gateway.stop_grpc)
        await until(lambda: [s for s, _ in sink.connection] == ["lost"])
        with pytest.raises(SendError) as dropped:
            await transport.send(Outgoing(ChatKind.ROOM, LIAISON_ROOM, text="断线时"))
        assert dropped.value.disconnected is True
        await asyncio.sleep(4.0)  # the back-off has grown past 2 s
        await asyncio.to_thread(gateway.start_grpc)
        back = time.monotonic()
        await until(lambda: [s for s, _ in sink.connection] == ["lost", "restored"])
        assert sink.connection[1][1] - back < 1.5  # the port is watched: no waiting out the back-off
        assert await transport.send(Outgoing(ChatKind.ROOM, LIAISON_ROOM, text="恢复后"))
    finally:
        await transport.stop()
