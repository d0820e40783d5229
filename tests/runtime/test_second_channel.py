"""The webhook robot as the office's second channel, against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime

import pytest

from bot.adapters.webhooks import WebhookNotifier
from bot.transport.base import SendError
from tests.conftest import ADMIN, OFFICE_ROOM, TZ


@pytest.fixture
def robot(httpserver):
    httpserver.expect_request("/cgi-bin/webhook/send").respond_with_json({"errcode": 0, "errmsg": "ok"})
    return httpserver


def received(server) -> list[str]:
    return [json.loads(req.get_data())["text"]["content"] for req, _ in server.log]


async def wait_for(predicate, timeout=5.0):
    for _ in range(int(timeout / 0.02)):
        if predicate():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("timed out")


async def test_send_failures_and_the_daily_summary_reach_the_robot(bot, transport, clock, robot):
    bot.notifier = WebhookNotifier("wecom", robot.url_for("/cgi-bin/webhook/send?key=SECRETKEY"))
    await transport.say(ADMIN, "推送 刷单", room_id=OFFICE_ROOM)

    async def refuse(out):
        raise SendError("发送消息过于频繁", rate_limited=True)

    transport.send = refuse
    await bot.send_due()
    await wait_for(lambda: received(robot))
    assert "微信提示发送过于频繁，机器人暂停发送 30 分钟" in received(robot)[0]

    clock.now = datetime(2026, 11, 26, 18, 30, tzinfo=TZ)
    await bot.run_schedule()
    await wait_for(lambda: len(received(robot)) == 2)
    assert received(robot)[1].startswith("📊 反诈预警转发日报（11月26日）")


async def test_a_lost_connection_and_a_logout_reach_the_robot(bot, robot):
    bot.notifier = WebhookNotifier("wecom", robot.url_for("/cgi-bin/webhook/send?key=K"))
    bot.settings.connection_alert_minutes = 0  # at once; the delay is covered in tests/runtime/test_health.py
    await bot.on_connection("lost", "stream ended")
    await bot.on_connection("logged_out", "")
    await wait_for(lambda: len(received(robot)) == 2)
    # Each goes out as its own task, so they may arrive in either order.
    got = received(robot)
    assert any("连接断开了" in t for t in got) and any("退出登录" in t for t in got)


def test_a_wrong_robot_setting_stops_the_start_with_its_reason(tmp_path, db_url):
    from tests.bot_process import relaybot

    result = relaybot(
        "run",
        db_url=db_url,
        cwd=tmp_path,
        RELAYBOT_NOTIFY_URL="ftp://robot",
        WECHATY_PUPPET_SERVICE_ENDPOINT="127.0.0.1:9",
        WECHATY_PUPPET_SERVICE_TOKEN="t",
    )
    assert result.returncode == 2
    assert "配置有误" in result.stderr and "notify_url" in result.stderr
