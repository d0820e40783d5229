"""The web console's 警情, 审计日志 and 设置 pages (issue 14).

警情: upload the police incident figures (.xlsx/.csv) exactly as the chat and `relaybot stats import` do
(bot/domain/incidents.py: all or nothing, the importer's own Chinese report), audited, the 通报 queued for the office
group as the chat import queues it; then a period's ranking and escalation ladder (the latest by default, any period
with figures picked from a list, ?period=2026-W47), the figures the chat's 警情通报 is made of (build_stats_report),
as tables.

审计日志: the audit log, newest first, 50 a page, filtered by action and by person; long details shortened on the
list, in full (still capped) on one entry's page. Held roster files (their bytes or rows are kept in the detail) are
never printed: only their file name and size.

设置: every setting with its value, read-only; secrets hidden (bot/config.py is_secret_setting): a secret only as
"set" or "not set", a URL in any setting only as its scheme and host (never its password, path or query).
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import func, or_
from sqlmodel import Session, col, select
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from bot.adapters import tables
from bot.chat import compose
from bot.config import Settings, is_secret_setting
from bot.content import AlertLibrary, load_library
from bot.domain import roster as roster_domain
from bot.domain.incidents import (
    LEVELS,
    StatsError,
    StatsReport,
    build_stats_report,
    checkpoint_lines,
    import_stats,
    mom_text,
    parse_period,
    period_code,
    period_label,
    read_stats_bytes,
    yoy_text,
)
from bot.domain.relay import audit, office_group
from bot.operations.reporting import queue_stats_report
from bot.redaction import redact, url_origin
from bot.storage.models import AuditLog, IncidentStat
from bot.transport.base import ChatKind

log = logging.getLogger(__name__)

NAV = [("/incidents", "警情", "incidents"), ("/audit", "审计日志", "audit"), ("/settings", "设置", "settings")]

PER_PAGE = 50
LIST_CHARS = 200  # a detail on the list
DETAIL_CHARS = 5000  # a detail on its own page
FILTER_CHARS = 100
PERIOD_CHARS = 40  # a period in the query string (2026-11-23~2026-11-29 is 21)
# Audit rows whose detail holds a whole uploaded file (base64) or its rows: shown by name and size only.
HELD_ACTIONS = frozenset({"web_roster_held", roster_domain.HELD_ACTION})
_LEVEL_RULES = {"书面说明": "level_written", "约谈": "level_talk", "提醒谈话": "level_remind"}


# ---- 警情 ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Ladder:
    level: str
    rule: str
    towns: list[str]


def _ladder(texts, report: StatsReport) -> list[Ladder]:
    """The plan's three levels, most serious first, with the chat 通报's own wording of each rule."""
    out = []
    for level in LEVELS:
        rule = texts.t(f"stats.{_LEVEL_RULES[level]}", towns="").rstrip("：:").strip()
        out.append(Ladder(level, rule, list(report.escalations.get(level, []))))
    return out


@dataclass(frozen=True)
class Period:
    code: str  # as the query string and the chat's 警情 command write it: 2026-W47, 2026-11, a span of days
    label: str
    start: date
    end: date


def stored_periods(session: Session, texts) -> list[Period]:
    """Every period that has figures, newest first (the one that ends last; the shorter one of two ending the same
    day first, as latest_period picks it)."""
    stmt = (
        select(col(IncidentStat.period_start), col(IncidentStat.period_end))
        .distinct()
        .order_by(col(IncidentStat.period_end).desc(), col(IncidentStat.period_start).desc())
    )
    return [Period(period_code(a, b), period_label(texts, a, b), a, b) for a, b in session.exec(stmt)]


# ---- 审计日志 -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AuditRow:
    id: int
    at: str
    actor_id: str
    actor_name: str
    action: str
    detail: str
    allowed: bool
    cut: bool  # the detail shown is shortened


def _shown_detail(texts, row: AuditLog, limit: int) -> tuple[str, bool]:
    """A row's detail as it may be shown: at most `limit` characters; a held file only by its name and size."""
    detail = row.detail or ""
    if row.action in HELD_ACTIONS:
        try:
            name = str(json.loads(detail).get("file", ""))
        except (ValueError, AttributeError):
            name = ""
        return texts.t("web_admin.held_file", file=name[:200] or "?", size=len(detail)), False
    if len(detail) > limit:
        return detail[:limit] + "…", True
    return detail, False


