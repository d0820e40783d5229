"""Configuration problems in Chinese, by file or variable, line and key (issue 13): invalid values by pydantic's
error type, TOML syntax, keys that are not settings (refused in relaybot.toml, warned about in RELAYBOT_*)."""

from __future__ import annotations

import re
import tomllib

import pytest
from pydantic import BaseModel, Field, ValidationError

from bot.cli.doctor import Level, check_unknown_keys
from bot.config import (
    ConfigError,
    Settings,
    config_warnings,
    load_settings,
    load_settings_allowing_unknown,
    problem_text,
    settings_error_text,
)
from tests.bot_process import ROOT, relaybot

# pydantic's English and its links must never reach people.
PYDANTIC_ENGLISH = re.compile(
    r"errors\.pydantic|Input should|\bvalid\b|validation error|Field required|type=|For further"
)
ALLOWED_WORDS = {"true", "false", "HH", "MM", "YYYY", "DD", "Asia", "Shanghai", "a", "b", "text", "json"}


def _english(text: str, *allowed: str) -> list[str]:
    """ASCII words in `text` other than setting names, variable names, the given values and a few file words."""
    known = set(ALLOWED_WORDS) | set(Settings.model_fields) | set(allowed)
    words = re.findall(r"[A-Za-z][A-Za-z_]*", text)
    return [w for w in words if w not in known and not w.startswith("RELAYBOT_") and w.lower() not in known]


@pytest.fixture
def config(tmp_path, monkeypatch):
    """Write relaybot.toml (RELAYBOT_CONFIG) in a clean environment; returns the writer."""
    for name in Settings.model_fields:
        monkeypatch.delenv("RELAYBOT_" + name.upper(), raising=False)
    path = tmp_path / "relaybot.toml"
    monkeypatch.setenv("RELAYBOT_CONFIG", str(path))

    def write(text: str | bytes):
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(text, encoding="utf-8")
        return path

    return write


def _error(**overrides) -> str:
    with pytest.raises(Exception) as caught:
        load_settings(**overrides)
    return settings_error_text(caught.value)


@pytest.mark.parametrize(
    ("line", "problem", "value"),
    [
        ("ack_quiet_seconds = 2.5", "应为整数", "2.5"),
        ('ack_quiet_seconds = "thirty"', "应为整数", "thirty"),
        ('send_spacing_seconds = "fast"', "应为数字", "fast"),
        ('feed_auto_push = "yes please"', "应为 true 或 false", "yes please"),
        ('evidence_required = "maybe"', "应为 true 或 false", "maybe"),
        ('deadline_time = "25:61"', "不是合法的时间，应为 HH:MM", "25:61"),
        ("deadline_time = 18", "不是合法的时间，应为 HH:MM", "18"),  # not 00:00:18
        ("reminder_times = [10, 16]", "（第 1 项）：不是合法的时间，应为 HH:MM", "10"),
        ('reminder_times = ["10:00", "noon"]', "不是合法的时间，应为 HH:MM", "noon"),
        ("reminder_times = 10", "列表格式应为 [", "10"),
        ('admin_ids = {a = "b"}', "列表格式应为 [", '{"a": "b"}'),
        ("office_group = 123", "应为文字", "123"),
        ('log_format = "yaml"', "只能是：'text'、'json'", "yaml"),
        ('timezone = "Beijing"', "不是有效的时区名", "Beijing"),
    ],
)
def test_each_invalid_value_is_told_in_chinese_with_file_line_key_and_value(config, line, problem, value):
    path = config(f"# 反诈办\n\n{line}\n")
    key = line.split(" =")[0]
    text = _error()
    assert text.splitlines()[0].startswith("配置有误")
    assert f"- 配置文件 {path} 第 3 行 {key}" in text
    assert problem in text and f"（现在是 {value}）" in text
    assert not PYDANTIC_ENGLISH.search(text), text
    assert _english(text.replace(str(path), ""), *re.findall(r"\w+", value)) == [], text


