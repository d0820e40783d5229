"""The city's report (全市通报) on a real PostgreSQL city of three districts: each district's figures equal its own
report's, the ranking, the units that missed most, the .xlsx, the CLI, and the refusals."""

from __future__ import annotations

import io
import random
from datetime import date, datetime, timedelta

import pytest
from openpyxl import load_workbook
from sqlalchemy import text
from sqlmodel import Session

from bot.config import Settings
from bot.content import load_texts
from bot.districtnames import district_url
from bot.domain.periods import previous_period
from bot.operations.agenda import ladder_of
from bot.operations.city import CityError
from bot.operations.city_report import city_month_report, city_report
from bot.reports.build import build_report
from bot.reports.city import CITY_HEADER, MISSED_HEADER, UNIT_HEADER, city_figures, sheet_names
from bot.storage.db import create_schema, make_engine
from bot.storage.districts import add_district, districts, use_district
from bot.storage.models import Alert, Confirmation, Exemption, Push, PushState, PushTarget, Unit
from tests.bot_process import relaybot
from tests.conftest import TZ

pytestmark = pytest.mark.postgres

NOV = (date(2026, 11, 1), date(2026, 11, 30))
NOW = datetime(2026, 12, 1, 9, 0, tzinfo=TZ)
SETTINGS = Settings(database_url="sqlite://")
TEXTS = load_texts()


def _push(s: Session, day: date, *, state: str = PushState.CLOSED.value, targets: list[Unit] = ()) -> Push:
    pushed = datetime(day.year, day.month, day.day, 9, 0, tzinfo=TZ)
    alert = Alert(case_type="刷单", title=f"刷单返利 {day}", text="……", created_at=pushed)
    s.add(alert)
    s.flush()
    push = Push(alert_id=alert.id, created_at=pushed, deadline=pushed + timedelta(hours=9), state=state)
    s.add(push)
    s.flush()
    for unit in targets:
        s.add(PushTarget(push_id=push.id, unit_id=unit.id))
    return push


def _confirm(s: Session, push: Push, unit: Unit, how: str = "on", minutes: float = 30) -> None:
    """how: on (on time), late, office (补登)."""
    at = push.deadline + timedelta(minutes=minutes) if how == "late" else push.created_at + timedelta(minutes=minutes)
    s.add(
        Confirmation(
            push_id=push.id, unit_id=unit.id, at=at, method="office" if how == "office" else "text", late=how == "late"
        )
    )


def _units(s: Session, *names: str, inactive: tuple[str, ...] = ()) -> dict[str, Unit]:
    units = {n: Unit(name=n, kind="镇街", active=n not in inactive) for n in (*names, *inactive)}
    s.add_all(units.values())
    s.flush()
    return units


def _fill_haihu(s: Session) -> None:
    """海湖区: 3 active units and 4 pushes in November: 12 expected, 8 on time, 1 late, 3 missed (75 % relayed).
    Left out: a withdrawn push, an October push, an inactive unit's confirmation."""
    u = _units(s, "甲镇", "乙镇", "丙镇", inactive=("丁镇",))
    p1, p2, p3, p4 = (_push(s, date(2026, 11, d)) for d in (2, 3, 4, 5))
    for unit in ("甲镇", "乙镇", "丙镇", "丁镇"):
        _confirm(s, p1, u[unit])
    _confirm(s, p2, u["甲镇"], minutes=10)
    _confirm(s, p2, u["丙镇"], "late")
    _confirm(s, p3, u["甲镇"], minutes=20)
    _confirm(s, p4, u["甲镇"], "office")
    _confirm(s, p4, u["乙镇"], minutes=50)
    _confirm(s, p4, u["丙镇"], minutes=5)
    withdrawn = _push(s, date(2026, 11, 6), state=PushState.WITHDRAWN.value)
    _confirm(s, withdrawn, u["甲镇"])
    october = _push(s, date(2026, 10, 30))
    _confirm(s, october, u["乙镇"])


