"""End to end (issue 12 item 4): an admin pushes links to an internal page through the real Wechaty gateway; the bot
does not fetch it and the office is told why. Since issue 13 no card goes out with its URL as its title: the office
is asked for one, and the link goes out with the title it gives."""

from __future__ import annotations

import pytest

from bot.content import load_texts
from tests.bot_process import ROOT, BotProcess, gateway_env, relaybot
from tests.gateway_harness import Gateway, texts_to

pytestmark = pytest.mark.e2e  # the bot as a process against the real Node gateway

ADMIN = ("wxid_admin_chen", "陈静")
WANG = ("wxid_wangfang", "王芳")
PEOPLE = [ADMIN, WANG]
LIAISON_ROOM = "23001@chatroom"
OFFICE_ROOM = "23002@chatroom"
INTERNAL_TITLE = "内部系统：干警通讯录"


@pytest.fixture(scope="module")
def gateway():
    gw = Gateway.start()
    for contact_id, name in PEOPLE:
        gw.contact(contact_id, name)
    gw.room(LIAISON_ROOM, "全区反诈联络员群", [c for c, _ in PEOPLE])
    gw.room(OFFICE_ROOM, "反诈办工作群", [ADMIN[0]])
    yield gw
    gw.stop()


@pytest.fixture
def bot(gateway, tmp_path, db_url):
    imported = relaybot(
        "roster", "import", str(ROOT / "content" / "examples" / "roster_example.csv"), db_url=db_url, cwd=tmp_path
    )
    assert imported.returncode == 0, imported.stderr
    # The defaults: no RELAYBOT_PREVIEW_ALLOWED_HOSTS, so 127.0.0.1 is an internal address like any other.
    proc = BotProcess(
        gateway_env(
            gateway, db_url, tmp_path, admin=ADMIN[0], liaison_groups="全区反诈联络员群", office_group=OFFICE_ROOM
        ),
        tmp_path,
    )
    yield proc
    proc.stop()
    proc.close()


def test_a_pushed_link_to_an_internal_page_goes_out_without_its_title(gateway, bot, server):
    server.expect_request("/page").respond_with_data(
        f"<html><head><title>{INTERNAL_TITLE}</title></head></html>", content_type="text/html"
    )
    texts = load_texts()
    why = texts.t("push_title.why_internal")
    bot.start()
    urls = [server.url_for("/page"), f"http://2130706433:{server.port}/page"]  # the second: 127.0.0.1 in decimal
    mark = len(gateway.sent())
    for url in urls:
        asked = texts.t("push_title.need", why=why, url=url)
        gateway.say(ADMIN[0], f"推送 {url}", room=OFFICE_ROOM)
        gateway.wait_sent(lambda items, a=asked: a in texts_to(items, OFFICE_ROOM), since=mark, timeout=60)
    for n, url in enumerate(urls, start=1):
        gateway.say(ADMIN[0], f"推送 {url} 标题 反诈宣传{n}", room=OFFICE_ROOM)
        gateway.wait_sent(
            lambda items, n=n: any(t.startswith(f"已推送 #{n}") for t in texts_to(items, OFFICE_ROOM)),
            since=mark,
            timeout=60,
        )
    sent = gateway.wait_sent(
        lambda items: sum(i["kind"] == "link" and i["conversation_id"] == LIAISON_ROOM for i in items) == 2,
        since=mark,
        timeout=60,
    )

    cards = [(i["url"], i["title"]) for i in sent if i["kind"] == "link" and i["conversation_id"] == LIAISON_ROOM]
    assert cards == [(url, f"反诈宣传{n}") for n, url in enumerate(urls, start=1)]
    office = texts_to(sent, OFFICE_ROOM)
    assert office[:2] == [texts.t("push_title.need", why=why, url=url) for url in urls]
    assert not any(INTERNAL_TITLE in str(item) for item in sent)
    assert server.log == []  # the internal page was never requested
    assert "no preview for" in bot.log() and "is an internal address" in bot.log()
