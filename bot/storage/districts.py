"""A city of districts on one PostgreSQL database: a schema and a login role per district, and the city's own schema.

The city's login (the one that runs `relaybot district add`) owns every schema and every table, and runs the
migrations. A district's role may log in, use its own schema and read and write the rows of its tables, nothing
else: it cannot create a table, a trigger or a function anywhere, and it has no right on another district's schema
or on the city's. So a district's server holds only its own password, and nothing a district could put in the
database ever runs when the city's login reads or writes that district (`use_district`).

A district's bot connects as its role with PostgreSQL's `options` (added to database_url by the `district`
setting, bot/districtnames.py): `search_path` is its schema, so every table and query of the bot is the district's
without a line of the bot changing.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Column, DateTime, Integer, MetaData, String, Table, insert, select, text
from sqlalchemy.engine import Connection

from bot.districtnames import CITY_SCHEMA, DistrictError, check_name, quoted, role_name

city_metadata = MetaData(schema=CITY_SCHEMA)

district_table = Table(
    "district",
    city_metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(40), nullable=False, unique=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

# A city push: its id is the city's number (全市第N号); the district pushes it became carry that number.
city_push_table = Table(
    "push",
    city_metadata,
    Column("id", Integer, primary_key=True),
    Column("case_type", String(50), nullable=False, server_default=""),
    Column("title", String(300), nullable=False, server_default=""),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("created_by", String(200), nullable=False, server_default=""),
    Column("created_by_name", String(100), nullable=False, server_default=""),
    Column("districts", Integer, nullable=False, server_default="0"),  # how many districts it was given to
)


@dataclass(frozen=True)
class District:
    """A district of the city: its name is its schema's name; `role` owns that schema."""

    id: int
    name: str
    role: str

    @property
    def schema(self) -> str:
        return self.name


def ensure_city(conn: Connection) -> None:
    """The city's schema and tables (made by the first `relaybot district add`)."""
    conn.execute(text(f"CREATE SCHEMA IF NOT EXISTS {CITY_SCHEMA}"))
    city_metadata.create_all(conn, checkfirst=True)


def has_city(conn: Connection) -> bool:
    return bool(conn.execute(text(f"SELECT to_regclass('{CITY_SCHEMA}.district') IS NOT NULL")).scalar())


def districts(conn: Connection) -> list[District]:
    """The city's districts in the order they were added; [] for a database that has none."""
    if not has_city(conn):
        return []
    database = conn.execute(text("SELECT current_database()")).scalar() or ""
    rows = conn.execute(select(district_table.c.id, district_table.c.name).order_by(district_table.c.id)).all()
    return [District(id, name, role_name(database, name)) for id, name in rows]


@dataclass(frozen=True)
class Added:
    district: District
    password: str  # the district role's new password: shown once, kept nowhere


def add_district(conn: Connection, name: str, *, now: datetime) -> Added:
    """Make district `name` in the caller's transaction: its login role (a new password), its schema with every
    table (the migrations), its row. All or nothing. DistrictError when it exists already."""
    from bot.storage.db import upgrade_connection

    name = check_name(name)
    ensure_city(conn)
    if any(d.name == name for d in districts(conn)):
        raise DistrictError(f"{name} 已经有了，不用再加。")
    database = conn.execute(text("SELECT current_database()")).scalar() or ""
    role = role_name(database, name)
    password = secrets.token_urlsafe(18)
    exists = conn.execute(text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": role}).first()
    verb = "ALTER" if exists else "CREATE"
    # A literal, not a parameter (PostgreSQL takes none in utility statements): urlsafe characters only.
    conn.execute(text(f"{verb} ROLE {quoted(role)} LOGIN NOINHERIT PASSWORD '{password}'"))
    # The city's login reads and writes a district as its role (use_district: SET ROLE needs membership).
    conn.execute(text(f"GRANT {quoted(role)} TO CURRENT_USER"))
    conn.execute(text(f"CREATE SCHEMA {quoted(name)}"))
    district = District(0, name, role)
    for on, rights in (("TABLES", "SELECT, INSERT, UPDATE, DELETE"), ("SEQUENCES", "USAGE, SELECT, UPDATE")):
        conn.execute(
            text(f"ALTER DEFAULT PRIVILEGES IN SCHEMA {quoted(name)} GRANT {rights} ON {on} TO {quoted(role)}")
        )
    conn.execute(text(f"SET LOCAL search_path TO {quoted(name)}"))
    upgrade_connection(conn)
    conn.execute(text("SET LOCAL search_path TO public"))
    grant_district(conn, district)
    new_id = conn.execute(insert(district_table).values(name=name, created_at=now).returning(district_table.c.id))
    return Added(District(int(new_id.scalar_one()), name, role), password)


def grant_district(conn: Connection, district: District) -> None:
    """The district's role's rights on its own schema and tables (again after a migration: idempotent)."""
    schema, role = quoted(district.schema), quoted(district.role)
    conn.execute(text(f"GRANT USAGE ON SCHEMA {schema} TO {role}"))
    conn.execute(text(f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {schema} TO {role}"))
    conn.execute(text(f"GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA {schema} TO {role}"))


def reset_password(conn: Connection, district: District) -> str:
    """A new password for the district's role (the old one stops working)."""
    password = secrets.token_urlsafe(18)
    conn.execute(text(f"ALTER ROLE {quoted(district.role)} PASSWORD '{password}'"))
    return password


@contextmanager
def use_district(conn: Connection, district: District) -> Iterator[Connection]:
    """`conn` as district `district`'s bot sees it, for the rest of the caller's transaction or until the next
    use_district: its path and role, so a query cannot reach another district's rows."""
    conn.execute(text(f"SET LOCAL ROLE {quoted(district.role)}"))
    conn.execute(text(f"SET LOCAL search_path TO {quoted(district.schema)}"))
    try:
        yield conn
    finally:
        conn.execute(text("RESET ROLE"))
        conn.execute(text("SET LOCAL search_path TO public"))