def _fill_chengdong(s: Session) -> None:
    """城东区: 2 units, 2 pushes: 4 expected, 3 on time, 1 missed: 75 % relayed like 海湖区, but 75 % on time."""
    u = _units(s, "东一街", "东二街")
    p1, p2 = _push(s, date(2026, 11, 9)), _push(s, date(2026, 11, 10))
    _confirm(s, p1, u["东一街"])
    _confirm(s, p1, u["东二街"])
    _confirm(s, p2, u["东一街"])


def _fill_random(s: Session, seed: int = 16) -> None:
    """山南区: 12 units (one inactive), 15 pushes with targets, exemptions, 补登, late and missed confirmations."""
    rng = random.Random(seed)
    u = list(_units(s, *(f"山南{i}号单位" for i in range(11)), inactive=("山南停用单位",)).values())
    for i in range(15):
        day = date(2026, 11, 2 + i)
        targets = rng.sample(u[:11], 4) if i % 5 == 4 else []
        push = _push(s, day, targets=targets)
        for unit in u:
            if rng.random() < 0.15:
                s.add(Exemption(push_id=push.id, unit_id=unit.id, at=push.created_at))
            r = rng.random()
            if r < 0.6:
                _confirm(s, push, unit, minutes=rng.uniform(1, 400))
            elif r < 0.7:
                _confirm(s, push, unit, "late", minutes=rng.uniform(1, 900))
            elif r < 0.75:
                _confirm(s, push, unit, "office", minutes=rng.uniform(1, 100))


FILL = {"海湖区": _fill_haihu, "城东区": _fill_chengdong, "山南区": _fill_random}


@pytest.fixture
def city(db_url):
    """A city of three districts, each at the newest schema and filled as FILL says; the engine of the city."""
    engine = make_engine(db_url)
    with engine.begin() as conn:
        for name in FILL:
            add_district(conn, name, now=NOW)
    for name in FILL:
        district_engine = make_engine(district_url(db_url, name))
        create_schema(district_engine)
        district_engine.dispose()
    with engine.begin() as conn:
        for district in districts(conn):
            with use_district(conn, district):
                s = Session(bind=conn)
                FILL[district.name](s)
                s.flush()
                s.close()
    yield engine
    with engine.begin() as conn:  # roles belong to the server, not to the database the fixture drops
        for district in districts(conn):
            conn.execute(text(f'DROP OWNED BY "{district.role}" CASCADE'))
            conn.execute(text(f'DROP ROLE "{district.role}"'))
    engine.dispose()


def _report(engine, period=NOV):
    with engine.begin() as conn:
        return city_report(conn, period, now=NOW, texts=TEXTS, settings=SETTINGS)


def test_districts_read_side_by_side_or_in_turn_alike(city):
    with city.begin() as conn:
        every = districts(conn)
        alone = city_figures(conn, start=NOV[0], end=NOV[1], now=NOW, tz=TZ, texts=TEXTS, every=every, workers=1)
    assert _report(city) == alone


def test_each_district_has_the_figures_of_its_own_report(city):
    rep = _report(city)
    ours = {d.name: d for d in rep.districts}
    with city.begin() as conn:
        for district in districts(conn):
            with use_district(conn, district):
                s = Session(bind=conn)
                own = build_report(
                    s, kind="month", start=NOV[0], end=NOV[1], now=NOW, tz=TZ, ladder=ladder_of(SETTINGS)
                )
                s.close()
            mine = ours[district.name]
            assert mine.pushes == len(own.pushes)
            keep = ("unit", "kind", "rank", "received", "relayed", "on_time", "late", "missed", "median_minutes")
            keep += ("added", "exempted")
            assert [[getattr(u, k) for k in keep] for u in mine.units] == [
                [getattr(u, k) for k in keep] for u in own.units
            ], district.name
    # The random district exercised every rule the statement has.
    shan = ours["山南区"]
    assert any(u.exempted for u in shan.units) and any(u.added for u in shan.units)
    assert any(u.late for u in shan.units) and any(u.missed for u in shan.units)
    assert "山南停用单位" not in {u.unit for u in shan.units}


