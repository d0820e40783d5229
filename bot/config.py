"""Settings: one object built once from a TOML file and RELAYBOT_* environment variables."""

from __future__ import annotations

import difflib
import json
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, time
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator, model_validator
from pydantic_core import PydanticCustomError
from pydantic_settings import BaseSettings, NoDecode, PydanticBaseSettingsSource, SettingsConfigDict

from bot.districtnames import DistrictError, check_name, district_of, district_url, is_postgres, needs_postgres

DEFAULT_CONFIG_FILE = "relaybot.toml"


class Settings(BaseSettings):
    """Everything configurable. Environment variables (RELAYBOT_<NAME>) win over the TOML file."""

    model_config = SettingsConfigDict(env_prefix="RELAYBOT_", extra="ignore")

    @property
    def tz(self) -> ZoneInfo:
        """The office's timezone: what "today" and every time shown to people are in."""
        return ZoneInfo(self.timezone)

    database_url: str = "sqlite:///data/relaybot.db"
    # One district of a city whose districts share one PostgreSQL database (`relaybot district add 海湖区`): the
    # bot then works in that district's schema, under its role (bot/districtnames.py). "" for a district alone.
    district: str = ""
    # The city's anti-fraud centre: who may push to every district and read every district (`推送 刷单 全市`).
    city_admin_ids: Annotated[list[str], NoDecode] = Field(default_factory=list)
    city_office_group: str = ""  # the city's office group, served by this district's bot (room id or exact name)
    # The city's own login (the one that made the districts), for the one district bot that serves the city's
    # office group or console page: a district's own login cannot write to the other districts.
    city_database_url: str = ""
    timezone: str = "Asia/Shanghai"
    # Office admins by WeChat contact id: the only people whose commands are obeyed.
    admin_ids: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # Rooms by room id or exact room name.
    liaison_groups: Annotated[list[str], NoDecode] = Field(default_factory=list)
    office_group: str = ""
    # Default deadline of a push: this time on the day of the push; pushed at or after
    # `late_push_after`, the same time on the next working day.
    deadline_time: time = time(18, 0)
    late_push_after: time = time(16, 0)
    # Working days follow the State Council's holidays and make-up days (chinese-calendar); False: Monday-Friday.
    official_calendar: bool = True
    # Daily reminders on working days, and the reports.
    reminder_times: Annotated[list[time], NoDecode] = Field(default_factory=lambda: [time(10, 0), time(16, 0)])
    reminder_max_mentions: int = 20  # a longer list is split into several messages
    summary_time: time = time(18, 30)  # daily summary to the office group, working days
    weekly_report_time: time = time(9, 0)  # Mondays, for the week before
    monthly_report_time: time = time(9, 0)  # the 1st, for the month before
    # A reminder or report that fell due while the bot was down is still sent if it is at most this late.
    schedule_grace_minutes: int = 60
    schedule_check_seconds: float = 20.0
    # Escalation ladder: consecutive misses for 提醒 and 约谈; misses in consecutive months for 书面说明.
    escalation_remind_after: int = 2
    escalation_interview_after: int = 3
    escalation_written_months: int = 2
    # The plan's checkpoints (月-日): the 警情通报 of the period containing one lists the towns that missed the decline
    # target (环比 and 同比; at the year's last day, the whole year 同比) for 书面说明.
    incident_checkpoints: Annotated[list[str], NoDecode] = Field(default_factory=lambda: ["06-30", "12-31"])
    # Trying the schedule: the bot's clock = real time + offset, running `clock_speed` times as fast.
    clock_offset_seconds: float = 0.0
    clock_speed: float = 1.0
    # Seconds without a new confirmation in a group before the bot acknowledges them in one message.
    ack_quiet_seconds: int = 30
    # How often the bot looks for groups that have gone quiet.
    ack_check_seconds: float = 5.0
    # At most one acknowledgement message per group this often: when confirmations trickle in for an hour, the
    # group reads a few summaries, not one per reply (0: after every quiet spell).
    ack_min_interval_seconds: int = 300
    # Content feeds (RSS, Atom, JSON Feed) whose new items are offered to the office as candidates.
    feeds: Annotated[list[str], NoDecode] = Field(default_factory=list)
    feed_poll_minutes: int = 30
    # 精准滴灌: a library case type's default target, "案件类型=对象" (e.g. "虚假征信=银行"); `推送 虚假征信` then
    # goes to the 银行 units only unless the office writes 给 … (给 全部: every unit).
    default_targets: Annotated[list[str], NoDecode] = Field(default_factory=list)
    feed_auto_push: bool = False  # push new items to the liaison groups without an admin's command
    feed_timeout_seconds: float = 10.0
    preview_timeout_seconds: float = 5.0  # fetching a pushed link's title and description
    # Feeds and link previews connect to public addresses only (no loopback, private, link-local or metadata
    # address, also not after a redirect). An intranet feed server is listed here: host names, addresses or
    # networks such as 10.1.0.0/16. Link previews come from chat: keep theirs empty (tests serve from 127.0.0.1).
    feed_allowed_hosts: Annotated[list[str], NoDecode] = Field(default_factory=list)
    preview_allowed_hosts: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # Screenshot evidence: where images are kept, for how long (the verdicts stay), and the OCR time limit.
    evidence_dir: str = "data/evidence"
    evidence_retention_days: int = 90
    evidence_check_seconds: float = 60.0
    # A screenshot within this many minutes of a unit's text confirmation is that confirmation's evidence.
    evidence_window_minutes: int = 10
    # Whether a screenshot is expected with every confirmation. Either way a text confirmation counts;
    # when required, 进度 lists the units that have not sent one (缺截图).
    evidence_required: bool = False
    # A second channel for health problems and the daily summary: a WeCom or DingTalk group robot.
    notify_kind: str = "wecom"  # "wecom" (企业微信) or "dingtalk" (钉钉)
    notify_url: str = ""
    notify_secret: str = ""  # DingTalk's signing secret (SEC...), if the robot uses 加签
    # Health (bot/runtime/health.py). Self-check: every `self_check_minutes` (0 = off) the bot really sends a short
    # message to `self_check_target` (a contact id such as "filehelper", or a room id or exact room name) and
    # expects the gateway to echo it back within `self_check_echo_seconds` (0 = do not expect an echo).
    self_check_target: str = ""
    self_check_minutes: float = 60.0
    self_check_echo_seconds: float = 60.0
    # The second channel hears about a dropped gateway connection once it has been down this long (0 = at once).
    connection_alert_minutes: float = 2.0
    # How often the health checks run (self-check due? echo late? connection down too long?).
    health_check_seconds: float = 10.0
    # Outage notice (bot/runtime/outage.py): after this long without a connection (the bot stopped or crashed, the
    # gateway away), each liaison group is told once which window to repeat its 已转发 for (0 = never).
    outage_notice_minutes: float = 2.0
    # Puppet service (the standard Wechaty variable names are also read, see endpoint()/token()).
    puppet_service_endpoint: str = ""
    puppet_service_token: str = ""
    cache_dir: str = "data/wechaty-cache"
    # Log lines on stderr: "text" (time level logger: message) or "json" (one object per line, see bot/logs.py).
    log_format: Literal["text", "json"] = "text"
    # Sending pace: WeChat restricts accounts that send fast (see README). Seconds between two sends,
    # plus a random 0..jitter; a daily budget; a pause after the transport reports a limit or a failure.
    send_spacing_seconds: float = 3.0
    send_jitter_seconds: float = 2.0
    daily_send_budget: int = 400
    send_backoff_minutes: int = 30
    # Answers to anyone but an admin that are help, a refusal or "not understood" (issue 12 item 2): at most one
    # per person per `stranger_reply_interval_minutes` (later ones are dropped), sent after pushes and admin
    # replies, and counted against their own daily cap, never against daily_send_budget.
    stranger_reply_interval_minutes: float = 60.0
    stranger_reply_budget: int = 40
    # Storage faults (bot/runtime/storage_watch.py, issue 12 items 8/9): messages that could not be recorded (disk
    # full, database file replaced) are kept in memory, at most `storage_keep_max`, and retried this often;
    # doctor and health warn when the database's or the evidence folder's filesystem has less free space than
    # `storage_min_free_mb` MB or `storage_min_free_percent` % (health tells the office at most once a day).
    storage_retry_seconds: float = 30.0
    storage_keep_max: int = 10_000
    storage_min_free_mb: float = 500.0
    storage_min_free_percent: float = 5.0
    # The office's web console (`relaybot web`, bot/web/): where it listens, who may only look (leaders: their
    # WeChat contact ids; admin_ids may act), and how long a sign-in lasts.
    web_host: str = "127.0.0.1"
    web_port: int = 8080
    viewer_ids: Annotated[list[str], NoDecode] = Field(default_factory=list)
    web_session_hours: float = 12.0

    @field_validator("reminder_times", mode="before")
    @classmethod
    def _split_times(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [part for part in value.replace("，", ",").split(",") if part.strip()]
        return [_pad_time(v) for v in value] if isinstance(value, list) else value

    @field_validator("incident_checkpoints", mode="before")
    @classmethod
    def _checkpoint_days(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [part for part in value.replace("，", ",").split(",") if part.strip()]
        if not isinstance(value, list):
            return value
        out = []
        for part in value:
            m = re.fullmatch(r"\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?\s*", str(part))
            if not m or not _valid_month_day(int(m[1]), int(m[2])):
                raise PydanticCustomError("month_day", "'{value}' is not a month-day like 06-30", {"value": str(part)})
            out.append(f"{int(m[1]):02d}-{int(m[2]):02d}")
        return out

    @field_validator("default_targets", mode="before")
    @classmethod
    def _case_targets(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [part for part in value.split(",") if part.strip()]
        if not isinstance(value, list):
            return value
        out = []
        for part in value:
            name, sep, spec = str(part).replace("＝", "=").partition("=")
            if not sep or not name.strip() or not spec.strip():
                raise PydanticCustomError("case_target", "'{value}' is not like 虚假征信=银行", {"value": str(part)})
            out.append(f"{name.strip()}={spec.strip()}")
        return out

    @property
    def checkpoint_days(self) -> tuple[tuple[int, int], ...]:
        """incident_checkpoints as (month, day) pairs."""
        return tuple((int(d[:2]), int(d[3:])) for d in self.incident_checkpoints)

    @field_validator(
        "deadline_time", "late_push_after", "summary_time", "weekly_report_time", "monthly_report_time", mode="before"
    )
    @classmethod
    def _one_time(cls, value: Any) -> Any:
        return _pad_time(value)

    @field_validator("district")
    @classmethod
    def _district_name(cls, value: str, info: Any) -> str:
        # Checked here (the error names `district` and shows only its value) rather than in _district_database,
        # whose errors would show every setting's value, the database password too.
        if not value.strip():
            return ""
        try:
            name = check_name(value)
            if not is_postgres(str(info.data.get("database_url", ""))):
                raise DistrictError(needs_postgres())
        except DistrictError as exc:
            raise ValueError(str(exc)) from None
        return name

    @model_validator(mode="after")
    def _district_database(self) -> Settings:
        # The district's schema and role go into the URL itself, so every engine, lock and backup made from
        # database_url is the district's.
        if self.district and district_of(self.database_url) != self.district:
            self.database_url = district_url(self.database_url, self.district)
        return self

    @field_validator(
        "admin_ids",
        "city_admin_ids",
        "viewer_ids",
        "liaison_groups",
        "feeds",
        "default_targets",
        "feed_allowed_hosts",
        "preview_allowed_hosts",
        mode="before",
    )
    @classmethod
    def _split_csv(cls, value: Any) -> Any:
        # Environment variables carry lists as "a,b,c"; JSON arrays also work.
        if isinstance(value, str):
            if value.strip().startswith("["):
                try:
                    return json.loads(value)
                except ValueError:  # told in Chinese by settings_error_text, by this type
                    raise PydanticCustomError("list_json", "not a JSON list") from None
            return [part.strip() for part in value.replace("，", ",").split(",") if part.strip()]
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _TomlSource(settings_cls))

    def endpoint(self) -> str:
        """The puppet service endpoint, from our setting or the standard Wechaty variable."""
        return self.puppet_service_endpoint or os.environ.get("WECHATY_PUPPET_SERVICE_ENDPOINT", "")

    def token(self) -> str:
        """The puppet service token, from our setting or the standard Wechaty variable."""
        return self.puppet_service_token or os.environ.get("WECHATY_PUPPET_SERVICE_TOKEN", "")


class _TomlSource(PydanticBaseSettingsSource):
    """Reads the file named by RELAYBOT_CONFIG (default ./relaybot.toml) if it exists."""

    def __init__(self, settings_cls: type[BaseSettings]) -> None:
        super().__init__(settings_cls)
        self._data: dict[str, Any] = read_config_file(config_path())

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return self._data.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return {k: v for k, v in self._data.items() if k in self.settings_cls.model_fields}


def _valid_month_day(month: int, day: int) -> bool:
    try:
        date(2024, month, day)  # a leap year: 02-29 is a day the checkpoint can be on
    except ValueError:
        return False
    return True


def _pad_time(value: Any) -> Any:
    # People write 9:30 and 9：30; pydantic wants 09:30. A bare number (deadline_time = 18) would be read as
    # seconds after midnight (00:00:18): refused as a time instead.
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)  # not a time pydantic parses: reported as one, with the number as written
    if isinstance(value, str):
        text = value.strip().replace("：", ":")
        if len(text) == 4 and text[1] == ":":
            text = "0" + text
        return text
    return value


# Error messages (issue 12 item 12): settings whose values are credentials, or may hold one (a URL's password,
# a webhook key=), are named in a validation error but their values are never shown. A setting added later whose
# name has one of SECRET_WORDS in it is treated as secret too.
SECRET_SETTINGS = frozenset(
    {"database_url", "city_database_url", "puppet_service_token", "notify_url", "notify_secret", "feeds"}
)
SECRET_WORDS = ("token", "secret", "password", "key", "url")


def is_secret_setting(name: str) -> bool:
    """Whether a setting's value must never be printed."""
    return name in SECRET_SETTINGS or any(word in name for word in SECRET_WORDS)


# ---- configuration problems in Chinese, with the file and key (issue 13) ----------------------------------------

ENV_PREFIX = "RELAYBOT_"
# RELAYBOT_* variables that are not settings: the config file's name, bot/storage/db.py's diagnostic knob,
# deploy/relaybot-admin's (RELAYBOT_UNIT, RELAYBOT_BIN) and the test suite's (RELAYBOT_TEST_*). Any other RELAYBOT_*
# variable that is not a setting is warned about.
OTHER_VARIABLES = frozenset({"RELAYBOT_CONFIG", "RELAYBOT_DIAG_FULL_FILE", "RELAYBOT_UNIT", "RELAYBOT_BIN"})
OTHER_VARIABLE_PREFIXES = ("RELAYBOT_TEST_",)


class ConfigError(ValueError):
    """The configuration cannot be used; str() is the explanation for people, in Chinese."""


@dataclass(frozen=True)
class ConfigFile:
    """relaybot.toml as read: its path, its keys and the line each key is on."""

    path: Path
    data: dict[str, Any]
    lines: dict[tuple[str, ...], int]

    def line_of(self, *key: str) -> int | None:
        """The line `key` (a top-level key, or a section and a key in it) is written on."""
        return self.lines.get(key)


@dataclass(frozen=True)
class UnknownKey:
    """A key in relaybot.toml that is not a setting, and the setting it was probably meant to be."""

    key: str  # as written; "section.key" for a key inside a [section]
    line: int | None
    suggestion: str | None
    section: str | None = None
    name: str = ""  # the key without its section


def config_path() -> Path:
    """The configuration file: $RELAYBOT_CONFIG, or relaybot.toml in the current folder."""
    return Path(os.environ.get("RELAYBOT_CONFIG", DEFAULT_CONFIG_FILE))


def read_config_file(path: Path) -> dict[str, Any]:
    """The keys of the TOML file at `path` ({} when there is no such file); ConfigError in Chinese if unreadable."""
    found = load_config_file(path)
    return found.data if found is not None else {}


def load_config_file(path: Path) -> ConfigFile | None:
    """The TOML file at `path` with its key lines, or None when there is no such file."""
    from bot.content import load_texts

    if not path.is_file():
        return None
    texts = load_texts()
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(texts.t("config_zh.unreadable", path=path, error=exc.strerror or exc)) from None
    try:
        text = raw.decode("utf-8-sig")  # Notepad's "UTF-8" has a BOM
    except UnicodeDecodeError:
        raise ConfigError(texts.t("config_zh.not_utf8", path=path)) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(_toml_error_text(path, exc)) from None
    return ConfigFile(path, data, _key_lines(text))


_KEY_LINE = re.compile(r"""^\s*("[^"]*"|'[^']*'|[A-Za-z0-9_.\- ]+?)\s*=""")
_TABLE_LINE = re.compile(r"""^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(#.*)?$""")


def _key_parts(written: str) -> tuple[str, ...]:
    return tuple(part.strip().strip("\"'") for part in written.split("."))


def _key_lines(text: str) -> dict[tuple[str, ...], int]:
    # Only where keys start: enough to point a person at the right line.
    lines: dict[tuple[str, ...], int] = {}
    section: tuple[str, ...] = ()
    for number, line in enumerate(text.splitlines(), start=1):
        table = _TABLE_LINE.match(line)
        if table:
            section = _key_parts(table.group(1))
            lines.setdefault(section, number)
            continue
        key = _KEY_LINE.match(line)
        if key:
            lines.setdefault((*section, *_key_parts(key.group(1))), number)
    return lines


_TOML_PROBLEMS = (
    ("Invalid value", "syntax_invalid_value"),
    ("Expected '=' after a key", "syntax_expected_equals"),
    ("Cannot overwrite a value", "syntax_overwrite"),
    ("Cannot declare", "syntax_overwrite"),
    ("Unclosed array", "syntax_unclosed_array"),
    ("Unclosed inline table", "syntax_unclosed_table"),
    ("Unterminated string", "syntax_unterminated_string"),
    ("Illegal character '\\n'", "syntax_unterminated_string"),  # a line break inside a "string"
    ("Illegal character", "syntax_illegal_character"),
    ("Unescaped '\\'", "syntax_backslash"),
    ("Invalid date or datetime", "syntax_invalid_value"),
    ("Expected ']", "syntax_table_header"),
    ("Invalid initial character for a key part", "syntax_key"),
    ("Invalid statement", "syntax_statement"),
    ("Expected newline or end of document", "syntax_statement"),
)
_TOML_POSITION = re.compile(r"\(at line (\d+), column (\d+)\)")


def _toml_error_text(path: Path, exc: tomllib.TOMLDecodeError) -> str:
    """tomllib's English ("Invalid value (at line 3, column 12)") in Chinese, with the line and column."""
    from bot.content import load_texts

    texts = load_texts()
    message = str(exc)
    key = next((key for start, key in _TOML_PROBLEMS if message.startswith(start)), "syntax_other")
    problem = texts.t(f"config_zh.{key}")
    position = _TOML_POSITION.search(message)
    at = (
        texts.t("config_zh.syntax_at", line=position.group(1), column=position.group(2), problem=problem)
        if position
        else texts.t("config_zh.syntax_at_end", problem=problem)
    )
    return "\n".join([texts.t("config_zh.syntax_head", path=path), at, texts.t("config_zh.syntax_hint")])


def nearest_setting(name: str) -> str | None:
    """The setting whose name is closest to `name` (a typo, another case, - for _), if one is close."""
    wanted = name.strip().lower().replace("-", "_").replace(" ", "_")
    if wanted in Settings.model_fields:
        return wanted
    close = difflib.get_close_matches(wanted, list(Settings.model_fields), n=1, cutoff=0.6)
    return close[0] if close else None


def unknown_file_keys(found: ConfigFile | None) -> list[UnknownKey]:
    """Keys in relaybot.toml that are not settings: each with the setting it was probably meant to be."""
    if found is None:
        return []
    out: list[UnknownKey] = []
    for key, value in found.data.items():
        if key in Settings.model_fields:
            continue
        if isinstance(value, dict) and value:
            # A [section]: no setting is one, and every key after its header belongs to it, so a setting written
            # below a section by mistake is silently not a setting.
            for inner in value:
                joined = f"{key}_{inner}"
                suggestion = joined if joined in Settings.model_fields else nearest_setting(inner)
                out.append(
                    UnknownKey(f"{key}.{inner}", found.line_of(key, inner), suggestion, section=key, name=str(inner))
                )
        else:
            out.append(UnknownKey(key, found.line_of(key), nearest_setting(key), name=key))
    return out


def unknown_env_vars(environ: Mapping[str, str] | None = None) -> list[tuple[str, str | None]]:
    """RELAYBOT_* environment variables that are not settings, each with the closest setting's variable."""
    environ = os.environ if environ is None else environ
    names = {ENV_PREFIX + name.upper() for name in Settings.model_fields}
    out: list[tuple[str, str | None]] = []
    for var in sorted(environ):
        upper = var.upper()
        if not upper.startswith(ENV_PREFIX) or upper in names or upper in OTHER_VARIABLES:
            continue
        if upper.startswith(OTHER_VARIABLE_PREFIXES):
            continue
        close = difflib.get_close_matches(upper, sorted(names), n=1, cutoff=0.6)
        out.append((var, close[0] if close else None))
    return out


def unknown_keys_text(found: ConfigFile, unknown: list[UnknownKey]) -> str:
    """The refusal for keys in relaybot.toml that are not settings, one line each with a suggestion."""
    from bot.content import load_texts

    texts = load_texts()
    lines = [texts.t("config_zh.unknown_head", path=found.path)]
    for item in unknown:
        line = item.line if item.line is not None else "?"
        if item.section is not None and item.suggestion:
            lines.append(
                texts.t(
                    "config_zh.unknown_section_suggest",
                    line=line,
                    section=item.section,
                    setting=item.name,
                    suggestion=item.suggestion,
                )
            )
        elif item.suggestion:
            lines.append(
                texts.t("config_zh.unknown_key_suggest", line=line, setting=item.key, suggestion=item.suggestion)
            )
        else:
            lines.append(texts.t("config_zh.unknown_key", line=line, setting=item.key))
    lines.append(texts.t("config_zh.unknown_tail"))
    return "\n".join(lines)


def config_warnings(environ: Mapping[str, str] | None = None) -> list[str]:
    """What is worth a warning but no refusal: RELAYBOT_* variables that are not settings (other tools and
    wrappers may set variables of their own; a misspelt one still shows, with the setting it was meant to be)."""
    from bot.content import load_texts

    texts = load_texts()
    return [
        texts.t("config_zh.unknown_env_suggest", env=var, suggestion=suggestion)
        if suggestion
        else texts.t("config_zh.unknown_env", env=var)
        for var, suggestion in unknown_env_vars(environ)
    ]


def problem_text(error: Mapping[str, Any]) -> str:
    """What is wrong, in Chinese, for one pydantic error (by its type; never pydantic's English)."""
    from bot.content import load_texts

    texts = load_texts()
    kind = str(error.get("type", ""))
    ctx = error.get("ctx") or {}
    limits = {
        "greater_than": ("greater_than", "gt"),
        "greater_than_equal": ("greater_equal", "ge"),
        "less_than": ("less_than", "lt"),
        "less_than_equal": ("less_equal", "le"),
        "too_short": ("too_short", "min_length"),
        "string_too_short": ("too_short", "min_length"),
        "too_long": ("too_long", "max_length"),
        "string_too_long": ("too_long", "max_length"),
    }
    if kind in limits:
        key, field = limits[kind]
        return texts.t(f"config_zh.{key}", limit=ctx.get(field, "?"))
    if kind == "month_day":
        return texts.t("yoy_config.month_day")
    if kind == "case_target":
        return texts.t("targets_config.case_target")
    if kind in ("literal_error", "enum"):
        choices = str(ctx.get("expected", "")).replace(" or ", "、").replace(", ", "、")
        return texts.t("config_zh.choice", choices=choices)
    prefixes = (
        ("missing", "missing"),
        ("int_", "integer"),
        ("float_", "number"),
        ("decimal_", "number"),
        ("finite_number", "number"),
        ("bool_", "boolean"),
        ("string_", "string"),
        ("str_", "string"),
        ("time_", "time"),
        ("datetime_", "date"),
        ("date_", "date"),
        ("list_", "list"),
        ("tuple_", "list"),
        ("set_", "list"),
        ("iterable_", "list"),
        ("dict_", "dict"),
        ("model_", "dict"),
        ("timezone", "timezone"),
    )
    key = next((key for start, key in prefixes if kind.startswith(start)), "other")
    return texts.t(f"config_zh.{key}")


def shown_value(value: Any) -> str:
    """A value as a person wrote it (TOML-like), cut to 60 characters."""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, (list, tuple, dict)):
        text = json.dumps(value, ensure_ascii=False, default=str)
    else:
        text = str(value)
    return text if len(text) <= 60 else text[:60] + "…"