def _audit_filters(action: str, person: str) -> list[Any]:
    where: list[Any] = []
    if action:
        where.append(col(AuditLog.action) == action)
    if person:
        where.append(
            or_(
                col(AuditLog.actor_id) == person,
                col(AuditLog.actor_name).contains(person, autoescape=True),
                col(AuditLog.actor_id).contains(person, autoescape=True),
            )
        )
    return where


def audit_rows(session: Session, texts, *, action: str, person: str, page: int, tz) -> tuple[list[AuditRow], int]:
    """One page of the audit log, newest first, and how many rows match."""
    where = _audit_filters(action, person)
    total = session.exec(select(func.count()).select_from(AuditLog).where(*where)).one()
    stmt = (
        select(AuditLog)
        .where(*where)
        .order_by(col(AuditLog.at).desc(), col(AuditLog.id).desc())
        .offset((page - 1) * PER_PAGE)
        .limit(PER_PAGE)
    )
    rows = []
    for row in session.exec(stmt):
        detail, cut = _shown_detail(texts, row, LIST_CHARS)
        rows.append(_row(row, detail, cut, tz))
    return rows, int(total)


def _row(row: AuditLog, detail: str, cut: bool, tz) -> AuditRow:
    return AuditRow(
        id=int(row.id or 0),
        at=row.at.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S"),
        actor_id=row.actor_id,
        actor_name=row.actor_name,
        action=row.action,
        detail=detail,
        allowed=bool(row.allowed),
        cut=cut,
    )


def audit_actions(session: Session) -> list[str]:
    return sorted(a for a in session.exec(select(AuditLog.action).distinct()) if a)


def action_label(texts, action: str) -> str:
    """What the page calls an audited action: its Chinese name (content [web_admin_actions]), else its code."""
    if action.startswith("refused:"):
        return texts.t("web_admin.refused_command", command=action.removeprefix("refused:"))
    try:
        return texts.t(f"web_admin_actions.{action}")
    except KeyError:
        return action


# ---- 设置 ------------------------------------------------------------------------------------------------------

_URL_START_RE = re.compile(r"\S*://")


def shown_value(texts, value: str) -> tuple[str, bool]:
    """One text as the settings page may show it, and whether part of it is hidden: a URL (anywhere in it) only as
    its scheme and host (bot/redaction.py url_origin), never its password, path or query; key=/token= values and
    SEC... secrets in any other text as ***."""
    found = _URL_START_RE.search(value)
    if found is not None:  # (what follows the URL's host is dropped with it)
        prefix = redact(value[: found.start()])
        return prefix + texts.t("web_admin.url_hidden", origin=url_origin(value[found.start() :])), True
    clean = redact(value)
    return clean, clean != value


def shown_setting(texts, name: str, value: Any) -> tuple[str, bool]:
    """(what the page shows, whether part of it is hidden) for one setting. A secret setting (bot/config.py
    is_secret_setting) shows only whether it is set, or the scheme and host of its URLs."""
    values = value if isinstance(value, list) else None
    if values is not None:
        if not values:
            return texts.t("web_admin.empty"), False
        if is_secret_setting(name) and not all(_URL_START_RE.search(str(v)) for v in values):
            return texts.t("web_admin.secret_set"), True
        shown = [shown_value(texts, str(v)) for v in values]
        hidden = any(h for _, h in shown)
        return ("\n" if hidden else "、").join(text for text, _ in shown), hidden
    if isinstance(value, bool):
        return ("是" if value else "否"), False
    if value is None or value == "":
        return texts.t("web_admin.secret_unset" if is_secret_setting(name) else "web_admin.empty"), False
    if is_secret_setting(name) and not _URL_START_RE.search(str(value)):
        return texts.t("web_admin.secret_set"), True
    return shown_value(texts, str(value))


@dataclass(frozen=True)
class SettingRow:
    name: str
    value: str
    hidden: bool


def setting_rows(texts, settings: Settings) -> list[SettingRow]:
    out = []
    for name in type(settings).model_fields:
        value = getattr(settings, name)
        if name == "puppet_service_token":  # also set by WECHATY_PUPPET_SERVICE_TOKEN: say it is set, not what
            value = settings.token()
        text, hidden = shown_setting(texts, name, value)
        out.append(SettingRow(name, text, hidden))
    return out


# ---- the routes -------------------------------------------------------------------------------------------------


