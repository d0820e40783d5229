"""Settings: one object built once from a TOML file and RELAYBOT_* environment variables."""

from __future__ import annotations

import json
import os
import tomllib
from datetime import time
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, PydanticBaseSettingsSource, SettingsConfigDict

DEFAULT_CONFIG_FILE = "relaybot.toml"


class Settings(BaseSettings):
    """Everything configurable. Environment variables (RELAYBOT_<NAME>) win over the TOML file."""

    model_config = SettingsConfigDict(env_prefix="RELAYBOT_", extra="ignore")

    @property
    def tz(self) -> ZoneInfo:
        """The office's timezone: what "today" and every time shown to people are in."""
        return ZoneInfo(self.timezone)

    database_url: str = "sqlite:///data/relaybot.db"
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

    @field_validator("reminder_times", mode="before")
    @classmethod
    def _split_times(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [part for part in value.replace("，", ",").split(",") if part.strip()]
        return [_pad_time(v) for v in value] if isinstance(value, list) else value

    @field_validator(
        "deadline_time", "late_push_after", "summary_time", "weekly_report_time", "monthly_report_time", mode="before"
    )
    @classmethod
    def _one_time(cls, value: Any) -> Any:
        return _pad_time(value)

    @field_validator(
        "admin_ids", "liaison_groups", "feeds", "feed_allowed_hosts", "preview_allowed_hosts", mode="before"
    )
    @classmethod
    def _split_csv(cls, value: Any) -> Any:
        # Environment variables carry lists as "a,b,c"; JSON arrays also work.
        if isinstance(value, str):
            if value.strip().startswith("["):
                return json.loads(value)
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
        path = Path(os.environ.get("RELAYBOT_CONFIG", DEFAULT_CONFIG_FILE))
        self._data: dict[str, Any] = {}
        if path.is_file():
            with path.open("rb") as fh:
                self._data = tomllib.load(fh)

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return self._data.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return {k: v for k, v in self._data.items() if k in self.settings_cls.model_fields}


def _pad_time(value: Any) -> Any:
    # People write 9:30 and 9：30; pydantic wants 09:30.
    if isinstance(value, str):
        text = value.strip().replace("：", ":")
        if len(text) == 4 and text[1] == ":":
            text = "0" + text
        return text
    return value


# Error messages (issue 12 item 12): settings whose values are credentials, or may hold one (a URL's password,
# a webhook key=), are named in a validation error but their values are never shown. A setting added later whose
# name has one of SECRET_WORDS in it is treated as secret too.
SECRET_SETTINGS = frozenset({"database_url", "puppet_service_token", "notify_url", "notify_secret", "feeds"})
SECRET_WORDS = ("token", "secret", "password", "key", "url")
_EXPECTED = {
    "string": "string",
    "int": "integer",
    "float": "number",
    "bool": "boolean",
    "time": "time",
    "list": "list",
    "literal": "choice",
}


def is_secret_setting(name: str) -> bool:
    """Whether a setting's value must never be printed."""
    return name in SECRET_SETTINGS or any(word in name for word in SECRET_WORDS)


def settings_error_text(exc: Exception) -> str:
    """A configuration error in Chinese for people: which setting, what is expected; never a secret's value."""
    from pydantic import ValidationError

    from bot.content import load_texts

    texts = load_texts()
    lines = [texts.t("config_error.head")]
    if not isinstance(exc, ValidationError):  # e.g. TOML syntax: its message has a line and column, no value
        return "\n".join([*lines, f"- {type(exc).__name__}: {exc}"])
    for error in exc.errors(include_url=False):
        name = str(error["loc"][0]) if error["loc"] else "?"
        kind = error["type"]
        key = next((v for k, v in _EXPECTED.items() if kind.startswith(k)), "other")
        expected = texts.t(
            f"config_error.{key}", choices=str((error.get("ctx") or {}).get("expected", "")).replace(" or ", "、")
        )
        env = "RELAYBOT_" + name.upper()
        if is_secret_setting(name):
            lines.append(texts.t("config_error.line", name=name, env=env, expected=expected))
            lines[-1] += texts.t("config_error.secret_hint")
        else:
            value = str(error.get("input", ""))
            value = value if len(value) <= 60 else value[:60] + "…"
            lines.append(texts.t("config_error.line_with_value", name=name, env=env, expected=expected, value=value))
    return "\n".join(lines)


def load_settings(**overrides: Any) -> Settings:
    """Build the settings once; keyword overrides win over everything (used by tests and the CLI)."""
    return Settings(**overrides)