def _env_value_of(name: str) -> str | None:
    wanted = ENV_PREFIX + name.upper()
    return next((var for var in os.environ if var.upper() == wanted), None)


def _where(name: str, item: Any, found: ConfigFile | None) -> str:
    """Where the value of setting `name` came from: its environment variable (which wins), or the file's line."""
    from bot.content import load_texts

    texts = load_texts()
    suffix = texts.t("config_zh.item", n=item + 1) if isinstance(item, int) else ""
    var = _env_value_of(name)
    if var is not None:
        return texts.t("config_zh.in_env", env=var) + suffix
    if found is not None and name in found.data:
        line = found.line_of(name)
        if line is None:
            return texts.t("config_zh.in_file_no_line", path=found.path, setting=name) + suffix
        return texts.t("config_zh.in_file", path=found.path, line=line, setting=name) + suffix
    return texts.t("config_zh.in_program", setting=name) + suffix


def _validation_lines(exc: Any) -> list[str]:
    from bot.content import load_texts

    texts = load_texts()
    try:
        found = load_config_file(config_path())
    except ConfigError:
        found = None
    lines = []
    for error in exc.errors(include_url=False):
        loc: tuple[Any, ...] = tuple(error.get("loc") or ("?",))
        name = str(loc[0])
        where = _where(name, loc[1] if len(loc) > 1 else None, found)
        problem = problem_text(error)
        if is_secret_setting(name):
            lines.append(texts.t("config_zh.line", where=where, problem=problem) + texts.t("config_zh.secret_hint"))
        elif error.get("type") == "missing" or "input" not in error:
            lines.append(texts.t("config_zh.line", where=where, problem=problem))
        else:
            value = shown_value(error["input"])
            lines.append(texts.t("config_zh.line_with_value", where=where, problem=problem, value=value))
    return lines


