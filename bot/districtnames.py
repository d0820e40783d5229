"""District names and the URL a district's bot connects with (a base module: settings use it, storage too).

A district's bot uses the city's database with PostgreSQL's `options`: `search_path` is the district's schema and
`role` its role (bot/storage/districts.py makes both). A district name is its schema's name.
"""

from __future__ import annotations

import hashlib
import re
from urllib.parse import unquote

from sqlalchemy.engine import make_url

CITY_SCHEMA = "city"
# As people write it (海湖区, 城东新区): letters (Chinese too) and digits.
_NAME_RE = re.compile(r"^[\w\u3400-\u9fff]{2,20}$")
_RESERVED = {CITY_SCHEMA, "public", "information_schema"}


class DistrictError(ValueError):
    """A district cannot be made or used; str() is the message for people (Chinese)."""


def check_name(name: str) -> str:
    """The district name as stored, or DistrictError saying what is wrong with it."""
    name = name.strip()
    if not _NAME_RE.match(name) or name.lower() in _RESERVED or name.lower().startswith("pg_"):
        raise DistrictError(f"区名“{name}”不能用：请用 2 到 20 个汉字、字母或数字，例如 海湖区。")
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


def district_url(url: str, name: str) -> str:
    """`url` (the city's database) as district `name`'s bot uses it: its schema first on the path, its role."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "postgresql":
        raise DistrictError("district（区）只能和 PostgreSQL 一起用：请把 database_url 设为 postgresql+psycopg://…")
    name = check_name(name)
    options = f"-c search_path={name} -c role={role_name(parsed.database or '', name)}"
    return parsed.update_query_dict({"options": options}).render_as_string(hide_password=False)


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