def test_districts_ranked_by_relay_rate_then_on_time_rate(city):
    rep = _report(city)
    hai = next(d for d in rep.districts if d.name == "海湖区")
    assert (hai.pushes, hai.expected, hai.on_time, hai.late, hai.missed) == (4, 12, 8, 1, 3)
    assert [u.unit for u in hai.units] == ["甲镇", "丙镇", "乙镇"]
    assert hai.relay_rate == 0.75
    # 城东区 relays 75 % too, but more of it on time: ahead of 海湖区. 山南区 relays more than both.
    shan = next(d for d in rep.districts if d.name == "山南区")
    assert shan.relay_rate > 0.75
    assert [(d.rank, d.name) for d in rep.districts] == [(1, "山南区"), (2, "城东区"), (3, "海湖区")]


def test_a_district_without_pushes_comes_last_unranked(city):
    rep = _report(city, (date(2026, 10, 1), date(2026, 10, 31)))  # only 海湖区 pushed in October
    assert [(d.rank, d.name, d.pushes) for d in rep.districts] == [
        (1, "海湖区", 1),
        (None, "城东区", 0),
        (None, "山南区", 0),
    ]
    text, xlsx = _month_report(city, (date(2026, 10, 1), date(2026, 10, 31)))
    assert "1. 海湖区 转发率 33.3%，未转发 2 次" in text  # only 乙镇 confirmed the October push
    assert "— 城东区 这段时间没有推送\n— 山南区 这段时间没有推送" in text
    assert xlsx is not None


def test_top_missed_across_the_city(city):
    rep = _report(city)
    missed = [(m.district, m.unit.unit, m.unit.missed) for m in rep.top_missed]
    every = [(d.name, u.unit, u.missed) for d in rep.districts for u in d.units if u.missed]
    assert len(missed) == min(20, len(every))
    assert all(n > 0 for _, _, n in missed)
    assert [n for _, _, n in missed] == sorted((n for _, _, n in every), reverse=True)[: len(missed)]
    assert ("海湖区", "乙镇", 2) in missed
    # 丙镇 and 东二街 each missed once; 丙镇 was also late once, so it comes first.
    ones = [(d, u) for d, u, n in missed if (d, u) in {("海湖区", "丙镇"), ("城东区", "东二街")}]
    assert ones in ([("海湖区", "丙镇"), ("城东区", "东二街")], [("海湖区", "丙镇")], [])


def _month_report(engine, period=NOV):
    with engine.begin() as conn:
        return city_month_report(conn, period, now=NOW, texts=TEXTS, settings=SETTINGS)