def test_every_invalid_value_is_reported_in_one_go(config):
    config('deadline_time = "9点"\nlog_format = "xml"\nack_quiet_seconds = "x"\n')
    lines = _error().splitlines()
    assert len(lines) == 4 and all(line.startswith("- 配置文件") for line in lines[1:])


@pytest.mark.parametrize(
    ("variable", "value", "problem"),
    [
        ("RELAYBOT_DAILY_SEND_BUDGET", "many", "应为整数"),
        ("RELAYBOT_CLOCK_SPEED", "fast", "应为数字"),
        ("RELAYBOT_OFFICIAL_CALENDAR", "perhaps", "应为 true 或 false"),
        ("RELAYBOT_SUMMARY_TIME", "18.30", "不是合法的时间"),
        ("RELAYBOT_REMINDER_TIMES", "10:00,31:00", "不是合法的时间"),
        ("RELAYBOT_ADMIN_IDS", '["wxid_a", ', "列表格式应为 ["),
        ("RELAYBOT_LOG_FORMAT", "xml", "只能是"),
    ],
)
def test_an_invalid_environment_variable_is_named(config, monkeypatch, variable, value, problem):
    config('deadline_time = "18:00"\n')
    monkeypatch.setenv(variable, value)
    text = _error()
    assert f"- 环境变量 {variable}" in text and problem in text
    assert not PYDANTIC_ENGLISH.search(text), text
    assert _english(text, *re.findall(r"\w+", value)) == [], text


def test_the_environment_variable_that_wins_is_the_one_named(config, monkeypatch):
    config('summary_time = "18:30"\n')
    monkeypatch.setenv("RELAYBOT_SUMMARY_TIME", "6pm")
    text = _error()
    assert "环境变量 RELAYBOT_SUMMARY_TIME：不是合法的时间" in text and "配置文件" not in text


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        ({"type": "missing"}, "必须填写"),
        ({"type": "greater_than", "ctx": {"gt": 0}}, "应大于 0"),
        ({"type": "greater_than_equal", "ctx": {"ge": 1}}, "应不小于 1"),
        ({"type": "less_than_equal", "ctx": {"le": 100}}, "应不大于 100"),
        ({"type": "string_too_short", "ctx": {"min_length": 2}}, "太短：至少 2 个"),
        ({"type": "list_type"}, '列表格式应为 ["a", "b"]'),
        ({"type": "date_from_datetime_parsing"}, "不是合法的日期"),
        ({"type": "something_new_in_pydantic"}, "格式不对"),
    ],
)
def test_pydantic_error_types_in_chinese_with_a_generic_fallback(error, expected):
    text = problem_text(error)
    assert expected in text
    assert _english(text) == []


def test_a_constrained_setting_added_later_is_told_in_chinese_too():
    """Constraints (gt, ge, ...) that a new setting may carry have Chinese words, not pydantic's."""

    class Limits(BaseModel):
        retries: int = Field(gt=0)
        share: int = Field(le=1)
        name: str

    with pytest.raises(ValidationError) as caught:
        Limits(retries=0, share=3)
    problems = [problem_text(e) for e in caught.value.errors(include_url=False)]
    assert problems == ["应大于 0", "应不大于 1", "必须填写"]


def test_a_secret_value_is_never_shown(config, monkeypatch):
    config("notify_secret = 12345678901234\n")
    text = _error()
    assert "notify_secret" in text and "内容不显示" in text and "12345678" not in text


