"""Log output: the familiar text lines, or one JSON object per line for journald, Docker and log shippers.

setup_logging(level, fmt) puts one handler on the root logger that writes to stderr:
- "text": `2026-11-26 09:00:00,123 INFO bot.runtime.app: message` (what `relaybot` always printed);
- "json": `{"ts": "2026-11-26T09:00:00.123+08:00", "level": "INFO", "logger": "bot.runtime.app", "msg": "message"}`
  plus "exc_info" (the formatted traceback) when the record carries one, "stack_info" likewise, and every
  field passed with `extra=` (values that are not JSON types are written as their str()). Python warnings are
  logged too (logger "py.warnings"). Not covered: text that is not a log record, such as the messages the CLI
  prints before exiting on a configuration error, or the traceback of a crash.

Both formats scrub credentials with bot.redaction.redact on the final message text and traceback, on top of the
filter bot.redaction installs on the "httpx" logger, so a webhook key or token in a URL never reaches the log
whatever logger printed it. Like logging.basicConfig, setup_logging leaves a root logger that something else
has already given handlers (a test runner, an embedding program) alone; calling it again replaces only the
handler it installed itself.
"""

from __future__ import annotations

import json
import logging
import math
import sys
from datetime import datetime
from typing import Any

from bot.redaction import redact

FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

# Attributes every LogRecord has; anything else on a record came from `extra=`.
_RECORD_FIELDS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime", "taskName"}
_MARK = "_relaybot_handler"


class RedactingTextFormatter(logging.Formatter):
    """The classic one-line text format, with credentials scrubbed from the whole line."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line (newlines inside values are escaped by JSON)."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created).astimezone().isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": redact(record.getMessage()),
        }
        if record.exc_info and not record.exc_text:
            # Cached on the record like logging.Formatter does, so other handlers reuse it.
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exc_info"] = redact(record.exc_text)
        if record.stack_info:
            entry["stack_info"] = redact(self.formatStack(record.stack_info))
        for key, value in vars(record).items():
            if key in _RECORD_FIELDS or key.startswith("_"):
                continue
            # An extra named like one of ours must not overwrite it.
            entry[key if key not in entry else f"extra_{key}"] = _jsonable(value)
        line = json.dumps(entry, ensure_ascii=False)
        try:
            line.encode("utf-8")
        except UnicodeEncodeError:  # lone surrogates from undecodable input: escape everything instead
            line = json.dumps(entry)
        return line


def _jsonable(value: Any, depth: int = 0) -> Any:
    """A JSON-ready copy of an `extra=` value: strings scrubbed, containers walked, anything else as str()."""
    if value is None or isinstance(value, (bool, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)  # NaN and Infinity are not JSON
    if isinstance(value, str):
        return redact(value)
    if depth < 4 and isinstance(value, (list, tuple, set, frozenset)):
        return [_jsonable(v, depth + 1) for v in value]
    if depth < 4 and isinstance(value, dict):
        return {str(k): _jsonable(v, depth + 1) for k, v in value.items()}
    return redact(str(value))


def make_formatter(fmt: str) -> logging.Formatter:
    """The formatter for a `log_format` setting value."""
    if fmt == "text":
        return RedactingTextFormatter()
    if fmt == "json":
        return JsonFormatter()
    raise ValueError(f"log_format must be one of {', '.join(FORMATS)}, not {fmt!r}")


def setup_logging(level: int, fmt: str) -> None:
    """Log records at `level` and above to stderr in format `fmt` ("text" or "json")."""
    formatter = make_formatter(fmt)
    root = logging.getLogger()
    ours = [h for h in root.handlers if getattr(h, _MARK, False)]
    if len(ours) != len(root.handlers):
        return  # configured by someone else: leave it alone, as logging.basicConfig does
    for handler in ours:
        root.removeHandler(handler)
    handler = _StderrHandler()
    setattr(handler, _MARK, True)
    handler.setFormatter(formatter)
    root.addHandler(handler)
    root.setLevel(level)
    # Python warnings print raw, multi-line text to stderr; in JSON they become records of "py.warnings".
    logging.captureWarnings(fmt == "json")


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever sys.stderr is at the time of each record (it may be replaced after setup)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:
        pass
