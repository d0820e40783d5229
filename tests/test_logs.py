"""Structured logs: `log_format = "json"` writes one JSON object per stderr line; "text" keeps the old lines."""

from __future__ import annotations

import io
import json
import logging
import sys
import warnings
from contextlib import contextmanager
from datetime import datetime

import pytest

from bot.config import load_settings
from bot.logs import JsonFormatter, RedactingTextFormatter, make_formatter, setup_logging
from tests.bot_process import ROOT, relaybot


@contextmanager
def bare_root(monkeypatch):
    """A root logger without pytest's capture handlers (restored afterwards), and stderr as a StringIO.

    Used inside the test body: pytest adds its handlers after fixtures have run.
    """
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    for handler in saved_handlers:
        root.removeHandler(handler)
    stderr = io.StringIO()
    monkeypatch.setattr(sys, "stderr", stderr)
    try:
        yield stderr
    finally:
        logging.captureWarnings(False)  # setup_logging("json") turns it on
        for handler in root.handlers[:]:
            root.removeHandler(handler)
        for handler in saved_handlers:
            root.addHandler(handler)
        root.setLevel(saved_level)


def _record(msg="hello %s", args=("world",), levelno=logging.INFO, name="bot.test", exc_info=None, **extra):
    record = logging.LogRecord(name, levelno, __file__, 1, msg, args, exc_info)
    for key, value in extra.items():
        setattr(record, key, value)
    return record


def test_json_line_has_timestamp_level_logger_and_message():
    line = JsonFormatter().format(_record())
    assert "\n" not in line
    entry = json.loads(line)
    assert entry["level"] == "INFO" and entry["logger"] == "bot.test" and entry["msg"] == "hello world"
    ts = datetime.fromisoformat(entry["ts"])
    assert ts.tzinfo is not None and ts.utcoffset() is not None  # ISO-8601 with a timezone
    assert abs(ts.timestamp() - datetime.now().timestamp()) < 60
    assert set(entry) == {"ts", "level", "logger", "msg"}


def test_json_keeps_exception_text_and_extra_fields_on_one_line():
    try:
        raise RuntimeError("boom\nsecond line")
    except RuntimeError:
        record = _record(
            "failed: %d rows",
            (3,),
            logging.ERROR,
            exc_info=sys.exc_info(),
            push_no=12,
            units=["城关镇", "东城街道"],
            where={"room": "a@chatroom"},
            level="extra-level",
            odd=object(),
            nan=float("nan"),
        )
    line = JsonFormatter().format(record)
    assert line.count("\n") == 0
    entry = json.loads(line)
    assert entry["msg"] == "failed: 3 rows" and entry["level"] == "ERROR"
    assert entry["exc_info"].startswith("Traceback (most recent call last):")
    assert "RuntimeError: boom\nsecond line" in entry["exc_info"]
    assert (
        entry["push_no"] == 12 and entry["units"] == ["城关镇", "东城街道"] and entry["where"] == {"room": "a@chatroom"}
    )
    assert entry["extra_level"] == "extra-level"  # an extra cannot overwrite the record's own fields
    assert entry["odd"].startswith("<object object") and entry["nan"] == "nan"
    assert "城关镇" in line  # Chinese stays readable in journalctl


def test_json_survives_lone_surrogates():
    line = JsonFormatter().format(_record("bad bytes: %s", (b"\xff".decode("utf-8", "surrogateescape"),)))
    line.encode("utf-8")
    assert json.loads(line)["msg"] == "bad bytes: \udcff"


def test_secrets_are_scrubbed_in_both_formats():
    """The httpx filter in bot.adapters.webhooks still works under JSON, and the formatters scrub any other logger too."""
    import bot.adapters.webhooks  # noqa: F401  (installs the filter on the "httpx" logger)

    url = "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=abcd-1234-SECRET"
    httpx_logger = logging.getLogger("httpx")
    seen = io.StringIO()
    handler = logging.StreamHandler(seen)
    handler.setFormatter(JsonFormatter())
    httpx_logger.addHandler(handler)
    try:
        httpx_logger.warning('HTTP Request: POST %s "HTTP/1.1 200 OK"', url)
    finally:
        httpx_logger.removeHandler(handler)
    entry = json.loads(seen.getvalue())
    assert "abcd-1234-SECRET" not in seen.getvalue()
    assert (
        entry["msg"] == 'HTTP Request: POST https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=*** "HTTP/1.1 200 OK"'
    )

    secret = "SEC" + "a1" * 16
    try:
        raise ValueError(f"bad sign for {url}&sign={secret}")
    except ValueError:
        record = _record("notify %s", (url,), logging.ERROR, name="some.other", exc_info=sys.exc_info(), target=url)
    for formatter in (JsonFormatter(), RedactingTextFormatter()):
        record.exc_text = None
        out = formatter.format(record)
        assert "abcd-1234-SECRET" not in out and secret not in out, out
        assert "key=***" in out


def test_setup_logging_json_writes_json_to_stderr(monkeypatch):
    with bare_root(monkeypatch) as stderr:
        setup_logging(logging.INFO, "json")
        logging.getLogger("bot.runtime.app").info("ready as %s", "wxid_bot", extra={"rooms": 3})
        logging.getLogger("bot.runtime.app").debug("not shown")
    lines = stderr.getvalue().splitlines()
    assert len(lines) == 1
    entry = json.loads(lines[0])
    assert entry["msg"] == "ready as wxid_bot" and entry["rooms"] == 3 and entry["logger"] == "bot.runtime.app"


