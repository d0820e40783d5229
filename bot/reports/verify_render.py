"""The 回访核查 record as an .xlsx the unit's written explanation can be based on."""

from __future__ import annotations

import io
from zoneinfo import ZoneInfo

from openpyxl import Workbook
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.styles import Alignment, Font
from openpyxl.utils import get_column_letter

from bot.content import Texts, load_texts
from bot.reports.render import _display_width, _text
from bot.reports.verify import UnitRecord, VerifyState, method_name, period_text, verdict_text

HEADER = [
    "编号",
    "标题",
    "推送时间",
    "截止时间",
    "状态",
    "确认时间",
    "确认人",
    "确认方式",
    "截图核验",
    "说明",
]
_TIME = "%Y-%m-%d %H:%M"
_MAX_WIDTH = 50
HEADER_ROW = 4  # row 1 the title, 2 the window and when it was made, 3 the counts


def render_record_xlsx(record: UnitRecord, texts: Texts | None = None) -> bytes:
    """One sheet 核查记录: a title row naming the unit, the window and when it was made, the counts, then one row
    per push under a frozen header."""
    texts = texts or load_texts()
    tz = ZoneInfo(record.tz_key)
    wb = Workbook()
    ws = wb.active
    ws.title = "核查记录"
    wb.properties.title = ILLEGAL_CHARACTERS_RE.sub("", record.stem)
    wb.properties.creator = "relaybot"
    last = get_column_letter(len(HEADER))
    title = texts.t("verify.xlsx_title", unit=record.unit, kind=record.unit_kind)
    made = record.made_at.astimezone(tz).strftime(_TIME)
    lines = [
        title,
        texts.t("verify.xlsx_period", period=period_text(texts, record), made=made),
        texts.t(
            "verify.summary",
            sent=len(record.rows),
            on_time=record.count(VerifyState.ON_TIME),
            late=record.count(VerifyState.LATE),
            missed=record.count(VerifyState.MISSED),
            added=record.count(VerifyState.ADDED),
            exempt=record.count(VerifyState.EXEMPT),
        ),
    ]
    for r, line in enumerate(lines, start=1):
        ws.merge_cells(f"A{r}:{last}{r}")
        cell = ws.cell(row=r, column=1, value=_text(line))
        cell.data_type = "s"
        cell.alignment = Alignment(wrap_text=True, vertical="center")
        if r == 1:
            cell.font = Font(bold=True, size=14)
            ws.row_dimensions[r].height = 24
    for c, name in enumerate(HEADER, start=1):
        ws.cell(row=HEADER_ROW, column=c, value=name).font = Font(bold=True)
    widths = [_display_width(h) for h in HEADER]
    for r, row in enumerate(record.rows, start=HEADER_ROW + 1):
        note = row.note
        if row.late:
            note = texts.t("verify.added_late", reason=note) if note else texts.t("verify.added_late_bare")
        values = [
            row.push_id,
            row.title,
            row.pushed_at.astimezone(tz).strftime(_TIME),
            row.deadline.astimezone(tz).strftime(_TIME),
            row.state,
            row.confirmed_at.astimezone(tz).strftime(_TIME) if row.confirmed_at else "",
            row.by,
            method_name(texts, row.method),
            verdict_text(texts, row),
            note,
        ]
        for c, value in enumerate(values, start=1):
            if value == "":
                continue  # blank, not "": Excel's COUNTA and ISBLANK treat "" as content
            cell = ws.cell(row=r, column=c)
            if isinstance(value, str):
                cell.value = _text(value)
                cell.data_type = "s"
            else:
                cell.value = value
            widths[c - 1] = max(widths[c - 1], _display_width(str(cell.value)))
    for c, width in enumerate(widths, start=1):
        ws.column_dimensions[get_column_letter(c)].width = min(width + 2, _MAX_WIDTH)
    ws.freeze_panes = f"A{HEADER_ROW + 1}"
    ws.auto_filter.ref = f"A{HEADER_ROW}:{last}{max(ws.max_row, HEADER_ROW)}"
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()
