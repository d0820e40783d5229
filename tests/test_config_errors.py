"""Configuration errors name the setting and what it should be, and never show a secret's value (issue 12 item 12)."""

from __future__ import annotations

import pytest

from bot.config import SECRET_SETTINGS, Settings, is_secret_setting, load_settings, settings_error_text
from tests.bot_process import relaybot

SECRET = "98765432109876543210"  # an unquoted number in relaybot.toml: TOML reads it as an integer


def _error_text(tmp_path, monkeypatch, toml: str) -> str:
    config = tmp_path / "relaybot.toml"
    config.write_text(toml, encoding="utf-8")
    monkeypatch.setenv("RELAYBOT_CONFIG", str(config))
    for name in Settings.model_fields:
        monkeypatch.delenv("RELAYBOT_" + name.upper(), raising=False)
    with pytest.raises(Exception) as caught:
        load_settings()
    return settings_error_text(caught.value)


def test_every_setting_that_holds_a_credential_is_secret():
    names = {name for name in Settings.model_fields if is_secret_setting(name)}
    assert {"database_url", "puppet_service_token", "notify_url", "notify_secret", "feeds"} <= names
    assert names >= SECRET_SETTINGS
    assert not is_secret_setting("reminder_times") and not is_secret_setting("log_format")


@pytest.mark.parametrize("name", sorted(n for n in Settings.model_fields if is_secret_setting(n)))
def test_a_wrong_secret_setting_is_named_but_its_value_is_not_shown(tmp_path, monkeypatch, name):
    text = _error_text(tmp_path, monkeypatch, f"{name} = {SECRET}\n")
    assert f"{tmp_path / 'relaybot.toml'} 第 1 行 {name}：" in text  # the file, the line and the key
    assert "应为" in text and "内容不显示" in text
    assert SECRET not in text
    assert SECRET[:8] not in text  # not even a part of it


def test_a_wrong_ordinary_setting_shows_its_value_to_help_find_it(tmp_path, monkeypatch):
    text = _error_text(
        tmp_path, monkeypatch, 'reminder_times = ["25:00"]\nlog_format = "xml"\nfeed_auto_push = "perhaps"\n'
    )
    assert '第 1 行 reminder_times（第 1 项）：不是合法的时间，应为 HH:MM，如 "09:30"（现在是 25:00）' in text
    assert "log_format" in text and "'text'、'json'" in text and "xml" in text
    assert "feed_auto_push" in text and "应为 true 或 false" in text


def test_the_cli_prints_the_plain_words_error_and_exits_2(tmp_path):
    (tmp_path / "relaybot.toml").write_text(
        f"puppet_service_token = {SECRET}\nnotify_secret = {SECRET[:-1]}\n", encoding="utf-8"
    )
    result = relaybot("status", db_url=f"sqlite:///{tmp_path / 'x.db'}", cwd=tmp_path)
    assert result.returncode == 2
    assert "puppet_service_token" in result.stderr and "notify_secret" in result.stderr
    assert SECRET[:8] not in result.stdout + result.stderr
    assert "Traceback" not in result.stderr