_SETTINGS_ERROR_FIELD = re.compile(r'field "(\w+)"')


def settings_error_text(exc: Exception) -> str:
    """A configuration error in Chinese for people: which file or variable, which key, what is wrong and the
    value given; never a secret's value, never pydantic's English or its links."""
    from pydantic import ValidationError

    from bot.content import load_texts

    texts = load_texts()
    if isinstance(exc, ConfigError):
        return str(exc)
    if isinstance(exc, ValidationError):
        return "\n".join([texts.t("config_zh.head"), *_validation_lines(exc)])
    field = _SETTINGS_ERROR_FIELD.search(str(exc))  # pydantic-settings' SettingsError: a variable it cannot parse
    if field is not None:
        env = _env_value_of(field.group(1)) or ENV_PREFIX + field.group(1).upper()
        problem = texts.t("config_zh.other")
        return "\n".join([texts.t("config_zh.head"), texts.t("config_zh.env_parse", env=env, problem=problem)])
    return "\n".join([texts.t("config_zh.head"), "- " + texts.t("config_zh.other")])


def load_settings(**overrides: Any) -> Settings:
    """Build the settings once; keyword overrides win over everything (used by tests and the CLI).

    Refused with a ConfigError in Chinese: a key in relaybot.toml that is not a setting (named with the setting it
    was probably meant to be: a misspelt admin_ids would otherwise leave the bot without admins, silently), and an
    unknown time zone (else a traceback in every command)."""
    return _load(overrides, strict=True)


