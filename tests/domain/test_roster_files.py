"""Roster files as district offices make them (issue 13): GBK "CSV" from a Chinese Excel, a title row merged above
the header, the list on the second sheet, the usual header words, many mistakes at once, and the warnings."""

from __future__ import annotations

import io

import pytest
from openpyxl import Workbook
from sqlmodel import select

from bot.domain.roster import (
    RosterError,
    import_roster,
    is_roster,
    outcome_lines,
    read_roster,
    tidy_name,
)
from bot.storage.db import session
from bot.storage.models import Liaison, Unit

HEADER = ["单位", "类别", "联络员", "微信ID", "微信昵称", "手机", "角色"]


def csv_text(rows: list[list[object]]) -> str:
    return "".join(",".join("" if c is None else str(c) for c in row) + "\r\n" for row in rows)


def xlsx(*sheets: tuple[str, list[list[object]]], merge_title: bool = False) -> bytes:
    wb = Workbook()
    wb.remove(wb.active)
    for title, rows in sheets:
        ws = wb.create_sheet(title)
        for row in rows:
            ws.append(row)
        if merge_title:
            ws.merge_cells(start_row=1, start_column=1, end_row=1, end_column=7)
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


ROWS = [
    ["城关镇", "镇街", "王芳", "wxid_wf", "王芳-城关镇", "13800000001", "主"],
    ["城关镇", "镇街", "赵磊", "", "赵磊", "13800000002", "备"],
    ["区教育局", "区直单位", "孙丽", "wxid_sl", "孙丽", "", ""],
]


# --- 1. encodings ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "encoding,bom,said",
    [
        ("gbk", b"", "CSV 按 GBK 编码读取"),
        ("gb18030", b"", "CSV 按 GBK 编码读取"),
        ("utf-8", b"", "CSV 按 UTF-8 编码读取"),
        ("utf-8", b"\xef\xbb\xbf", "CSV 按 UTF-8（带 BOM）编码读取"),
    ],
)
def test_a_csv_is_read_in_utf8_with_or_without_bom_or_gbk_and_says_which(encoding, bom, said):
    data = bom + csv_text([HEADER, *ROWS]).encode(encoding)
    read = read_roster("名单.csv", data)
    assert [(r.line, r.unit, r.kind, r.name, r.contact_id, r.wechat_name) for r in read.rows] == [
        (2, "城关镇", "镇街", "王芳", "wxid_wf", "王芳-城关镇"),
        (3, "城关镇", "镇街", "赵磊", "", "赵磊"),
        (4, "区教育局", "区直单位", "孙丽", "wxid_sl", "孙丽"),
    ]
    assert any(note.startswith(said) for note in read.notes)


def test_a_gbk_csv_with_a_rare_character_reads_as_gb18030():
    # 㛃 is outside GBK: Excel on a Chinese Windows writes it in GB18030.
    data = csv_text([HEADER, ["城关镇", "镇街", "王㛃", "", "王㛃", "", ""]]).encode("gb18030")
    assert read_roster("名单.csv", data).rows[0].name == "王㛃"


@pytest.mark.parametrize(
    "data",
    [
        bytes(range(256)) * 4,  # binary
        "单位,联络员\n城关镇,王芳\n".encode("gbk") + b"\x81\x20\xff",  # broken in both encodings
        b"\x00\x01\x02\x03" + "单位,联络员".encode("gbk"),  # decodes as GB18030, but holds control bytes
    ],
)
def test_a_csv_that_is_neither_utf8_nor_gbk_is_refused_in_chinese(data):
    with pytest.raises(RosterError) as caught:
        read_roster("名单.csv", data)
    assert "既不是 UTF-8 也不是 GBK" in str(caught.value) and "另存为" in str(caught.value)


def test_a_tab_separated_text_saved_as_csv_is_read():
    data = "\n".join("\t".join(row) for row in [HEADER, *ROWS]).encode("utf-16")
    read = read_roster("名单.csv", data)
    assert [r.name for r in read.rows] == ["王芳", "赵磊", "孙丽"]


