"""Credentials never reach a log: `redact` for texts, and filters on other libraries' loggers.

Importing this module installs the filters: httpx's request log line (INFO, with the full URL) is scrubbed, and
hpack's DEBUG dump of HTTP/2 headers (which holds the Wechaty puppet token) is dropped. The Wechaty transport and
the webhook robots import it; `relaybot run` imports both before connecting.
"""

from __future__ import annotations

import logging
import re
from urllib.parse import urlsplit

# Values of credential-bearing parameters (key=, access_token=, sign=, secret=) and DingTalk-style secrets.
# Deliberately greedy: redacting too much in a log line is harmless, too little is a leak.
_PARAM_RE = re.compile(r"(?i)(key|token|sign|secret)=[^&\s\"'#<>,;)\]}]+")
_SEC_RE = re.compile(r"(?<![A-Za-z0-9])SEC[A-Za-z0-9]{16,}")


def redact(text: str) -> str:
    """Replace the values of key=, access_token=, sign=, secret-looking SEC... strings in a URL or message with ***."""
    return _SEC_RE.sub("***", _PARAM_RE.sub(r"\1=***", text))


_SCHEME_RE = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
_HOST_RE = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(:[0-9]{1,5})?$")


def url_origin(url: str) -> str:
    """Only the scheme and host (and port) of a URL, as "https://host:port"; never its user, password, path, query
    or fragment (where tokens and keys go). When the host is not certain (an unescaped @ after it, as a password
    with / or ? in it would make), only "scheme://". "" for a text that is no URL."""
    found = _SCHEME_RE.match(url.strip())
    if found is None:
        return ""
    scheme = found.group(1).lower()
    try:
        parts = urlsplit(url.strip())
    except ValueError:  # a broken [IPv6] host
        return scheme + "://"
    after = url.strip()[found.end() :]
    netloc = parts.netloc.rpartition("@")[2]
    if "@" in after[len(parts.netloc) :] or not _HOST_RE.match(netloc):
        return scheme + "://"
    return f"{scheme}://{netloc}"


class _RedactFilter(logging.Filter):
    """Scrubs credentials from another library's log records (httpx logs every request URL at INFO)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, ()
        return True


class _HeaderDumpFilter(_RedactFilter):
    """Drops a library's wire-level DEBUG records and scrubs the rest.

    hpack (HTTP/2 headers, under grpclib and so under the Wechaty puppet-service connection) logs every header it
    encodes, decodes, adds or evicts at DEBUG: the puppet token is the `:authority` and the `authorization` header,
    and a gateway that refuses a token echoes it in `grpc-message`. Those values are plain or Huffman-coded bytes,
    which no pattern can scrub reliably, and the lines are of no use to anyone running the bot.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno > logging.DEBUG and super().filter(record)


def _install_log_filter(name: str, kind: type[_RedactFilter] = _RedactFilter) -> None:
    logger = logging.getLogger(name)
    if not any(isinstance(f, kind) for f in logger.filters):
        logger.addFilter(kind())


_install_log_filter("httpx")
# Filters on a logger apply to the records it makes itself, not to its children's: name each module's logger.
for _name in ("hpack.hpack", "hpack.table"):
    _install_log_filter(_name, _HeaderDumpFilter)
