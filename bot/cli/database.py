"""The one place the CLI makes its database engine: a wrong database_url becomes plain words, never a traceback.

Every way a URL can be wrong (unparseable, a port that is not a number, an unknown dialect or driver, a driver
that is not installed, a server or file that cannot be opened) raises DatabaseUrlError, whose message is Chinese,
names the setting and shows the URL with its password replaced by ***. Commands exit 2 on it (a configuration
error); `relaybot doctor` shows it as a failed check and goes on.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from sqlalchemy.engine import Engine, make_url

from bot.content import load_texts
from bot.districtnames import district_of
from bot.redaction import redact

# user:password@ in a URL that SQLAlchemy cannot parse (greedy up to the last @: a password may hold an @).
_USERINFO_RE = re.compile(r"(://[^:/@?#]*):(.*)@")
_PASSWORD_PARAM_RE = re.compile(r"(?i)(password|passwd|pwd)=[^&\s]*")


class DatabaseUrlError(Exception):
    """database_url cannot be used; str() is the message for people (Chinese, URL redacted)."""


def shown_url(url: str) -> str:
    """The URL as it may be printed: password (in user:password@ or password=) replaced by ***."""
    # By pattern rather than make_url(...).render_as_string: that splits at the first @ of a password holding one,
    # and cannot render a URL it cannot parse.
    text = _USERINFO_RE.sub(r"\1:***@", url)
    return redact(_PASSWORD_PARAM_RE.sub(r"\1=***", text))


def _password(url: str) -> str:
    found = _USERINFO_RE.search(url)
    return found.group(2) if found else ""


def _scrub(detail: str, url: str) -> str:
    """An error text with the URL's password taken out, whatever the driver put in it."""
    secret = _password(url)
    if secret:
        detail = detail.replace(secret, "***")
    return redact(_PASSWORD_PARAM_RE.sub(r"\1=***", detail))


def database_url_problem(url: str) -> str | None:
    """Why `url` cannot even make an engine (parse, dialect, driver), in Chinese; None when it can."""
    from sqlalchemy import create_engine

    try:  # SQLAlchemy's own engine: lazy, it loads dialect and driver but makes no folder and opens no file
        _engine(url, create_engine).dispose()
    except DatabaseUrlError as exc:
        return str(exc)
    return None


def _engine(url: str, make: Callable[[str], Engine]) -> Engine:
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    texts = load_texts()
    shown = shown_url(url)
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError) as exc:
        reason = texts.t("database_url.bad_port") if "int()" in str(exc) else texts.t("database_url.unparseable")
        raise DatabaseUrlError(texts.t("database_url.wrong", url=shown, reason=reason)) from None
    try:
        return make(url)
    except NoSuchModuleError:
        reason = texts.t("database_url.unknown_driver", driver=parsed.drivername)
    except ImportError as exc:
        reason = texts.t("database_url.driver_missing", driver=parsed.drivername, module=exc.name or "")
    except Exception as exc:  # anything else the dialect refuses while building the engine
        from bot.storage.db import describe_error

        reason = _scrub(describe_error(exc), url)
    raise DatabaseUrlError(texts.t("database_url.wrong", url=shown, reason=reason))


def missing_district(url: str, exc: BaseException) -> str:
    """Why a district's URL cannot connect when its district was never added (its role does not exist), in
    Chinese; "" for any other failure."""
    district = district_of(url)
    if district and "role" in str(exc) and "does not exist" in str(exc):
        return load_texts().t("city.no_such_district", district=district)
    return ""


def cli_engine(url: str) -> Engine:
    """An engine for `url` that has connected once; DatabaseUrlError (Chinese, redacted) when it cannot."""
    from bot.storage.db import describe_error, make_engine

    engine = _engine(url, make_engine)
    try:
        with engine.connect():
            pass
    except Exception as exc:
        engine.dispose()
        texts = load_texts()
        missing = missing_district(url, exc)
        if missing:
            raise DatabaseUrlError(missing) from None
        raise DatabaseUrlError(
            texts.t("database_url.cannot_connect", url=shown_url(url), error=_scrub(describe_error(exc), url))
        ) from None
    return engine