# --- 2. header row under title rows; sheets -------------------------------------------------------------------


def test_a_merged_title_row_and_a_blank_row_above_the_header_are_skipped_and_said():
    data = xlsx(("Sheet1", [["XX区反诈联络员名单"], [], HEADER, *ROWS]), merge_title=True)
    read = read_roster("名单.xlsx", data)
    assert [(r.line, r.name) for r in read.rows] == [(4, "王芳"), (5, "赵磊"), (6, "孙丽")]  # Excel's row numbers
    assert "读取工作表“Sheet1”" in read.notes
    assert "第 3 行为表头，上面的 1 行（标题）已跳过" in read.notes


def test_a_unit_merged_down_over_its_liaisons_names_each_row():
    wb = Workbook()
    ws = wb.active
    ws.append(["XX区反诈联络员名单"])
    ws.merge_cells("A1:E1")
    ws.append(["单位", "类别", "联络员", "微信ID", "微信昵称"])
    ws.append(["城关镇", "镇街", "王芳", "wxid_wf", "王芳"])
    ws.append([None, None, "赵磊", "", "赵磊"])
    ws.append([None, None, "钱多", "", "钱多"])
    ws.append(["区教育局", "区直单位", "孙丽", "", "孙丽"])
    ws.merge_cells("A3:A5")
    ws.merge_cells("B3:B5")
    out = io.BytesIO()
    wb.save(out)
    read = read_roster("名单.xlsx", out.getvalue())
    assert [(r.line, r.unit, r.kind, r.name) for r in read.rows] == [
        (3, "城关镇", "镇街", "王芳"),
        (4, "城关镇", "镇街", "赵磊"),
        (5, "城关镇", "镇街", "钱多"),
        (6, "区教育局", "区直单位", "孙丽"),
    ]


def test_title_rows_in_a_csv_are_skipped_and_errors_keep_excel_row_numbers():
    text = csv_text([["XX区反诈联络员名单", "", ""], ["制表：区反诈办", "", ""], HEADER, ["城关镇", "乡村", "王芳"]])
    with pytest.raises(RosterError) as caught:
        read_roster("名单.csv", text.encode())
    assert caught.value.problems == ["第 4 行“类别”为“乡村”，应为：镇街、区直单位、行业 或 其他。"]
    assert "第 3 行为表头，上面的 2 行（标题）已跳过" in caught.value.notes


def test_the_roster_on_the_second_sheet_is_read_and_said():
    data = xlsx(("说明", [["填表说明：每个单位填主、备联络员各一人"]]), ("联络员", [HEADER, *ROWS]))
    read = read_roster("名单.xlsx", data)
    assert len(read.rows) == 3 and read.sheet == "联络员"
    assert "读取工作表“联络员”（第一个工作表“说明”里没有名单）" in read.notes


def test_a_sheet_is_chosen_by_name_and_a_wrong_name_lists_the_sheets():
    old = [HEADER, ["旧镇", "镇街", "钱多", "", "钱多", "", ""]]
    data = xlsx(("新名单", [HEADER, *ROWS]), ("旧名单", old))
    read = read_roster("名单.xlsx", data)
    assert read.sheet == "新名单" and "工作表“旧名单”也像一份名单，没有读取。" in read.warnings
    assert [r.unit for r in read_roster("名单.xlsx", data, sheet="旧名单").rows] == ["旧镇"]
    with pytest.raises(RosterError, match="没有名为“三月”的工作表。这个文件的工作表：新名单、旧名单"):
        read_roster("名单.xlsx", data, sheet="三月")


def test_a_header_without_a_unit_column_says_so():
    text = csv_text([["名单"], ["单位简称", "姓名", "微信号"], ["城关", "王芳", "wxid_wf"]])
    with pytest.raises(RosterError) as caught:
        read_roster("名单.csv", text.encode())
    assert caught.value.problems[0].startswith("第 2 行（表头）缺少“单位”列（也可写作：单位名称、所在单位")


