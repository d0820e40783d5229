"""Turns domain results into the sentences of content/messages.toml."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

from bot.clock import show
from bot.content import Texts
from bot.domain.incidents import (
    LEVEL_REMIND,
    LEVEL_TALK,
    LEVEL_WRITTEN,
    LEVELS,
    StatsReport,
    checkpoint_lines,
    mom_text,
    yoy_text,
)
from bot.domain.people import Ambiguity, Binding, Claim
from bot.domain.periods import period_label
from bot.domain.relay import Ack, Progress
from bot.reports import text as report_texts
from bot.reports.figures import Report
from bot.storage.models import Alert, ConfirmMethod, PushState

NAME_SEP = "、"
REASON_SHOWN = 20  # characters of a 补登/免转 reason shown in 进度; the whole reason is in 单位 and the 通报


def brief(text: str, limit: int = REASON_SHOWN) -> str:
    """`text` cut to `limit` characters, with … when cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def push_title(alert: Alert) -> str:
    """The title shown for a pushed item."""
    return alert.title or (alert.text.splitlines()[0][:30] if alert.text else "") or alert.link_url or "图片"


# A targeted push names its units in the group when there are at most this many (else it gives their number).
NAMED_UNITS = 10


def push_text(
    texts: Texts,
    *,
    n: int,
    alert: Alert,
    deadline: datetime,
    tz: ZoneInfo,
    target: str = "",
    units: Sequence[str] = (),
    city_no: int | None = None,
) -> str:
    """The text of a push: header, the alert body if it has one, how to confirm and the deadline; a targeted push
    (`target`, aimed at the units named `units`) says whose liaisons are to relay it."""
    parts = [texts.t("push.header", n=n, title=push_title(alert))]
    if city_no is not None:
        parts[0] += texts.t("city.push_tag", city=city_no)
    body = alert.text.strip()
    if body and body != push_title(alert):
        parts.append(body)
    if target:
        who = "、".join(units) if len(units) <= NAMED_UNITS else texts.t("targets.count", units=len(units))
        parts.append(texts.t("targets.footer", n=n, target=target, who=who, deadline=show(deadline, tz)))
    else:
        parts.append(texts.t("push.footer", n=n, deadline=show(deadline, tz)))
    return "\n".join(parts)


def progress_text(texts: Texts, p: Progress, *, now: datetime, tz: ZoneInfo, evidence_required: bool = False) -> str:
    """`进度`: counts, the deadline, and the units that have not confirmed."""
    state = ""
    if p.push.state == PushState.WITHDRAWN.value:
        state = texts.t("progress.state_withdrawn")
    elif now > p.push.deadline:
        state = texts.t("progress.state_overdue")
    lines = [
        texts.t("progress.head", n=p.push.id, title=push_title(p.alert))
        + (texts.t("targets.progress", target=p.push.target) if p.push.target else "")
        + (texts.t("city.push_tag", city=p.push.city_no) if p.push.city_no is not None else ""),
        texts.t(
            "progress.counts",
            done=len(p.confirmed),
            total=p.total,
            late=texts.t("progress.late_part", late=p.late) if p.late else "",
            deadline=show(p.push.deadline, tz),
            state=state,
        ),
    ]
    if p.groups_sent < p.groups_total:
        lines[1] += texts.t("send.delivery", sent=p.groups_sent, total=p.groups_total)
    # Screenshots: an observation in a unit group (已核验 by the bot itself) is no screenshot.
    shots = [
        (u, c) for u, c in p.confirmed if (c.evidence_file or c.verdict) and c.method != ConfirmMethod.OBSERVED.value
    ]
    # A 补登 has no screenshot to miss: the office vouched for it.
    without = [
        u for u, c in p.confirmed if not (c.evidence_file or c.verdict) and c.method != ConfirmMethod.OFFICE.value
    ]
    if shots or (evidence_required and p.confirmed):
        counts = {v: sum(1 for _, c in shots if c.verdict == v) for v in ("已核验", "未核验", "存疑")}
        waiting = sum(1 for _, c in shots if not c.verdict)
        lines.append(
            texts.t(
                "evidence.summary",
                verified=counts["已核验"],
                unverified=counts["未核验"],
                doubtful=counts["存疑"],
                waiting=waiting,
                none=len(without),
            )
        )
        doubtful = [f"{u.name}（{c.verdict_reason}）" for u, c in shots if c.verdict == "存疑"]
        if doubtful:
            lines.append(texts.t("evidence.doubtful", items=NAME_SEP.join(doubtful)))
        if evidence_required and without:
            lines.append(texts.t("evidence.missing", count=len(without), names=NAME_SEP.join(u.name for u in without)))
    if p.added:
        lines.append(
            texts.t(
                "progress.added",
                count=len(p.added),
                items=NAME_SEP.join(f"{u.name}（{brief(c.evidence_text)}）" for u, c in p.added),
            )
        )
    if p.exempted:
        lines.append(
            texts.t(
                "progress.exempted",
                count=len(p.exempted),
                items=NAME_SEP.join(f"{u.name}（{brief(e.reason)}）" for u, e in p.exempted),
            )
        )
    if p.missing:
        lines.append(texts.t("progress.missing", count=len(p.missing), names=NAME_SEP.join(u.name for u in p.missing)))
    else:
        lines.append(texts.t("progress.all_done"))
    return "\n".join(lines)


