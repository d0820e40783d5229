"""Shared fixtures: a real database, a fake clock, the in-memory transport, a running bot.

The database is an SQLite file, or, when RELAYBOT_TEST_DATABASE_URL names a PostgreSQL server (`./run.sh test`
starts one for the suite's second run), a fresh PostgreSQL database for each test.
"""

from __future__ import annotations

import os
import secrets
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot.clock import FakeClock
from bot.config import Settings
from bot.domain.roster import import_roster, read_roster_file
from bot.runtime.app import RelayBot, build_bot
from bot.storage.db import create_schema, make_engine, session
from bot.transport.base import Member
from bot.transport.memory import MemoryTransport

TZ = ZoneInfo("Asia/Shanghai")
ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_ROSTER = ROOT / "content" / "examples" / "roster_example.csv"

ADMIN = Member("admin-chen", "陈静", "反诈办-陈静")
WANG = Member("wxid_wangfang", "王芳", "王芳-城关镇")
ZHAO = Member("wxid_zhaolei", "赵磊", "")
LI = Member("wxid_liqiang", "李强", "东城李强")
ZHOU = Member("wxid_zhoumin", "周敏", "周敏（西湖镇）")
SUN = Member("wxid_sunli", "孙丽", "")
WU = Member("wxid_wugang", "吴刚", "")
ZHENG = Member("wxid_zhengjie", "郑洁", "")
STRANGER = Member("wxid_stranger", "路人甲", "")
LIAISON_ROOM = "liaison@chatroom"
OFFICE_ROOM = "office@chatroom"


@pytest.fixture
def clock() -> FakeClock:
    # A Thursday morning, a normal working day.
    return FakeClock(datetime(2026, 11, 26, 9, 0, tzinfo=TZ))


POSTGRES_URL = os.environ.get("RELAYBOT_TEST_DATABASE_URL", "")
TEMPLATE_DB = "relaybot_test_template"


def on_postgres() -> bool:
    """Whether this run of the suite uses PostgreSQL."""
    return POSTGRES_URL.startswith("postgresql")


def pytest_collection_modifyitems(items):
    # Every test that uses a `gateway` fixture (the real Node gateway, tests/gateway_harness.py) is an e2e test,
    # so that `-m "not e2e"` needs no Node.js, even for the gateway tests among unit tests (doctor, transport).
    for item in items:
        if "gateway" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.e2e)


def pytest_runtest_setup(item):
    if item.get_closest_marker("postgres") and not on_postgres():
        pytest.skip("needs PostgreSQL: `./run.sh test` runs the suite on it after SQLite")


@pytest.fixture(scope="session")
def _postgres_admin():
    """An autocommit engine on the server's maintenance database, and a template database at the newest schema."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {TEMPLATE_DB} WITH (FORCE)"))
        conn.execute(text(f"CREATE DATABASE {TEMPLATE_DB}"))
    template = make_engine(make_url(POSTGRES_URL).set(database=TEMPLATE_DB).render_as_string(hide_password=False))
    create_schema(template)
    template.dispose()
    yield admin
    admin.dispose()


@pytest.fixture
def db_url(tmp_path, request) -> str:
    """The URL of an empty database at the newest schema, for this test only."""
    if not on_postgres():
        url = f"sqlite:///{tmp_path / 'test.db'}"
        eng = make_engine(url)
        create_schema(eng)
        eng.dispose()
        yield url
        return
    from sqlalchemy import text
    from sqlalchemy.engine import make_url

    admin = request.getfixturevalue("_postgres_admin")
    name = f"t_{secrets.token_hex(6)}"
    with admin.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {name} TEMPLATE {TEMPLATE_DB}"))
    yield make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))


@pytest.fixture
def city_db(request):
    """The URL of a new, empty PostgreSQL database for a city of districts (issue 16; not from the template: the
    districts make their own schemas)."""
    from sqlalchemy import text
    from sqlalchemy.engine import make_url

    admin = request.getfixturevalue("_postgres_admin")
    name = f"city_{secrets.token_hex(5)}"
    with admin.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {name}"))
    yield make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))


@pytest.fixture
def engine(db_url):
    eng = make_engine(db_url)
    yield eng
    eng.dispose()


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings(
        database_url="sqlite://",
        evidence_dir=str(tmp_path / "evidence"),
        admin_ids=[ADMIN.contact_id],
        liaison_groups=["全区反诈联络员群"],
        office_group="反诈办工作群",
        ack_quiet_seconds=30,
        ack_min_interval_seconds=0,  # tests/handlers/test_liaison_reading.py checks the interval itself
        # pytest-httpserver serves feeds and pages from 127.0.0.1, an internal address the bot refuses by default
        # (tests/adapters/test_ssrf.py checks that the default refuses it).
        feed_allowed_hosts=["127.0.0.1"],
        preview_allowed_hosts=["127.0.0.1"],
    )


@pytest.fixture
def roster(engine):
    with session(engine) as s:
        import_roster(s, read_roster_file(EXAMPLE_ROSTER))
        s.commit()


def add_rooms(t: MemoryTransport) -> MemoryTransport:
    """The two rooms of the example district: the liaison group (everyone) and the office group (the admin)."""
    t.add_room(LIAISON_ROOM, "全区反诈联络员群", [ADMIN, WANG, ZHAO, LI, ZHOU, SUN, WU, ZHENG, STRANGER])
    t.add_room(OFFICE_ROOM, "反诈办工作群", [ADMIN])
    return t


@pytest.fixture
def transport() -> MemoryTransport:
    return add_rooms(MemoryTransport(bot_id="bot-self"))


@pytest.fixture
async def bot(settings, transport, engine, clock, roster) -> RelayBot:
    b = build_bot(settings, transport, engine=engine, clock=clock, send_loop=False)
    await b.start()
    await b.send_pending()
    transport.sent.clear()
    yield b
    await b.stop()


@pytest.fixture(scope="module")
def _threaded_server():
    from pytest_httpserver import HTTPServer

    # Threaded, so a handler that sleeps in one test can't hold up the next.
    server = HTTPServer(host="127.0.0.1", port=0, threaded=True)
    server.start()
    yield server
    server.clear()
    server.stop()


@pytest.fixture
def server(_threaded_server):
    """A real HTTP server on 127.0.0.1, cleared for each test."""
    _threaded_server.clear()
    return _threaded_server


@pytest.fixture
async def client():
    """The bot's guarded httpx client, allowed to reach 127.0.0.1 where the test server is (and no proxy)."""
    from bot.adapters.web_guard import guarded_client

    async with guarded_client(["127.0.0.1"]) as c:
        yield c


@pytest.fixture
def processes():
    """Bot processes a test starts (append them); stopped and cleaned up afterwards."""
    from tests.bot_process import BotProcess

    started: list[BotProcess] = []
    yield started
    for proc in started:
        proc.stop()
        proc.close()