# ---- TOML syntax ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("toml", "where", "problem"),
    [
        ('admin_ids = ["wxid_a"]\noffice_group = 反诈办工作群\n', "第 2 行第 16 列", "值的写法不对"),
        ("admin_ids = [“wxid_a”]\n", "第 1 行第 14 列", "值的写法不对"),
        ('admin_ids "wxid_a"\n', "第 1 行第 11 列", "缺少等号"),
        ('office_group = "a"\noffice_group = "b"\n', "", "同一个键写了两次"),
        ('admin_ids = ["wxid_a"\n', "", "缺少右方括号"),
        ('office_group = "反诈办\n', "第 1 行第 20 列", "引号没有配对"),
        ('evidence_dir = "D:\\data"\n', "第 1 行", "反斜杠"),
    ],
)
def test_a_toml_syntax_error_is_told_in_chinese_with_line_and_column(config, toml, where, problem):
    path = config(toml)
    text = _error()
    assert text.splitlines()[0] == f"配置文件 {path} 写法有误，机器人没有启动："
    assert where in text and problem in text
    assert "Invalid" not in text and "Expected" not in text and "at line" not in text


def test_a_file_saved_as_utf8_with_bom_is_read_and_gbk_is_refused_in_chinese(config):
    config('\ufeffoffice_group = "反诈办工作群"\n'.encode())
    assert load_settings().office_group == "反诈办工作群"
    path = config('office_group = "反诈办工作群"\n'.encode("gbk"))
    assert _error() == f"配置文件 {path} 不是 UTF-8 编码，机器人没有启动。请用记事本“另存为”，编码选 UTF-8 后保存。"


# ---- keys that are not settings -------------------------------------------------------------------------------------


def test_unknown_keys_in_the_file_are_refused_with_the_nearest_setting(config):
    path = config('admin_id = ["wxid_a"]\nofice_group = "x"\nsomething_else = 1\nliaison_groups = []\n')
    with pytest.raises(ConfigError) as caught:
        load_settings()
    text = str(caught.value)
    assert text.splitlines() == [
        f"配置文件 {path} 里有不认识的设置，机器人没有启动（写错的设置不会生效，例如管理员会没有）：",
        "- 第 1 行 admin_id：没有这个设置，是不是 admin_ids？",
        "- 第 2 行 ofice_group：没有这个设置，是不是 office_group？",
        "- 第 3 行 something_else：没有这个设置",
        "全部设置见 relaybot.example.toml。",
    ]
    assert load_settings_allowing_unknown().liaison_groups == []  # what doctor uses


def test_a_setting_written_under_a_section_is_flagged(config):
    config('office_group = "x"\n\n[notify]\nurl = "https://example.invalid/hook"\n\n[bot]\nadmin_ids = ["a"]\n')
    text = str(pytest.raises(ConfigError, load_settings).value)
    assert "- 第 4 行 [notify] 下的 url：没有这个设置，是不是写在节外的 notify_url？" in text
    assert "- 第 7 行 [bot] 下的 admin_ids：没有这个设置，是不是写在节外的 admin_ids？" in text


def test_unknown_keys_and_invalid_values_are_reported_together(config):
    config('admin_id = ["a"]\nlog_format = "xml"\n')
    text = str(pytest.raises(ConfigError, load_settings).value)
    assert "admin_id：没有这个设置，是不是 admin_ids？" in text and "第 2 行 log_format：只能是" in text


def test_unknown_environment_variables_are_warned_about_not_refused(config, monkeypatch):
    config('admin_ids = ["a"]\n')
    monkeypatch.setenv("RELAYBOT_ADMIN_ID", "wxid_b")
    monkeypatch.setenv("RELAYBOT_CONFIG", str(config('admin_ids = ["a"]\n')))  # not a setting, but known
    monkeypatch.setenv("RELAYBOT_TEST_SOMETHING", "1")  # the test suite's own
    monkeypatch.setenv("RELAYBOT_BIN", "/opt/relaybot/.venv/bin/relaybot")  # deploy/relaybot-admin's
    assert load_settings().admin_ids == ["a"]
    assert config_warnings() == [
        "提醒：环境变量 RELAYBOT_ADMIN_ID 不是本机器人的设置，已忽略。是不是 RELAYBOT_ADMIN_IDS？"
    ]


