"""WeCom / DingTalk robot notifier against a real HTTP server on 127.0.0.1 (pytest-httpserver)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import threading
import time
import urllib.parse

import httpx
import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from bot.adapters.webhooks import MAX_TEXT_BYTES, WebhookNotifier, make_notifier, redact, truncate

KEY = "693a91f6-7b2c-4bc4-97a0-0ec2f1a5d3e8"
TOKEN = "e4c1d2b3a4958676f7e8d9c0b1a2f3e4d5c6b7a8f9e0d1c2b3a4f5e6d7c8b9a0"
SECRET = "SEC" + "3f1a9c" * 10 + "b7e2"
WRONG_SECRET = "SEC" + "9d8e7f" * 10 + "a1c4"
WECOM_PATH = "/cgi-bin/webhook/send"
DING_PATH = "/robot/send"
OK = {"errcode": 0, "errmsg": "ok"}


@pytest.fixture(scope="module")
def server():
    # Threaded, so a deliberately hanging request does not block the retry that follows it.
    srv = HTTPServer(host="127.0.0.1", port=0, threaded=True)
    srv.start()
    yield srv
    srv.clear()
    srv.stop()


HOLD = 60.0  # how long a hanging or trickling robot holds its answer unless released (issue 12 item 14)


class Robot:
    """Server-side state of one test: answers to give in order, and what was received."""

    def __init__(self, server: HTTPServer, path: str, answers: list[dict | int], secret: str = "") -> None:
        self.answers = list(answers)
        self.secret = secret
        self.received: list[dict] = []  # query args and JSON body of each request
        self.signs: list[str] = []  # raw signature values, to be sure none reaches a log
        self.release = threading.Event()
        server.clear()
        server.expect_request(path, method="POST").respond_with_handler(self.handle)

    def handle(self, request: Request) -> Response:
        args = dict(request.args)
        self.received.append({"args": args, "body": request.get_json(silent=True), "raw": request.get_data()})
        if "sign" in args:
            self.signs += [args["sign"], urllib.parse.quote_plus(args["sign"])]
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if answer == "hang":
            self.release.wait(HOLD)
            answer = OK
        if answer == "trickle":  # a byte at a time: no single read waits long, the whole answer does

            def body():
                for _ in range(int(HOLD * 10)):  # HOLD at most, so a notifier without an overall bound still ends
                    if self.release.wait(0.1):
                        break
                    yield b" "
                yield json.dumps(OK).encode()

            return Response(body(), content_type="application/json")
        if isinstance(answer, int):
            return Response("server error", status=answer)
        if self.secret and not self._signature_ok(args):
            answer = {"errcode": 310000, "errmsg": "sign not match"}
        return Response(json.dumps(answer), content_type="application/json")

    def _signature_ok(self, args: dict) -> bool:
        # What DingTalk does: recompute the HMAC from the received timestamp and the shared secret.
        timestamp = args.get("timestamp", "")
        if not timestamp.isdigit() or abs(int(timestamp) - time.time() * 1000) > 3600_000:
            return False
        digest = hmac.new(self.secret.encode(), f"{timestamp}\n{self.secret}".encode(), hashlib.sha256).digest()
        return hmac.compare_digest(base64.b64encode(digest).decode(), args.get("sign", ""))


class FakeTime:
    """A wall clock that only moves when the notifier sleeps; records the sleeps."""

    def __init__(self, start: float) -> None:
        self.now = start
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        # A limiter that never frees a slot would spin here forever; fail instead.
        assert 0 <= seconds <= 120 and len(self.slept) < 50, self.slept
        self.slept.append(seconds)
        self.now += seconds


def sign_friendly_start() -> float:
    """A time near now whose DingTalk signature contains '+' and '/', so URL-encoding mistakes show."""
    ms = int(time.time() * 1000)
    while True:
        digest = hmac.new(SECRET.encode(), f"{ms}\n{SECRET}".encode(), hashlib.sha256).digest()
        sign = base64.b64encode(digest).decode()
        if "+" in sign and "/" in sign:
            return ms / 1000
        ms += 1


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime(sign_friendly_start())


@pytest.fixture(autouse=True)
def no_credentials_logged(caplog: pytest.LogCaptureFixture, request: pytest.FixtureRequest):
    """Every test runs with DEBUG logging; afterwards no credential or signature may appear in any log line."""
    caplog.set_level(logging.DEBUG)
    robots: list[Robot] = []
    request.node.robots = robots
    yield robots
    # caplog.records holds only the current (teardown) phase; the sends happened during "call".
    records = [*caplog.get_records("setup"), *caplog.get_records("call"), *caplog.records]
    # The werkzeug records are the fake robot's own access log, not ours.
    formatter = logging.Formatter("%(name)s %(message)s")
    text = "\n".join(formatter.format(r) for r in records if not r.name.startswith("werkzeug"))
    assert "bot.adapters.webhooks" in text or request.node.name.startswith(
        ("test_redact", "test_truncate", "test_make")
    )
    secrets = [KEY, TOKEN, SECRET, WRONG_SECRET] + [s for robot in robots for s in robot.signs]
    leaked = [s for s in secrets if s in text]
    assert not leaked, f"credentials in the log: {leaked}"


def robot(request: pytest.FixtureRequest, *args, **kwargs) -> Robot:
    made = Robot(*args, **kwargs)
    request.node.robots.append(made)
    return made


def wecom(server: HTTPServer, fake_time: FakeTime, **kwargs) -> WebhookNotifier:
    kwargs = {"clock": fake_time, "sleep": fake_time.sleep, **kwargs}
    return WebhookNotifier("wecom", f"{server.url_for(WECOM_PATH)}?key={KEY}", **kwargs)


def dingtalk(server: HTTPServer, fake_time: FakeTime, secret: str = SECRET, **kwargs) -> WebhookNotifier:
    kwargs = {"clock": fake_time, "sleep": fake_time.sleep, **kwargs}
    return WebhookNotifier("dingtalk", f"{server.url_for(DING_PATH)}?access_token={TOKEN}", secret, **kwargs)


async def test_wecom_receives_exact_json(server, fake_time, request, caplog):
    r = robot(request, server, WECOM_PATH, [OK])
    notifier = wecom(server, fake_time)
    try:
        assert await notifier.send("【反诈预警】微信已掉线，请尽快扫码登录") is True
    finally:
        await notifier.aclose()
    assert len(r.received) == 1
    assert r.received[0]["args"] == {"key": KEY}
    expected = {"msgtype": "text", "text": {"content": "【反诈预警】微信已掉线，请尽快扫码登录"}}
    assert json.loads(r.received[0]["raw"]) == expected
    # httpx logs the request URL at INFO: the line must be there, with the key scrubbed.
    assert any(rec.name == "httpx" and "key=***" in rec.getMessage() for rec in caplog.records)


async def test_dingtalk_signature_verified_each_attempt(server, fake_time, request, caplog):
    r = robot(request, server, DING_PATH, [{"errcode": 130101, "errmsg": "send too fast"}, OK], secret=SECRET)
    notifier = dingtalk(server, fake_time, retry_delay=1.5)
    try:
        assert await notifier.send("测试消息") is True
    finally:
        await notifier.aclose()
    assert len(r.received) == 2
    assert all(req["args"]["access_token"] == TOKEN for req in r.received)
    stamps = [req["args"]["timestamp"] for req in r.received]
    # Signed afresh: the retry carries the clock's new time, 1.5 s later, with its own valid signature.
    assert int(stamps[1]) - int(stamps[0]) == 1500
    assert fake_time.slept == [1.5]
    assert "130101" in caplog.text and "access_token=***" in caplog.text


async def test_dingtalk_wrong_secret_rejected(server, fake_time, request, caplog):
    r = robot(request, server, DING_PATH, [OK], secret=SECRET)
    notifier = dingtalk(server, fake_time, secret=WRONG_SECRET)
    try:
        assert await notifier.send("测试消息") is False
    finally:
        await notifier.aclose()
    assert len(r.received) == 1  # 310000 is not worth retrying
    assert "310000" in caplog.text


async def test_too_many_then_ok_is_retried(server, fake_time, request):
    r = robot(request, server, WECOM_PATH, [{"errcode": 45009, "errmsg": "api freq out of limit"}, OK])
    notifier = wecom(server, fake_time)
    try:
        assert await notifier.send("hello") is True
    finally:
        await notifier.aclose()
    assert len(r.received) == 2
    assert fake_time.slept == [1.0]


async def test_server_error_then_ok_is_retried(server, fake_time, request):
    r = robot(request, server, WECOM_PATH, [502, OK])
    notifier = wecom(server, fake_time)
    try:
        assert await notifier.send("hello") is True
    finally:
        await notifier.aclose()
    assert len(r.received) == 2


async def test_other_errcode_not_retried(server, fake_time, request, caplog):
    # The errmsg echoes the key without "key=": scrubbed all the same.
    r = robot(request, server, WECOM_PATH, [{"errcode": 300001, "errmsg": f"invalid robot {KEY}"}, OK])
    notifier = wecom(server, fake_time)
    try:
        assert await notifier.send("hello") is False
    finally:
        await notifier.aclose()
    assert len(r.received) == 1
    assert fake_time.slept == []
    assert "300001" in caplog.text and "key=***" in caplog.text and "invalid robot ***" in caplog.text


async def test_retries_exhausted(server, fake_time, request):
    r = robot(request, server, WECOM_PATH, [{"errcode": 45009, "errmsg": "api freq out of limit"}])
    notifier = wecom(server, fake_time, retries=2, retry_delay=1.0)
    try:
        assert await notifier.send("hello") is False
    finally:
        await notifier.aclose()
    assert len(r.received) == 3
    assert fake_time.slept == [1.0, 2.0]


@pytest.mark.parametrize("answer", ["hang", "trickle"])
async def test_hanging_server_gives_up_within_bound(server, fake_time, request, answer, caplog):
    r = robot(request, server, WECOM_PATH, [answer])
    notifier = wecom(server, fake_time, timeout=0.3, retries=1, retry_delay=0.0)
    started = time.monotonic()
    try:
        assert await notifier.send("hello") is False
    finally:
        r.release.set()
        await notifier.aclose()
    # A hang guard, not a speed goal (CI may be busy): the robot holds each answer for HOLD seconds.
    assert time.monotonic() - started < HOLD / 2
    assert "failed after 2 attempts" in caplog.text  # a timeout is retried, once
    assert 1 <= len(r.received) <= 2  # under load the retry may time out before it reaches the robot


async def test_rate_limit_waits_for_sliding_window(server, fake_time, request):
    r = robot(request, server, WECOM_PATH, [OK])
    notifier = wecom(server, fake_time, per_minute=2)
    try:
        assert await notifier.send("1") is True
        fake_time.now += 30
        assert await notifier.send("2") is True
        fake_time.now += 15
        # Window full (t=0 and t=30); the first send leaves it at t=60, 15 s from now.
        assert await notifier.send("3") is True
        assert fake_time.slept == [pytest.approx(15.0)]
    finally:
        await notifier.aclose()
    assert len(r.received) == 3


async def test_rate_limit_drops_beyond_max_wait(server, fake_time, request, caplog):
    r = robot(request, server, WECOM_PATH, [OK])
    notifier = wecom(server, fake_time, per_minute=2, max_wait=10.0)
    try:
        assert await notifier.send("1") is True
        assert await notifier.send("2") is True
        assert await notifier.send("3 会被丢弃") is False  # a slot frees only in 60 s, more than 10 s
        assert len(r.received) == 2
        assert fake_time.slept == []
        assert "dropped" in caplog.text
        fake_time.now += 60
        assert await notifier.send("4") is True
    finally:
        await notifier.aclose()
    assert len(r.received) == 3


async def test_long_chinese_text_truncated(server, fake_time, request):
    r = robot(request, server, WECOM_PATH, [OK])
    text = "a" + "反诈预警，请立即转发。" * 300  # the cut falls inside a 3-byte character
    notifier = wecom(server, fake_time)
    try:
        assert await notifier.send(text) is True
    finally:
        await notifier.aclose()
    content = r.received[0]["body"]["text"]["content"]
    assert len(content.encode("utf-8")) <= MAX_TEXT_BYTES
    assert len(content.encode("utf-8")) > MAX_TEXT_BYTES - 6
    assert content.endswith("…") and text.startswith(content[:-1])


async def test_unexpected_error_is_not_raised(server, fake_time, request, caplog):
    robot(request, server, WECOM_PATH, [OK])
    client = httpx.AsyncClient()
    await client.aclose()  # a closed client raises RuntimeError, which is no network error
    notifier = wecom(server, fake_time, client=client)
    assert await notifier.send("hello") is False
    assert "RuntimeError" in caplog.text


def test_truncate_keeps_text_that_fits():
    fits = "中" * (MAX_TEXT_BYTES // 3) + "ab"  # exactly 2048 bytes
    assert truncate(fits) == fits
    assert truncate(fits + "c") != fits + "c"


def test_redact():
    assert (
        redact(f"https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key={KEY}&debug=1")
        == "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=***&debug=1"
    )
    assert (
        redact(f"send?access_token={TOKEN}&timestamp=1700000000000&sign=ab%2Bc%3D")
        == "send?access_token=***&timestamp=1700000000000&sign=***"
    )
    assert redact(f"密钥 {SECRET} 有误") == "密钥 *** 有误"
    assert redact("微信已掉线") == "微信已掉线"


async def test_make_notifier():
    assert make_notifier("wecom", "") is None
    assert make_notifier("钉钉", "   ") is None
    made = [
        make_notifier("企业微信", f"https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key={KEY}"),
        make_notifier("DingTalk", f"https://oapi.dingtalk.com/robot/send?access_token={TOKEN}", SECRET),
        make_notifier("钉钉", f"https://oapi.dingtalk.com/robot/send?access_token={TOKEN}"),
    ]
    assert [n.kind for n in made] == ["wecom", "dingtalk", "dingtalk"]
    assert KEY not in repr(made[0])
    for n in made:
        await n.aclose()
    with pytest.raises(ValueError, match="notify_kind.*企业微信.*钉钉"):
        make_notifier("slack", "https://example.com/hook")
    for bad in (f"qyapi.weixin.qq.com/cgi-bin/webhook/send?key={KEY}", f"ftp://example.com/?key={KEY}"):
        with pytest.raises(ValueError, match="notify_url.*http") as info:
            make_notifier("wecom", bad)
        assert KEY not in str(info.value)
    with pytest.raises(ValueError, match="notify_secret"):
        make_notifier("wecom", f"https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key={KEY}", SECRET)
