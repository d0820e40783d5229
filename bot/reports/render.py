"""Renders a Report as an Excel workbook and as a PNG bar chart."""

from __future__ import annotations

import dataclasses
import functools
import importlib.util
import io
import threading
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from itertools import zip_longest
from pathlib import Path
from zoneinfo import ZoneInfo

from matplotlib import font_manager
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from matplotlib.ticker import MaxNLocator
from openpyxl import Workbook
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter

from bot.content import Texts, load_texts
from bot.reports.figures import QuarterTrend, Report
from bot.reports.text import rule_line

# The font comes from a pip package so that a machine set up with pip alone can draw Chinese;
# system font packages (fonts-noto-cjk) are not there on such a machine.
_FONT_PACKAGE = "mplfonts"
_FONT_FILE = "NotoSansCJKsc-Regular.otf"

_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_MAX_CELL_CHARS = 32767  # Excel's limit; longer text makes Excel "repair" the file
_MAX_COL_WIDTH = 60
_TIME_FORMAT = "%Y-%m-%d %H:%M"

DPI = 100
WIDTH_PX = 1200
TOP_PX = 130  # title and legend
BOTTOM_PX = 70  # x axis and its label
BAR_PX = 36
MIN_HEIGHT_PX = 600
_MAX_LABEL_WIDTH = 24  # display width (wide chars count 2) of a unit label before it is cut with …
# At most this many bars: with more units the chart shows the lowest-ranked ones and says so in its title
# (300 bars made an 11 000-pixel image nobody can read on a phone); the .xlsx always lists every unit.
MAX_CHART_UNITS = 30
_COLORS = {"按时": "#2e7d32", "迟报": "#f9a825", "未转发": "#c62828"}

# matplotlib's font caches are shared by all figures and not documented as thread-safe.
RENDER_LOCK = threading.Lock()


class CJKFontMissing(RuntimeError):
    """No CJK font to draw Chinese text with; charts would show empty boxes."""


def cjk_font_path() -> Path:
    """The Noto Sans CJK SC font file (from the mplfonts package) used for charts."""
    # find_spec locates the files without importing mplfonts, whose functions copy fonts into matplotlib's install.
    spec = importlib.util.find_spec(_FONT_PACKAGE)
    if spec is not None and spec.submodule_search_locations:
        for folder in spec.submodule_search_locations:
            path = Path(folder) / "fonts" / _FONT_FILE
            if path.is_file():
                return path
    raise CJKFontMissing(
        f"CJK font {_FONT_FILE} not found: install the {_FONT_PACKAGE} package "
        "(pip install -e . installs the pinned version); without it Chinese text in charts is drawn as empty boxes"
    )


@functools.cache
def _registered_family(path: Path) -> str:
    font_manager.fontManager.addfont(str(path))
    family = FontProperties(fname=path).get_name()
    try:
        font_manager.findfont(FontProperties(family=family), fallback_to_default=False)
    except ValueError as exc:
        raise CJKFontMissing(f"matplotlib cannot use the CJK font {path}: {exc}") from exc
    return family


def cjk_font(size: float) -> FontProperties:
    # DejaVu Sans second: matplotlib falls back per glyph, for the odd symbol the CJK font lacks.
    return FontProperties(family=[_registered_family(cjk_font_path()), "DejaVu Sans"], size=size)


def _display_width(text: str) -> int:
    if text.isascii():
        return len(text)  # no ASCII character is wide
    if len(text) <= 40:
        return _short_width(text)
    return sum(2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1 for ch in text)


@functools.lru_cache(maxsize=2048)  # the same unit names and verdicts fill thousands of cells
def _short_width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1 for ch in text)


# --- Excel -------------------------------------------------------------------------------------------------


def _text(value: str) -> str:
    """User text made safe for a cell: no characters XML forbids, never read as a formula."""
    value = ILLEGAL_CHARACTERS_RE.sub("", value)
    if value.startswith(_FORMULA_STARTS):
        # Also guards against the sheet being re-saved as CSV, where the string type is lost.
        value = "'" + value
    return value[:_MAX_CELL_CHARS]  # cut after the quote is added, which would otherwise make one too many


def _shown(value: float, number_format: str | None) -> str:
    """Roughly what Excel displays for a number, to size its column."""
    if number_format == "0.0%":
        return f"{value:.1%}"
    return f"{value:.1f}" if isinstance(value, float) else str(value)


def cell_text(value: str) -> str:
    """User text as a cell holds it (no XML-forbidden characters, never a formula); for streamed sheets."""
    return _text(value)


def shown_width(value: object, number_format: str | None) -> int:
    """The display width of a cell's value as Excel shows it, to size its column; for streamed sheets."""
    return _display_width(value if isinstance(value, str) else _shown(value, number_format))  # type: ignore[arg-type]