def test_doctor_lists_unknown_keys_and_variables(config, monkeypatch):
    path = config('ofice_group = "x"\n')
    monkeypatch.setenv("RELAYBOT_LIASON_GROUPS", "y")
    findings = check_unknown_keys()
    assert [(f.level, f.text) for f in findings] == [
        (
            Level.ERROR,
            f"配置文件 {path} 第 1 行的 ofice_group 不是设置，不会生效（机器人因此不启动）：是不是 office_group？",
        ),
        (Level.WARN, "环境变量 RELAYBOT_LIASON_GROUPS 不是设置，已忽略：是不是 RELAYBOT_LIAISON_GROUPS？"),
    ]


def test_the_cli_refuses_unknown_keys_with_exit_2_and_warns_about_variables(tmp_path):
    db = f"sqlite:///{tmp_path / 'x.db'}"
    (tmp_path / "relaybot.toml").write_text('admin_id = ["wxid_a"]\n', encoding="utf-8")
    refused = relaybot("units", db_url=db, cwd=tmp_path)
    assert refused.returncode == 2
    assert "- 第 1 行 admin_id：没有这个设置，是不是 admin_ids？" in refused.stderr
    assert "Traceback" not in refused.stderr

    (tmp_path / "relaybot.toml").write_text('admin_ids = ["wxid_a"]\n', encoding="utf-8")
    warned = relaybot("units", db_url=db, cwd=tmp_path, RELAYBOT_OFICE_GROUP="x")
    assert warned.returncode == 0, warned.stderr
    assert warned.stderr.count("RELAYBOT_OFICE_GROUP") == 1 and "是不是 RELAYBOT_OFFICE_GROUP？" in warned.stderr


def test_the_cli_tells_a_toml_syntax_error_in_chinese(tmp_path):
    (tmp_path / "relaybot.toml").write_text("office_group = 反诈办工作群\n", encoding="utf-8")
    done = relaybot("status", db_url=f"sqlite:///{tmp_path / 'x.db'}", cwd=tmp_path)
    assert done.returncode == 2
    assert "第 1 行第 16 列：值的写法不对" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "x.db").exists()  # refused before the database was touched


# ---- relaybot.example.toml ---------------------------------------------------------------------------------------

EXAMPLE = ROOT / "relaybot.example.toml"
# Settings the example shows only as a comment, on purpose: trial-clock knobs that `run --clock/--speed` set.
COMMENTED_OUT = {"clock_offset_seconds", "clock_speed"}
# Keys whose example value is an illustration, not the default.
ILLUSTRATED = {"admin_ids", "liaison_groups", "office_group"}


def test_every_key_in_the_example_is_a_setting_and_every_setting_is_in_it(monkeypatch):
    text = EXAMPLE.read_text(encoding="utf-8")
    keys = set(tomllib.loads(text))
    assert keys - set(Settings.model_fields) == set(), "keys in relaybot.example.toml that are not settings"
    commented = set(re.findall(r"^# ([a-z_]+) = ", text, re.M))  # (not the indented examples in comments)
    assert commented == COMMENTED_OUT
    missing = set(Settings.model_fields) - keys - COMMENTED_OUT
    assert missing == set(), (
        f"settings missing from relaybot.example.toml (add them, with a line saying what): {missing}"
    )
    # It loads as it is, with no unknown key, and shows each default (but for the illustrated ids).
    for name in Settings.model_fields:
        monkeypatch.delenv("RELAYBOT_" + name.upper(), raising=False)
    monkeypatch.setenv("RELAYBOT_CONFIG", str(EXAMPLE))
    loaded, defaults = load_settings(), Settings.model_construct()
    for name in keys - ILLUSTRATED:
        assert getattr(loaded, name) == getattr(defaults, name), f"{name}: the example is not the default"


def test_the_example_tells_the_truth_about_postgresql():
    text = EXAMPLE.read_text(encoding="utf-8")
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert any(dep.startswith("psycopg") for dep in pyproject["project"]["dependencies"])
    assert "postgresql+psycopg://" in text and "psycopg 已随机器人安装" in text
    assert "untested" not in text and "not yet tested" not in text and "没有驱动" not in text
