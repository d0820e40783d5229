"""Roster import: CSV with and without BOM, .xlsx, all-or-nothing errors naming row and column, re-import."""

from __future__ import annotations

import pytest
from openpyxl import Workbook
from sqlmodel import select
from typer.testing import CliRunner

from bot.cli.main import app
from bot.domain.roster import RosterError, import_roster, read_roster_file
from bot.storage.db import session
from bot.storage.models import Liaison, Unit
from tests.conftest import EXAMPLE_ROSTER

HEADER = "单位,类别,联络员,微信ID,微信昵称,手机,角色\n"


def write_csv(path, body, bom=False):
    path.write_bytes(("\ufeff" if bom else "").encode() + (HEADER + body).encode("utf-8"))
    return path


def counts(engine):
    with session(engine) as s:
        return len(s.exec(select(Unit)).all()), len(s.exec(select(Liaison)).all())


@pytest.mark.parametrize("bom", [False, True])
def test_csv_with_and_without_bom(tmp_path, engine, bom):
    rows = read_roster_file(write_csv(tmp_path / "r.csv", "城关镇,镇街,王芳,wxid_1,王芳,13800000001,主\n", bom))
    assert [(r.unit, r.kind, r.name, r.contact_id, r.role) for r in rows] == [
        ("城关镇", "镇街", "王芳", "wxid_1", "主")
    ]


def test_xlsx_with_only_required_columns_and_numeric_phone(tmp_path):
    wb = Workbook()
    ws = wb.active
    ws.append(["单位", "联络员", "手机"])
    ws.append(["区教育局", "孙丽", 13800000005])
    ws.append([None, None, None])  # blank rows are skipped
    ws.append(["区教育局", "钱多", None])
    wb.save(tmp_path / "r.xlsx")
    rows = read_roster_file(tmp_path / "r.xlsx")
    assert [(r.unit, r.name, r.phone, r.role, r.kind) for r in rows] == [
        ("区教育局", "孙丽", "13800000005", "主", "其他"),
        ("区教育局", "钱多", "", "主", "其他"),
    ]
    assert rows[1].line == 4


@pytest.mark.parametrize(
    "body,message",
    [
        ("城关镇,镇街,,wxid_1,王芳,,主\n", "第 2 行“联络员”为空"),
        ("城关镇,镇街,王芳,,,,主\n,镇街,李强,,,,\n", "第 3 行“单位”为空"),
        ("城关镇,乡村,王芳,,,,主\n", "第 2 行“类别”为“乡村”"),
        ("城关镇,镇街,王芳,,,,副\n", "第 2 行“角色”为“副”"),
        ("城关镇,镇街,王芳,,,电话坏了,主\n", "第 2 行“手机”"),
        ("城关镇,镇街,王芳,,,,主\n城关镇,镇街,王芳,,,,备\n", "第 3 行与第 2 行重复"),
        ("城关镇,镇街,王芳,wxid_1,,,主\n东城街道,镇街,李强,wxid_1,,,主\n", "第 3 行“微信ID”与第 2 行相同"),
        ("", "没有数据行"),
    ],
)
def test_bad_rows_name_row_and_column_and_change_nothing(tmp_path, engine, body, message):
    with session(engine) as s:
        import_roster(s, read_roster_file(EXAMPLE_ROSTER))
        s.commit()
    before = counts(engine)
    result = CliRunner().invoke(
        app,
        ["roster", "import", str(write_csv(tmp_path / "bad.csv", body))],
        env={"RELAYBOT_DATABASE_URL": str(engine.url)},
    )
    assert result.exit_code == 1
    assert message in result.output and "名单没有改动" in result.output
    assert counts(engine) == before


def test_missing_header_column(tmp_path):
    (tmp_path / "r.csv").write_text("单位,手机\n城关镇,13800000001\n", encoding="utf-8")
    with pytest.raises(RosterError, match="第 1 行（表头）缺少“联络员”列（也可写作：联络员姓名、姓名"):
        read_roster_file(tmp_path / "r.csv")