class AdminPages:
    def __init__(self, console) -> None:
        self.c = console
        self._library: AlertLibrary | None = None

    def w(self, key: str, **values: object) -> str:
        return self.c.texts.t(f"web_admin.{key}", **values)

    @property
    def library(self) -> AlertLibrary:
        if self._library is None:
            self._library = load_library()
        return self._library

    def _today(self) -> date:
        return self.c.clock().astimezone(self.c.settings.tz).date()

    # 警情

    async def _incidents_page(
        self, who, *, status: int = 200, notice: str = "", lines=(), errors=(), wanted: str = ""
    ) -> Response:
        """The page for the period whose code is `wanted` (default: the latest); a period that is not readable, or
        has no figures, is refused in Chinese."""
        texts = self.c.texts
        library = self.library
        today = self._today()
        checkpoints = self.c.settings.checkpoint_days

        def work(s: Session):
            periods = stored_periods(s, texts)
            chosen = next((p for p in periods if p.code == wanted), None) if wanted else next(iter(periods), None)
            if chosen is None:
                return periods, None
            return periods, build_stats_report(
                s, period_start=chosen.start, period_end=chosen.end, library=library, checkpoints=checkpoints
            )

        periods, report = await self.c.db(work)
        if wanted and report is None:
            shown = wanted[:PERIOD_CHARS]
            parsed = parse_period(wanted, today=today) if len(wanted) <= PERIOD_CHARS else None
            if parsed is None:
                return self.c.refusal(400, self.w("bad_period", period=shown), who)
            return self.c.refusal(404, self.w("no_period", period=period_label(texts, *parsed)), who)
        chosen_code = period_code(report.period_start, report.period_end) if report else ""
        return self.c.page(
            "admin_incidents.html",
            status,
            who=who,
            nav="incidents",
            report=report,
            periods=periods,
            chosen=chosen_code,
            latest=bool(periods) and chosen_code == periods[0].code,
            title=period_label(texts, report.period_start, report.period_end) if report else "",
            ladder=_ladder(texts, report) if report else [],
            # The chat 通报's total and 同比 lines (the rest of it is the tables below).
            text=compose.stats_report_text(texts, report).splitlines()[1:3] if report else [],
            checkpoint=checkpoint_lines(texts, report.checkpoint) if report else [],
            compare=(
                {
                    t.town: (mom_text(texts, t.total, t.previous_total), yoy_text(texts, t.total, t.last_year_total))
                    for t in report.towns
                }
                if report
                else {}
            ),
            unclassified=texts.t("stats.unclassified"),
            notice=notice,
            lines=list(lines),
            errors=list(errors),
        )

    async def incidents(self, request: Request, who, form: dict[str, str]) -> Response:
        return await self._incidents_page(who, wanted=request.query_params.get("period", "").strip())

    async def upload(self, request: Request, who, form: dict[str, str]) -> Response:
        texts = self.c.texts
        upload = (await request.form()).get("file")
        if not isinstance(upload, UploadFile) or not upload.filename:
            return await self._incidents_page(who, status=400, errors=[self.w("no_file")])
        name = upload.filename.replace("\\", "/").rsplit("/", 1)[-1][:200]
        data = await upload.read(tables.MAX_BYTES + 1)
        if len(data) > tables.MAX_BYTES:
            error = texts.t("stats.too_big", mb=tables.MAX_BYTES // (1024 * 1024))
            await self._refused(request, who, name)
            return await self._incidents_page(who, status=413, errors=[texts.t("stats.import_failed", error=error)])
        today = self._today()
        try:
            rows = await run_in_threadpool(read_stats_bytes, name, data, today=today)
        except StatsError as exc:
            await self._refused(request, who, name)
            return await self._incidents_page(who, status=400, errors=[texts.t("stats.import_failed", error=str(exc))])
        except Exception:  # a reader's bug: the admin sees that nothing changed, not a stack trace
            log.exception("reading the uploaded incident file %r failed", name)
            await self._refused(request, who, name)
            error = texts.t("stats.xlsx_broken")
            return await self._incidents_page(who, status=400, errors=[texts.t("stats.import_failed", error=error)])
        address = self.c.address(request)
        library = self.library

        def work(s: Session) -> tuple[list[str], bool, bool]:
            now = self.c.clock()
            report = import_stats(s, rows, now=now, source=f"web:{who.contact_id}:{name}")
            audit(
                s,
                now=now,
                actor_id=who.contact_id,
                actor_name=who.name,
                action="stats_import",
                detail=f"{name}: {len(rows)} rows" + self.c.t("audit_from", address=address),
            )
            office = office_group(s)
            sent = False
            if office is not None:
                for period in filter(None, [report.period_to_post()]):  # as the chat does
                    queue_stats_report(
                        s,
                        period=period,
                        now=now,
                        texts=texts,
                        library=library,
                        chat_kind=ChatKind.ROOM,
                        chat_id=office.room_id,
                        checkpoints=self.c.settings.checkpoint_days,
                    )
                    sent = True
            s.commit()
            return report.lines(texts), sent, report.backfill

        summary, sent, backfill = await self.c.db(work)
        notice = texts.t("stats.imported", rows=len(rows), summary="；".join(summary))
        # A back-fill says so in the summary (yoy_stats.backfill): no line about an office group it did not need.
        lines = [] if backfill else [self.w("report_queued" if sent else "report_not_sent")]
        return await self._incidents_page(who, notice=notice, lines=lines)

    async def _refused(self, request: Request, who, name: str) -> None:
        """A file that could not be imported is audited (refused); nothing else is written."""
        address = self.c.address(request)

        def work(s: Session) -> None:
            audit(
                s,
                now=self.c.clock(),
                actor_id=who.contact_id,
                actor_name=who.name,
                action="stats_import",
                detail=self.w("audit_refused", file=name) + self.c.t("audit_from", address=address),
                allowed=False,
            )
            s.commit()

        await self.c.db(work)

    # 审计日志

    async def audit_list(self, request: Request, who, form: dict[str, str]) -> Response:
        q = request.query_params
        action = q.get("action", "").strip()[:FILTER_CHARS]
        person = q.get("person", "").strip()[:FILTER_CHARS]
        page = _number(q.get("page", "1")) or 1
        tz = self.c.settings.tz
        texts = self.c.texts

        def work(s: Session):
            rows, total = audit_rows(s, texts, action=action, person=person, page=page, tz=tz)
            return rows, total, audit_actions(s)

        rows, total, actions = await self.c.db(work)
        pages = max(1, (total + PER_PAGE - 1) // PER_PAGE)
        labels = {a: action_label(texts, a) for a in {*actions, *(r.action for r in rows)}}
        return self.c.page(
            "admin_audit.html",
            labels=labels,
            who=who,
            nav="audit",
            rows=rows,
            total=total,
            actions=actions,
            action=action,
            person=person,
            page=page,
            pages=pages,
        )

    async def audit_entry(self, request: Request, who, form: dict[str, str]) -> Response:
        entry_id = _number(request.path_params["entry_id"])
        tz = self.c.settings.tz
        texts = self.c.texts

        def work(s: Session) -> AuditRow | None:
            row = s.get(AuditLog, entry_id) if entry_id else None
            if row is None:
                return None
            detail, cut = _shown_detail(texts, row, DETAIL_CHARS)
            return _row(row, detail, cut, tz)

        row = await self.c.db(work)
        if row is None:
            return self.c.refusal(404, self.w("no_entry"), who)
        return self.c.page(
            "admin_audit_entry.html",
            who=who,
            nav="audit",
            row=row,
            label=action_label(texts, row.action),
            limit=DETAIL_CHARS,
        )

    # 设置

    async def settings_page(self, request: Request, who, form: dict[str, str]) -> Response:
        return self.c.page(
            "admin_settings.html", who=who, nav="settings", rows=setting_rows(self.c.texts, self.c.settings)
        )


def _number(text: str) -> int:
    """A number from the path or query; 0 for anything but a plain number."""
    return int(text) if text.isascii() and text.isdigit() and len(text) < 10 else 0


def routes(console) -> list[BaseRoute]:
    p = AdminPages(console)
    g = console.guarded
    texts = console.texts
    too_big = texts.t("stats.import_failed", error=texts.t("stats.too_big", mb=tables.MAX_BYTES // (1024 * 1024)))
    return [
        Route("/incidents", g(p.incidents), methods=["GET"]),
        Route("/incidents/upload", console.capped(p.upload, too_big=too_big), methods=["POST"]),
        Route("/audit", g(p.audit_list), methods=["GET"]),
        Route("/audit/{entry_id}", g(p.audit_entry), methods=["GET"]),
        Route("/settings", g(p.settings_page), methods=["GET"]),
    ]
