"""The incident figures' 通报 as files: an .xlsx (镇街排名, 案件类型, 处置名单) and a bar chart of the towns.

Made where the relay reports' files are made: in the child process of bot/reports/worker.py when the bot posts
them, or here directly by the CLI and tests. Uses render.py's public sizes, fonts and sheet helper.
"""

from __future__ import annotations

import io

from bot.content import Texts, load_texts
from bot.domain.incidents import (
    LEVEL_REMIND,
    LEVEL_TALK,
    LEVEL_WRITTEN,
    LEVELS,
    Checkpoint,
    StatsReport,
    checkpoint_lines,
    checkpoint_rule,
    yoy_ratio,
    yoy_text,
)
from bot.domain.periods import period_label
from bot.reports import render as rr
from bot.reports.render import ILLEGAL_CHARACTERS_RE, add_sheet


def file_stem(texts: Texts, report: StatsReport) -> str:
    """The name the 通报's files share, without the suffix."""
    return f"警情通报（{period_label(texts, report.period_start, report.period_end)}）"


def render_stats_xlsx(report: StatsReport) -> bytes:
    """The report as an .xlsx: sheets 镇街排名, 案件类型, 处置名单, each with a frozen header in row 1."""
    from openpyxl import Workbook

    texts = load_texts()
    t = texts.t
    wb = Workbook()
    wb.remove(wb.active)
    title = t("stats.title", period=period_label(texts, report.period_start, report.period_end))
    wb.properties.title = ILLEGAL_CHARACTERS_RE.sub("", title)
    wb.properties.subject = f"{report.period_start.isoformat()} — {report.period_end.isoformat()}"
    wb.properties.creator = "relaybot"

    types = [c.case_type for c in report.case_types]
    extra = [t("stats.unclassified")] if any(s.unclassified for s in report.towns) else []
    add_sheet(
        wb,
        "镇街排名",
        ["排名", "镇街", "警情数", "上期", "较上期", "去年同期", "同比", "连续前两名(期)", "处置", *types, *extra],
        (
            (
                s.rank,
                s.town,
                s.total,
                s.previous_total,
                None if s.previous_total is None else s.total - s.previous_total,
                s.last_year_total,
                _yoy_cell(texts, s.total, s.last_year_total),
                s.streak or None,
                s.level,
                *(s.by_type.get(c) for c in types),
                *([s.unclassified or None] if extra else []),
            )
            for s in report.towns
        ),
        {5: "+0;-0;0", 7: "+0.0%;-0.0%;0.0%"},
    )
    add_sheet(
        wb,
        "案件类型",
        ["案件类型", "警情数", "占比", "建议推送"],
        (
            (c.case_type, c.count, c.count / report.total if report.total else 0.0, c.suggestion)
            for c in report.case_types
        ),
        {3: "0.0%"},
    )
    add_sheet(
        wb,
        "处置名单",
        ["处置", "镇街", "本期排名", "警情数", "说明"],
        (
            (s.level, s.town, s.rank, s.total, _streak_note(t, s.streak))
            for level in LEVELS
            for s in report.towns
            if s.level == level
        ),
        {},
    )
    if report.checkpoint is not None:
        _add_checkpoint_sheet(wb, texts, report.checkpoint)
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def _yoy_cell(texts: Texts, now: int, last: int | None) -> float | str:
    # A number Excel can sort when there is one; else the words (无去年数据, 去年同期0起), never a made-up 0%.
    ratio = yoy_ratio(now, last)
    return ratio if ratio is not None else yoy_text(texts, now, last)


def _add_checkpoint_sheet(wb, texts: Texts, checkpoint: Checkpoint) -> None:
    """Sheet 节点书面说明: the checkpoint's target and each town to explain in writing, or why none is listed."""
    t = texts.t
    rule = checkpoint_rule(texts, checkpoint)
    rows: list[tuple[str, str | None, str]] = [
        (rule, town, t("yoy_stats.verdict_missed")) for town in checkpoint.missed
    ]
    rows += [(rule, town, t("yoy_stats.verdict_unknown")) for town in checkpoint.unknown]
    if not rows or checkpoint.no_last_year or checkpoint.missing_months:
        rows.append((rule, None, checkpoint_lines(texts, checkpoint)[0]))
    add_sheet(wb, "节点书面说明", ["节点", "镇街", "结论"], rows, {})


