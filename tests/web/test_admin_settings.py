"""The web console's 设置 page over a real HTTP server (issue 14): every setting with its value, read-only, and no
secret anywhere in the page: a secret only as set or not, a URL only as its scheme and host."""

from __future__ import annotations

import re

import pytest

from bot.config import Settings
from bot.content import load_texts
from bot.redaction import url_origin
from bot.web.pages_admin import shown_setting
from tests.web.conftest import VIEWER_ID

SECRETS = {
    "database_url": "postgresql+psycopg://relay:Pw-Db-7731@db.internal:5432/Db-Name-2290?sslpassword=Ssl-5519",
    "puppet_service_token": "puppet-token-8842",
    "notify_url": "https://qyapi.weixin.qq.com/cgi-bin/webhook/Path-Key-1184/send?key=hook-key-6620#Frag-3309",
    "notify_secret": "SECabcdefabcdef0123456789",
    "feeds": [
        "https://reader:Feed-Pw-3377@feeds.example.cn/Feed-Path-5501/rss.xml?token=feed-token-4408",
        "https://oapi.dingtalk.com/robot/send?access_token=Ding-Tok-6652",
        "http://Tok-Path-7710/Bare-5120@intranet.example/x",  # an unescaped @ after the host: no host shown
    ],
    "self_check_target": "https://hooks.example.cn/Self-Path-8830?sign=Self-Sign-9901",  # not a secret name
}
SECRET_VALUES = [
    "Pw-Db-7731",
    "Db-Name-2290",
    "Ssl-5519",
    "puppet-token-8842",
    "Path-Key-1184",
    "hook-key-6620",
    "Frag-3309",
    "cgi-bin",
    "SECabcdefabcdef0123456789",
    "reader",
    "Feed-Pw-3377",
    "Feed-Path-5501",
    "rss.xml",
    "feed-token-4408",
    "Ding-Tok-6652",
    "robot/send",
    "Tok-Path-7710",
    "Bare-5120",
    "intranet",
    "Self-Path-8830",
    "Self-Sign-9901",
]


def shown(response) -> str:
    """A page as read: its HTML without the <wbr> break hints long texts get (so a phone's screen holds them)."""
    return response.text.replace("<wbr>", "")


@pytest.fixture
def web_settings(settings) -> Settings:
    return settings.model_copy(update={"viewer_ids": [VIEWER_ID], "web_port": 18123, **SECRETS})


def cell(page: str, name: str) -> str:
    found = re.search(rf'<tr id="s-{name}"><td>{name}</td><td[^>]*>(.*?)</td></tr>', page, re.S)
    assert found, name
    return found.group(1)


def test_every_setting_is_shown_and_no_secret_is(served):
    for who in (VIEWER_ID, None):
        c = served.sign_in(who) if who else served.sign_in()
        r = c.get("/settings")
        assert r.status_code == 200
        page = shown(r)
        for secret in SECRET_VALUES:
            assert secret.lower() not in page.lower(), secret
        for name in Settings.model_fields:
            assert f'<tr id="s-{name}">' in page, name
        assert re.search(r"<td>web_port</td><td>18123</td>", page)
        assert cell(page, "database_url") == "postgresql+psycopg://db.internal:5432…（已隐藏）"
        assert cell(page, "puppet_service_token") == "（已设置，已隐藏）"
        assert cell(page, "notify_secret") == "（已设置，已隐藏）"
        assert cell(page, "notify_url") == "https://qyapi.weixin.qq.com…（已隐藏）"
        assert cell(page, "feeds").split("\n") == [
            "https://feeds.example.cn…（已隐藏）",
            "https://oapi.dingtalk.com…（已隐藏）",
            "http://…（已隐藏）",
        ]
        assert cell(page, "self_check_target") == "https://hooks.example.cn…（已隐藏）"
        assert "wxid_leader" in page  # viewer_ids: not a secret
        assert "<form" not in page.split("<main>")[1]  # read-only: no form on the page (the header's 退出 is above)


def test_the_puppet_token_from_wechatys_own_variable_is_not_shown(served, monkeypatch):
    served.settings.puppet_service_token = ""
    monkeypatch.setenv("WECHATY_PUPPET_SERVICE_TOKEN", "env-token-5561")
    page = shown(served.sign_in().get("/settings"))
    assert "env-token-5561" not in page and cell(page, "puppet_service_token") == "（已设置，已隐藏）"


def test_url_origin_and_shown_setting():
    texts = load_texts()
    assert url_origin("sqlite:///data/relaybot.db") == "sqlite://"
    assert url_origin("postgresql://u:p@ss@h/db") == "postgresql://h"
    assert url_origin("postgresql://u:pa/ss@h/db") == "postgresql://"  # where the host ends is not certain
    assert url_origin("postgresql://u:pa?ss@h/db") == "postgresql://"
    assert url_origin("https://[::1]:8443/x?token=t") == "https://[::1]:8443"
    assert url_origin("https://[::1/x") == "https://"
    assert url_origin("not a url") == ""
    assert shown_setting(texts, "database_url", "sqlite:///data/relaybot.db") == ("sqlite://…（已隐藏）", True)
    assert shown_setting(texts, "notify_secret", "") == ("（未设置）", False)
    assert shown_setting(texts, "a_new_api_key", "k-1") == ("（已设置，已隐藏）", True)
    assert shown_setting(texts, "feeds", ["not-a-url-9931"]) == ("（已设置，已隐藏）", True)
    assert shown_setting(texts, "office_group", "群 key=abc") == ("群 key=***", True)
    assert shown_setting(texts, "admin_ids", ["a", "b"]) == ("a、b", False)
    assert shown_setting(texts, "feed_auto_push", False) == ("否", False)
    assert shown_setting(texts, "feeds", []) == ("（空）", False)
