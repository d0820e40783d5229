"""Issue 16: a city of districts on one PostgreSQL database. Each district is a schema with its own role; the
bots' queries cannot reach another district; a city push lands once in every district and is counted per district
and for the city."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlmodel import select

from bot.config import Settings
from bot.content import load_library, load_texts
from bot.districtnames import DistrictError, city_url, district_of, district_url, login_url
from bot.domain.roster import import_roster, read_roster
from bot.operations import scheduled
from bot.operations.city import CityError, city_progress, latest_number, progress_text, push_to_city
from bot.operations.pushing import library_alert, push_alert
from bot.runtime import instance
from bot.storage.db import make_engine, schema_revisions, session
from bot.storage.districts import add_district, districts
from bot.storage.models import Confirmation, Group, GroupKind, Outbox, Push, ScheduledPush, Unit
from tests.bot_process import relaybot

pytestmark = pytest.mark.postgres

NOW = datetime(2026, 11, 26, 1, 0, tzinfo=UTC)  # a Thursday, 09:00 in Shanghai

ROSTER_A = """单位,类别,联络员,微信ID
海湖镇,镇街,王芳,wxid_a1
海湖街道,镇街,李强,wxid_a2
海湖区教育局,区直单位,孙丽,wxid_a3
"""
ROSTER_B = """单位,类别,联络员,微信ID
城东镇,镇街,周敏,wxid_b1
城东区卫健局,区直单位,吴刚,wxid_b2
"""


def _add(url: str, name: str, roster: str = "", *, login: bool = False) -> str:
    """Add district `name` to the city at `url`; the district's URL (its own login with `login`, else the city's
    login acting as the district's role), with its roster and groups."""
    engine = make_engine(url)
    with engine.begin() as conn:
        added = add_district(conn, name, now=NOW)
    engine.dispose()
    durl = district_url(url, name)
    if login:
        durl = district_url(login_url(url, added.district.role, added.password), name)
    if roster:
        d = make_engine(durl)
        read = read_roster("名单.csv", roster.encode())
        with session(d) as s:
            import_roster(s, read.rows, columns=read.columns)
            s.add(Group(room_id=f"{name}-liaison", name=f"{name}联络员群", kind=GroupKind.LIAISON.value))
            s.add(Group(room_id=f"{name}-office", name=f"{name}反诈办", kind=GroupKind.OFFICE.value))
            s.commit()
        d.dispose()
    return durl


@pytest.fixture
def two(city_db):
    city = city_db
    return city, _add(city, "海湖区", ROSTER_A, login=True), _add(city, "城东区", ROSTER_B)


def _units(url: str) -> list[str]:
    engine = make_engine(url)
    try:
        with session(engine) as s:
            return sorted(s.exec(select(Unit.name)).all())
    finally:
        engine.dispose()


def test_a_district_is_a_schema_and_a_role_with_every_table(two):
    city, a, b = two
    engine = make_engine(a)
    with engine.connect() as conn:
        schema, user = conn.execute(text("SELECT current_schema(), current_user")).one()
    engine.dispose()
    assert schema == "海湖区" and user.startswith("relaybot_")
    assert schema_revisions(make_engine(a))[0] == schema_revisions(make_engine(a))[1]  # at the newest schema
    assert _units(a) == ["海湖区教育局", "海湖街道", "海湖镇"]
    assert _units(b) == ["城东区卫健局", "城东镇"]
    with make_engine(city).begin() as conn:
        assert [d.name for d in districts(conn)] == ["海湖区", "城东区"]
        with pytest.raises(DistrictError, match="已经有了"):
            add_district(conn, "城东区", now=NOW)
    for bad in ("x", "海 湖区", "public", "City", "a;drop", "pg_x", "全市", "a_b", "𠀀" * 3):
        with pytest.raises(DistrictError, match="不能用"):
            district_url(city, bad)
    # Full-width and capital letters are read as plain lower-case ones (PostgreSQL folds the unquoted name so).
    assert district_of(district_url(city, "ＸｉＨｕ")) == "xihu"