def test_json_logs_python_warnings_as_records(monkeypatch):
    with warnings.catch_warnings(), bare_root(monkeypatch) as stderr:
        warnings.simplefilter("always")
        setup_logging(logging.WARNING, "json")
        warnings.warn("the roster has 2 units without a liaison", UserWarning, stacklevel=1)
    (line,) = stderr.getvalue().splitlines()
    entry = json.loads(line)
    assert entry["logger"] == "py.warnings" and entry["level"] == "WARNING"
    assert "UserWarning: the roster has 2 units without a liaison" in entry["msg"]


def test_setup_logging_text_keeps_the_old_format_and_can_be_switched(monkeypatch):
    with bare_root(monkeypatch) as stderr:
        setup_logging(logging.WARNING, "text")
        logging.getLogger("bot.runtime.app").warning("sending paused until %s", "10:30")
        setup_logging(logging.WARNING, "json")  # replaces its own handler instead of adding a second one
        logging.getLogger("bot.runtime.app").warning("second")
        handlers = logging.getLogger().handlers[:]
    assert len(handlers) == 1
    first, second, *rest = stderr.getvalue().splitlines()
    assert rest == []
    date, clock, level, name, message = first.split(" ", 4)
    datetime.strptime(f"{date} {clock}", "%Y-%m-%d %H:%M:%S,%f")
    assert (level, name, message) == ("WARNING", "bot.runtime.app:", "sending paused until 10:30")
    assert json.loads(second)["msg"] == "second"


def test_setup_logging_leaves_a_root_configured_by_someone_else_alone(monkeypatch):
    with bare_root(monkeypatch):
        other = logging.StreamHandler(io.StringIO())
        logging.getLogger().addHandler(other)
        setup_logging(logging.DEBUG, "json")
        handlers, level = logging.getLogger().handlers[:], logging.getLogger().level
    assert handlers == [other] and level != logging.DEBUG


def test_unknown_format_is_refused():
    with pytest.raises(ValueError, match="log_format"):
        make_formatter("xml")


def test_log_format_setting(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RELAYBOT_LOG_FORMAT", raising=False)
    monkeypatch.delenv("RELAYBOT_CONFIG", raising=False)
    assert load_settings().log_format == "text"
    monkeypatch.setenv("RELAYBOT_LOG_FORMAT", "json")
    assert load_settings().log_format == "json"
    monkeypatch.setenv("RELAYBOT_LOG_FORMAT", "yaml")
    with pytest.raises(Exception, match="log_format"):
        load_settings()


def _json_lines(stderr: str) -> list[dict]:
    lines = stderr.splitlines()
    entries = []
    for line in lines:
        try:
            entries.append(json.loads(line))
        except json.JSONDecodeError:
            pytest.fail(f"a stderr line is not JSON: {line!r}\n--- stderr ---\n{stderr}")
    return entries


def test_a_real_relaybot_process_logs_only_json_lines(tmp_path):
    """`relaybot run --console` in a year chinese-calendar does not know logs a warning: every stderr line is JSON."""
    imported = relaybot(
        "roster",
        "import",
        str(ROOT / "content" / "examples" / "roster_example.csv"),
        db_url=f"sqlite:///{tmp_path / 'logs.db'}",
        cwd=tmp_path,
    )
    assert imported.returncode == 0, imported.stderr
    script = "/room 反诈办工作群（控制台）\n推送 刷单\n/wait 1\n/quit\n"
    result = relaybot(
        "run",
        "--console",
        "--clock",
        "2027-03-01 09:00",
        db_url=f"sqlite:///{tmp_path / 'logs.db'}",
        cwd=tmp_path,
        stdin=script,
        RELAYBOT_LOG_FORMAT="json",
        RELAYBOT_SCHEDULE_CHECK_SECONDS="0.2",
    )
    assert result.returncode == 0, result.stderr
    assert "【反诈预警 #1】" in result.stdout  # the bot really ran
    entries = _json_lines(result.stderr)
    assert entries, "expected at least the calendar warning on stderr"
    for entry in entries:
        assert {"ts", "level", "logger", "msg"} <= set(entry)
        assert datetime.fromisoformat(entry["ts"]).utcoffset() is not None
    warning = {
        "level": "WARNING",
        "logger": "bot.runtime.agenda_runner",
        "msg": "chinese-calendar does not know 2027: using Monday-Friday",
    }
    assert any(warning.items() <= entry.items() for entry in entries), entries


def test_a_real_relaybot_process_keeps_text_logs_by_default(tmp_path):
    script = "/wait 1\n/quit\n"
    result = relaybot(
        "run",
        "--console",
        "--clock",
        "2027-03-01 09:00",
        db_url=f"sqlite:///{tmp_path / 'logs.db'}",
        cwd=tmp_path,
        stdin=script,
        RELAYBOT_SCHEDULE_CHECK_SECONDS="0.2",
    )
    assert result.returncode == 0, result.stderr
    assert (
        " WARNING bot.runtime.agenda_runner: chinese-calendar does not know 2027: using Monday-Friday" in result.stderr
    )
    assert not any(line.startswith("{") for line in result.stderr.splitlines())