def _streak_note(t, streak: int) -> str:
    return t("stats.streak_note", n=streak) if streak > 1 else t("stats.streak_once")


_LEVEL_COLORS = {LEVEL_WRITTEN: "#c62828", LEVEL_TALK: "#ef6c00", LEVEL_REMIND: "#f9a825", "": "#78909c"}


def render_stats_chart(report: StatsReport) -> bytes:
    """PNG bar chart of each town's total, most on top, coloured by escalation: 1200 px wide, like report charts."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    texts = load_texts()
    title = texts.t("stats.chart_title", period=period_label(texts, report.period_start, report.period_end))
    n = len(report.towns)
    height_px = max(rr.MIN_HEIGHT_PX, rr.TOP_PX + rr.BOTTOM_PX + rr.BAR_PX * n)
    with rr.RENDER_LOCK:
        title_font, label_font, small_font = rr.cjk_font(16), rr.cjk_font(11), rr.cjk_font(10)
        fig = Figure(figsize=(rr.WIDTH_PX / rr.DPI, height_px / rr.DPI), dpi=rr.DPI)
        FigureCanvasAgg(fig)
        fig.suptitle(title, fontproperties=title_font, parse_math=False, y=1 - 20 / height_px, va="top")
        if not n:
            empty = texts.t("stats.chart_empty")
            fig.text(0.5, 0.5, empty, fontproperties=rr.cjk_font(20), ha="center", va="center")
        else:
            _draw_town_bars(fig, report, texts, height_px, label_font, small_font)
        out = io.BytesIO()
        fig.savefig(out, format="png", dpi=rr.DPI, facecolor="white")  # no bbox_inches: keeps the pixel size
    return out.getvalue()


def _draw_town_bars(fig, report: StatsReport, texts: Texts, height_px: int, label_font, small_font) -> None:
    from matplotlib.patches import Patch
    from matplotlib.ticker import MaxNLocator

    towns = report.towns
    labels = [rr.short_label(s.town) for s in towns]
    renderer = fig.canvas.get_renderer()
    widest = max(renderer.get_text_width_height_descent(s, label_font, ismath=False)[0] for s in labels)
    left_px = min(max(widest + 20, 80), rr.WIDTH_PX / 2)
    plot_height_px = height_px - rr.TOP_PX - rr.BOTTOM_PX
    width = 1 - (left_px + 60) / rr.WIDTH_PX  # room on the right for the count after the longest bar
    ax = fig.add_axes((left_px / rr.WIDTH_PX, rr.BOTTOM_PX / height_px, width, plot_height_px / height_px))
    y = range(len(towns))
    bars = ax.barh(y, [s.total for s in towns], color=[_LEVEL_COLORS[s.level] for s in towns], height=0.7)
    ax.bar_label(bars, labels=[str(s.total) for s in towns], padding=3, fontproperties=small_font)
    ax.set_yticks(y, labels, fontproperties=label_font, parse_math=False)
    ax.set_ylim(len(towns) - 0.5, -0.5)  # rank 1 on top
    ax.set_xlim(0, max(1, max(s.total for s in towns)) * 1.1)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel(texts.t("stats.chart_xlabel"), fontproperties=small_font)
    ax.grid(axis="x", alpha=0.3)
    ax.set_axisbelow(True)
    present = {s.level for s in towns}
    handles = [Patch(color=_LEVEL_COLORS[level], label=level) for level in LEVELS if level in present]
    if handles:
        handles.append(Patch(color=_LEVEL_COLORS[""], label=texts.t("stats.chart_other")))
        ax.legend(
            handles=handles,
            prop=small_font,
            ncols=len(handles),
            frameon=False,
            loc="lower right",
            bbox_to_anchor=(1, 1 + 8 / plot_height_px),
        )