def test_a_query_from_one_district_never_returns_anothers_rows(two):
    _, a, b = two
    engine = make_engine(a)
    try:
        with engine.connect() as conn:  # its own tables by their plain names: only its rows
            assert conn.execute(text("SELECT count(*) FROM unit")).scalar() == 3
        # Another district's tables (or the city's) named outright: refused by the server, not filtered by the bot.
        for sql in (
            'SELECT name FROM "城东区".unit',
            'SELECT * FROM "城东区".confirmation',
            "INSERT INTO \"城东区\".unit (name, kind, active) VALUES ('x', 'other', true)",
            "SELECT * FROM city.district",
        ):
            with engine.connect() as conn, pytest.raises(DBAPIError, match="permission denied"):
                conn.execute(text(sql))
        with engine.connect() as conn:  # a path that names the other district skips it: still none of its rows
            conn.execute(text("SET search_path TO 城东区"))
            with pytest.raises(DBAPIError, match="does not exist"):
                conn.execute(text("SELECT count(*) FROM unit"))
        # Its own login cannot become anyone else, nor put code in the database (a trigger or a function would run
        # when the city's login writes to it): the city's login owns every table.
        for sql in (
            'SET ROLE NONE; SELECT name FROM "城东区".unit',
            "SET ROLE postgres",
            "CREATE TABLE loot (x int)",
            "CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 1'",
            "CREATE TRIGGER t AFTER INSERT ON scheduledpush FOR EACH ROW EXECUTE FUNCTION now()",
            "ALTER TABLE unit ADD COLUMN x int",
            "DROP TABLE unit",
        ):
            with engine.connect() as conn, pytest.raises(DBAPIError, match="permission denied|must be owner"):
                conn.execute(text(sql))
    finally:
        engine.dispose()
    assert _units(b) == ["城东区卫健局", "城东镇"]


def test_push_numbers_are_each_districts_own(two):
    _, a, b = two
    texts, library, settings = load_texts(), load_library(), Settings(database_url="sqlite://")
    numbers = {}
    for url, times in ((a, 2), (b, 1)):
        engine = make_engine(url)
        with session(engine) as s:
            for i in range(times):
                out = push_alert(
                    s,
                    library_alert(library.find("刷单"), now=NOW),
                    now=NOW + timedelta(minutes=i),
                    actor_id="admin",
                    actor_name="管理员",
                    settings=settings,
                    texts=texts,
                    again=True,
                )
                assert out.push is not None, out.message
            s.commit()
            numbers[url] = s.exec(select(Push.id).order_by(Push.id)).all()
        engine.dispose()
    assert numbers == {a: [1, 2], b: [1]}


def _send_due(url: str, now: datetime) -> list[int]:
    """What a district's schedule poller does: push every due scheduled push; the pushes made."""
    texts, settings = load_texts(), Settings(database_url="sqlite://")
    engine = make_engine(url)
    made = []
    try:
        with session(engine) as s:
            for n in scheduled.due(s, now=now):
                row = s.get_one(ScheduledPush, n)
                assert scheduled.send_due(s, row, now=now, settings=settings, texts=texts)
                made.append(row.push_id)
            s.commit()
    finally:
        engine.dispose()
    return made


def test_a_city_push_lands_once_in_every_district_and_is_counted_in_each_and_for_the_city(two):
    city, a, b = two
    texts, library, settings = load_texts(), load_library(), Settings(database_url="sqlite://")
    # 海湖区 pushed something of its own first: the city push takes its next number there.
    _push_local(a, library, texts, settings)
    engine = make_engine(city)
    with engine.begin() as conn:
        done = push_to_city(
            conn,
            library.find("刷单"),
            now=NOW,
            actor_id="wxid_city",
            actor_name="市反诈中心",
            settings=settings,
            texts=texts,
        )
    assert done.number == 1 and [d.name for d in done.districts] == ["海湖区", "城东区"]
    with engine.begin() as conn:
        waiting = city_progress(conn, 1, texts=texts)
    assert [d.state for d in waiting.districts] == ["waiting", "waiting"]
    # Each district's bot pushes it when its poller runs, once.
    assert _send_due(a, NOW) == [2] and _send_due(b, NOW) == [1]
    assert _send_due(a, NOW + timedelta(minutes=1)) == [] and _send_due(b, NOW + timedelta(minutes=1)) == []
    for url, n, room in ((a, 2, "海湖区-liaison"), (b, 1, "城东区-liaison")):
        d = make_engine(url)
        with session(d) as s:
            push = s.get_one(Push, n)
            assert push.city_no == 1
            rows = s.exec(select(Outbox).where(Outbox.push_id == n)).all()
            to_liaisons = [m for m in rows if m.chat_id.endswith("-liaison")]
            assert [m.chat_id for m in to_liaisons] == [room]  # once, to its own liaison group
            assert "（全市第1号）" in to_liaisons[0].text and f"#{n}" in to_liaisons[0].text
            told = s.exec(select(Outbox.text).where(Outbox.chat_id == room.replace("liaison", "office"))).all()
            assert len(told) == 1 and told[0].startswith("市反诈中心的全市第1号推送已发到本区")
            units = s.exec(select(Unit).order_by(Unit.id)).all()
            # Two units of 海湖区 confirm, none of 城东区.
            if url == a:
                s.add_all(Confirmation(push_id=n, unit_id=u.id, at=NOW, method="text") for u in units[:2])
                s.commit()
        d.dispose()
    with engine.begin() as conn:
        result = city_progress(conn, latest_number(conn) or 0, texts=texts)
    by_name = {d.district.name: (d.state, d.push_no, d.confirmed, d.total) for d in result.districts}
    assert by_name == {"海湖区": ("sent", 2, 2, 3), "城东区": ("sent", 1, 0, 2)}
    assert (result.confirmed, result.total) == (2, 5)
    shown = progress_text(texts, result, tz=settings.tz)
    assert "全市：2/5" in shown and "海湖区 #2：2/3" in shown and "城东区 #1：0/2" in shown
    # A district added later has nothing of that push: said so, not counted.
    _add(city, "西湖区")
    with engine.begin() as conn:
        later = city_progress(conn, 1, texts=texts)
        assert later.districts[-1].state == "missing" and later.total == 5
        with pytest.raises(CityError, match="没有全市第9号"):
            city_progress(conn, 9, texts=texts)
    engine.dispose()