def load_settings_allowing_unknown(**overrides: Any) -> Settings:
    """As load_settings, but what `relaybot doctor` reports among its findings is left to it: keys that are not
    settings, an unknown time zone."""
    return _load(overrides, strict=False)


def _load(overrides: dict[str, Any], *, strict: bool) -> Settings:
    from pydantic import ValidationError

    from bot.content import load_texts

    invalid: ValidationError | None = None
    settings: Settings | None = None
    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        invalid = exc
    if strict:
        found = load_config_file(config_path())
        unknown = unknown_file_keys(found)
        parts = [unknown_keys_text(found, unknown)] if found is not None and unknown else []
        if invalid is not None:
            parts.append(settings_error_text(invalid))
        elif settings is not None and not _known_timezone(settings.timezone):
            texts = load_texts()
            where = _where("timezone", None, found)
            problem = texts.t("config_zh.timezone")
            line = texts.t("config_zh.line_with_value", where=where, problem=problem, value=settings.timezone)
            parts.append("\n".join([texts.t("config_zh.head"), line]))
        if parts and (invalid is None or len(parts) > 1):  # everything at once: one round of fixing
            raise ConfigError("\n".join(parts))
    if invalid is not None:
        raise invalid
    assert settings is not None
    return settings


def _known_timezone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True
