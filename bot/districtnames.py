"""District names and the URL a district's bot connects with (a base module: settings use it, storage too).

A district's bot uses the city's database with PostgreSQL's `options`: `search_path` is the district's schema and
`role` its role (bot/storage/districts.py makes both). A district name is its schema's name.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from urllib.parse import unquote

from sqlalchemy.engine import make_url

CITY_SCHEMA = "city"
# As people write it (海湖区, 城东新区): letters (Chinese too) and digits.
_NAME_RE = re.compile(r"^[a-z0-9\u3400-\u9fff\uf900-\ufaff]{2,20}$")
_RESERVED = {CITY_SCHEMA, "public", "information_schema", "全市"}


def _text(key: str, **values: object) -> str:
    from bot.content import load_texts

    return load_texts().t(key, **values)


def needs_postgres() -> str:
    """Why a district cannot be set on SQLite (Chinese)."""
    return _text("city.needs_postgres")


class DistrictError(ValueError):
    """A district cannot be made or used; str() is the message for people (Chinese)."""


def check_name(name: str) -> str:
    """The district name as stored, or DistrictError saying what is wrong with it."""
    # Full-width letters and digits as their plain forms; ASCII letters in lower case (PostgreSQL folds an unquoted
    # name so, and the bot's connection options name the schema unquoted).
    name = unicodedata.normalize("NFKC", name).strip().lower()
    if not _NAME_RE.match(name) or name.lower() in _RESERVED or name.lower().startswith("pg_"):
        raise DistrictError(_text("city.bad_name", name=name))
    return name


def is_postgres(url: str) -> bool:
    return make_url(url).get_backend_name() == "postgresql"


def role_name(database: str, name: str) -> str:
    """The district's role: the same for the same database and district, short enough for PostgreSQL (63 bytes)."""
    digest = hashlib.sha256(f"{database}\n{name}".encode()).hexdigest()[:10]
    return f"relaybot_{re.sub(r'[^a-z0-9]', '', database.lower())[:30]}_{digest}"


def quoted(identifier: str) -> str:
    """An SQL identifier in double quotes."""
    return '"' + identifier.replace('"', '""') + '"'


def district_url(url: str, name: str, *, as_district: bool = True) -> str:
    """`url` as district `name`'s bot uses it: its schema first on the path and (`as_district`) its role, whoever
    logs in (the district's own login, or the city's in tests and migrations; as_district=False: the city's
    login in the district's schema, which migrations need)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "postgresql":
        raise DistrictError(_text("city.needs_postgres"))
    name = check_name(name)
    options = f"-c search_path={name}"
    if as_district:
        options += f" -c role={role_name(parsed.database or '', name)}"
    return parsed.update_query_dict({"options": options}).render_as_string(hide_password=False)


def login_url(url: str, role: str, password: str) -> str:
    """`url` with another login (a district's role and its password), without any district options."""
    return make_url(city_url(url)).set(username=role, password=password).render_as_string(hide_password=False)


def city_url(url: str) -> str:
    """The database's own URL (the login user's path and role) from a district's URL."""
    parsed = make_url(url)
    query = {key: value for key, value in parsed.query.items() if key != "options"}
    return parsed.set(query=query).render_as_string(hide_password=False)


def district_of(url: str) -> str:
    """The district a URL is for ("" for none)."""
    options = make_url(url).query.get("options", "")
    if isinstance(options, tuple):
        options = options[0] if options else ""
    found = re.search(r"search_path=(\S+)", unquote(options))
    return found.group(1) if found else ""