def test_no_header_anywhere_says_what_a_header_needs_and_shows_the_first_row():
    with pytest.raises(RosterError) as caught:
        read_roster("名单.csv", csv_text([["XX区名单"], ["城关镇", "王芳"]]).encode())
    assert "前 10 行里没有找到表头" in str(caught.value) and "第 1 行是：“XX区名单”" in str(caught.value)
    data = xlsx(("甲", [["说明"]]), ("乙", [["城关镇", "王芳"]]))
    with pytest.raises(RosterError, match="工作表 “甲”、“乙” 里都没有找到名单的表头"):
        read_roster("名单.xlsx", data)


# --- 3. header synonyms -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "header",
    [
        ["单位名称", "单位类别", "姓名", "微信id", "微信名", "手机号", "角色"],
        ["所在单位", "类型", "联络员姓名", "微信号", "昵称", "联系电话", "主备"],
        ["单位（部门）", "类别", "联系人", "wxid", "微信昵称", "手机", "角色"],
        ["部门", "类别", "姓名", "微信 ID", "微信昵称", "手机", "角色"],
        ["单 位", "类别", "姓 名", "ＷＸＩＤ", "微信名", "手机", "角色"],  # spaces, full-width
        ["*单位", "类别", "联络员（必填）", "微信ID号", "微信昵称", "手机", "角色"],
        ["单位/部门", "类别", "姓名、联系人", "微信ID/微信号", "微信名/昵称", "手机/电话", "角色"],
    ],
)
def test_the_usual_header_words_are_understood_and_no_id_is_lost(tmp_path, engine, header):
    read = read_roster("名单.csv", csv_text([header, *ROWS]).encode())
    assert [(r.unit, r.kind, r.name, r.contact_id, r.wechat_name, r.phone, r.role) for r in read.rows] == [
        ("城关镇", "镇街", "王芳", "wxid_wf", "王芳-城关镇", "13800000001", "主"),
        ("城关镇", "镇街", "赵磊", "", "赵磊", "13800000002", "备"),
        ("区教育局", "区直单位", "孙丽", "wxid_sl", "孙丽", "", "主"),
    ]
    assert not read.warnings
    with session(engine) as s:
        import_roster(s, read.rows, columns=read.columns)
        s.commit()
    with session(engine) as s:
        ids = {li.name: li.contact_id for li in s.exec(select(Liaison))}
    assert ids == {"王芳": "wxid_wf", "赵磊": None, "孙丽": "wxid_sl"}


def test_columns_understood_but_unused_are_mentioned_and_unknown_ones_warned_about():
    header = ["序号", "单位名称", "姓名", "微信号", "职务", "籍贯", "备注", ""]
    rows = [[1, "城关镇", "王芳", "wxid_wf", "科员", "浙江", "", ""], [2, "城关镇", "赵磊", "", "", "", "", "外出"]]
    read = read_roster("名单.csv", csv_text([header, *rows]).encode())
    assert "表头：单位名称→单位、姓名→联络员、微信号→微信ID" in read.notes
    assert "未使用的列：序号、职务、备注" in read.notes
    assert read.warnings == [
        "“籍贯”列不认识，没有导入。如果它是单位、联络员、微信ID或微信昵称，请把表头改成这些名字。",
        "第 H 列有内容但没有表头，没有导入。",
    ]
    assert read.rows[0].contact_id == "wxid_wf"


def test_two_columns_for_one_thing_read_the_better_one_and_say_so():
    header = ["单位名称", "部门", "联络员", "手机", "联系电话"]
    read = read_roster(
        "名单.csv", csv_text([header, ["区公安局", "指挥中心", "王芳", "13800000001", "0571-1"]]).encode()
    )
    assert (read.rows[0].unit, read.rows[0].phone) == ("区公安局", "13800000001")
    assert "“部门”列没有导入：已用“单位名称”列作为单位。" in read.warnings
    assert "“联系电话”列没有导入：已用“手机”列作为手机。" in read.warnings