def ack_text(texts: Texts, ack: Ack) -> str:
    """One acknowledgement for the confirmations a group made during a quiet spell."""
    key = "confirm.ack_late" if ack.late else "confirm.ack"
    return texts.t(
        key, n=ack.push.id, names=NAME_SEP.join(ack.units), count=len(ack.units), done=ack.done, total=ack.total
    )


def ambiguity_text(texts: Texts, amb: Ambiguity, *, room_name: str) -> str:
    """The office notice for a name that could not be bound to one person."""
    if amb.key.startswith("liaison:"):
        return texts.t("groups.ambiguous_member", who=amb.who, unit=NAME_SEP.join(amb.candidates))
    return texts.t("groups.ambiguous", room=room_name, who=amb.who, candidates=NAME_SEP.join(amb.candidates))


def bindings_text(texts: Texts, bindings: list[Binding]) -> str:
    """One office line for everyone recognised by name together: 已认出：赵磊（城关镇）、周敏（西湖镇）."""
    people = NAME_SEP.join(f"{b.name}（{NAME_SEP.join(b.units)}）" for b in bindings)
    return texts.t("groups.recognised", people=people, name=bindings[0].name if len(bindings) == 1 else "姓名")


def claim_text(texts: Texts, claim: Claim, *, room_name: str) -> str:
    """The office notice for a second member matching a roster person already recognised by name."""
    return texts.t("groups.claimed", room=room_name, who=claim.who, name=claim.name, unit=claim.unit)


def report_text(texts: Texts, report: Report) -> str:
    """The short text posted with a report's files: bot/reports/text.py, beside the .xlsx it matches."""
    return report_texts.report_text(texts, report)


# ---- incident figures (警情通报) ------------------------------------------------------------------

_LEVEL_TEXT = {LEVEL_WRITTEN: "stats.level_written", LEVEL_TALK: "stats.level_talk", LEVEL_REMIND: "stats.level_remind"}
_SHOWN_TOWNS = 5


def yoy_total_line(texts: Texts, report: StatsReport) -> str:
    """The district's 同比 line: last year's figure for the same period and the change, or that it is missing."""
    if report.last_year_total is None:
        return texts.t("yoy_stats.total_missing")
    yoy = yoy_text(texts, report.total, report.last_year_total)
    return texts.t("yoy_stats.total", last=report.last_year_total, yoy=yoy)


def stats_report_text(texts: Texts, report: StatsReport) -> str:
    """The 通报 as a short chat message: totals, the leading towns, who is escalated, what to push."""
    t = texts.t
    lines = [t("stats.title", period=period_label(texts, report.period_start, report.period_end))]
    if not report.towns:
        lines.append(t("stats.no_data"))
        return "\n".join(lines)
    change = "" if report.previous_total is None else t("stats.change", previous=report.previous_total)
    lines.append(t("stats.total", total=report.total, change=change))
    lines.append(yoy_total_line(texts, report))
    lines.append(t("stats.ranking_head"))
    # Every town in the top two is shown even when ties push them past the usual five.
    shown = max(_SHOWN_TOWNS, sum(1 for town in report.towns if town.streak))
    for s in report.towns[:shown]:
        line = t("stats.ranking_line", rank=s.rank, town=s.town, count=s.total)
        if report.last_year_period is not None:  # else the line above says once that last year is missing
            mom, yoy = mom_text(texts, s.total, s.previous_total), yoy_text(texts, s.total, s.last_year_total)
            line += t("yoy_stats.town_compare", mom=mom, yoy=yoy)
        lines.append(line)
    lines += checkpoint_lines(texts, report.checkpoint)
    for level in LEVELS:
        if report.escalations.get(level):
            lines.append(t(_LEVEL_TEXT[level], towns="、".join(report.escalations[level])))
    if report.top_types:
        items = "、".join(t("stats.type_item", case_type=c.case_type, count=c.count) for c in report.top_types)
        lines.append(t("stats.top_types", items=items))
    if report.suggestions:
        lines.append(t("stats.suggest", commands="；".join(report.suggestions)))
    return "\n".join(lines)