def test_text_and_xlsx(city):
    text, xlsx = _month_report(city)
    lines = text.splitlines()
    assert lines[0] == "全市反诈预警转发通报（2026年11月）"
    assert lines[2:5] == [
        lines[2],
        "2. 城东区 转发率 75.0%，未转发 1 次",
        "3. 海湖区 转发率 75.0%，未转发 3 次",
    ] and lines[2].startswith("1. 山南区 转发率 ")
    assert "未转发最多：山南区山南1号单位 4 次、" in text and text.endswith("再相同则并列。")
    assert len(lines) <= 12
    wb = load_workbook(io.BytesIO(xlsx))
    assert wb.sheetnames == ["全市", "未转发最多", "山南区", "城东区", "海湖区"]
    ws = wb["全市"]
    assert [c.value for c in ws[1]] == CITY_HEADER
    assert [c.value for c in ws[4]] == [3, "海湖区", 3, 4, 12, 9, 8, 1, 3, 0.75, pytest.approx(8 / 12)]
    assert ws["J4"].number_format == "0.0%"
    assert len(ws._charts) == 1
    ws = wb["未转发最多"]
    assert [c.value for c in ws[1]] == MISSED_HEADER
    rows = [[c.value for c in r] for r in ws.iter_rows(min_row=2)]
    assert rows and all(r[4] >= 1 for r in rows) and [r[0] for r in rows] == list(range(1, len(rows) + 1))
    assert next(r for r in rows if r[2] == "乙镇")[1:7] == ["海湖区", "乙镇", "镇街", 2, 4, 0]
    ws = wb["海湖区"]
    assert [c.value for c in ws[1]] == UNIT_HEADER
    assert [[c.value for c in r][:9] for r in ws.iter_rows(min_row=2)] == [
        [1, "甲镇", "镇街", 4, 4, 4, 0, 0, 1],
        [2, "丙镇", "镇街", 4, 3, 2, 1, 1, 0.5],
        [3, "乙镇", "镇街", 4, 2, 2, 0, 2, 0.5],
    ]
    assert ws["K2"].value == 1  # 甲镇's 补登
    assert ws.freeze_panes == "A2" and ws.auto_filter.ref == "A1:L4" and ws["A1"].font.b
    assert ws["I3"].number_format == "0.0%" and ws.column_dimensions["J"].width > 10


def test_a_period_without_pushes_says_so(city):
    text, xlsx = _month_report(city, (date(2026, 12, 1), date(2026, 12, 31)))
    assert xlsx is None
    assert text == "全市反诈预警转发通报（2026年12月）：全市 3 个区这段时间都没有推送，没有可统计的。"


def test_a_database_without_districts_is_refused(db_url, tmp_path):
    engine = make_engine(db_url)
    with pytest.raises(CityError, match="还没有区"), engine.begin() as conn:
        city_report(conn, NOV, now=NOW, texts=TEXTS, settings=SETTINGS)
    engine.dispose()
    result = relaybot("city", "report", "2026-11", db_url=db_url, cwd=tmp_path)
    assert result.returncode != 0
    assert "还没有区" in result.stderr and not list(tmp_path.glob("*.xlsx"))


def test_sheet_names_follow_excel_rules():
    names = sheet_names(["全市", "未转发最多", "a" * 40, "A" * 40, "x[y]:z"])
    assert names["全市"] == "全市(2)" and names["未转发最多"] == "未转发最多(2)"
    assert names["a" * 40] == "a" * 31 and names["A" * 40] == "A" * 28 + "(2)"
    assert names["x[y]:z"] == "x_y__z"


def test_cli_prints_the_ranking_and_writes_the_file(city, db_url, tmp_path):
    result = relaybot("city", "report", "2026-11", db_url=db_url, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "2. 城东区 转发率 75.0%，未转发 1 次" in result.stdout
    path = tmp_path / "全市通报_2026-11.xlsx"
    assert f"表格已写到 {path.name}" in result.stdout
    assert load_workbook(path).sheetnames[:2] == ["全市", "未转发最多"]
    bad = relaybot("city", "report", "十一月吧", db_url=db_url, cwd=tmp_path)
    assert bad.returncode == 2 and "看不懂“十一月吧”" in bad.stderr
    empty = relaybot("city", "report", "2026年9月", "--out", "x/九月.xlsx", db_url=db_url, cwd=tmp_path)
    assert empty.returncode == 0 and "都没有推送" in empty.stdout and not (tmp_path / "x").exists()
    # No month: last month, as the bot's clock shows it.
    last = previous_period("month", datetime.now(TZ).date())[0]
    default = relaybot("city", "report", db_url=db_url, cwd=tmp_path)
    assert default.returncode == 0, default.stderr
    assert f"（{last.year}年{last.month}月）" in default.stdout
    assert f"全市通报_{last.year}-{last.month:02d}.xlsx" in default.stdout
