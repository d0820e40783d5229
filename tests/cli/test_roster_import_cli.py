"""`relaybot roster import` (issue 13): --dry-run shows the change and writes nothing; deactivating units needs
--yes; --sheet picks the sheet; every mistake is listed at once; a GBK file says so."""

from __future__ import annotations

import io

from openpyxl import Workbook
from sqlmodel import select
from typer.testing import CliRunner

from bot.cli.main import app
from bot.storage.db import session
from bot.storage.models import Liaison, Unit
from tests.conftest import EXAMPLE_ROSTER


def invoke(engine, *args: str):
    return CliRunner().invoke(app, ["roster", "import", *args], env={"RELAYBOT_DATABASE_URL": str(engine.url)})


def state(engine):
    with session(engine) as s:
        units = sorted((u.name, u.kind, u.active) for u in s.exec(select(Unit)))
        liaisons = sorted((li.unit_id, li.name, li.wechat_name, li.active) for li in s.exec(select(Liaison)))
    return units, liaisons


def example_without(*units: str) -> str:
    lines = EXAMPLE_ROSTER.read_text(encoding="utf-8").splitlines(keepends=True)
    return "".join(line for line in lines if line.split(",")[0] not in units)


def test_dry_run_shows_the_change_and_writes_nothing(tmp_path, engine):
    first = invoke(engine, str(EXAMPLE_ROSTER), "--dry-run")
    assert first.exit_code == 0, first.output
    assert "预览（--dry-run，什么都没有写入）：7 行。" in first.output
    assert "新增单位 6：城关镇、东城街道、西湖镇、区教育局、区卫健局、金融行业" in first.output
    assert state(engine) == ([], [])

    assert invoke(engine, str(EXAMPLE_ROSTER)).exit_code == 0
    before = state(engine)
    changed = example_without("金融行业").replace("李强,wxid_liqiang,李强,", "李强,wxid_liqiang,东城李强,")
    (tmp_path / "new.csv").write_text(changed + "南山镇,镇街,冯云,,冯云,,主\n", encoding="utf-8")
    preview = invoke(engine, str(tmp_path / "new.csv"), "--dry-run")
    assert preview.exit_code == 0, preview.output
    assert "新增单位 1：南山镇" in preview.output
    assert "东城街道-李强（微信昵称 李强→东城李强）" in preview.output
    assert "停用单位（不在新名单中） 1：金融行业" in preview.output
    assert state(engine) == before


def test_deactivating_units_needs_yes_and_says_the_command(tmp_path, engine):
    assert invoke(engine, str(EXAMPLE_ROSTER)).exit_code == 0
    before = state(engine)
    path = tmp_path / "少了两个单位.csv"
    path.write_text(example_without("金融行业", "区卫健局"), encoding="utf-8")

    refused = invoke(engine, str(path))
    assert refused.exit_code == 1
    assert "没有导入：这次导入会停用 2 个单位（新名单里没有它们）：区卫健局、金融行业。" in refused.output
    assert f"确认要停用，请运行：relaybot roster import {path} --yes" in refused.output
    assert state(engine) == before

    confirmed = invoke(engine, str(path), "--yes")
    assert confirmed.exit_code == 0, confirmed.output
    assert (
        "导入成功：5 行。" in confirmed.output and "停用单位（不在新名单中） 2：区卫健局、金融行业" in confirmed.output
    )
    with session(engine) as s:
        assert {u.name for u in s.exec(select(Unit).where(Unit.active == False))} == {"区卫健局", "金融行业"}  # noqa: E712

    # Without deactivations an import applies as before, no --yes needed.
    path.write_text(example_without("金融行业", "区卫健局") + "南山镇,镇街,冯云,,冯云,,主\n", encoding="utf-8")
    added = invoke(engine, str(path))
    assert added.exit_code == 0, added.output
    assert "新增单位 1：南山镇" in added.output


def test_the_confirm_command_quotes_a_path_with_spaces_and_keeps_the_sheet(tmp_path, engine):
    assert invoke(engine, str(EXAMPLE_ROSTER)).exit_code == 0
    wb = Workbook()
    wb.active.title = "说明"
    ws = wb.create_sheet("十二月")
    ws.append(["单位", "联络员"])
    ws.append(["城关镇", "王芳"])
    path = tmp_path / "新 名单.xlsx"
    wb.save(path)
    refused = invoke(engine, str(path), "--sheet", "十二月")
    assert refused.exit_code == 1
    assert f"relaybot roster import '{path}' --sheet 十二月 --yes" in refused.output
    assert "读取工作表“十二月”" in refused.output


def test_a_gbk_file_with_title_row_and_synonyms_imports_and_says_how_it_was_read(tmp_path, engine):
    text = "XX区反诈联络员名单,,,,\n序号,单位名称,姓名,微信号,联系电话\n1,城关镇,王芳,wxid_wf,13800000001\n"
    path = tmp_path / "名单.csv"
    path.write_bytes(text.encode("gbk"))
    result = invoke(engine, str(path))
    assert result.exit_code == 0, result.output
    for said in (
        "CSV 按 GBK 编码读取",
        "第 2 行为表头，上面的 1 行（标题）已跳过",
        "表头：单位名称→单位、姓名→联络员、微信号→微信ID、联系电话→手机",
        "未使用的列：序号",
        "导入成功：1 行。",
        "新增联络员 1：城关镇-王芳",
    ):
        assert said in result.output
    with session(engine) as s:
        assert s.exec(select(Liaison)).one().contact_id == "wxid_wf"


def test_every_mistake_is_listed_and_nothing_changes(tmp_path, engine):
    assert invoke(engine, str(EXAMPLE_ROSTER)).exit_code == 0
    before = state(engine)
    path = tmp_path / "bad.csv"
    path.write_text("单位,类别,联络员,角色\n城关镇,乡村,王芳,\n,镇街,李强,\n东城街道,镇街,,副\n", encoding="utf-8")
    result = invoke(engine, str(path))
    assert result.exit_code == 1
    assert "导入失败，名单没有改动。发现 4 处问题：" in result.output
    for line in (
        "1. 第 2 行“类别”为“乡村”",
        "2. 第 3 行“单位”为空",
        "3. 第 4 行“联络员”为空",
        "4. 第 4 行“角色”为“副”",
    ):
        assert line in result.output
    assert state(engine) == before


def test_an_xlsx_sent_as_bytes_reads_like_a_file(tmp_path, engine):
    wb = Workbook()
    wb.active.append(["单位", "联络员", "微信id"])
    wb.active.append(["城关镇", "王芳", "wxid_wf"])
    buffer = io.BytesIO()
    wb.save(buffer)
    (tmp_path / "名单.XLSX").write_bytes(buffer.getvalue())
    result = invoke(engine, str(tmp_path / "名单.XLSX"))
    assert result.exit_code == 0, result.output
    assert "读取工作表“Sheet”" in result.output and "表头：微信id→微信ID" in result.output