MAX_COL_WIDTH = _MAX_COL_WIDTH


def add_sheet(
    wb: Workbook, title: str, header: Sequence[str], rows: Iterable[Sequence], formats: dict[int, str]
) -> None:
    """One sheet: bold frozen header, auto-filter, columns as wide as their text. Blank cells stay blank."""
    ws = wb.create_sheet(title)
    header = [_text(h) for h in header]  # user text too: the incident sheet has a column per case type in the file
    ws.append(header)
    for cell in ws[1]:
        cell.font = Font(bold=True)
    widths = [_display_width(h) for h in header]
    for r, row in enumerate(rows, start=2):
        for c, value in enumerate(row, start=1):
            if value is None or value == "":
                continue  # blank, not "": Excel's COUNTA and ISBLANK treat "" as content
            cell = ws.cell(row=r, column=c)
            if isinstance(value, str):
                cell.value = _text(value)
                cell.data_type = "s"  # belt and braces: openpyxl must never store it as a formula
                shown = cell.value
            else:
                cell.value = value
                shown = _shown(value, formats.get(c))
            if c in formats:
                cell.number_format = formats[c]
            widths[c - 1] = max(widths[c - 1], _display_width(shown))
    for c, width in enumerate(widths, start=1):
        ws.column_dimensions[get_column_letter(c)].width = min(width + 2, _MAX_COL_WIDTH)
    ws.freeze_panes = "A2"
    ws.auto_filter.ref = f"A1:{get_column_letter(len(header))}{ws.max_row}"