def test_equal_columns_twice_and_an_unclear_wechat_column_are_refused_together():
    header = ["单位", "姓名", "联系人", "微信", "单位"]
    with pytest.raises(RosterError) as caught:
        read_roster("名单.csv", csv_text([header, ["城关镇", "王芳", "王芳", "x", "城关镇"]]).encode())
    assert caught.value.problems == [
        "第 1 行（表头）“姓名”和“联系人”都是“联络员”列，请只保留一列。",
        "第 1 行（表头）“微信”看不出是微信ID还是微信昵称，请把表头改为“微信ID”或“微信昵称”。",
        "第 1 行（表头）“单位”列出现了两次。",
    ]


# --- 4. every error in one go -----------------------------------------------------------------------------------


def test_five_different_mistakes_are_reported_together_with_rows_columns_and_fixes(tmp_path, engine):
    rows = [
        ["XX区反诈联络员名单"],
        ["单位名称", "类别", "姓名", "微信号", "微信昵称", "手机", "角色"],
        ["城关镇", "镇街", "王芳", "wxid_wf", "王芳", "13800000001", "主"],
        ["东城街道", "乡村", "李强", "wxid_lq", "李强", "", ""],  # 5: bad 类别
        ["西湖镇", "镇街", "", "", "周敏", "", ""],  # 6: no name
        ["区教育局", "区直单位", "孙丽", "", "孙丽", "电话坏了", ""],  # 7: bad phone
        ["区卫健局", "区直单位", "吴刚", "", "吴刚", "", "副"],  # 8: bad role
        ["城关镇", "镇街", "王芳", "", "王芳", "", "备"],  # 9: the same person again
    ]
    data = xlsx(("名单", rows), merge_title=True)
    with pytest.raises(RosterError) as caught:
        read_roster("名单.xlsx", data)
    error = caught.value
    assert error.problems == [
        "第 4 行“类别”为“乡村”，应为：镇街、区直单位、行业 或 其他。",
        "第 5 行“姓名”为空，这一列必须填写。",
        "第 6 行“手机”为“电话坏了”，不是有效的电话号码（只写数字，多个号码用“/”隔开）。",
        "第 7 行“角色”为“副”，应为“主”或“备”（不填即为主）。",
        "第 8 行与第 3 行重复：城关镇 的联络员 王芳 出现了两次。请删掉一行。",
    ]
    text = error.failure()
    assert text.startswith("导入失败，名单没有改动。发现 5 处问题：\n1. 第 4 行")
    assert text.endswith("改正后重新导入。")


def test_a_long_list_of_mistakes_is_cut_with_a_count():
    rows = [HEADER] + [[f"单位{i}", "乡村", f"人{i}"] for i in range(30)]
    with pytest.raises(RosterError) as caught:
        read_roster("名单.csv", csv_text(rows).encode())
    text = caught.value.failure()
    assert "发现 30 处问题" in text and "20. 第 21 行" in text and "21. " not in text
    assert "另有 10 处问题没有列出。" in text
    assert "另有 27 处问题没有列出。" in caught.value.failure(limit=3)


def test_an_empty_unit_below_a_filled_one_hints_at_merged_cells():
    rows = [HEADER, ["城关镇", "镇街", "王芳", "", "王芳"], ["", "", "赵磊", "", "赵磊"]]
    with pytest.raises(RosterError, match="第 3 行“单位”为空，这一列必须填写（如果是合并单元格"):
        read_roster("名单.csv", csv_text(rows).encode())


def test_a_liaison_with_two_ids_or_one_id_for_two_people_is_an_error():
    rows = [HEADER, ["城关镇", "镇街", "王芳", "wxid_1", "王芳"], ["东城街道", "镇街", "李强", "wxid_1", "李强"]]
    with pytest.raises(RosterError, match="第 3 行“微信ID”与第 2 行相同，但联络员不同（王芳、李强）"):
        read_roster("名单.csv", csv_text(rows).encode())


# --- 5. warnings -------------------------------------------------------------------------------------------------