def test_broken_files_get_clear_messages(tmp_path):
    (tmp_path / "r.xlsx").write_bytes(b"PK\x03\x04 not really a workbook")
    with pytest.raises(RosterError, match="无法打开这个 Excel 文件"):
        read_roster_file(tmp_path / "r.xlsx")
    # Neither UTF-8 nor GB18030 text (GBK is read: tests/domain/test_roster_files.py).
    (tmp_path / "r.csv").write_bytes(HEADER.encode("utf-16-le") + b"\x00\xff\x81\x00")
    with pytest.raises(RosterError, match="既不是 UTF-8 也不是 GBK"):
        read_roster_file(tmp_path / "r.csv")
    with pytest.raises(RosterError, match=r"\.xls"):
        (tmp_path / "old.xls").write_bytes(b"\xd0\xcf\x11\xe0")
        read_roster_file(tmp_path / "old.xls")


def test_reimport_updates_in_place_and_reports_changes(tmp_path, engine):
    with session(engine) as s:
        first = import_roster(s, read_roster_file(EXAMPLE_ROSTER))
        s.commit()
    assert len(first.added_units) == 6 and len(first.added_liaisons) == 7
    with session(engine) as s:
        wang_id = s.exec(select(Liaison).where(Liaison.name == "王芳")).one().id
        # The bot learned 吴刚's id in a group: a re-import without 微信ID must keep it.
        wu = s.exec(select(Liaison).where(Liaison.name == "吴刚")).one()
        wu.contact_id = "wxid_learned"
        s.add(wu)
        s.commit()

    text = EXAMPLE_ROSTER.read_text(encoding="utf-8")
    text = text.replace("城关镇,镇街,赵磊,,赵磊,13800000002,备\n", "")  # backup removed
    text = text.replace("李强,wxid_liqiang,李强,", "李强,wxid_liqiang,东城李强,")  # nickname changed
    text = text.replace("金融行业,行业,郑洁,wxid_zhengjie,郑洁,13800000007,主\n", "")  # unit dropped
    text += "南山镇,镇街,冯云,,冯云,,主\n"
    second = import_roster_text(tmp_path, engine, text)
    assert second.added_units == ["南山镇"]
    assert second.added_liaisons == ["南山镇-冯云"]
    assert second.removed_liaisons == ["城关镇-赵磊", "金融行业-郑洁"]
    assert second.deactivated_units == ["金融行业"]
    assert any("东城街道-李强" in u and "微信昵称 李强→东城李强" in u for u in second.updated)
    assert second.unchanged == 4
    with session(engine) as s:
        assert s.exec(select(Liaison).where(Liaison.name == "王芳")).one().id == wang_id  # updated in place
        assert s.exec(select(Liaison).where(Liaison.name == "吴刚")).one().contact_id == "wxid_learned"
        assert s.exec(select(Unit).where(Unit.name == "金融行业")).one().active is False

    third = import_roster_text(tmp_path, engine, text)
    assert third.lines() == ["名单没有变化（6 人）"]


def import_roster_text(tmp_path, engine, text):
    path = tmp_path / "again.csv"
    path.write_text(text, encoding="utf-8")
    with session(engine) as s:
        report = import_roster(s, read_roster_file(path))
        s.commit()
    return report


def test_cli_import_and_show(tmp_path, engine):
    env = {"RELAYBOT_DATABASE_URL": str(engine.url)}
    result = CliRunner().invoke(app, ["roster", "import", str(EXAMPLE_ROSTER)], env=env)
    assert result.exit_code == 0, result.output
    assert "导入成功：7 行" in result.output and "新增单位 6" in result.output
    shown = CliRunner().invoke(app, ["roster", "show"], env=env)
    assert shown.exit_code == 0
    assert "城关镇（镇街）" in shown.output
    assert "主 王芳" in shown.output and "备 赵磊" in shown.output
    assert "7 人尚未在联络员群中识别" in shown.output