def render_xlsx(report: Report, tz: ZoneInfo, texts: Texts | None = None) -> bytes:
    """The report as an .xlsx: sheets 单位排名, 推送明细, 红黑榜, 升级名单, 截图核验, 更正记录 (补登/撤销/免转),
    each with a header in row 1. Ranks are shared by tied units (1, 2, 2, 4), as in the text."""
    wb = Workbook()
    wb.remove(wb.active)
    wb.properties.title = ILLEGAL_CHARACTERS_RE.sub("", report.title)
    wb.properties.subject = f"{report.period_start.isoformat()} — {report.period_end.isoformat()}"
    wb.properties.creator = "relaybot"

    if report.trend is not None:
        _add_trend_sheet(wb, report.trend)
    add_sheet(
        wb,
        "单位排名",
        [
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
        (
            (
                u.rank,
                u.unit,
                u.kind,
                u.received,
                u.relayed,
                u.on_time,
                u.late,
                u.missed,
                u.on_time_rate,
                None if u.median_minutes is None else round(float(u.median_minutes), 1),
                u.level,
                u.added or None,
                u.exempted or None,
                u.reached or None,
            )
            for u in report.units
        ),
        {9: "0.0%", 10: "0.0"},
    )
    add_sheet(
        wb,
        "推送明细",
        ["编号", "标题", "推送时间", "截止时间", "已确认", "总数", "未确认单位", "补登单位", "免转单位"],
        (
            (
                f"#{p.n}",
                p.title,
                p.pushed_at.astimezone(tz).strftime(_TIME_FORMAT),
                p.deadline.astimezone(tz).strftime(_TIME_FORMAT),
                p.confirmed,
                p.total,
                "、".join(p.missing_units),
                "、".join(p.added_units),
                "、".join(p.exempted_units),
            )
            for p in report.pushes
        ),
        {},
    )
    _add_boards(wb, report, texts or load_texts())
    add_sheet(
        wb,
        "升级名单",
        ["等级", "单位"],
        ((level, unit) for level, units in report.escalations.items() for unit in units),
        {},
    )
    add_sheet(
        wb,
        "截图核验",
        ["编号", "单位", "核验结果", "原因"],
        ((f"#{e.n}", e.unit, e.verdict or "待核验", e.reason) for e in report.evidence),
        {},
    )
    add_sheet(
        wb,
        "更正记录",
        ["编号", "单位", "类型", "理由", "操作人", "时间"],
        (
            (f"#{c.n}", c.unit, c.kind, c.reason, c.by, c.at.astimezone(tz).strftime(_TIME_FORMAT))
            for c in report.corrections
        ),
        {},
    )
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


TREND_SHEET = "季度趋势"
TREND_HEADER = [
    "排名",
    "单位",
    "类别",
    "本季收到",
    "本季按时",
    "本季未转发",
    "本季按时率",
    "上季收到",
    "上季按时",
    "上季未转发",
    "上季按时率",
    "变化(百分点)",
    "趋势",
]


def _add_trend_sheet(wb: Workbook, trend: QuarterTrend) -> None:
    """The quarterly review's sheet: every unit's quarter and the one before, the change and its arrow."""
    add_sheet(
        wb,
        TREND_SHEET,
        TREND_HEADER,
        (
            (
                r.rank,
                r.unit,
                r.kind,
                r.received,
                r.on_time,
                r.missed,
                r.rate,
                r.previous_received,
                r.previous_on_time,
                r.previous_missed,
                r.previous_rate,
                r.change,
                r.trend,
            )
            for r in trend.rows
        ),
        {7: "0.0%", 11: "0.0%", 12: "0.0"},
    )


def _add_boards(wb: Workbook, report: Report, texts: Texts) -> None:
    """The 红黑榜 sheet: every unit on each list with its rank (a tie at a list's end in full, though the chat
    text may only count it), and under the lists what is empty and the rule they follow."""
    ranks = {u.unit: u.rank for u in report.units}
    add_sheet(
        wb,
        "红黑榜",
        ["红榜", "红榜名次", "黑榜", "黑榜名次"],
        (
            (red, ranks.get(red) if red else None, black, ranks.get(black) if black else None)
            for red, black in zip_longest(report.red, report.black, fillvalue="")
        ),
        {},
    )
    ws = wb["红黑榜"]
    notes = []
    if report.pushes and not report.red:
        notes.append(texts.t("rank.red_none"))
    if report.pushes and not report.black:
        notes.append(texts.t("rank.black_none"))
    notes.append(rule_line(texts))
    # Below the lists and outside the auto-filter's range (set by add_sheet), after one empty row.
    row = ws.max_row + 2
    for note in notes:
        ws.cell(row=row, column=1, value=_text(note)).data_type = "s"
        row += 1


# --- Chart -------------------------------------------------------------------------------------------------


def short_label(unit: str) -> str:
    if _display_width(unit) <= _MAX_LABEL_WIDTH:
        return unit
    cut = ""
    for ch in unit:
        if _display_width(cut + ch) > _MAX_LABEL_WIDTH - 1:
            break
        cut += ch
    return cut + "…"


def chart_subset(report: Report) -> Report:
    """The report as charted: all units, or the MAX_CHART_UNITS lowest-ranked ones with a title saying so."""
    total = len(report.units)
    if total <= MAX_CHART_UNITS:
        return report
    title = f"{report.title}\n排名最后的 {MAX_CHART_UNITS} 个单位（共 {total} 个，全部单位见表格）"
    return dataclasses.replace(report, title=title, units=report.units[-MAX_CHART_UNITS:])


def render_chart(report: Report) -> bytes:
    """PNG of on-time/late/missed per unit, best on top: 1200 x max(600, 200 + 36 * units) px at 100 dpi,
    with at most MAX_CHART_UNITS units (see chart_subset)."""
    if report.trend is not None:
        return render_trend_chart(report)
    report = chart_subset(report)
    return _chart_png(
        report.title,
        len(report.units),
        lambda fig, canvas, height_px, label_font, small_font: _draw_bars(
            fig, canvas, report, height_px, label_font, small_font
        ),
    )


def _chart_png(title: str, n: int, draw: Callable[..., None]) -> bytes:
    """A chart of `n` units as PNG: WIDTH_PX x max(MIN_HEIGHT_PX, TOP_PX + BOTTOM_PX + BAR_PX * n) px, the title on
    top, "本期无数据" when n is 0, else `draw(fig, canvas, height_px, label_font, small_font)` fills it."""
    height_px = max(MIN_HEIGHT_PX, TOP_PX + BOTTOM_PX + BAR_PX * n)
    with RENDER_LOCK:
        title_font, label_font, small_font = cjk_font(16), cjk_font(11), cjk_font(10)
        # Figure + Agg canvas directly, not pyplot: no global figure registry or backend switch.
        fig = Figure(figsize=(WIDTH_PX / DPI, height_px / DPI), dpi=DPI)
        canvas = FigureCanvasAgg(fig)
        # parse_math=False: a "$" in a user-typed title or unit name must not be read as TeX.
        fig.suptitle(title, fontproperties=title_font, parse_math=False, y=1 - 20 / height_px, va="top")
        if not n:
            fig.text(0.5, 0.5, "本期无数据", fontproperties=cjk_font(20), ha="center", va="center")
        else:
            draw(fig, canvas, height_px, label_font, small_font)
        out = io.BytesIO()
        # No bbox_inches="tight": it would change the pixel size promised above.
        fig.savefig(out, format="png", dpi=DPI, facecolor="white")
    return out.getvalue()


def _draw_bars(
    fig: Figure,
    canvas: FigureCanvasAgg,
    report: Report,
    height_px: int,
    label_font: FontProperties,
    small_font: FontProperties,
) -> None:
    units = report.units
    labels = [short_label(u.unit) for u in units]
    # Left margin from the widest label as actually laid out, so long names are neither clipped nor wasteful.
    renderer = canvas.get_renderer()
    widest = max(renderer.get_text_width_height_descent(s, label_font, ismath=False)[0] for s in labels)
    left_px = min(max(widest + 20, 80), WIDTH_PX / 2)
    plot_height_px = height_px - TOP_PX - BOTTOM_PX
    ax = fig.add_axes(
        (left_px / WIDTH_PX, BOTTOM_PX / height_px, 1 - (left_px + 40) / WIDTH_PX, plot_height_px / height_px)
    )
    y = range(len(units))
    left = [0] * len(units)
    for name, counts in (
        ("按时", [u.on_time for u in units]),
        ("迟报", [u.late for u in units]),
        ("未转发", [u.missed for u in units]),
    ):
        ax.barh(y, counts, left=left, color=_COLORS[name], label=name, height=0.7)
        left = [a + b for a, b in zip(left, counts, strict=True)]  # one of each per unit
    ax.set_yticks(y, labels, fontproperties=label_font, parse_math=False)
    ax.set_ylim(len(units) - 0.5, -0.5)  # rank 1 on top
    ax.set_xlim(0, max(1, max(left)) * 1.05)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("推送条数", fontproperties=small_font)
    ax.grid(axis="x", alpha=0.3)
    ax.set_axisbelow(True)
    ax.legend(
        prop=small_font,
        ncols=3,
        frameon=False,
        loc="lower right",
        bbox_to_anchor=(1, 1 + 8 / plot_height_px),
    )


# --- The quarterly review's chart --------------------------------------------------------------------------

_TREND_COLORS = {"↑": "#2e7d32", "↓": "#c62828", "持平": "#1565c0", "新": "#1565c0"}
_PREVIOUS_COLOR = "#9e9e9e"


def render_trend_chart(report: Report) -> bytes:
    """PNG of each unit's on-time rate last quarter (grey) and this quarter (green up, red down, blue the same
    or new), joined by a line, best-ranked on top; the same size and unit limit as render_chart (chart_subset)."""
    assert report.trend is not None
    shown = chart_subset(report)
    keep = {u.unit for u in shown.units}
    rows = [r for r in report.trend.rows if r.unit in keep]
    return _chart_png(
        shown.title,
        len(rows),
        lambda fig, canvas, height_px, label_font, small_font: _draw_trend(
            fig, canvas, rows, height_px, label_font, small_font
        ),
    )


def _draw_trend(fig: Figure, canvas: FigureCanvasAgg, rows, height_px: int, label_font, small_font) -> None:
    labels = [short_label(r.unit) for r in rows]
    renderer = canvas.get_renderer()
    widest = max(renderer.get_text_width_height_descent(s, label_font, ismath=False)[0] for s in labels)
    left_px = min(max(widest + 20, 80), WIDTH_PX / 2)
    plot_height_px = height_px - TOP_PX - BOTTOM_PX
    ax = fig.add_axes(
        (left_px / WIDTH_PX, BOTTOM_PX / height_px, 1 - (left_px + 40) / WIDTH_PX, plot_height_px / height_px)
    )
    seen: set[str] = set()
    for y, r in enumerate(rows):
        now = None if r.rate is None else r.rate * 100
        before = None if r.previous_rate is None else r.previous_rate * 100
        if now is not None and before is not None:
            ax.plot([before, now], [y, y], color="#bdbdbd", linewidth=2, zorder=1)
        if before is not None:
            label = "上季度" if "prev" not in seen else None
            seen.add("prev")
            ax.scatter([before], [y], color=_PREVIOUS_COLOR, s=60, zorder=2, label=label)
        if now is not None:
            key = r.trend
            name = {"↑": "本季度（上升）", "↓": "本季度（下降）"}.get(key, "本季度（持平或无上季数据）")
            label = name if name not in seen else None
            seen.add(name)
            ax.scatter([now], [y], color=_TREND_COLORS.get(key, "#1565c0"), s=80, zorder=3, label=label)
    ax.set_yticks(range(n := len(rows)), labels, fontproperties=label_font, parse_math=False)
    ax.set_ylim(n - 0.5, -0.5)  # rank 1 on top
    ax.set_xlim(-2, 102)
    ax.set_xlabel("按时率（%）", fontproperties=small_font)
    ax.grid(axis="x", alpha=0.3)
    ax.set_axisbelow(True)
    ax.legend(
        prop=small_font,
        ncols=4,
        frameon=False,
        loc="lower right",
        bbox_to_anchor=(1, 1 + 8 / plot_height_px),
    )