def test_warnings_for_the_unrecognisable_a_shared_id_and_two_kinds_and_the_import_goes_ahead(engine):
    rows = [
        HEADER,
        ["城关镇", "镇街", "王芳", "wxid_wf", "王芳", "", "主"],
        ["城关镇", "区直单位", "赵磊", "", "", "", "备"],  # no id, no nickname; another 类别
        ["东城街道", "", "王芳", "wxid_wf", "王芳", "", ""],  # the same person in two units
    ]
    read = read_roster("名单.csv", csv_text(rows).encode())
    assert read.warnings == [
        "城关镇 的类别前后不一：镇街（第 2 行）、区直单位（第 3 行），按“镇街”导入。",
        "微信ID wxid_wf 出现在 2 个单位：城关镇（第 2 行）、东城街道（第 4 行）。同一人兼任时可以这样填；填错了请改正后重新导入。",
    ]
    assert {r.kind for r in read.rows if r.unit == "城关镇"} == {"镇街"}
    with session(engine) as s:
        report = import_roster(s, read.rows, columns=read.columns)
        s.commit()
    lines = outcome_lines(read, report, preview=False)
    assert (
        "  - 1 位联络员既没有微信ID也没有微信昵称，机器人认不出他们：城关镇-赵磊（第 3 行）。请补上其中一项再导入。"
        in lines
    )
    with session(engine) as s:
        assert len(s.exec(select(Liaison)).all()) == 3
        # Learned in a group since: no longer warned about.
        zhao = s.exec(select(Liaison).where(Liaison.name == "赵磊")).one()
        zhao.contact_id = "wxid_learned"
        s.add(zhao)
        s.commit()
    with session(engine) as s:
        assert import_roster(s, read.rows, columns=read.columns).unrecognisable == []


def test_spaces_inside_chinese_names_are_removed_and_said_and_match_the_stored_name(engine):
    assert tidy_name("王  芳") == "王芳" and tidy_name("城关 镇") == "城关镇" and tidy_name("Li  Ming") == "Li Ming"
    assert tidy_name("+86 区反诈中心") == "+86 区反诈中心"
    with session(engine) as s:  # stored before names were tidied, with the id the bot learned
        unit = Unit(name="城关镇", kind="镇街")
        s.add(unit)
        s.flush()
        s.add(Liaison(unit_id=unit.id, name="王 芳", contact_id="wxid_learned", wechat_name="王芳"))
        s.commit()
    rows = [HEADER, ["城关 镇", "镇街", "王  芳", "", "王芳"], ["东城街道", "镇街", "王芳", "", "王芳"]]
    read = read_roster("名单.csv", csv_text(rows).encode())
    assert [(r.unit, r.name) for r in read.rows] == [("城关镇", "王芳"), ("东城街道", "王芳")]
    assert "去掉了名字里多余的空格：城关 镇→城关镇（第 2 行）、王  芳→王芳（第 2 行）" in read.notes
    with session(engine) as s:
        report = import_roster(s, read.rows, columns=read.columns)
        s.commit()
    assert report.updated == ["城关镇-王芳（姓名 王 芳→王芳）"] and report.removed_liaisons == []
    with session(engine) as s:
        assert s.exec(select(Liaison).where(Liaison.unit_id == unit.id)).one().contact_id == "wxid_learned"
    doubled = [HEADER, ["城关镇", "镇街", "王芳", "", "王芳"], ["城关镇", "镇街", "王 芳", "", "王芳"]]
    with pytest.raises(RosterError, match="第 3 行与第 2 行重复：城关镇 的联络员 王芳 出现了两次"):
        read_roster("名单.csv", csv_text(doubled).encode())


def test_columns_the_file_lacks_keep_what_was_stored(engine):
    full = read_roster("名单.csv", csv_text([HEADER, *ROWS]).encode())
    with session(engine) as s:
        import_roster(s, full.rows, columns=full.columns)
        s.commit()
    short = read_roster("名单.csv", csv_text([["单位", "联络员"], *[[r[0], r[2]] for r in ROWS]]).encode())
    with session(engine) as s:
        report = import_roster(s, short.rows, columns=short.columns)
        s.commit()
    assert report.lines() == ["名单没有变化（3 人）"]
    with session(engine) as s:
        zhao = s.exec(select(Liaison).where(Liaison.name == "赵磊")).one()
        assert (zhao.role, zhao.wechat_name, zhao.phone) == ("备", "赵磊", "13800000002")
        assert s.exec(select(Unit).where(Unit.name == "区教育局")).one().kind == "区直单位"