def _push_local(url, library, texts, settings) -> None:
    d = make_engine(url)
    with session(d) as s:
        out = push_alert(
            s,
            library_alert(library.find("公检法"), now=NOW),
            now=NOW - timedelta(hours=1),
            actor_id="admin",
            actor_name="管理员",
            settings=settings,
            texts=texts,
        )
        assert out.push is not None and out.push.id == 1
        s.commit()
    d.dispose()


def test_a_city_without_districts_refuses_a_city_push(city_db):
    city = city_db
    texts, library, settings = load_texts(), load_library(), Settings(database_url="sqlite://")
    engine = make_engine(city)
    with engine.begin() as conn, pytest.raises(CityError, match="还没有区"):
        push_to_city(
            conn,
            library.find("刷单"),
            now=NOW,
            actor_id="x",
            actor_name="x",
            settings=settings,
            texts=texts,
        )
    engine.dispose()


def test_each_district_bot_has_its_own_single_instance_lock(two):
    _, a, b = two
    lock_a, lock_b = instance.acquire(a), instance.acquire(b)
    try:
        assert lock_a.held and lock_b.held  # two districts' bots run side by side
        with pytest.raises(instance.AlreadyRunning):
            instance.acquire(a)  # but never two bots of one district
        assert instance.holder(a) is not None
    finally:
        lock_a.release()
        lock_b.release()
    assert instance.holder(a) is None


