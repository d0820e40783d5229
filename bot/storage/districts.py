"""A city of districts on one PostgreSQL database: a schema and a role per district, and the city's own schema.

Each district's bot connects with PostgreSQL's `options` (added to its database_url by `district_url`):
`search_path` is its district's schema, so every table and every query of the bot is the district's without a
line of the bot changing, and `role` is its district's role, which owns that schema and has no right on any other
district's: a query from district A that names district B's tables is refused by the server itself. The city's
schema `city` holds the list of districts and the city's pushes; the database's login user (who made the
districts, and so is a member of every district's role) reads every district by switching role and path for one
transaction (`use_district`).
"""

from __future__ import annotations

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


def add_district(conn: Connection, name: str, *, now: datetime) -> District:
    """Make district `name` (its role, its schema, its row) in the caller's transaction; the tables come after,
    by the migrations on the district's own URL. DistrictError when it exists already."""
    name = check_name(name)
    ensure_city(conn)
    if any(d.name == name for d in districts(conn)):
        raise DistrictError(f"{name} 已经有了，不用再加。")
    database = conn.execute(text("SELECT current_database()")).scalar() or ""
    role = role_name(database, name)
    exists = conn.execute(text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": role}).first()
    if exists is None:
        conn.execute(text(f"CREATE ROLE {quoted(role)} NOLOGIN"))
    # The login user runs the district's bot under this role (SET ROLE needs membership) and reads it for the city.
    conn.execute(text(f"GRANT {quoted(role)} TO CURRENT_USER"))
    conn.execute(text(f"CREATE SCHEMA {quoted(name)} AUTHORIZATION {quoted(role)}"))
    new_id = conn.execute(insert(district_table).values(name=name, created_at=now).returning(district_table.c.id))
    return District(int(new_id.scalar_one()), name, role)


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
