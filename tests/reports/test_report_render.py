"""Report as .xlsx and PNG: contents read back, formula-like text kept inert, Chinese drawn with a CJK font."""

from __future__ import annotations

import io
import warnings
import zipfile
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import matplotlib
import openpyxl
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ft2font import FT2Font
from PIL import Image

from bot.reports import render as report_render
from bot.reports.figures import CorrectionRow, PushRow, Report, UnitRow
from bot.reports.render import CJKFontMissing, cjk_font_path, render_chart, render_xlsx

TZ = ZoneInfo("Asia/Shanghai")
HYPERLINK = '=HYPERLINK("http://x")'
LONG_NAME = "区市场监督管理局城关分局第一监管所综合执法队"


def unit(
    name: str,
    rank: int,
    *,
    on_time: int,
    late: int,
    missed: int,
    median: float | None,
    level: str = "",
    added: int = 0,
    exempted: int = 0,
) -> UnitRow:
    return UnitRow(
        unit=name,
        kind="镇街",
        received=on_time + late + missed,
        relayed=on_time + late,
        on_time=on_time,
        late=late,
        missed=missed,
        median_minutes=median,
        level=level,
        rank=rank,
        added=added,
        exempted=exempted,
    )


def make_report(units: list[UnitRow] | None = None) -> Report:
    if units is None:
        units = [
            unit("城关镇", 1, on_time=4, late=0, missed=0, median=12.5),
            unit(LONG_NAME, 2, on_time=3, late=1, missed=0, median=30.25, added=1, exempted=1),
            unit("+86", 3, on_time=2, late=1, missed=1, median=95.0, level="提醒"),
            unit(HYPERLINK, 4, on_time=0, late=0, missed=4, median=None, level="约谈"),
            unit("$\\notacommand$镇", 5, on_time=1, late=0, missed=3, median=8.0),  # "$" must not be parsed as TeX
        ]
    return Report(
        kind="week",
        title="反诈预警转发周通报（2026年11月23日—11月29日）",
        period_start=date(2026, 11, 23),
        period_end=date(2026, 11, 29),
        generated_at=datetime(2026, 11, 30, 1, 0, tzinfo=UTC),
        units=units,
        pushes=[
            PushRow(
                n=7,
                title="=1+1 冒充客服退款新骗局",
                pushed_at=datetime(2026, 11, 26, 1, 0, tzinfo=UTC),
                deadline=datetime(2026, 11, 26, 10, 0, tzinfo=UTC),
                confirmed=3,
                total=5,
                missing_units=[HYPERLINK, "+86"],
                added_units=[LONG_NAME],
                exempted_units=["城关镇"],
            ),
            PushRow(
                n=8,
                title="刷单返利提醒",
                pushed_at=datetime(2026, 11, 27, 9, 30, tzinfo=TZ),
                deadline=datetime(2026, 11, 27, 18, 0, tzinfo=TZ),
                confirmed=5,
                total=5,
                missing_units=[],
            ),
        ],
        red=["城关镇", LONG_NAME],
        black=[HYPERLINK],
        escalations={"提醒": ["+86"], "约谈": [HYPERLINK]},
        corrections=[
            CorrectionRow(7, LONG_NAME, "补登", "电话确认", "陈静", datetime(2026, 11, 26, 11, 0, tzinfo=UTC)),
            CorrectionRow(7, "城关镇", "免转", "=不涉及", "admin-chen", datetime(2026, 11, 26, 11, 5, tzinfo=TZ)),
            CorrectionRow(8, "+86", "撤销", "", "陈静", datetime(2026, 11, 27, 12, 0, tzinfo=TZ)),
        ],
    )


@pytest.fixture(scope="module")
def workbook() -> tuple[bytes, openpyxl.Workbook]:
    data = render_xlsx(make_report(), TZ)
    return data, openpyxl.load_workbook(io.BytesIO(data))


def rows(ws) -> list[list]:
    return [[c.value for c in row] for row in ws.iter_rows()]


def test_xlsx_sheets_headers_and_layout(workbook):
    _, wb = workbook
    assert wb.sheetnames == ["单位排名", "推送明细", "红黑榜", "升级名单", "截图核验", "更正记录"]
    assert wb.properties.title == "反诈预警转发周通报（2026年11月23日—11月29日）"
    headers = {
        "单位排名": [
            "排名",
            "单位",
            "类别",
            "收到",
            "已转发",
            "按时",
            "迟报",
            "未转发",
            "按时率",
            "转发用时中位数(分钟)",
            "当前等级",
            "其中补登",
            "免转",
            "覆盖人数",
        ],
        "推送明细": ["编号", "标题", "推送时间", "截止时间", "已确认", "总数", "未确认单位", "补登单位", "免转单位"],
        "红黑榜": ["红榜", "红榜名次", "黑榜", "黑榜名次"],
        "升级名单": ["等级", "单位"],
        "更正记录": ["编号", "单位", "类型", "理由", "操作人", "时间"],
    }
    for name, header in headers.items():
        ws = wb[name]
        assert [c.value for c in ws[1]] == header
        assert all(c.font.bold for c in ws[1])
        assert ws.freeze_panes == "A2"
        # The 红黑榜's rule line is under its lists, outside the filter: two units on the longer list.
        last = 3 if name == "红黑榜" else ws.max_row
        assert ws.auto_filter.ref == f"A1:{openpyxl.utils.get_column_letter(len(header))}{last}"