def test_the_district_setting_makes_the_url_and_the_cli_adds_lists_and_upgrades(city_db, tmp_path):
    city = city_db
    settings = Settings(database_url=city, district="海湖区")
    assert district_of(settings.database_url) == "海湖区" and city_url(settings.database_url) == city
    assert Settings(database_url=settings.database_url, district="海湖区").database_url == settings.database_url
    added = relaybot("district", "add", "海湖区", db_url=city, cwd=tmp_path)
    assert added.returncode == 0, added.stderr
    assert "RELAYBOT_DISTRICT='海湖区'" in added.stdout
    own_url = added.stdout.split("RELAYBOT_DATABASE_URL='")[1].split("'")[0]
    assert make_url(own_url).username.startswith("relaybot_") and make_url(own_url).password
    # The district's server with its own login: the district's commands work, the city's are refused.
    roster = tmp_path / "r.csv"
    roster.write_text(ROSTER_A, encoding="utf-8")
    imported = relaybot(
        "roster", "import", str(roster), "--yes", db_url=own_url, cwd=tmp_path, RELAYBOT_DISTRICT="海湖区"
    )
    assert imported.returncode == 0, imported.stderr
    refused = relaybot("city", "push", "刷单", db_url=own_url, cwd=tmp_path, RELAYBOT_DISTRICT="海湖区")
    assert refused.returncode == 2 and "这是一个区的配置" in refused.stderr
    # The city's database without a district: the district's commands refuse it (nothing made in public).
    status = relaybot("units", db_url=city, cwd=tmp_path)
    assert status.returncode == 2 and "请设置本机器人是哪个区" in status.stderr
    second = relaybot("district", "add", "城东区", db_url=city, cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    old_url = second.stdout.split("RELAYBOT_DATABASE_URL='")[1].split("'")[0]
    # A forgotten password: a new one, the old one stops working. (The test server trusts every login, so the
    # stored verifier is compared rather than a sign-in tried.)
    role = make_url(old_url).username

    def verifier() -> str:
        probe = make_engine(city)
        try:
            with probe.connect() as conn:
                return conn.execute(text("SELECT rolpassword FROM pg_authid WHERE rolname = :r"), {"r": role}).scalar()
        finally:
            probe.dispose()

    before = verifier()
    assert before.startswith("SCRAM-SHA-256$")
    reset = relaybot("district", "password", "城东区", db_url=city, cwd=tmp_path)
    assert reset.returncode == 0, reset.stderr
    new_url = reset.stdout.split("RELAYBOT_DATABASE_URL='")[1].split("'")[0]
    assert new_url != old_url and make_url(new_url).username == role and verifier() != before
    unknown = relaybot("district", "password", "西湖区", db_url=city, cwd=tmp_path)
    assert unknown.returncode == 2 and "没有“西湖区”这个区" in unknown.stderr
    again = relaybot("district", "add", "城东区", db_url=city, cwd=tmp_path)
    assert again.returncode == 2 and "已经有了" in again.stderr
    listed = relaybot("district", "list", db_url=city, cwd=tmp_path)
    assert "全市 2 个区：海湖区、城东区" in listed.stdout
    # One district left behind by an older release: `db upgrade` (no district) brings every district up.
    from alembic import command

    from bot.storage.db import alembic_config

    old = make_engine(district_url(city, "城东区", as_district=False))
    with old.begin() as conn:
        config = alembic_config()
        config.attributes["connection"] = conn
        command.downgrade(config, "0010_reach")
    assert schema_revisions(old)[0] == "0010_reach"
    up = relaybot("db", "upgrade", db_url=city, cwd=tmp_path)
    assert up.returncode == 0, up.stderr
    assert "海湖区：已是最新结构" in up.stdout and "城东区：已升级到" in up.stdout
    assert schema_revisions(old)[0] == schema_revisions(old)[1]
    old.dispose()
    # The city push and its progress from the command line; a district's bot config works with the CLI too.
    pushed = relaybot("city", "push", "刷单", db_url=city, cwd=tmp_path)
    assert pushed.returncode == 0 and "全市第1号" in pushed.stdout and "2 个区" in pushed.stdout
    twice = relaybot("city", "push", "刷单", db_url=city, cwd=tmp_path)
    assert twice.returncode == 1 and "已做过全市第1号" in twice.stderr and "--yes" in twice.stderr
    waiting = relaybot("scheduled", db_url=own_url, cwd=tmp_path, RELAYBOT_DISTRICT="海湖区")
    assert "（全市第1号）" in waiting.stdout and "市反诈中心 relaybot city push" in waiting.stdout, waiting.stdout
    shown = relaybot("city", "progress", db_url=city, cwd=tmp_path)
    assert shown.returncode == 0 and "海湖区：区机器人还没发出" in shown.stdout
    units = relaybot("units", db_url=city, cwd=tmp_path, RELAYBOT_DISTRICT="海湖区")
    assert units.returncode == 0, units.stderr
    unknown = relaybot("city", "push", "不存在的类型", db_url=city, cwd=tmp_path)
    assert unknown.returncode == 1 and "不存在的类型" in unknown.stderr


def test_a_districts_backup_holds_its_own_schema_only(two, tmp_path):
    import subprocess

    city, _, _ = two
    done = relaybot("db", "backup", str(tmp_path / "haihu.dump"), db_url=city, cwd=tmp_path, RELAYBOT_DISTRICT="海湖区")
    assert done.returncode == 0, done.stderr
    listing = subprocess.run(
        ["pg_restore", "--list", str(tmp_path / "haihu.dump")], capture_output=True, text=True, check=True
    ).stdout
    assert "TABLE DATA 海湖区 unit" in listing and "城东区" not in listing and " city " not in listing


def test_a_district_never_added_is_named_in_plain_words(two, tmp_path):
    city, _, _ = two
    for args in (("units",), ("doctor",)):
        done = relaybot(*args, db_url=city, cwd=tmp_path, RELAYBOT_DISTRICT="西湖区")
        assert done.returncode != 0
        assert "数据库里没有“西湖区”这个区" in done.stdout + done.stderr and "Traceback" not in done.stderr
