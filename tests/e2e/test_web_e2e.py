"""End to end: the web console beside a running bot, through the real Wechaty gateway, in a real browser (issue 14).

The bot and `relaybot web` are two processes on one database. Signing in, the code reaches the admin's private chat
on the gateway (sent by the bot from the outbox the console wrote); a push made on the 新推送 page reaches the liaison group as
previewed, and a liaison's 已转发 said in the liaison group appears on the push's page, which refreshes itself; 提醒 pressed on that page is
sent by the bot into the liaison group.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys

import httpx
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.select import Select

from tests.bot_process import ROOT, BotProcess, gateway_env, relaybot
from tests.gateway_harness import Gateway, has_text, texts_to, wait_until
from tests.web.browser import screenshot, sign_in, start_browser, wait_for_text

pytestmark = pytest.mark.e2e

ADMIN = ("wxid_admin_chen", "陈静")
WANG = ("wxid_wangfang", "王芳")
LIAISON_ROOM = "30301@chatroom"
OFFICE_ROOM = "30302@chatroom"
EXAMPLE_ROSTER = str(ROOT / "content" / "examples" / "roster_example.csv")
WAIT = 120.0  # generous: CI may share the machine; each wait ends when the thing is seen


@pytest.fixture(scope="module")
def gateway():
    gw = Gateway.start()
    gw.contact(*ADMIN)
    gw.contact(*WANG)
    gw.room(LIAISON_ROOM, "全区反诈联络员群", [ADMIN[0], WANG[0]], {WANG[0]: "王芳-城关镇"})
    gw.room(OFFICE_ROOM, "反诈办工作群", [ADMIN[0]])
    yield gw
    gw.stop()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def setup(gateway, tmp_path, db_url):
    imported = relaybot("roster", "import", EXAMPLE_ROSTER, db_url=db_url, cwd=tmp_path)
    assert imported.returncode == 0, imported.stderr
    env = gateway_env(
        gateway, db_url, tmp_path, admin=ADMIN[0], liaison_groups="全区反诈联络员群", office_group=OFFICE_ROOM
    )
    bot = BotProcess(env, tmp_path).start(timeout=WAIT)
    port = _free_port()
    web_env = {k: v for k, v in os.environ.items() if not k.startswith("RELAYBOT_")}
    web_env.update(env)
    web_env.update({"PYTHONPATH": str(ROOT), "RELAYBOT_WEB_PORT": str(port)})
    web = subprocess.Popen(
        [sys.executable, "-m", "bot", "web"], cwd=tmp_path, env=web_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    base = f"http://127.0.0.1:{port}"

    def up() -> bool:
        if web.poll() is not None:
            return True
        try:
            return httpx.get(base + "/login", timeout=5, trust_env=False).status_code == 200
        except httpx.HTTPError:
            return False

    wait_until(up, bool, WAIT, "relaybot web to answer")
    assert web.poll() is None, web.communicate()[1].decode()
    browser = start_browser(tmp_path)
    yield gateway, base, browser
    browser.quit()
    web.terminate()
    web.wait(timeout=60)
    bot.stop()
    bot.close()


def test_sign_in_by_wechat_then_watch_a_push_fill_up_and_remind_from_the_page(setup, tmp_path):
    gateway, base, browser = setup

    def code_from_wechat() -> str:
        sent = gateway.wait_sent(has_text(ADMIN[0], "网页控制台登录验证码"), since=mark, timeout=WAIT)
        text = next(i["text"] for i in reversed(sent) if "网页控制台登录验证码" in i.get("text", ""))
        found = re.search(r"\d{6}", text)
        assert found, text
        return found.group()

    mark = len(gateway.sent())
    sign_in(browser, base, ADMIN[0], code_from_wechat, name="陈静（管理员）")
    assert "陈静" in browser.find_element(By.ID, "who").text or ADMIN[0] in browser.find_element(By.ID, "who").text

    # 新推送 in the browser: pick 刷单返利 from the library, look at the preview, send.
    mark = len(gateway.sent())
    browser.find_element(By.LINK_TEXT, "新推送").click()
    Select(browser.find_element(By.ID, "case")).select_by_value("刷单返利")
    browser.find_element(By.ID, "preview-case").click()
    wait_for_text(browser, "【反诈预警 #1】")
    previewed = browser.find_element(By.ID, "message").text
    browser.find_element(By.ID, "send").click()
    wait_for_text(browser, "已转发 0/")  # on the new push's page
    sent = gateway.wait_sent(has_text(LIAISON_ROOM, "【反诈预警 #1】"), since=mark, timeout=WAIT)
    [group_text] = [t for t in texts_to(sent, LIAISON_ROOM) if "【反诈预警 #1】" in t]
    assert group_text.strip() == previewed.strip()  # the preview was exactly what the group got

    gateway.say(WANG[0], "已转发到城关镇各村群", room=LIAISON_ROOM)
    wait_for_text(browser, "已转发到城关镇各村群")  # the page refreshed itself
    assert "已转发 1/" in browser.find_element(By.ID, "progress").text

    mark = len(gateway.sent())
    browser.find_element(By.ID, "remind").click()
    wait_for_text(browser, "个联络员群提醒 #1")
    sent = gateway.wait_sent(has_text(LIAISON_ROOM, "东城街道"), since=mark, timeout=WAIT)
    [reminder] = [t for t in texts_to(sent, LIAISON_ROOM) if "东城街道" in t]
    assert "#1" in reminder and "城关镇" not in reminder  # only the units that have not relayed
    screenshot(browser, tmp_path, "e2e-push-page")
