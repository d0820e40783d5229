"""The web console's 设置 page over a real HTTP server (issue 14): every setting with its value, read-only, and no
secret's value anywhere in the page."""

from __future__ import annotations

import re

import pytest

from bot.config import Settings
from bot.web.pages_admin import shown_setting, shown_url
from tests.web.conftest import VIEWER_ID

SECRETS = {
    "database_url": "postgresql+psycopg://relay:Pw-Db-7731@db.internal:5432/relay?sslpassword=Ssl-5519",
    "puppet_service_token": "puppet-token-8842",
    "notify_url": "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=hook-key-6620",
    "notify_secret": "SECabcdefabcdef0123456789",
    "feeds": ["https://reader:Feed-Pw-3377@feeds.example.cn/rss.xml?token=feed-token-4408"],
}
SECRET_VALUES = [
    "Pw-Db-7731",
    "Ssl-5519",
    "puppet-token-8842",
    "hook-key-6620",
    "SECabcdefabcdef0123456789",
    "Feed-Pw-3377",
    "feed-token-4408",
]


def shown(response) -> str:
    """A page as read: its HTML without the <wbr> break hints long texts get (so a phone's screen holds them)."""
    return response.text.replace("<wbr>", "")


@pytest.fixture
def web_settings(settings) -> Settings:
    return settings.model_copy(update={"viewer_ids": [VIEWER_ID], "web_port": 18123, **SECRETS})


def test_every_setting_is_shown_and_no_secret_is(served):
    for who in (VIEWER_ID, None):
        c = served.sign_in(who) if who else served.sign_in()
        r = c.get("/settings")
        assert r.status_code == 200
        page = shown(r)
        for secret in SECRET_VALUES:
            assert secret not in page, secret
        for name in Settings.model_fields:
            assert f'<tr id="s-{name}">' in page, name
        assert re.search(r"<td>web_port</td><td>18123</td>", page)
        assert "<td>database_url</td><td>postgresql+psycopg://relay:***@db.internal:5432/relay?***" in page
        assert "<td>puppet_service_token</td><td>（已设置，已隐藏）" in page
        assert "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?***" in page
        assert "https://reader:***@feeds.example.cn/rss.xml?***" in page
        assert "wxid_leader" in page  # viewer_ids: not a secret
        assert "<form" not in page.split("<main>")[1]  # read-only: no form on the page (the header's 退出 is above)


def test_shown_url_and_shown_setting():
    assert shown_url("sqlite:///data/relaybot.db") == "sqlite:///data/relaybot.db"
    assert shown_url("postgresql://u:p@ss@h/db") == "postgresql://u:***@h/db"
    assert shown_url("postgresql://h/db?password=x&user=u") == "postgresql://h/db?***"
    assert (
        shown_url("https://oapi.dingtalk.com/robot/send?access_token=abc") == "https://oapi.dingtalk.com/robot/send?***"
    )
    assert shown_setting("notify_secret", "") == ("（未设置）", True)
    assert shown_setting("a_new_api_key", "k-1") == ("（已设置，已隐藏）", True)
    assert shown_setting("admin_ids", ["a", "b"]) == ("a、b", False)
    assert shown_setting("feed_auto_push", False) == ("否", False)