# --- telling a roster from the incident figures --------------------------------------------------------------


def test_a_roster_is_told_from_an_incident_file_by_its_header():
    assert is_roster(
        "名单.xlsx", xlsx(("Sheet1", [["XX区名单"], ["单位名称", "姓名", "微信号"], ["城关镇", "王芳", ""]]))
    )
    assert is_roster("名单.csv", csv_text([HEADER, *ROWS]).encode("gbk"))
    incidents = [["镇街", "周期", "案件类型", "警情数"], ["城关镇", "2026-W47", "刷单", 3]]
    assert not is_roster("警情.xlsx", xlsx(("Sheet1", incidents)))
    assert not is_roster("警情.csv", csv_text(incidents).encode())
    assert not is_roster("坏.xlsx", b"PK\x03\x04 broken")


def test_a_workbook_forging_many_huge_merged_ranges_costs_little():
    from tests.hardening_strategies import replace_member

    wb = Workbook()
    wb.active.append(HEADER)
    wb.active.append(ROWS[0])
    out = io.BytesIO()
    wb.save(out)
    merges = b"".join(b'<mergeCell ref="A1:XFD1048576"/>' for _ in range(20_000))
    sheet = (
        b'<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>'
        b'<row r="1"><c r="A1" t="inlineStr"><is><t>x</t></is></c></row></sheetData>'
        b'<mergeCells count="20000">' + merges + b"</mergeCells></worksheet>"
    )
    data = replace_member(out.getvalue(), "xl/worksheets/sheet1.xml", sheet)
    with pytest.raises(RosterError):  # no header: the point is that it returns, quickly, in Chinese
        read_roster("名单.xlsx", data)


def test_a_preview_reports_exactly_what_the_import_then_does_and_touches_nothing(engine):
    first = read_roster(
        "名单.csv", csv_text([HEADER, *ROWS, ["金融行业", "行业", "郑洁", "", "郑洁", "", ""]]).encode()
    )
    with session(engine) as s:
        import_roster(s, first.rows, columns=first.columns)
        s.commit()
    changed = [
        HEADER,
        ["城关 镇", "区直单位", "王 芳", "wxid_wf", "王芳（新）", "13800000001", "主"],
        ["区教育局", "区直单位", "孙丽", "wxid_sl", "孙丽", "", ""],
        ["南山镇", "镇街", "王芳", "", "王芳", "", ""],
        ["北山镇", "镇街", "王芳", "", "", "", ""],
    ]
    second = read_roster("名单.csv", csv_text(changed).encode())
    with session(engine) as s:
        planned = import_roster(s, second.rows, columns=second.columns, apply=False)
        assert not s.new and not s.dirty and not s.deleted
        done = import_roster(s, second.rows, columns=second.columns)
        s.commit()
    assert planned == done
    assert done.added_units == ["南山镇", "北山镇"] and done.deactivated_units == ["金融行业"]
    assert done.removed_liaisons == ["城关镇-赵磊", "金融行业-郑洁"]
    assert done.unrecognisable == ["北山镇-王芳（第 5 行）"]


def test_a_visible_roster_sheet_is_read_before_a_hidden_old_one():
    wb = Workbook()
    old = wb.active
    old.title = "旧名单"
    old.append(HEADER)
    old.append(["旧镇", "镇街", "钱多", "", "钱多"])
    old.sheet_state = "hidden"
    new = wb.create_sheet("名单")
    new.append(HEADER)
    new.append(ROWS[0])
    out = io.BytesIO()
    wb.save(out)
    read = read_roster("名单.xlsx", out.getvalue())
    assert [r.unit for r in read.rows] == ["城关镇"] and read.sheet == "名单"