def test_xlsx_unit_ranking_values(workbook):
    _, wb = workbook
    ws = wb["单位排名"]
    table = rows(ws)
    assert table[1] == [1, "城关镇", "镇街", 4, 4, 4, 0, 0, 1, 12.5, None, None, None, None]  # no 补登/免转/覆盖: blank
    assert table[2][:9] == [2, LONG_NAME, "镇街", 4, 4, 3, 1, 0, 0.75]
    assert table[2][11:] == [1, 1, None]
    assert table[2][9] == pytest.approx(30.2, abs=0.051)  # one decimal is enough for minutes
    assert table[4][9] is None and table[4][10] == "约谈"  # nothing relayed: blank median, never "None"
    for row in ws.iter_rows(min_row=2):
        assert all(isinstance(c.value, (int, float)) for c in row[:1] + row[3:9])
        assert row[8].number_format == "0.0%"
    # Column widths count Chinese characters as two and follow the longest text.
    widths = {k: v.width for k, v in ws.column_dimensions.items()}
    assert widths["B"] >= 2 * len(LONG_NAME)
    assert widths["B"] > widths["C"] > 0
    assert widths["J"] >= 2 * len("转发用时中位数") and max(widths.values()) <= 60


def test_xlsx_pushes_red_black_and_escalations(workbook):
    _, wb = workbook
    assert rows(wb["推送明细"])[1:] == [
        [
            "#7",
            "'=1+1 冒充客服退款新骗局",
            "2026-11-26 09:00",
            "2026-11-26 18:00",
            3,
            5,
            "'" + HYPERLINK + "、+86",
            LONG_NAME,
            "城关镇",
        ],
        ["#8", "刷单返利提醒", "2026-11-27 09:30", "2026-11-27 18:00", 5, 5, None, None, None],
    ]
    assert rows(wb["更正记录"])[1:] == [
        ["#7", LONG_NAME, "补登", "电话确认", "陈静", "2026-11-26 19:00"],
        ["#7", "城关镇", "免转", "'=不涉及", "admin-chen", "2026-11-26 11:05"],
        ["#8", "'+86", "撤销", None, "陈静", "2026-11-27 12:00"],
    ]
    boards = rows(wb["红黑榜"])
    assert boards[1:3] == [["城关镇", 1, "'" + HYPERLINK, 4], [LONG_NAME, 2, None, None]]
    assert boards[3] == [None] * 4  # an empty row, then the rule the lists follow
    assert boards[4][0].startswith("排名规则：按时率高者在前") and boards[4][1:] == [None] * 3
    assert rows(wb["升级名单"])[1:] == [["提醒", "'+86"], ["约谈", "'" + HYPERLINK]]


def test_xlsx_user_text_is_never_a_formula(workbook):
    data, wb = workbook
    seen = 0
    for ws in wb:
        for row in ws.iter_rows():
            for c in row:
                if isinstance(c.value, str):
                    assert c.data_type == "s"
                    assert not c.value.startswith(("=", "+", "-", "@", "\t", "\r"))
                    seen += c.value.startswith("'")
    assert seen == 9  # seven in the ranking, pushes and boards; "=不涉及" and "+86" in 更正记录
    # Nothing in the file itself is a formula element, whatever a reader library makes of it.
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        for name in z.namelist():
            if name.startswith("xl/worksheets/"):
                assert b"<f>" not in z.read(name) and b"<f " not in z.read(name)


def test_xlsx_other_dangerous_starts_and_control_characters():
    names = ["-5", "@all", "\tx", "\ry", "a\x07b"]
    units = [unit(name, i + 1, on_time=1, late=0, missed=0, median=1.0) for i, name in enumerate(names)]
    ws = openpyxl.load_workbook(io.BytesIO(render_xlsx(make_report(units), TZ)))["单位排名"]
    assert [ws.cell(row=r, column=2).value for r in range(2, 7)] == ["'-5", "'@all", "'\tx", "'\ry", "ab"]


def png_size(data: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(data)) as img:
        img.verify()
        assert img.format == "PNG"
        return img.size


@pytest.mark.parametrize("n, height", [(0, 600), (3, 600), (30, 200 + 36 * 30)])
def test_chart_pixel_size(n, height):
    units = [unit(f"第{i}号单位", i + 1, on_time=3, late=i % 2, missed=i % 3, median=10.0) for i in range(n)]
    assert png_size(render_chart(make_report(units))) == (1200, height)


def test_chart_draws_bars_in_all_three_colours():
    with Image.open(io.BytesIO(render_chart(make_report()))) as img:
        colours = {rgb for _, rgb in img.convert("RGB").getcolors(maxcolors=1 << 20)}
    for hex_colour in ("#2e7d32", "#f9a825", "#c62828"):
        assert tuple(int(hex_colour[i : i + 2], 16) for i in (1, 3, 5)) in colours


def test_chart_uses_a_cjk_font_for_every_chinese_label():
    before = dict(matplotlib.rcParams)
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=r"Glyph .* missing", category=UserWarning)
        render_chart(make_report())
        render_chart(make_report([]))  # 本期无数据
    assert dict(matplotlib.rcParams) == before  # no global settings left behind
    path = cjk_font_path()
    assert path.is_file()
    charmap = FT2Font(str(path)).get_charmap()
    assert all(ord(ch) in charmap for ch in "镇街按时迟报未转发本期无数据")


def test_missing_glyph_check_does_catch_a_font_without_chinese():
    # Control: the warning the test above turns into an error is really emitted when a CJK font is not used.
    fig = Figure()
    FigureCanvasAgg(fig)
    fig.text(0.5, 0.5, "城关镇", family="DejaVu Sans")
    with pytest.warns(UserWarning, match=r"Glyph .* missing"):
        fig.canvas.draw()


def test_chart_without_the_font_package_fails_loudly(monkeypatch):
    monkeypatch.setattr(report_render, "_FONT_FILE", "NoSuchFont.otf")
    with pytest.raises(CJKFontMissing, match="mplfonts"):
        render_chart(make_report())
